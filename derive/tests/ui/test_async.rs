#[odm::test]
async fn not_blocking(mp: odm::Mapper) {
    let _ = mp;
}

fn main() {}

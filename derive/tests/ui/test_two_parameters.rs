#[odm::test]
fn two_values(mp: odm::Mapper, pool: odm::Pool) {
    let _ = (mp, pool);
}

fn main() {}

#[odm::test(migration = "migrations")]
fn misspelled(mp: odm::Mapper) {
    let _ = mp;
}

fn main() {}

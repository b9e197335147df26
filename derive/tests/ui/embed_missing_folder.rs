fn main() {
    let _ = odm::embed_migrations!("no_such_migrations_folder");
}

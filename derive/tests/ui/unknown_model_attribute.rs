#[derive(odm::Model)]
#[odm(tablename = "tasks")]
struct Task {
    #[odm(primary_key)]
    id: i32,
}

fn main() {}

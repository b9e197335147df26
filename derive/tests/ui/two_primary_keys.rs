#[derive(odm::Model)]
struct Task {
    #[odm(primary_key)]
    id: i32,
    #[odm(primary_key)]
    other: i32,
}

fn main() {}

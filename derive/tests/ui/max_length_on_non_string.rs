#[derive(odm::Model)]
struct Task {
    #[odm(primary_key)]
    id: i32,
    #[odm(max_length = 10)]
    count: i64,
}

fn main() {}

#[derive(odm::Model)]
struct Task {
    #[odm(primary_key, nullable)]
    id: i32,
}

fn main() {}

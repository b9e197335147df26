#[derive(odm::Model)]
struct Task {
    id: i32,
    subject: String,
}

fn main() {}

struct Point {
    x: f64,
    y: f64,
}

#[derive(odm::Model)]
struct Place {
    #[odm(primary_key)]
    id: i32,
    location: Point,
}

fn main() {}

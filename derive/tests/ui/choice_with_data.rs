#[derive(odm::Choice)]
enum Shape {
    Circle(f64),
    Square,
}

fn main() {}

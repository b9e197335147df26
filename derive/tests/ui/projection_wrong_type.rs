#[derive(odm::Model, Debug, Clone, Default)]
struct Order {
    #[odm(primary_key)]
    id: Option<i32>,
    total: i32,
}

fn report(s: &mut odm::Session) -> odm::Result<Vec<(i32, String)>> {
    // `total` is an INTEGER column: it reads as i32, not String
    s.query::<Order>().select((Order::ID, Order::TOTAL)).all()
}

fn main() {}

#[derive(odm::Model, Debug, Clone, Default)]
struct Customer {
    #[odm(primary_key)]
    id: Option<i32>,
    name: String,
}

#[derive(odm::Model, Debug, Clone, Default)]
struct Order {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(foreign_key = "customer.id")]
    customer_id: i32,
    total: i32,
}

fn report(s: &mut odm::Session) -> odm::Result<Vec<(String, i32)>> {
    // a customer without orders has no total: it reads as Option<i32>
    s.query::<Customer>()
        .left_join::<Order>()
        .select((Customer::NAME, Order::TOTAL))
        .all()
}

fn main() {}

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
}

fn report(s: &mut odm::Session) -> odm::Result<Vec<(i32, String)>> {
    // `Customer` was never joined into the query
    s.query::<Order>().select((Order::ID, Customer::NAME)).all()
}

fn main() {}

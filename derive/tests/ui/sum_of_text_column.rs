use odm::query::sum;

#[derive(odm::Model, Debug, Clone, Default)]
struct Order {
    #[odm(primary_key)]
    id: Option<i32>,
    note: String,
}

fn report(s: &mut odm::Session) -> odm::Result<Option<i64>> {
    // a TEXT column has no sum
    s.query::<Order>().select(sum(Order::NOTE)).one()
}

fn main() {}

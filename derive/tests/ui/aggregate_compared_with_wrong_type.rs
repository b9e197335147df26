use odm::query::sum;

#[derive(odm::Model, Debug, Clone, Default)]
struct Order {
    #[odm(primary_key)]
    id: Option<i32>,
    total: i32,
}

fn report(s: &mut odm::Session) -> odm::Result<Vec<i64>> {
    // the sum of an INTEGER column is an i64: it cannot be compared with text
    s.query::<Order>()
        .group_by(Order::ID)
        .having(sum(Order::TOTAL).gt("100"))
        .select(odm::query::count())
        .all()
}

fn main() {}

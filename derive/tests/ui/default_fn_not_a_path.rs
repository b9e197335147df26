#[derive(odm::Model)]
struct Ticket {
    #[odm(primary_key)]
    id: i32,
    #[odm(default_fn = "next ticket()")]
    number: Option<i64>,
}

fn main() {}

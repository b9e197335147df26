#[derive(odm::Model)]
struct Ticket {
    #[odm(primary_key)]
    id: i32,
    #[odm(default_fn = "next_ticket")]
    number: i64,
}

fn main() {}

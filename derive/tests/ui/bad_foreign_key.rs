#[derive(odm::Model)]
struct Task {
    #[odm(primary_key)]
    id: i32,
    #[odm(foreign_key = "employee")]
    employee_id: Option<i32>,
}

fn main() {}

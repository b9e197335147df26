#[derive(odm::Model)]
struct Employee {
    #[odm(primary_key)]
    id: Option<i32>,
}

#[derive(odm::Model)]
struct Engineer {
    #[odm(parent)]
    employee: Employee,
    #[odm(primary_key)]
    id: i32,
}

fn main() {}

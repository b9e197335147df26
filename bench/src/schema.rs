//! The TechEmpower schema: `world` (10,000 rows with random numbers) and
//! `fortune` (the 12 standard messages, including the `<script>` one and
//! the Japanese one), created through any client that can run a batch of
//! SQL text.

use super::workload::WORLD_ROWS;

/// TechEmpower's fortunes, by id.
pub const FORTUNES: [(i32, &str); 12] = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u{2014} Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. \u{2014} Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, "<script>alert(\"This should not be displayed in a browser alert box.\");</script>"),
    (12, "\u{30d5}\u{30ec}\u{30fc}\u{30e0}\u{30ef}\u{30fc}\u{30af}\u{306e}\u{30d9}\u{30f3}\u{30c1}\u{30de}\u{30fc}\u{30af}"),
];

/// The SQL that (re)creates and fills both tables, then analyzes them.
pub fn setup_sql() -> String {
    let mut sql = String::from(
        "DROP TABLE IF EXISTS world;\n\
         DROP TABLE IF EXISTS fortune;\n\
         CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL DEFAULT 0);\n\
         CREATE TABLE fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL);\n",
    );
    sql.push_str(&format!(
        "INSERT INTO world (id, randomnumber) \
         SELECT g, 1 + floor(random() * 10000)::integer FROM generate_series(1, {WORLD_ROWS}) g;\n"
    ));
    sql.push_str("INSERT INTO fortune (id, message) VALUES ");
    for (i, (id, message)) in FORTUNES.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("({id}, '{}')", message.replace('\'', "''")));
    }
    sql.push_str(";\nVACUUM ANALYZE world;\nVACUUM ANALYZE fortune;\n");
    sql
}

/// Creates the schema by running [`setup_sql`] one statement at a time
/// through `batch` (`VACUUM` cannot run inside a multi-statement batch).
pub fn create<E>(mut batch: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
    for statement in setup_sql().split(";\n").map(str::trim) {
        if !statement.is_empty() {
            batch(statement)?;
        }
    }
    Ok(())
}

/// The `world` table alone, with a deterministic `randomnumber` (`id % 7919`),
/// for the fixed-load programs (`driver_load`, `orm_load`): one batch.
pub fn load_world_sql() -> String {
    format!(
        "CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL); \
         INSERT INTO world SELECT g, g % 7919 FROM generate_series(1, {WORLD_ROWS}) g; \
         ANALYZE world"
    )
}

//! Queries beyond one table: joins along declared foreign keys, projections
//! into tuples, `group_by` with typed aggregates, `having`, `distinct` —
//! each on a fresh database, every body on a green worker.

use std::sync::LazyLock;

use green::GreenPool;
use odm::query::{avg, count, count_distinct, count_of, max, min, sum, QueryError};
use odm::testing::{test_database, TestDatabase};
use odm::{Error, Mapper};

static POOL: LazyLock<GreenPool> = LazyLock::new(GreenPool::new);

/// Runs `work` on a green worker and waits for it.
fn green<T, F>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    POOL.submit(work)
        .expect("submit")
        .join()
        .expect("green task")
}

#[derive(odm::Model, Debug, Clone, Default)]
struct Customer {
    #[odm(primary_key)]
    id: Option<i32>,
    name: String,
    email: Option<String>,
}

#[derive(odm::Model, Debug, Clone, Default)]
#[odm(table = "orders")]
struct Order {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(foreign_key = "customer.id")]
    customer_id: i32,
    total: i32,
    weight: i64,
    discount: Option<f64>,
}

#[derive(odm::Model, Debug, Clone, Default)]
struct LineItem {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(foreign_key = "orders.id")]
    order_id: i32,
    product: String,
}

/// Two foreign keys to `customer`: a join cannot pick one.
#[derive(odm::Model, Debug, Clone, Default)]
struct Referral {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(foreign_key = "customer.id")]
    referrer_id: i32,
    #[odm(foreign_key = "customer.id")]
    referred_id: i32,
}

/// No foreign key to anything.
#[derive(odm::Model, Debug, Clone, Default)]
struct Warehouse {
    #[odm(primary_key)]
    id: Option<i32>,
    city: String,
}

#[derive(odm::Model, Debug, Clone, Default)]
struct Shipment {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(foreign_key = "orders.id")]
    order_id: i32,
}

/// A child model whose foreign key lives in its parent's table.
#[derive(odm::Model, Debug, Clone, Default)]
struct ExpressShipment {
    #[odm(parent)]
    shipment: Shipment,
    courier: String,
}

/// Kept on another bind than the shop: a join to it cannot run.
#[derive(odm::Model, Debug, Clone, Default)]
#[odm(bind = "archive")]
struct ArchivedOrder {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(foreign_key = "customer.id")]
    customer_id: i32,
}

/// A fresh database with the models' tables and three customers:
/// ann (orders 100 and 250), bob (order 40, no email), cid (no orders).
fn shop() -> (TestDatabase, Mapper) {
    let db = test_database().expect("test database");
    let mp = Mapper::new(&db.url()).expect("mapper");
    mp.register::<Customer>().unwrap();
    mp.register::<Order>().unwrap();
    mp.register::<LineItem>().unwrap();
    mp.register::<Referral>().unwrap();
    mp.register::<Warehouse>().unwrap();
    mp.register::<Shipment>().unwrap();
    mp.register::<ExpressShipment>().unwrap();
    let setup = mp.clone();
    green(move || -> odm::Result<()> {
        setup.table_create()?;
        setup.begin(|s| {
            let mut ids = Vec::new();
            for (name, email) in [
                ("ann", Some("ann@example.com")),
                ("bob", None),
                ("cid", None),
            ] {
                let mut c = Customer {
                    name: name.into(),
                    email: email.map(String::from),
                    ..Customer::default()
                };
                s.add(&mut c)?;
                ids.push(c.id.unwrap());
            }
            for (customer_id, total, weight, discount) in [
                (ids[0], 100, 3_000_000_000_i64, Some(0.5)),
                (ids[0], 250, 3_000_000_000, None),
                (ids[1], 40, 7, Some(1.5)),
            ] {
                let mut o = Order {
                    customer_id,
                    total,
                    weight,
                    discount,
                    ..Order::default()
                };
                s.add(&mut o)?;
                for product in ["pen", "ink"] {
                    s.add(&mut LineItem {
                        order_id: o.id.unwrap(),
                        product: product.into(),
                        ..LineItem::default()
                    })?;
                }
            }
            Ok(())
        })
    })
    .expect("setup");
    (db, mp)
}

fn query_error(err: Error) -> QueryError {
    match err {
        Error::Query(e) => *e,
        other => panic!("expected a query error, got {other:?}"),
    }
}

#[test]
fn orders_join_their_customer_along_the_declared_foreign_key() {
    let (_db, mp) = shop();
    let rows: Vec<(i32, String)> = green(move || {
        mp.begin(|s| {
            s.query::<Order>()
                .join::<Customer>()
                .select((Order::TOTAL, Customer::NAME))
                .order_by(Order::TOTAL.asc())
                .all()
        })
    })
    .unwrap();
    assert_eq!(
        rows,
        [
            (40, "bob".to_owned()),
            (100, "ann".into()),
            (250, "ann".into())
        ]
    );
}

#[test]
fn a_join_works_from_the_side_the_foreign_key_points_at() {
    let (_db, mp) = shop();
    let rows: Vec<(String, i32)> = green(move || {
        mp.begin(|s| {
            s.query::<Customer>()
                .join::<Order>()
                .filter(Order::TOTAL.ge(100))
                .select((Customer::NAME, Order::TOTAL))
                .order_by(Order::TOTAL.desc())
                .all()
        })
    })
    .unwrap();
    assert_eq!(rows, [("ann".to_owned(), 250), ("ann".into(), 100)]);
}

#[test]
fn three_models_join_in_a_chain() {
    let (_db, mp) = shop();
    let rows: Vec<(String, String)> = green(move || {
        mp.begin(|s| {
            s.query::<LineItem>()
                .join::<Order>()
                .join::<Customer>()
                .filter(Customer::NAME.eq("bob"))
                .select((Customer::NAME, LineItem::PRODUCT))
                .order_by(LineItem::PRODUCT.asc())
                .all()
        })
    })
    .unwrap();
    assert_eq!(
        rows,
        [
            ("bob".to_owned(), "ink".to_owned()),
            ("bob".into(), "pen".into())
        ]
    );
}

#[test]
fn a_nullable_column_is_projected_as_an_option() {
    let (_db, mp) = shop();
    let rows: Vec<(String, Option<String>)> = green(move || {
        mp.begin(|s| {
            s.query::<Customer>()
                .select((Customer::NAME, Customer::EMAIL))
                .order_by(Customer::NAME.asc())
                .all()
        })
    })
    .unwrap();
    assert_eq!(
        rows,
        [
            ("ann".to_owned(), Some("ann@example.com".to_owned())),
            ("bob".into(), None),
            ("cid".into(), None)
        ]
    );
}

#[test]
fn a_single_selected_column_reads_as_plain_values() {
    let (_db, mp) = shop();
    let names: Vec<String> = green(move || {
        mp.begin(|s| {
            s.query::<Customer>()
                .select(Customer::NAME)
                .order_by(Customer::NAME.desc())
                .limit(2)
                .all()
        })
    })
    .unwrap();
    assert_eq!(names, ["cid", "bob"]);
}

#[test]
fn group_by_reads_typed_count_sum_min_max_and_avg_per_group() {
    let (_db, mp) = shop();
    type Row = (
        String,
        i64,
        Option<i64>,
        Option<i32>,
        Option<i32>,
        Option<f64>,
    );
    let rows: Vec<Row> = green(move || {
        mp.begin(|s| {
            s.query::<Order>()
                .join::<Customer>()
                .group_by(Customer::NAME)
                .select((
                    Customer::NAME,
                    count(),
                    sum(Order::TOTAL),
                    min(Order::TOTAL),
                    max(Order::TOTAL),
                    avg(Order::TOTAL),
                ))
                .order_by(sum(Order::TOTAL).desc())
                .all()
        })
    })
    .unwrap();
    assert_eq!(
        rows,
        [
            (
                "ann".to_owned(),
                2,
                Some(350),
                Some(100),
                Some(250),
                Some(175.0)
            ),
            ("bob".into(), 1, Some(40), Some(40), Some(40), Some(40.0)),
        ]
    );
}

#[test]
fn the_sum_of_a_bigint_column_reads_as_i64_and_of_a_float_column_as_f64() {
    let (_db, mp) = shop();
    let row: (Option<i64>, Option<f64>, Option<f64>) = green(move || {
        mp.begin(|s| {
            s.query::<Order>()
                .select((sum(Order::WEIGHT), sum(Order::DISCOUNT), avg(Order::WEIGHT)))
                .one()
        })
    })
    .unwrap();
    assert_eq!(
        row,
        (
            Some(6_000_000_007),
            Some(2.0),
            Some(2_000_000_002.333_333_3)
        )
    );
}

#[test]
fn having_keeps_only_the_groups_matching_an_aggregate_condition() {
    let (_db, mp) = shop();
    let rows: Vec<(String, i64)> = green(move || {
        mp.begin(|s| {
            s.query::<Order>()
                .join::<Customer>()
                .group_by(Customer::NAME)
                .having(sum(Order::TOTAL).gt(100) & count().ge(2))
                .select((Customer::NAME, count()))
                .all()
        })
    })
    .unwrap();
    assert_eq!(rows, [("ann".to_owned(), 2)]);
}

#[test]
fn aggregates_over_no_rows_are_none_and_the_count_is_zero() {
    let (_db, mp) = shop();
    let row: (i64, Option<i64>, Option<f64>, Option<String>) = green(move || {
        mp.begin(|s| {
            s.query::<Order>()
                .join::<Customer>()
                .filter(Customer::NAME.eq("cid"))
                .select((
                    count(),
                    sum(Order::TOTAL),
                    avg(Order::TOTAL),
                    max(Customer::NAME),
                ))
                .one()
        })
    })
    .unwrap();
    assert_eq!(row, (0, None, None, None));
}

#[test]
fn distinct_returns_each_equal_row_once() {
    let (_db, mp) = shop();
    let (all, distinct) = green(move || {
        mp.begin(|s| {
            let all: Vec<String> = s
                .query::<Order>()
                .join::<Customer>()
                .select(Customer::NAME)
                .all()?;
            let distinct: Vec<String> = s
                .query::<Order>()
                .join::<Customer>()
                .distinct()
                .select(Customer::NAME)
                .order_by(Customer::NAME.asc())
                .all()?;
            Ok((all.len(), distinct))
        })
    })
    .unwrap();
    assert_eq!(all, 3);
    assert_eq!(distinct, ["ann", "bob"]);
}

#[test]
fn first_and_one_read_a_single_projected_row() {
    let (_db, mp) = shop();
    let (first, none, err) = green(move || {
        mp.begin(|s| {
            let first = s
                .query::<Order>()
                .select(Order::TOTAL)
                .order_by(Order::TOTAL.desc())
                .first()?;
            let none = s
                .query::<Order>()
                .filter(Order::TOTAL.gt(1000))
                .select(Order::TOTAL)
                .first()?;
            let err = s.query::<Order>().select(Order::TOTAL).one().unwrap_err();
            Ok((first, none, err))
        })
    })
    .unwrap();
    assert_eq!(first, Some(250));
    assert_eq!(none, None);
    assert!(matches!(err, Error::RowCount(3)), "{err:?}");
}

#[test]
fn a_joined_child_model_brings_its_parent_table_and_its_foreign_key() {
    let (_db, mp) = shop();
    let rows: Vec<(i32, String)> = green(move || {
        mp.begin(|s| {
            let order = s.query::<Order>().filter(Order::TOTAL.eq(40)).one()?;
            let mut shipment = ExpressShipment {
                shipment: Shipment {
                    order_id: order.id.unwrap(),
                    ..Shipment::default()
                },
                courier: "swift".into(),
            };
            s.add(&mut shipment)?;
            s.query::<Order>()
                .join::<ExpressShipment>()
                .select((Order::TOTAL, ExpressShipment::COURIER))
                .all()
        })
    })
    .unwrap();
    assert_eq!(rows, [(40, "swift".to_owned())]);
}

#[test]
fn a_join_without_a_foreign_key_is_an_error_naming_the_tables() {
    let (_db, mp) = shop();
    let err = green(move || {
        mp.begin(|s| {
            s.query::<Customer>()
                .join::<Warehouse>()
                .select(Warehouse::CITY)
                .all()
        })
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no foreign key joins `warehouse` to `customer`"
    );
    assert!(matches!(
        query_error(err),
        QueryError::NoForeignKey {
            joined: "warehouse",
            ..
        }
    ));
}

#[test]
fn a_join_along_two_foreign_keys_is_an_error_naming_both() {
    let (_db, mp) = shop();
    let err = green(move || {
        mp.begin(|s| {
            s.query::<Customer>()
                .join::<Referral>()
                .select(Referral::ID)
                .all()
        })
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`referral` can be joined along several foreign keys: \
         `referral.referrer_id` -> `customer.id`, `referral.referred_id` -> `customer.id`"
    );
}

#[test]
fn joining_a_table_twice_is_an_error_naming_it() {
    let (_db, mp) = shop();
    let err = green(move || {
        mp.begin(|s| {
            s.query::<Order>()
                .join::<Customer>()
                .join::<Customer>()
                .select(Order::ID)
                .all()
        })
    })
    .unwrap_err();
    assert_eq!(query_error(err), QueryError::AlreadyJoined("customer"));
}

#[test]
fn a_filter_on_a_model_outside_the_query_is_an_error_naming_the_column() {
    let (_db, mp) = shop();
    let err = green(move || {
        mp.begin(|s| {
            s.query::<Order>()
                .filter(Customer::NAME.eq("ann"))
                .select(Order::TOTAL)
                .all()
        })
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "column `customer.name` belongs to no table of the query"
    );
}

#[test]
fn a_selected_column_neither_grouped_nor_aggregated_is_the_servers_grouping_error() {
    let (_db, mp) = shop();
    let err = green(move || {
        mp.begin(|s| {
            s.query::<Order>()
                .join::<Customer>()
                .group_by(Customer::NAME)
                .select((Customer::NAME, Order::TOTAL))
                .all()
        })
    })
    .unwrap_err();
    assert_eq!(err.code(), Some("42803"), "{err}");
}

#[test]
fn values_in_filters_and_having_are_bound_parameters_never_sql_text() {
    let (_db, mp) = shop();
    let hostile = "x'); DROP TABLE customer; --";
    let (sql, rows, customers) = green(move || {
        mp.begin(|s| {
            let sql = s
                .query::<Order>()
                .join::<Customer>()
                .filter(Customer::NAME.eq(hostile))
                .group_by(Customer::NAME)
                .having(max(Customer::NAME).ne(hostile))
                .select((Customer::NAME, count()))
                .to_sql()?;
            let rows = s
                .query::<Order>()
                .join::<Customer>()
                .filter(Customer::NAME.eq(hostile))
                .group_by(Customer::NAME)
                .having(max(Customer::NAME).ne(hostile))
                .select((Customer::NAME, count()))
                .all()?;
            Ok((sql, rows, s.query::<Customer>().count()?))
        })
    })
    .unwrap();
    assert_eq!(
        sql,
        "SELECT \"customer\".\"name\", COUNT(*) FROM \"orders\" \
         JOIN \"customer\" ON \"orders\".\"customer_id\" = \"customer\".\"id\" \
         WHERE \"customer\".\"name\" = $1 GROUP BY \"customer\".\"name\" \
         HAVING MAX(\"customer\".\"name\") <> $2"
    );
    assert!(rows.is_empty());
    assert_eq!(customers, 3);
}

#[test]
fn an_optional_primary_key_is_projected_as_its_plain_type() {
    let (_db, mp) = shop();
    let rows: Vec<(i32, i32, String)> = green(move || {
        mp.begin(|s| {
            s.query::<Order>()
                .join::<Customer>()
                .select((Order::ID, Customer::ID, Customer::NAME))
                .all()
        })
    })
    .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows
        .iter()
        .all(|(order, customer, _)| *order > 0 && *customer > 0));
}

#[test]
fn a_join_to_a_model_on_another_bind_is_an_error_naming_both_binds() {
    let db = test_database().expect("test database");
    let mp = Mapper::with_binds([("default", db.url()), ("archive", db.url())]).expect("mapper");
    mp.register::<Customer>().unwrap();
    mp.register::<ArchivedOrder>().unwrap();
    let err = green(move || {
        mp.begin(|s| {
            s.query::<Customer>()
                .join::<ArchivedOrder>()
                .select(ArchivedOrder::ID)
                .all()
        })
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table `archivedorder` is bound to `archive`, the query to `default`"
    );
}

#[test]
fn a_child_models_report_selects_its_parents_columns() {
    let (_db, mp) = shop();
    let rows: Vec<(i32, String, i32)> = green(move || {
        mp.begin(|s| {
            let order = s.query::<Order>().filter(Order::TOTAL.eq(100)).one()?;
            let mut shipment = ExpressShipment {
                shipment: Shipment {
                    order_id: order.id.unwrap(),
                    ..Shipment::default()
                },
                courier: "swift".into(),
            };
            s.add(&mut shipment)?;
            s.query::<ExpressShipment>()
                .join::<Order>()
                .select((Shipment::ID, ExpressShipment::COURIER, Order::TOTAL))
                .all()
        })
    })
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("swift", 100));
}

#[test]
fn count_of_skips_nulls_and_count_distinct_counts_different_values() {
    let (_db, mp) = shop();
    let rows: Vec<(String, i64, i64, i64)> = green(move || {
        mp.begin(|s| {
            s.query::<LineItem>()
                .join::<Order>()
                .join::<Customer>()
                .group_by(Customer::NAME)
                .having(count_distinct(LineItem::ORDER_ID).ge(1))
                .select((
                    Customer::NAME,
                    count(),
                    count_of(Order::DISCOUNT),
                    count_distinct(LineItem::ORDER_ID),
                ))
                .order_by(count_distinct(LineItem::ORDER_ID).desc())
                .all()
        })
    })
    .unwrap();
    // ann: 2 orders x 2 items, one order without discount; bob: 1 order x 2
    assert_eq!(rows, [("ann".to_owned(), 4, 2, 2), ("bob".into(), 2, 2, 1)]);
}

#[test]
fn a_left_join_keeps_rows_without_a_match_and_reads_their_columns_as_none() {
    let (_db, mp) = shop();
    let (rows, per_customer) = green(move || {
        mp.begin(|s| {
            let rows: Vec<(String, Option<i32>, Option<f64>)> = s
                .query::<Customer>()
                .left_join::<Order>()
                .select((Customer::NAME, Order::TOTAL, Order::DISCOUNT))
                .order_by(Customer::NAME.asc())
                .order_by(Order::TOTAL.asc())
                .all()?;
            let per_customer: Vec<(String, i64, Option<i64>)> = s
                .query::<Customer>()
                .left_join::<Order>()
                .group_by(Customer::NAME)
                .select((Customer::NAME, count_of(Order::ID), sum(Order::TOTAL)))
                .order_by(Customer::NAME.asc())
                .all()?;
            Ok((rows, per_customer))
        })
    })
    .unwrap();
    assert_eq!(
        rows,
        [
            ("ann".to_owned(), Some(100), Some(0.5)),
            ("ann".into(), Some(250), None),
            ("bob".into(), Some(40), Some(1.5)),
            ("cid".into(), None, None),
        ]
    );
    assert_eq!(
        per_customer,
        [
            ("ann".to_owned(), 2, Some(350)),
            ("bob".into(), 1, Some(40)),
            ("cid".into(), 0, None),
        ]
    );
}

//! The order workflow example (`examples/order_workflow.rs`) run against a
//! fresh database, its invariants checked with raw SQL: stock never goes
//! negative and is conserved, acknowledged orders are stored whole,
//! refused ones leave nothing, and the report adds up.

mod green_tasks;

#[path = "../examples/order_workflow.rs"]
#[allow(dead_code)] // its `main` is for `cargo run --example order_workflow`
mod order_workflow;

use std::collections::{HashMap, HashSet};

use green_tasks::on_green as green;
use odm::testing::TestDatabase;
use odm::Mapper;
use order_workflow::{
    Customer, LineItem, Order, OrderRequest, OrderStatus, Product, ShopError, CUSTOMERS, PRODUCTS,
};
use rust_decimal::Decimal;

/// A fresh database migrated to the shop's schema and stocked; the ids of
/// its customers and products.
fn shop() -> (TestDatabase, Mapper, Vec<i32>, Vec<i32>) {
    let db = odm::testing::test_database().expect("test database");
    let mp = Mapper::new(&db.url()).expect("mapper");
    mp.register_migrations(order_workflow::migrations().unwrap())
        .unwrap();
    mp.register::<Customer>().unwrap();
    mp.register::<Product>().unwrap();
    mp.register::<Order>().unwrap();
    mp.register::<LineItem>().unwrap();
    let setup = mp.clone();
    let (customers, products) = green(move || {
        let migrated = setup.migrate()?;
        let versions: Vec<i64> = migrated.applied.iter().map(|m| m.version).collect();
        assert_eq!(versions, [1, 2], "both migrations applied in order");
        order_workflow::stock_shop(&setup, &CUSTOMERS, &PRODUCTS)
    })
    .unwrap();
    (db, mp, customers, products)
}

/// Runs `sql` (no parameters) on a green worker; its rows as `(i64, i64)`.
fn pairs(mp: &Mapper, sql: &'static str) -> Vec<(i64, i64)> {
    let mp = mp.clone();
    green(move || {
        let rows = mp.session()?.query_raw(sql, &[])?;
        Ok::<_, odm::Error>(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })
    .unwrap()
}

/// An amount of money in hundredths, exactly (the report's NUMERIC sums
/// against raw SQL's).
fn cents(amount: Decimal) -> i64 {
    i64::try_from(amount * Decimal::ONE_HUNDRED).expect("whole cents")
}

/// An order's lines as comparable `(product id, qty, amount)` triples.
fn lines_of(items: &[LineItem]) -> Vec<(i32, i32, Decimal)> {
    let mut lines: Vec<_> = items
        .iter()
        .map(|i| (i.product_id, i.qty, i.amount))
        .collect();
    lines.sort_unstable();
    lines
}

#[test]
fn concurrent_orders_conserve_stock_and_refused_orders_leave_nothing_behind() {
    let (_db, mp, customers, products) = shop();
    // the shoppers ask for more of some product than there is, so some
    // orders must be refused whatever order the tasks run in
    let mut demand: HashMap<i32, i32> = HashMap::new();
    for shopper in 0..order_workflow::SHOPPERS {
        for request in order_workflow::requests_of(shopper, &customers, &products) {
            for (product, qty) in request.lines {
                *demand.entry(product).or_default() += qty;
            }
        }
    }
    assert!(products
        .iter()
        .zip(PRODUCTS)
        .any(|(id, (_, _, stock))| demand[id] > stock));

    let outcome = order_workflow::run_shop(
        green_tasks::green(),
        &mp,
        order_workflow::SHOPPERS,
        &customers,
        &products,
    )
    .unwrap();
    assert!(!outcome.placed.is_empty(), "some orders were placed");
    assert!(!outcome.refused.is_empty(), "some orders were refused");
    assert_eq!(
        outcome.placed.len() + outcome.refused.len(),
        order_workflow::SHOPPERS * 4,
        "every request was answered"
    );
    for (request, reason) in &outcome.refused {
        assert!(reason.contains("wanted"), "{request:?} refused: {reason}");
    }

    // stock never negative; initial == left + reserved, per product
    let left_and_reserved = pairs(
        &mp,
        "SELECT p.stock::bigint, COALESCE(SUM(l.qty), 0)::bigint FROM products p \
         LEFT JOIN line_items l ON l.product_id = p.id GROUP BY p.id ORDER BY p.id",
    );
    assert_eq!(left_and_reserved.len(), PRODUCTS.len());
    for ((left, reserved), (name, _, initial)) in left_and_reserved.iter().zip(PRODUCTS) {
        assert!(*left >= 0, "{name}: stock {left}");
        assert_eq!(
            left + reserved,
            i64::from(initial),
            "{name}: stock conserved"
        );
    }

    // every acknowledged order is stored with exactly its line items
    let placed: HashMap<String, (Order, Vec<LineItem>)> = outcome
        .placed
        .iter()
        .map(|(order, items)| (order.reference.clone(), (order.clone(), items.clone())))
        .collect();
    let read = mp.clone();
    let stored =
        green(move || read.begin(|s| s.query::<Order>().with_related::<LineItem>().all())).unwrap();
    assert_eq!(
        stored.len(),
        placed.len(),
        "only acknowledged orders are stored"
    );
    for (order, items) in &stored {
        let (acked, acked_items) = &placed[&order.reference];
        assert_eq!(order.id, acked.id);
        assert_eq!(order.customer_id, acked.customer_id);
        assert_eq!(order.status, OrderStatus::Placed);
        assert!(order.placed_at.is_some(), "the V2 column is filled");
        assert_eq!(
            lines_of(items),
            lines_of(acked_items),
            "{}",
            order.reference
        );
        for item in items {
            assert_eq!(item.amount, Decimal::from(item.qty) * item.unit_price);
            assert_eq!(item.amount.scale(), 2, "NUMERIC(12, 2) keeps two places");
        }
    }
    let refused: HashSet<&str> = outcome
        .refused
        .iter()
        .map(|(r, _)| r.reference.as_str())
        .collect();
    assert!(stored
        .iter()
        .all(|(o, _)| !refused.contains(o.reference.as_str())));
    let line_count = pairs(
        &mp,
        "SELECT COUNT(*), COUNT(DISTINCT order_id) FROM line_items",
    );
    let acked_lines: usize = outcome.placed.iter().map(|(_, items)| items.len()).sum();
    assert_eq!(
        line_count,
        [(acked_lines as i64, placed.len() as i64)],
        "no line item of a refused order"
    );

    // the report against raw SQL and against the acknowledged orders
    let on_pool = mp.clone();
    let report =
        green(move || order_workflow::report(&on_pool, order_workflow::price(10_000), 5)).unwrap();
    let by_customer = pairs(
        &mp,
        "SELECT COUNT(DISTINCT o.id), (SUM(l.qty * l.unit_price) * 100)::bigint \
         FROM line_items l JOIN orders o ON o.id = l.order_id \
         JOIN customers c ON c.id = o.customer_id GROUP BY c.id \
         HAVING SUM(l.qty * l.unit_price) >= 100 ORDER BY 2 DESC, c.name",
    );
    let reported: Vec<(i64, i64)> = report
        .best_customers
        .iter()
        .map(|c| (c.orders, cents(c.revenue)))
        .collect();
    assert_eq!(reported, by_customer);
    let by_product = pairs(
        &mp,
        "SELECT SUM(l.qty)::bigint, (SUM(l.qty * p.price) * 100)::bigint \
         FROM line_items l JOIN products p ON p.id = l.product_id \
         GROUP BY p.name ORDER BY 2 DESC, p.name",
    );
    let reported: Vec<(i64, i64)> = report
        .per_product
        .iter()
        .map(|p| (p.units, cents(p.revenue)))
        .collect();
    assert_eq!(reported, by_product);
    let acked_revenue: Decimal = outcome
        .placed
        .iter()
        .flat_map(|(_, items)| items)
        .map(|i| Decimal::from(i.qty) * i.unit_price)
        .sum();
    let reported_revenue: Decimal = report.per_product.iter().map(|p| p.revenue).sum();
    assert_eq!(reported_revenue, acked_revenue);

    // the latest orders come with their own line items
    assert_eq!(report.latest_orders.len(), 5.min(placed.len()));
    for pair in report.latest_orders.windows(2) {
        assert!(pair[0].0.placed_at >= pair[1].0.placed_at, "latest first");
    }
    for (order, items) in &report.latest_orders {
        assert_eq!(lines_of(items), lines_of(&placed[&order.reference].1));
    }
}

#[test]
fn a_refused_order_inside_an_outer_transaction_rolls_back_only_its_own_savepoint() {
    let (_db, mp, customers, products) = shop();
    let request = |reference: &str, qty: i32| OrderRequest {
        customer_id: customers[0],
        reference: reference.to_owned(),
        lines: vec![(products[0], 1), (products[1], qty)],
    };
    let (fits, too_many) = (request("fits", 2), request("too-many", 1_000));
    let outer = mp.clone();
    let refusal = green(move || {
        outer.transaction(|_| -> Result<_, ShopError> {
            order_workflow::place_order(&outer, &fits)?;
            // refused: its savepoint rolls back, the outer transaction goes on
            let refused = order_workflow::place_order(&outer, &too_many).unwrap_err();
            Ok(refused.to_string())
        })
    })
    .unwrap();
    assert_eq!(
        refusal,
        format!(
            "product {}: 1000 wanted, {} left",
            products[1],
            PRODUCTS[1].2 - 2
        )
    );
    let stored = pairs(
        &mp,
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE reference = 'fits') FROM orders",
    );
    assert_eq!(stored, [(1, 1)], "only the order that fit is committed");
    let (stock, items) = (
        pairs(
            &mp,
            "SELECT stock::bigint, id::bigint FROM products ORDER BY id",
        ),
        pairs(
            &mp,
            "SELECT COUNT(*), COUNT(DISTINCT order_id) FROM line_items",
        ),
    );
    assert_eq!(stock[0].0, i64::from(PRODUCTS[0].2) - 1);
    assert_eq!(stock[1].0, i64::from(PRODUCTS[1].2) - 2);
    assert_eq!(items, [(2, 1)], "only the lines of the order that fit");
}

#[test]
fn an_order_naming_an_unknown_product_is_refused_with_its_id() {
    let (_db, mp, customers, _products) = shop();
    let request = OrderRequest {
        customer_id: customers[0],
        reference: "ghost".into(),
        lines: vec![(999_999, 1)],
    };
    let on_pool = mp.clone();
    let err = green(move || order_workflow::place_order(&on_pool, &request)).unwrap_err();
    assert!(matches!(err, ShopError::UnknownProduct(999_999)), "{err:?}");
    assert_eq!(
        pairs(&mp, "SELECT COUNT(*), 0::bigint FROM orders"),
        [(0, 0)]
    );
}

//! An order workflow ported from a greenlet-style pulsar-odm script: many
//! green tasks place orders at once, each reserving stock under row locks
//! and rolling back when a product runs short; then a report with joins,
//! aggregates and eager loading. The Python it comes from looked like:
//!
//! ```text
//! def place_order(mapper, customer_id, lines):
//!     with mapper.begin() as session:                  # a greenlet per order
//!         reserved = reserve_stock(mapper, lines)      # nested begin: savepoint
//!         order = Order(customer_id=customer_id, placed_at=datetime.now())
//!         session.add(order); session.flush()
//!         session.add_all([LineItem(order_id=order.id, ...) for ...])
//!
//! def reserve_stock(mapper, lines):
//!     with mapper.begin() as session:
//!         products = session.query(Product).filter(Product.id.in_(ids))
//!                           .order_by(Product.id).with_for_update().all()
//!         if any(p.stock < qty ...): raise OutOfStock(...)  # rolled back
//!
//! pool = GreenPool(); await asyncio.gather(*(pool.submit(shopper, n) ...))
//! ```
//!
//! ```text
//! cargo run --example order_workflow
//! ```
//!
//! Uses the server named by `DATABASE_URL` when set (it must be an empty
//! database: the migrations create `customers`, `products`, `orders` and
//! `line_items`), otherwise starts a throwaway PostgreSQL and removes it at
//! exit. `tests/order_workflow.rs` runs [`run_shop`] and checks the
//! invariants against the database.
//!
//! Money is `NUMERIC` in the database and `rust_decimal::Decimal` in Rust
//! (odm's `decimal` feature): exact, with its scale kept (`25.00`), and
//! summed exactly by the server. The ORM has no column arithmetic in
//! aggregates (`sum(qty * price)`), so a line item stores its total
//! (`amount`), as many schemas do.

use green::GreenPool;
use odm::query::{count_distinct, sum};
use odm::testing::TempCluster;
use odm::{Mapper, Migration, Migrations};
use rust_decimal::Decimal;

/// V1: the shop's tables.
const V1_CREATE_SHOP: &str = "
CREATE TABLE customers (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE products (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    price NUMERIC(10, 2) NOT NULL CHECK (price > 0),
    stock INTEGER NOT NULL CHECK (stock >= 0)
);
CREATE TABLE orders (
    id SERIAL PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    reference TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL
);
CREATE TABLE line_items (
    id SERIAL PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    qty INTEGER NOT NULL CHECK (qty > 0),
    unit_price NUMERIC(10, 2) NOT NULL,
    amount NUMERIC(12, 2) NOT NULL
);
CREATE INDEX line_items_order ON line_items (order_id);
";

/// V2: when an order was placed (orders placed before have none).
const V2_ADD_PLACED_AT: &str = "ALTER TABLE orders ADD COLUMN placed_at TIMESTAMP;";

/// The shop's migrations, embedded in the binary.
pub fn migrations() -> odm::Result<Migrations> {
    Migrations::new(vec![
        Migration::new(1, "create_shop", V1_CREATE_SHOP),
        Migration::new(2, "add_order_placed_at", V2_ADD_PLACED_AT),
    ])
}

/// A customer.
#[derive(odm::Model, Debug, Clone, Default)]
#[odm(table = "customers")]
pub struct Customer {
    #[odm(primary_key)]
    pub id: Option<i32>,
    pub name: String,
}

/// A product and how many are left.
#[derive(odm::Model, Debug, Clone, Default)]
#[odm(table = "products")]
pub struct Product {
    #[odm(primary_key)]
    pub id: Option<i32>,
    pub name: String,
    pub price: Decimal,
    pub stock: i32,
}

/// Where an order is in its life.
#[derive(odm::Choice, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[odm(text)]
pub enum OrderStatus {
    /// Stock reserved, not shipped yet.
    #[default]
    Placed,
    /// On its way.
    Shipped,
}

/// The client's clock, for `Order::placed_at` (`now()` on the server would
/// give every order of one transaction the same time).
pub fn placed_now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// An order of a customer.
#[derive(odm::Model, Debug, Clone, Default)]
#[odm(table = "orders")]
pub struct Order {
    #[odm(primary_key)]
    pub id: Option<i32>,
    #[odm(foreign_key = "customers.id")]
    pub customer_id: i32,
    /// The shopper's own name for the order, unique.
    pub reference: String,
    pub status: OrderStatus,
    /// Added by migration V2.
    #[odm(default_fn = "placed_now")]
    pub placed_at: Option<chrono::NaiveDateTime>,
}

/// One product line of an order.
#[derive(odm::Model, Debug, Clone, Default)]
#[odm(table = "line_items")]
pub struct LineItem {
    #[odm(primary_key)]
    pub id: Option<i32>,
    #[odm(foreign_key = "orders.id")]
    pub order_id: i32,
    #[odm(foreign_key = "products.id")]
    pub product_id: i32,
    pub qty: i32,
    pub unit_price: Decimal,
    /// `qty * unit_price`.
    pub amount: Decimal,
}

/// The shop's own errors, beside the database's.
#[derive(Debug)]
pub enum ShopError {
    /// A product has fewer left than asked for; nothing was stored.
    OutOfStock {
        product_id: i32,
        wanted: i32,
        left: i32,
    },
    /// An order names a product the shop does not have.
    UnknownProduct(i32),
    Db(odm::Error),
}

impl From<odm::Error> for ShopError {
    fn from(e: odm::Error) -> Self {
        ShopError::Db(e)
    }
}

impl std::fmt::Display for ShopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShopError::OutOfStock {
                product_id,
                wanted,
                left,
            } => write!(f, "product {product_id}: {wanted} wanted, {left} left"),
            ShopError::UnknownProduct(id) => write!(f, "no product {id}"),
            ShopError::Db(e) => write!(f, "database: {e}"),
        }
    }
}

impl std::error::Error for ShopError {}

/// What a shopper asks for: `(product id, quantity)` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub customer_id: i32,
    pub reference: String,
    pub lines: Vec<(i32, i32)>,
}

/// Adds the customers and products (`(name, price, stock)`);
/// returns their ids in the same order.
pub fn stock_shop(
    mp: &Mapper,
    customers: &[&str],
    products: &[(&str, Decimal, i32)],
) -> odm::Result<(Vec<i32>, Vec<i32>)> {
    mp.begin(|s| {
        let mut people: Vec<Customer> = customers
            .iter()
            .map(|name| Customer {
                name: (*name).to_owned(),
                ..Customer::default()
            })
            .collect();
        s.add_all(&mut people)?;
        let mut goods: Vec<Product> = products
            .iter()
            .map(|&(name, price, stock)| Product {
                name: name.to_owned(),
                price,
                stock,
                ..Product::default()
            })
            .collect();
        s.add_all(&mut goods)?;
        Ok((
            people.iter().filter_map(|c| c.id).collect(),
            goods.iter().filter_map(|p| p.id).collect(),
        ))
    })
}

/// Locks the products of `lines` (in id order, so two orders never wait
/// for each other in a circle), checks and takes their stock; returns each
/// line with its product. Joins the caller's transaction at a savepoint.
pub fn reserve_stock(mp: &Mapper, lines: &[(i32, i32)]) -> Result<Vec<(Product, i32)>, ShopError> {
    mp.transaction(|s| {
        let ids: Vec<i32> = lines.iter().map(|&(id, _)| id).collect();
        let mut products = s
            .query::<Product>()
            .filter(Product::ID.in_(ids))
            .order_by(Product::ID.asc())
            .for_update()
            .all()?;
        let mut reserved = Vec::with_capacity(lines.len());
        for &(product_id, wanted) in lines {
            let product = products
                .iter_mut()
                .find(|p| p.id == Some(product_id))
                .ok_or(ShopError::UnknownProduct(product_id))?;
            if product.stock < wanted {
                return Err(ShopError::OutOfStock {
                    product_id,
                    wanted,
                    left: product.stock,
                });
            }
            product.stock -= wanted;
            reserved.push((product.clone(), wanted));
        }
        for product in &mut products {
            s.add(product)?;
        }
        Ok(reserved)
    })
}

/// Writes the order and its line items; joins the caller's transaction.
pub fn record_order(
    mp: &Mapper,
    customer_id: i32,
    reference: &str,
    reserved: &[(Product, i32)],
) -> odm::Result<(Order, Vec<LineItem>)> {
    mp.begin(|s| {
        let mut order = Order {
            customer_id,
            reference: reference.to_owned(),
            ..Order::default()
        };
        s.add(&mut order)?;
        let order_id = order.id.unwrap_or_default();
        let mut items: Vec<LineItem> = reserved
            .iter()
            .map(|(product, qty)| LineItem {
                order_id,
                product_id: product.id.unwrap_or_default(),
                qty: *qty,
                unit_price: product.price,
                amount: Decimal::from(*qty) * product.price,
                ..LineItem::default()
            })
            .collect();
        s.add_all(&mut items)?;
        Ok((order, items))
    })
}

/// Places one order in one transaction: all of it, or (on any error,
/// [`ShopError::OutOfStock`] included) nothing.
pub fn place_order(
    mp: &Mapper,
    request: &OrderRequest,
) -> Result<(Order, Vec<LineItem>), ShopError> {
    mp.transaction(|_| {
        let reserved = reserve_stock(mp, &request.lines)?;
        Ok(record_order(
            mp,
            request.customer_id,
            &request.reference,
            &reserved,
        )?)
    })
}

/// What became of the orders asked for.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Acknowledged orders with their line items.
    pub placed: Vec<(Order, Vec<LineItem>)>,
    /// Refused requests, each with the shop's reason.
    pub refused: Vec<(OrderRequest, String)>,
}

/// The orders `shopper` asks for: a few lines of a few products each,
/// picked by a small deterministic generator.
pub fn requests_of(shopper: usize, customers: &[i32], products: &[i32]) -> Vec<OrderRequest> {
    let mut seed = (shopper as u64).wrapping_mul(6_364_136_223_846_793_005) ^ 0x9E37_79B9;
    let mut next = move |below: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as usize) % below.max(1)
    };
    let customer_id = customers[shopper % customers.len()];
    (0..4)
        .map(|n| {
            let mut lines: Vec<(i32, i32)> = Vec::new();
            for _ in 0..1 + next(3) {
                let product_id = products[next(products.len())];
                if !lines.iter().any(|&(id, _)| id == product_id) {
                    lines.push((product_id, 1 + next(3) as i32));
                }
            }
            OrderRequest {
                customer_id,
                reference: format!("shopper-{shopper}-order-{n}"),
                lines,
            }
        })
        .collect()
}

/// Runs `shoppers` green tasks at once, each placing its
/// [`requests_of`] one after another; the database's errors stop the run,
/// the shop's refusals are collected.
pub fn run_shop(
    pool: &GreenPool,
    mp: &Mapper,
    shoppers: usize,
    customers: &[i32],
    products: &[i32],
) -> Result<Outcome, ShopError> {
    let handles = (0..shoppers)
        .map(|shopper| {
            let mp = mp.clone();
            let requests = requests_of(shopper, customers, products);
            pool.submit(move || {
                let mut outcome = Outcome::default();
                for request in requests {
                    match place_order(&mp, &request) {
                        Ok(placed) => outcome.placed.push(placed),
                        Err(ShopError::Db(e)) => return Err(ShopError::Db(e)),
                        Err(refusal) => outcome.refused.push((request, refusal.to_string())),
                    }
                }
                Ok(outcome)
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(odm::Error::from)?;
    let mut all = Outcome::default();
    for handle in handles {
        let outcome = handle.join().map_err(odm::Error::from)??;
        all.placed.extend(outcome.placed);
        all.refused.extend(outcome.refused);
    }
    Ok(all)
}

/// A customer's orders and revenue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRevenue {
    pub name: String,
    pub orders: i64,
    pub revenue: Decimal,
}

/// A product's units sold and revenue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSales {
    pub name: String,
    pub units: i64,
    pub revenue: Decimal,
}

/// The shop's report.
#[derive(Debug)]
pub struct Report {
    /// Customers with at least the asked revenue, best first.
    pub best_customers: Vec<CustomerRevenue>,
    /// Every product sold, best first.
    pub per_product: Vec<ProductSales>,
    /// The latest orders with their line items (eagerly loaded).
    pub latest_orders: Vec<(Order, Vec<LineItem>)>,
}

/// Revenue per customer (those with at least `min_revenue`) and per
/// product, and the `latest` most recently placed orders with their lines.
pub fn report(mp: &Mapper, min_revenue: Decimal, latest: i64) -> odm::Result<Report> {
    mp.begin(|s| {
        let best_customers = s
            .query::<LineItem>()
            .join::<Order>()
            .join::<Customer>()
            .group_by(Customer::ID)
            .group_by(Customer::NAME)
            .having(sum(LineItem::AMOUNT).ge(min_revenue))
            .select((
                Customer::NAME,
                count_distinct(Order::ID),
                sum(LineItem::AMOUNT),
            ))
            .order_by(sum(LineItem::AMOUNT).desc())
            .order_by(Customer::NAME.asc())
            .all()?
            .into_iter()
            .map(|(name, orders, revenue)| CustomerRevenue {
                name,
                orders,
                revenue: revenue.unwrap_or_default(),
            })
            .collect();
        let per_product = s
            .query::<LineItem>()
            .join::<Product>()
            .group_by(Product::NAME)
            .select((Product::NAME, sum(LineItem::QTY), sum(LineItem::AMOUNT)))
            .order_by(sum(LineItem::AMOUNT).desc())
            .order_by(Product::NAME.asc())
            .all()?
            .into_iter()
            .map(|(name, units, revenue)| ProductSales {
                name,
                units: units.unwrap_or(0),
                revenue: revenue.unwrap_or_default(),
            })
            .collect();
        let latest_orders = s
            .query::<Order>()
            .filter(Order::STATUS.eq(OrderStatus::Placed))
            .order_by(Order::PLACED_AT.desc())
            .order_by(Order::ID.desc())
            .limit(latest)
            .with_related::<LineItem>()
            .all()?;
        Ok(Report {
            best_customers,
            per_product,
            latest_orders,
        })
    })
}

/// The green tasks placing orders at once in the example run.
pub const SHOPPERS: usize = 40;
/// The customers and products of the example run.
pub const CUSTOMERS: [&str; 5] = ["ada", "bob", "cy", "dee", "eve"];
/// `(name, price, stock)`: less stock than the shoppers ask for.
pub const PRODUCTS: [(&str, Decimal, i32); 6] = [
    ("kettle", price(2_500), 60),
    ("teapot", price(1_800), 45),
    ("mug", price(450), 120),
    ("tea tin", price(990), 70),
    ("strainer", price(300), 30),
    ("tray", price(1_200), 40),
];

/// A price of `cents` hundredths: `price(2_500)` is `25.00`.
pub const fn price(cents: u32) -> Decimal {
    Decimal::from_parts(cents, 0, 0, false, 2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // DATABASE_URL, or a throwaway server kept alive until the end of main
    let (url, _cluster) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let cluster = TempCluster::start()?;
            (cluster.url(), Some(cluster))
        }
    };
    let pool = GreenPool::new();
    let mp = Mapper::new(&url)?;
    mp.register_migrations(migrations()?)?;
    for register in [
        Mapper::register::<Customer>,
        Mapper::register::<Product>,
        Mapper::register::<Order>,
        Mapper::register::<LineItem>,
    ] {
        register(&mp)?;
    }
    let setup = mp.clone();
    let (customers, products) = pool
        .submit(move || {
            let migrated = setup.migrate()?;
            for step in &migrated.applied {
                println!("migrated to V{} {}", step.version, step.name);
            }
            stock_shop(&setup, &CUSTOMERS, &PRODUCTS)
        })?
        .join()??;

    let outcome = run_shop(&pool, &mp, SHOPPERS, &customers, &products)?;
    println!(
        "{} orders placed, {} refused",
        outcome.placed.len(),
        outcome.refused.len()
    );
    let on_pool = mp.clone();
    let report = pool
        .submit(move || report(&on_pool, price(10_000), 3))?
        .join()??;
    for c in &report.best_customers {
        println!("{:>6}: {} orders, {}", c.name, c.orders, c.revenue);
    }
    for p in &report.per_product {
        println!("{:>8}: {} sold, {}", p.name, p.units, p.revenue);
    }
    for (order, items) in &report.latest_orders {
        println!("{} has {} lines", order.reference, items.len());
    }
    pool.shutdown();
    Ok(())
}

-- The orders of the order workflow.
CREATE TABLE orders (
    id SERIAL PRIMARY KEY,
    customer TEXT NOT NULL
);
CREATE INDEX orders_customer ON orders (customer);

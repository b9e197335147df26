-- A free-text note on an order; existing orders get none.
ALTER TABLE orders ADD COLUMN note TEXT;

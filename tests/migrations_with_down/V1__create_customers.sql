-- The customers.
CREATE TABLE customers (id SERIAL PRIMARY KEY, name TEXT NOT NULL);

-- Invoices; no down script: reverting past it is refused.
CREATE TABLE invoices (id SERIAL PRIMARY KEY);

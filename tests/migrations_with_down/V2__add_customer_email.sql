-- An e-mail address per customer.
ALTER TABLE customers ADD COLUMN email TEXT;

-- The schema-first workflow: declare the schema you want, review the migration diff() writes
-- from the catalog, register it with declare(), apply it as any other.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never
\pset format unaligned
\pset tuples_only on

-- from nothing to a first schema
SELECT up FROM migrate.diff($$
    CREATE TABLE customers (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        email text NOT NULL UNIQUE
    );
    CREATE TABLE orders (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        customer_id bigint NOT NULL REFERENCES customers,
        total numeric(12,2) NOT NULL CHECK (total >= 0)
    );
    CREATE INDEX orders_customer_idx ON orders (customer_id);
$$);
SELECT migrate.declare('1', 'customers and orders', $$
    CREATE TABLE customers (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        email text NOT NULL UNIQUE
    );
    CREATE TABLE orders (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        customer_id bigint NOT NULL REFERENCES customers,
        total numeric(12,2) NOT NULL CHECK (total >= 0)
    );
    CREATE INDEX orders_customer_idx ON orders (customer_id);
$$);
SELECT migrate.up();

-- the next version of the schema: a column, a wider type, a view; and the way back
SELECT up, down FROM migrate.diff($$
    CREATE TABLE customers (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        email text NOT NULL UNIQUE,
        name text
    );
    CREATE TABLE orders (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        customer_id bigint NOT NULL REFERENCES customers,
        total numeric(14,2) NOT NULL CHECK (total >= 0)
    );
    CREATE INDEX orders_customer_idx ON orders (customer_id);
    CREATE VIEW customer_totals AS
        SELECT c.id, c.email, sum(o.total) AS total
          FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
         GROUP BY c.id, c.email;
$$);

-- a rename cannot be told from a drop and an add: what loses data is refused unless allowed
\pset tuples_only off
SELECT up FROM migrate.diff($$
    CREATE TABLE clients (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        email text NOT NULL UNIQUE
    );
    CREATE TABLE orders (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        customer_id bigint NOT NULL REFERENCES clients,
        total numeric(12,2) NOT NULL CHECK (total >= 0)
    );
    CREATE INDEX orders_customer_idx ON orders (customer_id);
$$);
-- the desired SQL's own error keeps its SQLSTATE; declare() refuses what diff() refuses
SELECT up FROM migrate.diff('CREATE TABLE customers (id bigint REFERENCES nowhere)');
SELECT migrate.declare('2', 'again', 'SELECT 1');
SELECT up FROM migrate.diff('SELECT 1', ARRAY['migrate']);

-- nothing of the desired schemas is left behind
SELECT nspname FROM pg_namespace WHERE nspname LIKE 'migrate%' ORDER BY 1;
SELECT version, name, state FROM migrate.status();

SELECT migrate.down();
DROP EXTENSION migrations;

-- The non-transactional lane: statements PostgreSQL runs only outside a transaction block, run
-- by CALL migrate.apply() one at a time, each committed and journaled.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

CREATE TYPE order_status AS ENUM ('new', 'paid');
CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, status order_status NOT NULL);
INSERT INTO orders SELECT g, g % 100, 'new' FROM generate_series(1, 1000) g;

SELECT migrate.register('1', 'orders by customer',
    E'CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer);\nVACUUM (ANALYZE) orders;',
    'DROP INDEX CONCURRENTLY orders_customer_idx;',
    transactional => false);
SELECT migrate.register('2', 'shipped orders',
    E'ALTER TYPE order_status ADD VALUE ''shipped'';\nUPDATE orders SET status = ''shipped'' WHERE id <= 10;',
    transactional => false);
SELECT version, name, transactional FROM migrate.plan();
SELECT migrate.up();
CALL migrate.apply();
SELECT version, name, state FROM migrate.status();
SELECT version, event, statement, detail FROM migrate.history() ORDER BY id;
SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_customer_idx'::regclass;
SELECT status, count(*) FROM orders GROUP BY status ORDER BY status;

-- what a body of either lane may not hold
SELECT migrate.register('3', 'in a transaction', 'CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status)');
SELECT migrate.register('3', 'unnamed', 'CREATE INDEX CONCURRENTLY ON orders (status)', transactional => false);
SELECT migrate.register('3', 'commit', E'CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);\nCOMMIT;', transactional => false);

-- a failing statement is rolled back alone, and its INVALID index dropped; a fix of a statement
-- that has not run is taken, and the next run resumes at it
SELECT migrate.register('3', 'one new order per customer',
    E'CREATE TABLE order_notes (order_id bigint, note text);\nCREATE UNIQUE INDEX CONCURRENTLY orders_one_new ON orders (customer) WHERE status = ''new'';',
    E'DROP INDEX CONCURRENTLY IF EXISTS orders_one_new;\nDROP TABLE order_notes;',
    transactional => false);
SELECT version, up_ok, detail FROM migrate.rehearse();
CALL migrate.apply();
SELECT version, state FROM migrate.status() WHERE version = '3';
SELECT count(*) FROM pg_index WHERE indrelid = 'orders'::regclass AND NOT indisvalid;
SELECT migrate.register('3', 'one new order per customer',
    E'CREATE TABLE order_notes (order_id bigint, note text);\nCREATE UNIQUE INDEX CONCURRENTLY orders_one_new ON orders (customer, id) WHERE status = ''new'';',
    E'DROP INDEX CONCURRENTLY IF EXISTS orders_one_new;\nDROP TABLE order_notes;',
    transactional => false);
SELECT migrate.register('3', 'one new order per customer',
    E'CREATE TABLE order_notes (order_id bigint);\nCREATE UNIQUE INDEX CONCURRENTLY orders_one_new ON orders (customer, id) WHERE status = ''new'';',
    NULL, transactional => false);
CALL migrate.apply();
SELECT version, event, statement FROM migrate.history() WHERE version = '3' ORDER BY id;

-- reverting: down() runs in one transaction and refuses; revert() runs the down bodies
SELECT migrate.down();
CALL migrate.revert();
SELECT version, state FROM migrate.status();
BEGIN;
CALL migrate.apply();
ROLLBACK;

-- the other tools' directives
SELECT migrate.register_script('4', 'dbmate', E'-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);\n-- migrate:down\nDROP INDEX CONCURRENTLY orders_status_idx;\n');
SELECT migrate.register_files(
    ARRAY['5_sqlx.up.sql', '6_goose.sql', '7_atlas.sql', 'V8__flyway.sql', 'V8__flyway.sql.conf', '9_diesel/up.sql', '9_diesel/metadata.toml'],
    ARRAY[E'-- no-transaction\nVACUUM orders;',
          E'-- +goose NO TRANSACTION\n-- +goose Up\nVACUUM orders;\n-- +goose Down\nVACUUM orders;\n',
          E'-- atlas:txmode none\n\nVACUUM orders;',
          'VACUUM orders;', 'executeInTransaction=false',
          'VACUUM orders;', 'run_in_transaction = false']);
SELECT version, transactional FROM migrate.plan();
CALL migrate.apply();
SELECT count(*) AS applied FROM migrate.status() WHERE state = 'applied';

DROP TABLE orders, order_notes;
DROP TYPE order_status;
DROP EXTENSION migrations;

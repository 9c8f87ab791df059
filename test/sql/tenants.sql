-- Tenants: one project fanned out over many schemas, each tenant with a history of its own.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

CREATE SCHEMA tenant_acme;
CREATE SCHEMA tenant_globex;
CREATE SCHEMA tenant_initech;
SELECT migrate.set_tenants(query => $$SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\_%' ORDER BY nspname$$, canary => 1, project => 'shop');
SELECT * FROM migrate.tenants('shop');
SELECT migrate.register('1', 'orders', 'CREATE TABLE orders (id bigint PRIMARY KEY, total numeric NOT NULL)', 'DROP TABLE orders', 'shop');
SELECT migrate.register('2', 'order status', $$ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new'$$, 'ALTER TABLE orders DROP COLUMN status', 'shop');
SELECT migrate.up(project => 'shop');
SELECT tenant, version, name, state FROM migrate.status('shop');
SELECT migrate.up(project => 'shop');

-- a new tenant catches up on the next run
CREATE SCHEMA tenant_umbrella;
SELECT migrate.up(project => 'shop');

-- under apply(), a tenant whose migration fails stops alone; the others are committed
CREATE TABLE tenant_initech.order_lines (id int);
SELECT migrate.register('3', 'order lines', 'CREATE TABLE order_lines (order_id bigint REFERENCES orders)', NULL, 'shop');
CALL migrate.apply(project => 'shop');
SELECT tenant, version, state FROM migrate.status('shop') WHERE state <> 'applied';
SELECT tenant, version, problem, detail FROM migrate.verify('shop');
DROP TABLE tenant_initech.order_lines;
CALL migrate.apply(project => 'shop');
SELECT tenant, version, event FROM migrate.history('shop') WHERE version = '3' ORDER BY id;

-- a failing canary keeps the other tenants untouched
SELECT migrate.register('4', 'order notes', 'ALTER TABLE orders ADD COLUMN note text', NULL, 'shop');
ALTER TABLE tenant_acme.orders ADD COLUMN note text;
CALL migrate.apply(project => 'shop');
SELECT tenant, version, state FROM migrate.status('shop') WHERE version = '4';
ALTER TABLE tenant_acme.orders DROP COLUMN note;
CALL migrate.apply(project => 'shop');

-- down() reverts in every tenant
SELECT migrate.register('4', 'order notes', 'ALTER TABLE orders ADD COLUMN note text', 'ALTER TABLE orders DROP COLUMN note', 'shop');
SELECT migrate.down(1, 'shop');

-- what does not fan out, and what the set refuses
SELECT * FROM migrate.plan(project => 'shop');
SELECT migrate.set_tenants(ARRAY['tenant_acme', 'tenant_gone'], project => 'shop');
SELECT migrate.set_tenants(project => 'shop');
SELECT migrate.unset_tenants('shop');

DROP SCHEMA tenant_acme, tenant_globex, tenant_initech, tenant_umbrella CASCADE;
DROP EXTENSION migrations;

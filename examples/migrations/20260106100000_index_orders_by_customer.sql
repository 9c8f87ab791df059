-- Inside a migration an index is built in the migration's transaction; CONCURRENTLY is
-- refused at register time (it cannot run inside a transaction).

-- migrate:up
CREATE INDEX orders_customer_placed_idx ON orders (customer_id, placed_at DESC);

-- migrate:down
DROP INDEX orders_customer_placed_idx;

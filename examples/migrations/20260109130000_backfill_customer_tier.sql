-- migrate:up
ALTER TABLE customers ADD COLUMN tier text NOT NULL DEFAULT 'standard'
    CHECK (tier IN ('standard', 'gold'));

-- Backfill from existing orders: customers with 1,000 or more in orders become gold.
UPDATE customers c
   SET tier = 'gold'
  FROM customer_totals t
 WHERE t.id = c.id AND t.total >= 1000;

-- migrate:down
ALTER TABLE customers DROP COLUMN tier;

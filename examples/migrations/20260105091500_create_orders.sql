-- migrate:up
CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint         NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    total       numeric(12, 2) NOT NULL CHECK (total >= 0),
    placed_at   timestamptz    NOT NULL DEFAULT now(),
    updated_at  timestamptz    NOT NULL DEFAULT now()
);

INSERT INTO customers (email, name) VALUES
    ('ada@example.com', 'Ada'),
    ('grace@example.com', 'Grace');
INSERT INTO orders (customer_id, total)
SELECT c.id, amount
  FROM customers c
 CROSS JOIN (VALUES (120.00), (80.50), (1200.00)) AS a (amount)
 WHERE c.email = 'ada@example.com' OR amount < 100;

-- migrate:down
DROP TABLE orders;
DELETE FROM customers WHERE email IN ('ada@example.com', 'grace@example.com');

-- migrate:up
CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();  -- the semicolons in here belong to the function body
    RETURN NEW;
END
$$;

CREATE TRIGGER orders_touch_updated_at
    BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- migrate:down
DROP TRIGGER orders_touch_updated_at ON orders;
DROP FUNCTION touch_updated_at();

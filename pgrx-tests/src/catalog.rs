//! A schema with every kind of object `migrate.snapshot()` describes, in the schema `app`: the
//! snapshot tests build it in several orders, and the diff tests reach it from others.

/// Roles the schema grants to, shared by every database of the server.
pub const ROLES: &str = "DO $$ BEGIN CREATE ROLE snap_reader; CREATE ROLE snap_writer;
                     EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$";

/// Objects that depend on nothing but the schema `app`, in any order.
pub const INDEPENDENT: [&str; 10] = [
    "CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN app.email AS text COLLATE \"C\" NOT NULL DEFAULT 'x@y' CHECK (VALUE LIKE '%@%')",
    "CREATE TYPE app.pair AS (a integer, b text)",
    "CREATE TYPE app.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi)",
    "CREATE SEQUENCE app.counter START 10 INCREMENT 5",
    "CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql
       AS $f$ BEGIN NEW.body := trim(NEW.body); RETURN NEW; END $f$",
    "CREATE FUNCTION app.add(a integer, b integer DEFAULT 1) RETURNS integer LANGUAGE sql IMMUTABLE
       AS 'SELECT a + b'",
    "CREATE PROCEDURE app.purge(days integer) LANGUAGE plpgsql AS $p$ BEGIN PERFORM days; END $p$",
    "CREATE AGGREGATE app.total(integer) (sfunc = int4pl, stype = integer, initcond = '0')",
    "CREATE EXTENSION pgcrypto SCHEMA public",
];

/// Tables, in the order their references need.
pub const TABLES: [&str; 8] = [
    "CREATE TABLE app.users (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       email app.email UNIQUE,
       name text COLLATE \"C\" NOT NULL DEFAULT 'anon',
       mood app.mood,
       lower_name text GENERATED ALWAYS AS (lower(name)) STORED,
       n integer DEFAULT nextval('app.counter'))",
    "CREATE TABLE app.posts (
       id serial PRIMARY KEY,
       user_id bigint REFERENCES app.users (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
       body text,
       during tsrange,
       EXCLUDE USING gist (during WITH &&)) WITH (fillfactor = 70)",
    "CREATE UNLOGGED TABLE app.scratch (x int, y app.pair)",
    "CREATE TABLE app.events (at date NOT NULL, what text) PARTITION BY RANGE (at)",
    "CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
    "CREATE TABLE app.audit_base (at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE app.audit (what text) INHERITS (app.audit_base)",
    "CREATE TABLE app.spans (id int, span app.floatrange)",
];

/// Objects on the tables, in any order.
pub const ON_TABLES: [&str; 20] = [
    "CREATE INDEX posts_body_idx ON app.posts (lower(body) text_pattern_ops) WHERE body IS NOT NULL",
    "CREATE INDEX events_at_idx ON app.events (at)",
    "CREATE VIEW app.user_names AS SELECT id, name FROM app.users WHERE mood <> 'sad'",
    "CREATE MATERIALIZED VIEW app.post_counts AS SELECT user_id, count(*) FROM app.posts GROUP BY user_id",
    "CREATE TRIGGER posts_touch BEFORE INSERT OR UPDATE ON app.posts FOR EACH ROW EXECUTE FUNCTION app.touch()",
    "ALTER TABLE app.posts ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY own ON app.posts FOR SELECT TO PUBLIC USING (user_id = 1)",
    "CREATE POLICY writers ON app.posts AS RESTRICTIVE FOR UPDATE TO snap_writer, snap_reader
       USING (true) WITH CHECK (body <> '')",
    "GRANT USAGE ON SCHEMA app TO snap_reader",
    "GRANT SELECT ON app.users TO snap_reader",
    "GRANT UPDATE (body) ON app.posts TO snap_reader",
    "REVOKE EXECUTE ON FUNCTION app.touch() FROM PUBLIC",
    "COMMENT ON SCHEMA app IS 'the application'",
    "COMMENT ON TABLE app.users IS 'who signs in'",
    "COMMENT ON COLUMN app.users.name IS 'shown to others'",
    "COMMENT ON FUNCTION app.add(integer, integer) IS 'adds'",
    "COMMENT ON TYPE app.mood IS 'how one feels'",
    "CREATE STATISTICS app.users_stats ON name, mood FROM app.users",
    "ALTER TABLE app.users ADD CONSTRAINT users_n_positive CHECK (n > 0)",
    "ALTER SEQUENCE app.counter OWNED BY app.users.n",
];

/// The schema in the order of the lists above.
pub fn in_order() -> Vec<String> {
    INDEPENDENT
        .iter()
        .chain(&TABLES)
        .chain(&ON_TABLES)
        .map(|statement| statement.to_string())
        .collect()
}

/// A large schema `big` of `tables` tables (and more in later revisions), each with an
/// identity key, a foreign key to the one before, an index, and every tenth a view and a
/// trigger. Each `revision` changes it the way a project's migrations do: columns added, an
/// index made partial, an enum value added, comments changed, tables added.
pub fn large_schema(tables: usize, revision: usize) -> String {
    let mut sql = String::from("CREATE SCHEMA big;\n");
    let states = if revision >= 2 {
        "'new', 'open', 'closed', 'archived'"
    } else {
        "'new', 'open', 'closed'"
    };
    sql.push_str(&format!("CREATE TYPE big.state AS ENUM ({states});\n"));
    sql.push_str(
        "CREATE FUNCTION big.touch() RETURNS trigger LANGUAGE plpgsql
           AS $f$ BEGIN NEW.name := trim(NEW.name); RETURN NEW; END $f$;\n",
    );
    for i in 0..tables + revision * tables / 20 {
        let mut columns = vec![
            "id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY".to_owned(),
            "name text NOT NULL".to_owned(),
            "state big.state DEFAULT 'new'".to_owned(),
            "created timestamptz NOT NULL DEFAULT now()".to_owned(),
        ];
        if i > 0 {
            columns.push(format!(
                "parent_id bigint REFERENCES big.t{} (id) ON DELETE CASCADE",
                i - 1
            ));
        }
        if revision >= 1 && i % 3 == 0 {
            columns.push("note text".to_owned());
        }
        if revision >= 3 && i % 5 == 0 {
            columns.push("score numeric(10,2) CHECK (score >= 0)".to_owned());
        }
        sql.push_str(&format!(
            "CREATE TABLE big.t{i} (\n    {}\n);\n",
            columns.join(",\n    ")
        ));
        let partial = if revision >= 1 && i % 4 == 0 {
            " WHERE state <> 'closed'"
        } else {
            ""
        };
        sql.push_str(&format!(
            "CREATE INDEX t{i}_name_idx ON big.t{i} (name){partial};\n"
        ));
        let comment = if revision >= 2 && i % 7 == 0 {
            format!("table {i}, revised")
        } else {
            format!("table {i}")
        };
        sql.push_str(&format!("COMMENT ON TABLE big.t{i} IS '{comment}';\n"));
        if i % 10 == 0 {
            sql.push_str(&format!(
                "CREATE VIEW big.v{i} AS SELECT id, name FROM big.t{i} WHERE state <> 'closed';\n\
                 CREATE TRIGGER t{i}_touch BEFORE INSERT OR UPDATE ON big.t{i}
                   FOR EACH ROW EXECUTE FUNCTION big.touch();\n"
            ));
        }
    }
    sql
}

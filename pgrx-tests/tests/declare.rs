//! The schema-first workflow (D01-D08): `diff()` writes the migration from the catalog to the
//! schema a desired SQL creates, and `declare()` registers it. Applying `diff(B)` to a database
//! holding A gives B's snapshot and B's `pg_dump --schema-only`, and its down gives A back, for
//! the schema with every kind of object, for generated pairs of schemas, for the example
//! migrations and for a large schema's revisions. Nothing of the desired schema remains, steps
//! that lose data are refused unless allowed, and what cannot be done in place is refused.

use migrations_tests::*;

fn snapshot_text(client: &mut Client) -> String {
    client
        .query_one("SELECT migrate.snapshot()::text", &[])
        .unwrap()
        .get(0)
}

/// The database's schema as `pg_dump --schema-only` prints it, without its comments and the
/// per-run keys of `\restrict`.
fn schema_dump(db: &TestDb) -> String {
    let output = std::process::Command::new(format!("{}/pg_dump", pg_bin()))
        .args(["-h", &db.server.host, "-p", &db.server.port.to_string()])
        .args(["-U", "postgres", "--schema-only", &db.name])
        .output()
        .expect("pg_dump runs");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|line| {
            !line.starts_with("--")
                && !line.starts_with("\\restrict")
                && !line.starts_with("\\unrestrict")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks that `result` is the error `sqlstate` whose message says `words`.
fn refused<T: std::fmt::Debug>(result: Result<T, postgres::Error>, sqlstate: &str, words: &str) {
    let error = expect_sqlstate(result, sqlstate);
    let said = format!("{} {}", error.message(), error.detail().unwrap_or_default());
    assert!(said.contains(words), "{error:?}");
}

/// A database with the extension and the roles the schemas grant to, holding what `sql` makes.
fn holding(name: &str, sql: &str) -> TestDb {
    let db = TestDb::new(name);
    let mut client = db.connect();
    client.batch_execute(ROLES).unwrap();
    client
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{name}: {e:?}\n{sql}"));
    db
}

/// `diff(desired)`'s up and down, allowing what loses data.
fn diff(client: &mut Client, desired: &str) -> (String, Option<String>) {
    let row = client
        .query_one(
            "SELECT up, down FROM migrate.diff($1, allow_destructive => true)",
            &[&desired],
        )
        .unwrap_or_else(|e| panic!("diff: {e:?}\n{desired}"));
    (row.get(0), row.get(1))
}

/// Runs a migration body in a transaction of its own, as `up()` would.
fn run(client: &mut Client, body: &str) {
    client
        .batch_execute(&format!("BEGIN;\n{body}\nCOMMIT;"))
        .unwrap_or_else(|e| panic!("{e:?}\n{body}"));
}

/// Takes the database `from` holds to `desired` with `diff()`, checks that it then has the
/// snapshot and schema dump of `to`, which was built from `desired`, then takes it back with
/// the down and checks it has what it had. A down exists unless `to` has enum labels `from`
/// lacks (PostgreSQL cannot drop one).
fn round_trip(from: &TestDb, to: &TestDb, desired: &str, down_exists: bool) {
    let mut client = from.connect();
    let (start_snapshot, start_dump) = (snapshot_text(&mut client), schema_dump(from));
    let (up, down) = diff(&mut client, desired);
    // Nothing of the desired schema is left.
    assert_eq!(
        snapshot_text(&mut client),
        start_snapshot,
        "diff() changed nothing"
    );
    run(&mut client, &up);
    let mut target = to.connect();
    assert_eq!(
        snapshot_text(&mut client),
        snapshot_text(&mut target),
        "after the up:\n{up}"
    );
    assert_eq!(schema_dump(from), schema_dump(to), "after the up:\n{up}");
    assert_eq!(down.is_some(), down_exists, "a down for:\n{up}");
    let Some(down) = down else {
        return;
    };
    run(&mut client, &down);
    assert_eq!(
        snapshot_text(&mut client),
        start_snapshot,
        "after the down:\n{down}"
    );
    assert_eq!(schema_dump(from), start_dump, "after the down:\n{down}");
    figure("diff round trips", 1);
}

#[test]
fn d01_declare_reaches_every_kind_of_object_and_down_takes_it_back() {
    let desired = format!("CREATE SCHEMA app;\n{};", in_order().join(";\n"));
    let built = holding("d01_built", &desired);
    let db = holding("d01_declared", "");
    let mut client = db.connect();
    let empty = snapshot_text(&mut client);
    let declared: String = client
        .query_one(
            "SELECT migrate.declare('1', 'the whole schema', $1)",
            &[&desired],
        )
        .unwrap()
        .get(0);
    assert_eq!(declared, "registered");
    assert_eq!(snapshot_text(&mut client), empty, "declare() runs nothing");
    // An ordinary migration: planned, and rehearsed with its down, which restores the catalog.
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT version || ' ' || direction FROM migrate.plan()"]
        ),
        ["1 up"]
    );
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT format('%s %s %s', up_ok, down_ok, reversible) FROM migrate.rehearse()"]
        ),
        ["t t t"]
    );
    assert_eq!(call(&mut client, "SELECT migrate.up()"), 1);
    assert_eq!(
        snapshot_text(&mut client),
        snapshot_text(&mut built.connect())
    );
    assert_eq!(schema_dump(&db), schema_dump(&built));
    // The migration is an ordinary one: verify() finds it applied and the catalog as it left it.
    assert!(text_rows(&mut client, &["SELECT problem FROM migrate.verify()"]).is_empty());
    // Declared again with the catalog already there: the same migration, or nothing to declare.
    let again: String = client
        .query_one(
            "SELECT migrate.declare('1', 'the whole schema', $1)",
            &[&desired],
        )
        .unwrap()
        .get(0);
    assert_eq!(again, "unchanged");
    refused(
        client.query_one("SELECT migrate.declare('2', 'nothing', $1)", &[&desired]),
        "55000",
        "the catalog already is the desired schema",
    );
    // The same schema built in another order gives no statement.
    let (up, _) = diff(
        &mut client,
        &format!("CREATE SCHEMA app;\n{};", another_order().join(";\n")),
    );
    assert!(
        up.lines().all(|line| line.starts_with("--")),
        "the same schema differs:\n{up}"
    );
    assert_eq!(call(&mut client, "SELECT migrate.down()"), 1);
    assert_eq!(snapshot_text(&mut client), empty);
}

/// The schema of `in_order()` with its independent objects reversed and the objects on its
/// tables too.
fn another_order() -> Vec<String> {
    INDEPENDENT
        .iter()
        .rev()
        .chain(&TABLES)
        .chain(ON_TABLES.iter().rev())
        .map(|statement| statement.to_string())
        .collect()
}

/// A generated schema: each field picks a variant of one object (0: absent where it may be).
#[derive(Clone, Debug, PartialEq)]
struct Spec {
    status: usize,
    email: usize,
    counter: usize,
    add: usize,
    pair: usize,
    range: usize,
    total: usize,
    pgcrypto: usize,
    identity: usize,
    name: usize,
    extra: usize,
    users_index: usize,
    users_check: usize,
    users_comment: usize,
    users_grant: usize,
    name_grant: usize,
    statistics: usize,
    posts: usize,
    title: usize,
    posts_index: usize,
    posts_rls: usize,
    touch: usize,
    user_names: usize,
    post_counts: usize,
    events: usize,
    schema_comment: usize,
    schema_grant: usize,
    tags: usize,
    slug: usize,
    tags_unique: usize,
    tags_exclusion: usize,
    tags_index: usize,
    purge: usize,
}

const STATUS_LABELS: [&[&str]; 4] = [&[], &["a", "b"], &["a", "b", "c"], &["a", "x", "b", "c"]];

impl Spec {
    fn random(rng: &mut Rng) -> Spec {
        let mut pick = |variants: usize| rng.within(0..=variants - 1);
        Spec {
            status: pick(4),
            email: pick(4),
            counter: pick(4),
            add: pick(4),
            pair: pick(3),
            range: pick(2),
            total: pick(2),
            pgcrypto: pick(2),
            identity: pick(2),
            name: pick(4),
            extra: pick(4),
            users_index: pick(4),
            users_check: pick(3),
            users_comment: pick(3),
            users_grant: pick(2),
            name_grant: pick(2),
            statistics: pick(2),
            posts: pick(3),
            title: pick(2),
            posts_index: pick(3),
            posts_rls: pick(3),
            touch: pick(2),
            user_names: pick(4),
            post_counts: pick(2),
            events: pick(3),
            schema_comment: pick(2),
            schema_grant: pick(2),
            tags: pick(2),
            slug: pick(4),
            tags_unique: pick(3),
            tags_exclusion: pick(2),
            tags_index: pick(2),
            purge: pick(3),
        }
    }

    /// Whether the enum of `self` can become the one of `to` in place: labels are only added.
    fn enum_reaches(&self, to: &Spec) -> bool {
        let (from, to) = (STATUS_LABELS[self.status], STATUS_LABELS[to.status]);
        from.is_empty()
            || to.is_empty()
            || to
                .iter()
                .filter(|label| from.contains(label))
                .eq(from.iter())
    }

    fn sql(&self) -> String {
        let mut sql = vec!["CREATE SCHEMA app".to_owned()];
        let mut add = |statement: &str| sql.push(statement.to_owned());
        if self.status > 0 {
            let labels: Vec<String> = STATUS_LABELS[self.status]
                .iter()
                .map(|label| format!("'{label}'"))
                .collect();
            add(&format!(
                "CREATE TYPE app.status AS ENUM ({})",
                labels.join(", ")
            ));
            add("CREATE TABLE app.tickets (id integer, state app.status)");
        }
        match self.email {
            1 => add("CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%')"),
            2 => add(
                "CREATE DOMAIN app.email AS text NOT NULL DEFAULT 'x@y' CHECK (VALUE LIKE '%@%')",
            ),
            3 => add("CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%.%')"),
            _ => {}
        }
        if self.email > 0 {
            add("CREATE TABLE app.contacts (id integer, email app.email)");
        }
        match self.add {
            1 => add(
                "CREATE FUNCTION app.add(a integer, b integer) RETURNS integer LANGUAGE sql AS 'SELECT a + b'",
            ),
            2 => add(
                "CREATE FUNCTION app.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT a + b + 0'",
            ),
            3 => add(
                "CREATE FUNCTION app.add(a integer, b integer) RETURNS bigint LANGUAGE sql AS 'SELECT (a + b)::bigint'",
            ),
            _ => {}
        }
        match self.pair {
            1 => add("CREATE TYPE app.pair AS (a integer, b text)"),
            2 => add("CREATE TYPE app.pair AS (a integer, b text, c date)"),
            _ => {}
        }
        if self.range == 1 {
            add("CREATE TYPE app.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi)");
        }
        if self.total == 1 {
            add(
                "CREATE AGGREGATE app.total(integer) (sfunc = int4pl, stype = integer, initcond = '0')",
            );
        }
        if self.pgcrypto == 1 {
            add("CREATE EXTENSION pgcrypto SCHEMA public");
        }
        let identity = ["ALWAYS", "BY DEFAULT"][self.identity];
        let name = [
            "text NOT NULL",
            "varchar(100)",
            "varchar(200) NOT NULL DEFAULT 'anon'",
            "text DEFAULT 'anon'",
        ][self.name];
        let extra = [
            "",
            ", extra integer",
            ", extra bigint",
            ", extra text COLLATE \"C\"",
        ][self.extra];
        add(&format!(
            "CREATE TABLE app.users (id bigint GENERATED {identity} AS IDENTITY PRIMARY KEY, name {name}{extra})"
        ));
        match self.counter {
            1 => add("CREATE SEQUENCE app.counter START 10"),
            2 => add("CREATE SEQUENCE app.counter START 10 INCREMENT 5 CACHE 2"),
            3 => add("CREATE SEQUENCE app.counter START 10 OWNED BY app.users.name"),
            _ => {}
        }
        match self.users_index {
            1 => add("CREATE INDEX users_name_idx ON app.users (name)"),
            2 => add("CREATE INDEX users_name_idx ON app.users (lower(name))"),
            3 => {
                add("CREATE UNIQUE INDEX users_name_idx ON app.users (name) WHERE name IS NOT NULL")
            }
            _ => {}
        }
        match self.users_check {
            1 => add(
                "ALTER TABLE app.users ADD CONSTRAINT users_name_check CHECK (length(name) > 0)",
            ),
            2 => add(
                "ALTER TABLE app.users ADD CONSTRAINT users_name_check CHECK (length(name) > 1)",
            ),
            _ => {}
        }
        match self.users_comment {
            1 => add("COMMENT ON TABLE app.users IS 'who signs in'"),
            2 => add("COMMENT ON TABLE app.users IS 'people'"),
            _ => {}
        }
        if self.users_grant == 1 {
            add("GRANT SELECT ON app.users TO snap_reader");
        }
        if self.name_grant == 1 {
            add("GRANT UPDATE (name) ON app.users TO snap_reader");
        }
        if self.statistics == 1 {
            add("CREATE STATISTICS app.users_stats ON id, name FROM app.users");
        }
        if self.posts > 0 {
            let cascade = if self.posts == 2 {
                " ON DELETE CASCADE"
            } else {
                ""
            };
            let title = if self.title == 1 { ", title text" } else { "" };
            add(&format!(
                "CREATE TABLE app.posts (id serial PRIMARY KEY,
                   user_id bigint REFERENCES app.users (id){cascade}, body text{title})"
            ));
            match self.posts_index {
                1 => add("CREATE INDEX posts_user_idx ON app.posts (user_id)"),
                2 => {
                    add("CREATE INDEX posts_user_idx ON app.posts (user_id) WHERE body IS NOT NULL")
                }
                _ => {}
            }
            if self.posts_rls > 0 {
                add("ALTER TABLE app.posts ENABLE ROW LEVEL SECURITY");
                let using = ["", "user_id = 1", "user_id > 1"][self.posts_rls];
                add(&format!(
                    "CREATE POLICY own ON app.posts FOR SELECT TO snap_reader USING ({using})"
                ));
            }
            if self.touch == 1 {
                add(
                    "CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql
                       AS $f$ BEGIN NEW.body := trim(NEW.body); RETURN NEW; END $f$",
                );
                add(
                    "CREATE TRIGGER posts_touch BEFORE INSERT ON app.posts FOR EACH ROW EXECUTE FUNCTION app.touch()",
                );
            }
            if self.post_counts == 1 {
                add(
                    "CREATE MATERIALIZED VIEW app.post_counts AS SELECT user_id, count(*) FROM app.posts GROUP BY user_id",
                );
            }
        }
        match self.user_names {
            1 => add("CREATE VIEW app.user_names AS SELECT id, name FROM app.users"),
            2 => add(
                "CREATE VIEW app.user_names AS SELECT id, name, upper(name::text) AS shout FROM app.users",
            ),
            3 => add("CREATE VIEW app.user_names AS SELECT id FROM app.users"),
            _ => {}
        }
        if self.events > 0 {
            add("CREATE TABLE app.events (at date NOT NULL, what text) PARTITION BY RANGE (at)");
            add("CREATE INDEX events_at_idx ON app.events (at)");
            add(
                "CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
            );
            if self.events == 2 {
                add(
                    "CREATE TABLE app.events_2027 PARTITION OF app.events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
                );
            }
        }
        if self.tags == 1 {
            let slug = [
                "",
                ", slug text GENERATED ALWAYS AS (lower(label)) STORED",
                ", slug text GENERATED ALWAYS AS (upper(label)) STORED",
                ", slug text",
            ][self.slug];
            add(&format!(
                "CREATE TABLE app.tags (id integer, label text, during tsrange{slug})"
            ));
            match self.tags_unique {
                1 => add("ALTER TABLE app.tags ADD CONSTRAINT tags_label_key UNIQUE (label)"),
                2 => add(
                    "ALTER TABLE app.tags ADD CONSTRAINT tags_label_key UNIQUE (label) DEFERRABLE INITIALLY DEFERRED",
                ),
                _ => {}
            }
            if self.tags_exclusion == 1 {
                add(
                    "ALTER TABLE app.tags ADD CONSTRAINT tags_during_excl EXCLUDE USING gist (during WITH &&)",
                );
            }
            if self.tags_index == 1 {
                add("CREATE INDEX tags_label_idx ON app.tags (label text_pattern_ops)");
            }
        }
        match self.purge {
            1 => add(
                "CREATE PROCEDURE app.purge(days integer) LANGUAGE plpgsql AS $p$ BEGIN PERFORM days; END $p$",
            ),
            2 => add(
                "CREATE PROCEDURE app.purge(days integer) LANGUAGE plpgsql AS $p$ BEGIN PERFORM days + 1; END $p$",
            ),
            _ => {}
        }
        if self.schema_comment == 1 {
            add("COMMENT ON SCHEMA app IS 'the application'");
        }
        if self.schema_grant == 1 {
            add("GRANT USAGE ON SCHEMA app TO snap_reader");
        }
        sql.join(";\n") + ";"
    }
}

#[test]
fn d02_generated_pairs_of_schemas_round_trip() {
    let mut rng = Rng::from_env("d02");
    let pairs: usize = std::env::var("MIGRATIONS_TEST_DIFF_PAIRS")
        .ok()
        .and_then(|pairs| pairs.parse().ok())
        .unwrap_or(12);
    for pair in 0..pairs {
        let from = Spec::random(&mut rng);
        let mut to = Spec::random(&mut rng);
        let start = holding(&format!("d02_from_{pair}"), &from.sql());
        if !from.enum_reaches(&to) {
            // Refused whole: nothing is written, nothing changes.
            let mut client = start.connect();
            let before = snapshot_text(&mut client);
            refused(
                client.query_one(
                    "SELECT up FROM migrate.diff($1, allow_destructive => true)",
                    &[&to.sql()],
                ),
                "0A000",
                "cannot be reached in place",
            );
            assert_eq!(snapshot_text(&mut client), before);
            to.status = from.status;
        }
        let target = holding(&format!("d02_to_{pair}"), &to.sql());
        eprintln!("pair {pair}: {from:?} -> {to:?}");
        round_trip(&start, &target, &to.sql(), to.enum_reaches(&from));
    }
}

/// The example migrations' up sections, in order.
fn example_ups() -> Vec<String> {
    let directory = repository().join("examples/migrations");
    let mut files: Vec<_> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let script = std::fs::read_to_string(file).unwrap();
            let up = script.split("-- migrate:down").next().unwrap();
            up.replace("-- migrate:up", "")
        })
        .collect()
}

#[test]
fn d03_the_example_migrations_are_reached_one_by_one_and_from_empty() {
    let ups = example_ups();
    assert!(ups.len() >= 5, "the examples are there");
    for at in 0..ups.len() {
        let from = holding(&format!("d03_from_{at}"), &ups[..at].join("\n"));
        let desired = ups[..=at].join("\n");
        let to = holding(&format!("d03_to_{at}"), &desired);
        round_trip(&from, &to, &desired, true);
    }
    let empty = holding("d03_empty", "");
    let to = holding("d03_final", &ups.join("\n"));
    round_trip(&empty, &to, &ups.join("\n"), true);
}

#[test]
fn d04_a_large_schemas_revisions_are_reached_one_by_one_and_from_empty() {
    const TABLES: usize = 60;
    for revision in 0..4 {
        let from = holding(
            &format!("d04_from_{revision}"),
            &if revision == 0 {
                String::new()
            } else {
                large_schema(TABLES, revision - 1)
            },
        );
        let desired = large_schema(TABLES, revision);
        let to = holding(&format!("d04_to_{revision}"), &desired);
        // Revision 2 adds an enum value.
        round_trip(&from, &to, &desired, revision != 2);
    }
}

#[test]
fn d05_what_loses_data_is_refused_unless_allowed_and_renames_are_not_guessed() {
    let db = holding(
        "d05_refusals",
        "CREATE SCHEMA app; CREATE TABLE app.users (id int, name text, age integer);
         INSERT INTO app.users VALUES (1, 'ann', 30);",
    );
    let mut client = db.connect();
    let before = snapshot_text(&mut client);
    let cases: [(&str, &str, &str); 4] = [
        (
            "CREATE SCHEMA app; CREATE TABLE app.people (id int, name text, age integer);",
            "drop table app.users",
            "a rename shows as a drop and an add",
        ),
        (
            "CREATE SCHEMA app; CREATE TABLE app.users (id int, name text);",
            "drop column age of app.users",
            "a dropped column",
        ),
        (
            "CREATE SCHEMA app; CREATE TABLE app.users (id int, name text, age smallint);",
            "change column age of app.users from integer to smallint",
            "a narrowed type",
        ),
        ("", "drop schema app", "everything"),
    ];
    for (desired, step, what) in cases {
        let error = server_error(client.query_one("SELECT up FROM migrate.diff($1)", &[&desired]));
        assert_eq!(error.code().code(), "55000", "{what}: {error:?}");
        assert!(
            error.detail().unwrap_or_default().contains(step),
            "{what}: {error:?}"
        );
        assert!(
            error.hint().unwrap_or_default().contains("rename"),
            "{error:?}"
        );
        assert_eq!(
            snapshot_text(&mut client),
            before,
            "{what}: nothing changed"
        );
    }
    // A widening is no loss.
    let (up, _) = {
        let row = client
            .query_one(
                "SELECT up, down FROM migrate.diff('CREATE SCHEMA app; CREATE TABLE app.users (id bigint, name text, age integer)')",
                &[],
            )
            .unwrap();
        (row.get::<_, String>(0), row.get::<_, Option<String>>(1))
    };
    assert_eq!(
        up.trim(),
        "ALTER TABLE app.users ALTER COLUMN id TYPE bigint;"
    );
    // A collation changed under a default keeps the default.
    let desired = "CREATE SCHEMA app; CREATE TABLE app.t (name text COLLATE \"C\" DEFAULT 'x');";
    round_trip(
        &holding(
            "d05_collation_from",
            "CREATE SCHEMA app; CREATE TABLE app.t (name text DEFAULT 'x');",
        ),
        &holding("d05_collation_to", desired),
        desired,
        true,
    );
    // Allowed, the data goes with the step, and only there.
    let row = client
        .query_one(
            "SELECT up FROM migrate.diff('CREATE SCHEMA app; CREATE TABLE app.users (id int, name text)', allow_destructive => true)",
            &[],
        )
        .unwrap();
    run(&mut client, row.get(0));
    assert_eq!(
        text_rows(&mut client, &["SELECT id || ' ' || name FROM app.users"]),
        ["1 ann"]
    );
}

#[test]
fn d06_what_cannot_be_done_in_place_and_failing_desired_sql_leave_nothing() {
    let db = holding(
        "d06_impossible",
        "CREATE SCHEMA app; CREATE TYPE app.mood AS ENUM ('sad', 'ok');
         CREATE TABLE app.t (m app.mood);",
    );
    let mut client = db.connect();
    let before = snapshot_text(&mut client);
    let schemas = || {
        text_rows(
            &mut db.connect(),
            &["SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' ORDER BY 1"],
        )
    };
    let start_schemas = schemas();
    refused(
        client.query_one(
            "SELECT up FROM migrate.diff('CREATE SCHEMA app; CREATE TYPE app.mood AS ENUM (''ok'', ''sad''); CREATE TABLE app.t (m app.mood)', allow_destructive => true)",
            &[],
        ),
        "0A000",
        "enum app.mood loses or reorders labels",
    );
    // The desired SQL's own error, with its SQLSTATE, said to be there.
    let error = server_error(client.query_one(
        "SELECT up FROM migrate.diff('CREATE SCHEMA app; CREATE TABLE app.t (x app.missing)')",
        &[],
    ));
    assert_eq!(error.code().code(), "42704", "{error:?}");
    assert!(
        error
            .detail()
            .unwrap_or_default()
            .contains("desired schema"),
        "{error:?}"
    );
    // A desired SQL that calls the runner is refused like a body that does.
    refused(
        client.query_one(
            "SELECT up FROM migrate.diff('CREATE SCHEMA app; SELECT migrate.up()')",
            &[],
        ),
        "55000",
        "cannot be called from a migration body",
    );
    for schema in ["migrate", "pg_catalog", "information_schema"] {
        refused(
            client.query_one("SELECT up FROM migrate.diff('', ARRAY[$1])", &[&schema]),
            "22023",
            "cannot be compared",
        );
    }
    assert_eq!(snapshot_text(&mut client), before);
    assert_eq!(schemas(), start_schemas, "no schema moved aside is left");
    // Inside a migration body, diff() is refused.
    register(
        &mut client,
        "1",
        "diff in a body",
        "SELECT * FROM migrate.diff('')",
        None,
    );
    refused(
        up(&mut client),
        "55000",
        "cannot be called from a migration body",
    );
}

#[test]
fn d07_the_schemas_compared_can_be_limited_to_a_projects_own() {
    let db = holding(
        "d07_scope",
        "CREATE SCHEMA plugin; CREATE TABLE plugin.settings (k text);
         CREATE TABLE public.core (id int);",
    );
    let mut client = db.connect();
    let row = client
        .query_one(
            "SELECT up, down FROM migrate.diff('CREATE SCHEMA plugin; CREATE TABLE plugin.settings (k text, v text);', ARRAY['plugin'])",
            &[],
        )
        .unwrap();
    let (up, down): (String, Option<String>) = (row.get(0), row.get(1));
    assert_eq!(up.trim(), "ALTER TABLE plugin.settings ADD COLUMN v text;");
    assert!(down.unwrap().contains("DROP COLUMN v"));
    // A schema the plugin adds is compared too; public is left alone.
    let declared: String = client
        .query_one(
            "SELECT migrate.declare('1', 'plugin schema', $1, 'plugin', ARRAY['plugin', 'plugin_data'])",
            &[&"CREATE SCHEMA plugin; CREATE TABLE plugin.settings (k text);
                CREATE SCHEMA plugin_data; CREATE TABLE plugin_data.rows (id int);"],
        )
        .unwrap()
        .get(0);
    assert_eq!(declared, "registered");
    assert_eq!(
        call(&mut client, "SELECT migrate.up(project => 'plugin')"),
        1
    );
    assert!(table_exists(&mut client, "plugin_data.rows"));
    assert!(table_exists(&mut client, "public.core"));
    // While a migration of the project is pending, the catalog is not the one to start from.
    register(&mut client, "1", "pending", "SELECT 1", None);
    refused(
        client.query_one(
            "SELECT migrate.declare('2', 'next', 'CREATE TABLE public.core (id int, x int)', schemas => ARRAY['public'])",
            &[],
        ),
        "55000",
        "while 1 migration is pending",
    );
}

#[test]
fn d08_a_role_compares_only_the_schemas_it_owns() {
    let db = holding(
        "d08_owner",
        "CREATE SCHEMA app; CREATE TABLE app.t (x int);",
    );
    let mut admin = db.connect();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS d08_deployer; CREATE ROLE d08_deployer LOGIN;
             GRANT EXECUTE ON FUNCTION migrate.diff(text, text[], boolean), migrate.snapshot(text[]) TO d08_deployer;
             GRANT USAGE ON SCHEMA migrate TO d08_deployer;",
        )
        .unwrap();
    let mut deployer = db.connect_as("d08_deployer");
    // The desired SQL runs as the caller: moving a schema it does not own aside is refused.
    refused(
        deployer.query_one(
            "SELECT up FROM migrate.diff('CREATE SCHEMA app', ARRAY['app'])",
            &[],
        ),
        "42501",
        "must be owner of schema app",
    );
    admin
        .batch_execute(&format!(
            "ALTER SCHEMA app OWNER TO d08_deployer; ALTER TABLE app.t OWNER TO d08_deployer;
             GRANT CREATE ON DATABASE {} TO d08_deployer;",
            db.name
        ))
        .unwrap();
    let up: String = deployer
        .query_one(
            "SELECT up FROM migrate.diff('CREATE SCHEMA app; CREATE TABLE app.t (x int, y int)', ARRAY['app'])",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(up.trim(), "ALTER TABLE app.t ADD COLUMN y integer;");
}

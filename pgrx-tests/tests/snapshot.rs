//! Snapshots of the catalog (S01-S07): `migrate.snapshot()` describes every kind of object of the
//! user schemas; the same catalog gives the same bytes whatever its OIDs or creation order; each
//! kind of change shows in `snapshot_changes()`; the verbs store a snapshot after the migrations
//! they run, as `migrate.snapshots` says, storing the one before again when they wrote no catalog
//! row; `drift()` and `verify()` name what changed since.

use migrations_tests::*;

/// A database holding the schema, built in the order given.
fn built(name: &str, statements: &[String]) -> TestDb {
    let db = TestDb::new(name);
    let mut client = db.connect();
    client.batch_execute(ROLES).unwrap();
    client.batch_execute("CREATE SCHEMA app").unwrap();
    for statement in statements {
        client
            .batch_execute(statement)
            .unwrap_or_else(|e| panic!("{statement}: {e:?}"));
    }
    db
}

/// The same schema another way: objects made and dropped first, so that every OID differs;
/// independent objects in reverse order; a dropped column before the users' first one, so that
/// attribute numbers differ too.
fn another_way() -> Vec<String> {
    let mut statements: Vec<String> = [
        "CREATE TABLE app.detour (a int, b text)",
        "CREATE TYPE app.detour_kind AS ENUM ('x')",
        "CREATE FUNCTION app.detour() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "DROP TABLE app.detour",
        "DROP TYPE app.detour_kind",
        "DROP FUNCTION app.detour()",
    ]
    .map(str::to_owned)
    .to_vec();
    statements.extend(INDEPENDENT.iter().rev().map(|s| s.to_string()));
    statements.push(TABLES[0].replace("app.users (", "app.users (gone int, "));
    statements.push("ALTER TABLE app.users DROP COLUMN gone".to_owned());
    statements.extend(TABLES[1..].iter().map(|s| s.to_string()));
    statements.extend(ON_TABLES.iter().rev().map(|s| s.to_string()));
    statements
}

fn snapshot_text(client: &mut Client) -> String {
    client
        .query_one("SELECT migrate.snapshot()::text", &[])
        .unwrap()
        .get(0)
}

/// `(path, change)` of what differs between two snapshots.
fn changes(client: &mut Client, before: &str, after: &str) -> Vec<(String, String)> {
    client
        .query(
            "SELECT array_to_string(path, ' '), change FROM migrate.snapshot_changes($1::text::jsonb, $2::text::jsonb)",
            &[&before, &after],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[test]
fn s01_a_snapshot_describes_every_kind_of_object() {
    let db = built("s01_kinds", &in_order());
    let mut client = db.connect();
    // (path, what its value holds)
    let expected: [(&str, &str); 42] = [
        ("{schemas,app,comment}", "the application"),
        ("{schemas,app,grants}", "snap_reader USAGE BY postgres"),
        ("{extensions,pgcrypto,schema}", "public"),
        ("{types,app.mood,labels}", "[\"sad\", \"ok\", \"happy\"]"),
        ("{types,app.mood,comment}", "how one feels"),
        ("{types,app.email,kind}", "domain"),
        ("{types,app.email,not_null}", "true"),
        ("{types,app.email,default}", "'x@y'::text"),
        ("{types,app.email,collation}", "\"C\""),
        ("{types,app.email,constraints,email_check}", "~~ '%@%'"),
        ("{types,app.floatrange,subtype,difference}", "float8mi"),
        ("{relations,app.pair,kind}", "composite type"),
        ("{relations,app.pair,columns,b,type}", "text"),
        ("{relations,app.users,columns,id,identity}", "always"),
        ("{relations,app.users,columns,name,collation}", "\"C\""),
        ("{relations,app.users,columns,name,default}", "'anon'::text"),
        ("{relations,app.users,columns,name,not_null}", "true"),
        (
            "{relations,app.users,columns,name,comment}",
            "shown to others",
        ),
        (
            "{relations,app.users,columns,lower_name,generated}",
            "lower(name)",
        ),
        ("{relations,app.users,columns,mood,type}", "app.mood"),
        (
            "{relations,app.users,constraints,users_pkey,type}",
            "primary key",
        ),
        (
            "{relations,app.users,constraints,users_email_key,type}",
            "unique",
        ),
        (
            "{relations,app.users,constraints,users_n_positive,definition}",
            "CHECK ((n > 0))",
        ),
        (
            "{relations,app.posts,constraints,posts_user_id_fkey,definition}",
            "DEFERRABLE INITIALLY DEFERRED",
        ),
        (
            "{relations,app.posts,constraints,posts_during_excl,type}",
            "exclusion",
        ),
        (
            "{relations,app.posts,indexes,posts_body_idx,definition}",
            "(lower(body) text_pattern_ops) WHERE (body IS NOT NULL)",
        ),
        ("{relations,app.posts,options}", "fillfactor=70"),
        ("{relations,app.posts,row_security}", "true"),
        ("{relations,app.posts,policies,own,using}", "(user_id = 1)"),
        (
            "{relations,app.posts,policies,writers,roles}",
            "[\"snap_reader\", \"snap_writer\"]",
        ),
        ("{relations,app.posts,policies,writers,permissive}", "false"),
        (
            "{relations,app.posts,triggers,posts_touch,definition}",
            "EXECUTE FUNCTION app.touch()",
        ),
        (
            "{relations,app.posts,columns,body,grants}",
            "snap_reader UPDATE BY postgres",
        ),
        (
            "{relations,app.users,grants}",
            "snap_reader SELECT BY postgres",
        ),
        (
            "{relations,app.users,statistics,app.users_stats}",
            "ON name, mood FROM app.users",
        ),
        ("{relations,app.counter,sequence,owned_by}", "app.users.n"),
        (
            "{relations,app.posts_id_seq,sequence,owned_by}",
            "app.posts.id",
        ),
        ("{relations,app.scratch,unlogged}", "true"),
        (
            "{relations,app.events_2026,partition_bound}",
            "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
        ),
        ("{relations,app.audit,inherits}", "app.audit_base"),
        (
            "{relations,app.post_counts,definition}",
            "GROUP BY posts.user_id",
        ),
        ("{routines,app.purge(integer),kind}", "procedure"),
    ];
    for (path, holds) in expected {
        let value: Option<String> = client
            .query_one("SELECT migrate.snapshot() #>> $1::text::text[]", &[&path])
            .unwrap()
            .get(0);
        let value = value.unwrap_or_else(|| panic!("no {path}"));
        assert!(value.contains(holds), "{path} is {value}, not {holds}");
        figure("snapshot checks passed", 1);
    }
    // What an object makes for itself is not listed apart: array and row types, a range's
    // constructors, a foreign key's triggers, the extension's functions.
    let listed = text_rows(
        &mut client,
        &[
            "SELECT k FROM jsonb_object_keys(migrate.snapshot()->'types') k",
            "SELECT k FROM jsonb_object_keys(migrate.snapshot()->'routines') k",
        ],
    );
    assert_eq!(
        listed,
        [
            "app.mood",
            "app.email",
            "app.floatrange",
            "app.touch()",
            "app.purge(integer)",
            "app.total(integer)",
            "app.add(integer,integer)"
        ]
    );
    figure("snapshot checks passed", 1);
}

#[test]
fn s02_the_same_catalog_gives_the_same_bytes_whatever_its_oids_and_order() {
    let first = built("s02_in_order", &in_order());
    let second = built("s02_another_way", &another_way());
    let (mut a, mut b) = (first.connect(), second.connect());
    let oids =
        |client: &mut Client| -> Vec<String> {
            text_rows(
            client,
            &["SELECT 'app.users'::regclass::oid::text || ' ' || (SELECT attnum FROM pg_attribute
                       WHERE attrelid = 'app.users'::regclass AND attname = 'id')"],
        )
        };
    assert_ne!(oids(&mut a), oids(&mut b), "the detours moved the OIDs");
    assert_eq!(snapshot_text(&mut a), snapshot_text(&mut b));
    // The two catalogs are the same schema in pg_dump's eyes too.
    let dump = |db: &TestDb| {
        let file =
            std::env::temp_dir().join(format!("migrations-{}-{}.sql", db.name, std::process::id()));
        run_client_program(
            &pg_bin(),
            &Server::shared(),
            "pg_dump",
            &[
                "--schema-only",
                "--schema=app",
                "-f",
                file.to_str().unwrap(),
                &db.name,
            ],
        );
        // pg_dump's \restrict lines carry a random key
        std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(dump(&first), dump(&second));
    // And one change makes them differ.
    b.batch_execute("COMMENT ON TABLE app.users IS NULL")
        .unwrap();
    assert_ne!(snapshot_text(&mut a), snapshot_text(&mut b));
    figure("snapshot checks passed", 1);
}

#[test]
fn s03_each_kind_of_change_shows_where_it_happened() {
    let db = built("s03_changes", &in_order());
    let mut client = db.connect();
    let before = snapshot_text(&mut client);
    let cases: [(&str, &str, &str); 22] = [
        (
            "ALTER TABLE app.users ADD COLUMN nick text",
            "relations app.users columns nick",
            "added",
        ),
        (
            "ALTER TABLE app.users ALTER COLUMN name SET DEFAULT 'x'",
            "relations app.users columns name default",
            "changed",
        ),
        (
            "ALTER TABLE app.users ALTER COLUMN mood SET NOT NULL",
            "relations app.users columns mood not_null",
            "added",
        ),
        (
            "ALTER TABLE app.users ALTER COLUMN n TYPE bigint",
            "relations app.users columns n type",
            "changed",
        ),
        (
            "DROP INDEX app.posts_body_idx",
            "relations app.posts indexes posts_body_idx",
            "removed",
        ),
        (
            "ALTER TABLE app.posts DROP CONSTRAINT posts_user_id_fkey",
            "relations app.posts constraints posts_user_id_fkey",
            "removed",
        ),
        (
            "GRANT INSERT ON app.users TO snap_reader",
            "relations app.users grants",
            "changed",
        ),
        (
            "COMMENT ON COLUMN app.users.name IS 'other'",
            "relations app.users columns name comment",
            "changed",
        ),
        (
            "ALTER POLICY own ON app.posts USING (user_id = 2)",
            "relations app.posts policies own using",
            "changed",
        ),
        (
            "CREATE OR REPLACE FUNCTION app.add(a integer, b integer DEFAULT 1) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT a + b + 0'",
            "routines app.add(integer,integer) definition",
            "changed",
        ),
        (
            "ALTER TYPE app.mood ADD VALUE 'meh'",
            "types app.mood labels",
            "changed",
        ),
        (
            "ALTER TABLE app.posts DISABLE TRIGGER posts_touch",
            "relations app.posts triggers posts_touch enabled",
            "added",
        ),
        (
            "ALTER SEQUENCE app.counter INCREMENT 7",
            "relations app.counter sequence increment",
            "changed",
        ),
        (
            "CREATE OR REPLACE VIEW app.user_names AS SELECT id, name FROM app.users WHERE mood <> 'happy'",
            "relations app.user_names definition",
            "changed",
        ),
        (
            "ALTER TABLE app.posts SET (fillfactor = 80)",
            "relations app.posts options",
            "changed",
        ),
        (
            "ALTER DOMAIN app.email DROP DEFAULT",
            "types app.email default",
            "removed",
        ),
        ("DROP EXTENSION pgcrypto", "extensions pgcrypto", "removed"),
        ("CREATE SCHEMA other", "schemas other", "added"),
        (
            "ALTER TABLE app.scratch SET LOGGED",
            "relations app.scratch unlogged",
            "removed",
        ),
        (
            "ALTER TABLE app.users OWNER TO snap_writer",
            "relations app.users owner",
            "changed",
        ),
        (
            "DROP STATISTICS app.users_stats",
            "relations app.users statistics app.users_stats",
            "removed",
        ),
        (
            "ALTER TABLE app.posts ADD CONSTRAINT one_body UNIQUE (body) DEFERRABLE",
            "relations app.posts constraints one_body",
            "added",
        ),
    ];
    for (change, path, how) in cases {
        let mut transaction = client.transaction().unwrap();
        transaction
            .batch_execute(change)
            .unwrap_or_else(|e| panic!("{change}: {e:?}"));
        let after: String = transaction
            .query_one("SELECT migrate.snapshot()::text", &[])
            .unwrap()
            .get(0);
        transaction.rollback().unwrap();
        let seen = changes(&mut client, &before, &after);
        assert!(
            seen.contains(&(path.to_owned(), how.to_owned())),
            "{change}: {seen:?}"
        );
        figure("snapshot checks passed", 1);
    }
    // Each change was rolled back: nothing differs from the first snapshot.
    let again = snapshot_text(&mut client);
    assert_eq!(changes(&mut client, &before, &again), []);
}

/// The rows of `migrate.snapshots`: `(version, hash is the SHA-256 of the snapshot's text)`.
fn stored(client: &mut Client) -> Vec<(String, bool)> {
    client
        .query(
            "SELECT version, hash = encode(sha256(convert_to(snapshot::text, 'UTF8')), 'hex')
               FROM migrate.snapshots ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn drift(client: &mut Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT array_to_string(path, ' '), change FROM migrate.drift()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn pair(path: &str, change: &str) -> (String, String) {
    (path.to_owned(), change.to_owned())
}

#[test]
fn s04_the_verbs_store_the_catalog_they_leave_and_drift_names_what_changed_since() {
    let db = TestDb::new("s04_drift");
    let mut client = db.connect();
    expect_sqlstate(client.query("SELECT * FROM migrate.drift()", &[]), "55000");
    for (version, table) in [("1", "a"), ("2", "b"), ("3", "c")] {
        register(
            &mut client,
            version,
            table,
            &format!("CREATE TABLE {table} (id int PRIMARY KEY)"),
            Some(&format!("DROP TABLE {table}")),
        );
    }
    assert_eq!(up(&mut client).unwrap(), 3);
    // Under the default (last), one snapshot after the call's last migration: the catalog now.
    assert_eq!(stored(&mut client), [("3".to_owned(), true)]);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.snapshots WHERE snapshot = migrate.snapshot()"
        ),
        1
    );
    assert_eq!(drift(&mut client), []);
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM migrate.verify()"),
        0
    );

    // Changes by hand are drift, and verify() names them against the migration they follow.
    client
        .batch_execute("ALTER TABLE a ADD COLUMN extra text; ALTER TABLE b DROP CONSTRAINT b_pkey")
        .unwrap();
    assert_eq!(
        drift(&mut client),
        [
            pair("relations public.a columns extra", "added"),
            pair("relations public.b constraints b_pkey", "removed"),
            pair("relations public.b indexes b_pkey", "removed"),
        ]
    );
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT version || ' ' || problem || ': ' || detail FROM migrate.verify()"]
        ),
        [
            "3 drift: relations public.a columns extra: added",
            "3 drift: relations public.b constraints b_pkey: removed",
            "3 drift: relations public.b indexes b_pkey: removed",
        ]
    );
    client
        .batch_execute("ALTER TABLE a DROP COLUMN extra; ALTER TABLE b ADD PRIMARY KEY (id)")
        .unwrap();
    assert_eq!(drift(&mut client), [], "undone by hand, no drift");

    // Under each, one after every migration, which status() shows.
    client
        .batch_execute("SET migrate.snapshots = each")
        .unwrap();
    for (version, table) in [("4", "d"), ("5", "e")] {
        register(
            &mut client,
            version,
            table,
            &format!("CREATE TABLE {table} ()"),
            Some(&format!("DROP TABLE {table}")),
        );
    }
    assert_eq!(up(&mut client).unwrap(), 2);
    assert_eq!(
        stored(&mut client),
        [
            ("3".to_owned(), true),
            ("4".to_owned(), true),
            ("5".to_owned(), true)
        ]
    );
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT s.version || ' ' || (s.snapshot IS NOT NULL)::text
                        || ' ' || COALESCE((k.snapshot->'relations' ? 'public.e')::text, '-')
                 FROM migrate.status() s
                 LEFT JOIN migrate.snapshots k ON k.hash = s.snapshot AND k.version = s.version
                ORDER BY s.version"]
        ),
        [
            "1 false -",
            "2 false -",
            "3 true false",
            "4 true false",
            "5 true true"
        ]
    );
    assert_eq!(drift(&mut client), []);

    // A revert stores the catalog it leaves.
    assert_eq!(call(&mut client, "SELECT migrate.down()"), 1);
    assert_eq!(stored(&mut client).len(), 4);
    assert_eq!(drift(&mut client), []);

    // Off stores none, and drift() says the newest snapshot is older than what ran since.
    client.batch_execute("SET migrate.snapshots = off").unwrap();
    assert_eq!(up(&mut client).unwrap(), 1);
    assert_eq!(stored(&mut client).len(), 4);
    let error = expect_sqlstate(client.query("SELECT * FROM migrate.drift()", &[]), "55000");
    assert_eq!(
        error.message(),
        "the newest snapshot of the catalog is older than migration \"5\""
    );
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM migrate.verify()"),
        0,
        "verify() compares with no stale snapshot"
    );
    figure("snapshot checks passed", 1);
}

#[test]
fn s05_a_failure_stores_no_snapshot_of_what_it_undid() {
    let db = TestDb::new("s05_failures");
    let mut client = db.connect();
    client
        .batch_execute("SET migrate.snapshots = each")
        .unwrap();
    register(&mut client, "1", "fine", "CREATE TABLE fine ()", None);
    register(
        &mut client,
        "2",
        "broken",
        "CREATE TABLE broken (); SELECT 1/0",
        None,
    );
    // up() runs in one transaction: the snapshot after 1 goes with it.
    expect_sqlstate(up(&mut client), "22012");
    assert_eq!(stored(&mut client), []);
    // apply() commits 1 with its snapshot; 2 fails alone.
    expect_sqlstate(client.batch_execute("CALL migrate.apply()"), "22012");
    assert_eq!(stored(&mut client), [("1".to_owned(), true)]);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.snapshots
              WHERE snapshot->'relations' ? 'public.fine' AND NOT snapshot->'relations' ? 'public.broken'"
        ),
        1
    );
    assert_eq!(drift(&mut client), []);
    // A tenant's migrations store none: every snapshot describes the tenant schemas already.
    client
        .batch_execute(
            "CREATE SCHEMA tenant_a;
             SELECT migrate.register('1', 'tenant table', 'CREATE TABLE t ()', project => 'tenants');
             SELECT migrate.set_tenants(ARRAY['tenant_a'], project => 'tenants');
             SELECT migrate.up(project => 'tenants');",
        )
        .unwrap();
    assert_eq!(stored(&mut client).len(), 1);
    figure("snapshot checks passed", 1);
}

/// `apply()` commits each migration, but stores the catalog once for the migrations it runs in
/// a row: before a migration that fails (with its failure), around a non-transactional one, and
/// after the last.
#[test]
fn s06_apply_stores_one_snapshot_for_the_migrations_it_runs_in_a_row() {
    let db = TestDb::new("s06_apply");
    let mut client = db.connect();
    for i in 1..=3 {
        register(
            &mut client,
            &i.to_string(),
            "table",
            &format!("CREATE TABLE t{i} ()"),
            None,
        );
    }
    client.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(stored(&mut client), [("3".to_owned(), true)]);
    assert_eq!(drift(&mut client), []);

    register(&mut client, "4", "fine", "CREATE TABLE t4 ()", None);
    register(
        &mut client,
        "5",
        "broken",
        "CREATE TABLE t5 (); SELECT 1/0",
        None,
    );
    expect_sqlstate(client.batch_execute("CALL migrate.apply()"), "22012");
    assert_eq!(
        stored(&mut client),
        [("3".to_owned(), true), ("4".to_owned(), true)],
        "the catalog 4 left, stored with 5's failure"
    );
    assert_eq!(drift(&mut client), []);

    client
        .batch_execute(
            "SELECT migrate.register('5', 'fixed', 'CREATE TABLE t5 ()');
             SELECT migrate.register('6', 'index', 'CREATE INDEX CONCURRENTLY t6_i ON t6_base (x)',
                                     transactional => false);
             CREATE TABLE t6_base (x int);
             SELECT migrate.register('7', 'last', 'CREATE TABLE t7 ()');",
        )
        .unwrap();
    client.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(
        stored(&mut client)
            .into_iter()
            .map(|(version, _)| version)
            .collect::<Vec<_>>(),
        ["3", "4", "5", "6", "7"],
        "before the non-transactional 6, after it, and after the last"
    );
    assert_eq!(drift(&mut client), []);
    figure("snapshot checks passed", 1);
}

/// The version and hash of each stored snapshot, and whether it is the catalog now.
fn stored_hashes(client: &mut Client) -> Vec<String> {
    text_rows(
        client,
        &["SELECT version || ' ' || left(hash, 12) || ' ' || (snapshot = migrate.snapshot())::text
             FROM migrate.snapshots ORDER BY id"],
    )
}

#[test]
fn s07_a_migration_that_writes_no_catalog_row_stores_the_snapshot_before_it_again() {
    let db = TestDb::new("s07_unchanged");
    let mut client = db.connect();
    client
        .batch_execute("SET client_min_messages = warning")
        .unwrap();
    let mut applied = 0;
    let mut migrate = |client: &mut Client, body: &str| {
        applied += 1;
        register(client, &applied.to_string(), "step", body, None);
        assert_eq!(up(client).unwrap(), 1, "{body}");
        stored_hashes(client).pop().unwrap()
    };
    let first = migrate(
        &mut client,
        "CREATE TABLE a (id int); CREATE TABLE log (i int);
         CREATE FUNCTION widen() RETURNS void LANGUAGE plpgsql
             AS $f$ BEGIN EXECUTE 'ALTER TABLE a ADD COLUMN b int'; END $f$;",
    );
    assert!(first.ends_with(" true"), "{first}");
    let hash = |line: &str| line.split(' ').nth(1).unwrap().to_owned();

    // Rows only: the catalog the first left, stored again under the second.
    let data = migrate(&mut client, "INSERT INTO log VALUES (1)");
    assert_eq!(hash(&data), hash(&first));
    assert!(data.ends_with(" true"), "{data}");

    // DDL the body does not write out (a function running it), and a comment alone: each
    // changes the catalog, which is read again.
    for body in ["SELECT widen()", "COMMENT ON TABLE a IS 'rows'"] {
        let before = stored_hashes(&mut client).pop().unwrap();
        let after = migrate(&mut client, body);
        assert_ne!(hash(&after), hash(&before), "{body}");
        assert!(after.ends_with(" true"), "{body}: {after}");
        assert_eq!(drift(&mut client), [], "{body}");
    }

    // A change by hand before a migration that writes no catalog row stays drift: the
    // migration did not make it.
    client
        .batch_execute("ALTER TABLE a ADD COLUMN by_hand int")
        .unwrap();
    migrate(&mut client, "INSERT INTO log VALUES (2)");
    assert_eq!(
        drift(&mut client),
        [pair("relations public.a columns by_hand", "added")]
    );

    // After migrations that stored no snapshot (snapshots off), the newest one no longer
    // describes the catalog: the next migration reads it, whatever it writes.
    client.batch_execute("SET migrate.snapshots = off").unwrap();
    migrate(&mut client, "CREATE TABLE c ()");
    client.batch_execute("RESET migrate.snapshots").unwrap();
    let after_off = migrate(&mut client, "INSERT INTO log VALUES (3)");
    assert!(after_off.ends_with(" true"), "{after_off}");
    assert_eq!(drift(&mut client), []);

    // Without track_counts nothing counts the catalog rows written: the catalog is read.
    migrate(
        &mut client,
        "CREATE FUNCTION widen_more() RETURNS void LANGUAGE plpgsql
             AS $f$ BEGIN EXECUTE 'ALTER TABLE a ADD COLUMN d int'; END $f$",
    );
    client.batch_execute("SET track_counts = off").unwrap();
    let untracked = migrate(&mut client, "SELECT widen_more()");
    assert!(untracked.ends_with(" true"), "{untracked}");
    assert_eq!(drift(&mut client), []);
    figure("snapshot checks passed", 1);
}

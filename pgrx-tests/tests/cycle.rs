//! The whole register → up → status → down → down_to cycle on the example migrations, and the
//! register policies.

use migrations_tests::*;

/// (version, name, script) of every file in examples/migrations, in file-name order.
fn examples() -> Vec<(String, String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("examples")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let stem = path.file_stem().unwrap().to_str().unwrap();
            let (version, name) = stem.split_once('_').unwrap();
            (
                version.to_owned(),
                name.to_owned(),
                std::fs::read_to_string(path).unwrap(),
            )
        })
        .collect()
}

fn register_examples(client: &mut impl postgres::GenericClient) -> Vec<String> {
    examples()
        .iter()
        .map(|(version, name, script)| {
            client
                .query_one(
                    "SELECT migrate.register_script($1, $2, $3)",
                    &[version, name, script],
                )
                .unwrap()
                .get(0)
        })
        .collect()
}

fn versions(n: std::ops::Range<usize>) -> Vec<String> {
    examples()[n]
        .iter()
        .map(|(version, _, _)| version.clone())
        .collect()
}

#[test]
fn full_cycle_on_the_examples() {
    let db = TestDb::new("cycle");
    let (mut client, notices) = db.connect_with_notices();
    let examples = examples();
    assert!(examples.len() >= 6);

    assert!(
        register_examples(&mut client)
            .iter()
            .all(|r| r == "registered")
    );
    assert!(
        register_examples(&mut client)
            .iter()
            .all(|r| r == "unchanged"),
        "registering again is a no-op"
    );
    assert!(all_in_state(&mut client, "pending"));

    assert_eq!(up(&mut client).unwrap(), examples.len() as i32);
    let applied_notices: Vec<String> = notices.lock().unwrap().drain(..).collect();
    assert_eq!(applied_notices.len(), examples.len());
    for ((version, name, _), notice) in examples.iter().zip(&applied_notices) {
        assert!(
            notice.starts_with(&format!("migration \"{version}\" ({name}) applied in ")),
            "{notice}"
        );
        assert!(notice.ends_with(" ms"), "{notice}");
    }
    // The bodies' effects: tables, foreign key, index, trigger, view, backfill.
    for object in [
        "customers",
        "orders",
        "orders_customer_placed_idx",
        "customer_totals",
    ] {
        assert!(table_exists(&mut client, object), "{object}");
    }
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_touch_updated_at'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM customers WHERE tier = 'gold'"
        ),
        1
    );

    let status = client
        .query(
            "SELECT s.version, s.state, s.applied_by, s.duration_ms, s.checksum = encode(sha256(convert_to(m.up_sql, 'UTF8')), 'hex')
               FROM migrate.status() s JOIN migrate.migrations m USING (project, version)",
            &[],
        )
        .unwrap();
    assert_eq!(status.len(), examples.len());
    for (row, (version, _, _)) in status.iter().zip(&examples) {
        assert_eq!(
            row.get::<_, String>(0),
            *version,
            "status lists migrations in apply order"
        );
        assert_eq!(row.get::<_, String>(1), "applied");
        assert_eq!(row.get::<_, String>(2), "postgres");
        assert!(row.get::<_, f64>(3) >= 0.0);
        assert!(
            row.get::<_, bool>(4),
            "checksum is the SHA-256 of the up body"
        );
    }
    // Durations are milliseconds to the nanosecond, and print as such: no binary tail such as
    // 0.023645000000000003 in status() or the journal.
    assert!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE duration_ms IS NOT NULL"
        ) >= examples.len() as i64
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE duration_ms::text ~ '\\.[0-9]{7}'"
        ),
        0,
        "{:?}",
        client
            .query("SELECT duration_ms::text FROM migrate.history()", &[])
            .unwrap()
            .iter()
            .map(|row| row.get::<_, Option<String>>(0))
            .collect::<Vec<_>>()
    );
    // One snapshot, after the last migration of the call: the catalog as it is now.
    let snapshots: Vec<(String, Option<String>, bool)> = client
        .query(
            "SELECT version, snapshot,
                    snapshot = encode(sha256(convert_to(migrate.snapshot()::text, 'UTF8')), 'hex')
               FROM migrate.status()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.get(0),
                row.get(1),
                row.get::<_, Option<bool>>(2).unwrap_or(false),
            )
        })
        .collect();
    let (last, earlier) = snapshots.split_last().unwrap();
    assert!(
        last.2,
        "the last migration's snapshot is the catalog now: {last:?}"
    );
    assert!(
        earlier.iter().all(|(_, hash, _)| hash.is_none()),
        "{earlier:?}"
    );
    assert_eq!(up(&mut client).unwrap(), 0, "nothing left to apply");

    // The application start-up case writes nothing when nothing changed: registering unchanged
    // migrations and an up() with nothing pending assign no transaction id.
    let mut transaction = client.transaction().unwrap();
    assert!(
        register_examples(&mut transaction)
            .iter()
            .all(|r| r == "unchanged")
    );
    assert_eq!(call(&mut transaction, "SELECT migrate.up()"), 0);
    let xid: Option<String> = transaction
        .query_one("SELECT pg_current_xact_id_if_assigned()::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(xid, None, "a no-op start-up wrote to the database");
    transaction.commit().unwrap();

    // down(): the newest first.
    assert_eq!(call(&mut client, "SELECT migrate.down()"), 1);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers' AND column_name = 'tier'"
        ),
        0
    );
    let last = &examples.last().unwrap().0;
    assert_eq!(
        states(&mut client).last().unwrap(),
        &(last.clone(), "pending".to_owned())
    );

    // down_to(): everything above the first.
    let first = &examples[0].0;
    let reverted: i32 = client
        .query_one("SELECT migrate.down_to($1)", &[first])
        .unwrap()
        .get(0);
    assert_eq!(reverted, examples.len() as i32 - 2);
    assert!(table_exists(&mut client, "customers"));
    assert!(!table_exists(&mut client, "orders"));
    let applied: Vec<String> = states(&mut client)
        .into_iter()
        .filter(|(_, s)| s == "applied")
        .map(|(v, _)| v)
        .collect();
    assert_eq!(applied, vec![first.clone()]);

    // up(target): up to and including the third.
    let third = &examples[2].0;
    assert_eq!(
        client
            .query_one("SELECT migrate.up($1)", &[third])
            .unwrap()
            .get::<_, i32>(0),
        2
    );
    let applied: Vec<String> = states(&mut client)
        .into_iter()
        .filter(|(_, s)| s == "applied")
        .map(|(v, _)| v)
        .collect();
    assert_eq!(applied, versions(0..3));

    // down(n) with more steps than applied reverts what there is.
    assert_eq!(call(&mut client, "SELECT migrate.down(10)"), 3);
    assert!(!table_exists(&mut client, "customers"));

    let events: Vec<(String, i64)> = client
        .query(
            "SELECT event, count(*) FROM migrate.history() GROUP BY event ORDER BY event",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let n = examples.len() as i64;
    assert_eq!(
        events,
        vec![
            ("down".into(), 1 + (n - 2) + 3),
            ("register".into(), n),
            // one after each call that ran migrations: up, down, down_to, up, down
            ("snapshot".into(), 5),
            ("up".into(), n + 2)
        ]
    );
}

#[test]
fn targets_must_be_registered() {
    let db = TestDb::new("targets");
    let mut client = db.connect();
    register(
        &mut client,
        "1",
        "one",
        "CREATE TABLE one ()",
        Some("DROP TABLE one"),
    );
    let error = expect_sqlstate(client.query_one("SELECT migrate.up('2')", &[]), "42704");
    assert_eq!(error.message(), "migration \"2\" is not registered");
    expect_sqlstate(
        client.query_one("SELECT migrate.down_to('0')", &[]),
        "42704",
    );
    let other: i32 = client
        .query_one("SELECT migrate.up(NULL, 'other')", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        other, 0,
        "a project without migrations has nothing to apply"
    );
    expect_sqlstate(
        client.query_one("SELECT migrate.up(NULL, 'bad project')", &[]),
        "22023",
    );
    expect_sqlstate(
        client.query_one("SELECT migrate.up(NULL, NULL)", &[]),
        "22004",
    );
    expect_sqlstate(client.query_one("SELECT migrate.down(NULL)", &[]), "22004");
    expect_sqlstate(client.query_one("SELECT migrate.down(-1)", &[]), "22023");
}

#[test]
fn register_policies() {
    let db = TestDb::new("policies");
    let mut client = db.connect();
    assert_eq!(
        register(&mut client, "1", "one", "CREATE TABLE one ()", None),
        "registered"
    );
    assert_eq!(
        register(&mut client, "1", "one", "CREATE TABLE one ()", None),
        "unchanged"
    );
    assert_eq!(
        register(&mut client, "1", "one", "CREATE TABLE one (id int)", None),
        "updated"
    );
    assert_eq!(
        register(
            &mut client,
            "1",
            "one",
            "CREATE TABLE one (id int)",
            Some("DROP TABLE one")
        ),
        "updated"
    );
    let detail: String = client
        .query_one(
            "SELECT detail FROM migrate.history() WHERE event = 'update' ORDER BY id LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(detail.starts_with("up body (checksum "), "{detail}");

    // Two spellings of one version collide.
    let error = expect_sqlstate(
        client.query_one("SELECT migrate.register('01', 'x', 'SELECT 1')", &[]),
        "42710",
    );
    assert_eq!(
        error.message(),
        "version \"01\" collides with registered version \"1\""
    );

    up(&mut client).unwrap();
    // Applied: the down body and the name may change, the up body may not.
    assert_eq!(
        register(
            &mut client,
            "1",
            "one renamed",
            "CREATE TABLE one (id int)",
            Some("DROP TABLE one CASCADE")
        ),
        "updated"
    );
    let error = expect_sqlstate(
        client.query_one(
            "SELECT migrate.register('1', 'one', 'CREATE TABLE one (id bigint)')",
            &[],
        ),
        "55000",
    );
    let applied: String = client
        .query_one(
            "SELECT checksum FROM migrate.status() WHERE version = '1'",
            &[],
        )
        .unwrap()
        .get(0);
    let new: String = client
        .query_one(
            "SELECT encode(sha256(convert_to('CREATE TABLE one (id bigint)', 'UTF8')), 'hex')",
            &[],
        )
        .unwrap()
        .get(0);
    let detail = error.detail().unwrap();
    assert!(
        detail.contains(&applied) && detail.contains(&new),
        "{detail}"
    );
    assert!(error.hint().is_some());

    // Bad arguments.
    for (query, sqlstate) in [
        ("SELECT migrate.register(NULL, 'x', 'SELECT 1')", "22004"),
        ("SELECT migrate.register('2', NULL, 'SELECT 1')", "22004"),
        ("SELECT migrate.register('2', 'x', NULL)", "22004"),
        (
            "SELECT migrate.register('2', 'x', 'SELECT 1', NULL, NULL)",
            "22004",
        ),
        ("SELECT migrate.register('', 'x', 'SELECT 1')", "22023"),
        ("SELECT migrate.register('-2', 'x', 'SELECT 1')", "22023"),
        ("SELECT migrate.register('2 ', 'x', 'SELECT 1')", "22023"),
        (
            "SELECT migrate.register(repeat('9', 256), 'x', 'SELECT 1')",
            "22023",
        ),
        ("SELECT migrate.register('2', ' ', 'SELECT 1')", "22023"),
        (
            "SELECT migrate.register('2', repeat('n', 256), 'SELECT 1')",
            "22023",
        ),
        (
            "SELECT migrate.register('2', 'x', 'SELECT 1', NULL, 'bad project')",
            "22023",
        ),
        (
            "SELECT migrate.register('2', 'x', '  -- only a comment')",
            "22023",
        ),
        (
            "SELECT migrate.register('2', 'x', 'SELECT 1', '/* nothing */')",
            "22023",
        ),
        ("SELECT migrate.register('2', 'x', 'SELEC 1')", "42601"),
        (
            "SELECT migrate.register_script('2', 'x', 'SELECT 1')",
            "22023",
        ),
        (
            "SELECT migrate.register_script('2', 'x', E'-- migrate:up transaction:maybe\nSELECT 1')",
            "22023",
        ),
    ] {
        expect_sqlstate(client.query_one(query, &[]), sqlstate);
    }
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM migrate.status()"),
        1,
        "no bad input was stored"
    );
}

#[test]
fn register_script_splits_the_dbmate_layout() {
    let db = TestDb::new("scripts");
    let mut client = db.connect();
    let script =
        "-- header\n-- migrate:up\nCREATE TABLE s (id int);\n-- migrate:down\nDROP TABLE s;\n";
    let result: String = client
        .query_one("SELECT migrate.register_script('1', 's', $1)", &[&script])
        .unwrap()
        .get(0);
    assert_eq!(result, "registered");
    let no_down = "-- migrate:up\nCREATE TABLE u (id int);\n-- migrate:down\n-- nothing to undo\n";
    client
        .query_one("SELECT migrate.register_script('2', 'u', $1)", &[&no_down])
        .unwrap();
    let rows = client
        .query(
            "SELECT up_sql, down_sql FROM migrate.migrations ORDER BY version_key",
            &[],
        )
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "CREATE TABLE s (id int);");
    assert_eq!(
        rows[0].get::<_, Option<String>>(1).as_deref(),
        Some("DROP TABLE s;")
    );
    assert_eq!(
        rows[1].get::<_, Option<String>>(1),
        None,
        "a down section without SQL is no down body"
    );
}

/// The journal of one `up()` and one `down()`: each migration's event in the order it ran, with
/// the time it ended (after its body ran, before the next body started), a repeatable
/// migration's after the versioned ones it followed, and each applied row with its event's time.
#[test]
fn the_journal_keeps_each_migrations_order_and_time() {
    let db = TestDb::new("journal");
    let mut client = db.connect();
    client
        .batch_execute("CREATE TABLE ran (version text, direction text, at timestamptz)")
        .unwrap();
    let logged = |version: &str, direction: &str| {
        format!("INSERT INTO ran VALUES ('{version}', '{direction}', clock_timestamp())")
    };
    for version in ["1", "2", "3"] {
        client
            .query_one(
                "SELECT migrate.register($1, 'step', $2, $3)",
                &[&version, &logged(version, "up"), &logged(version, "down")],
            )
            .unwrap();
    }
    client
        .query_one(
            "SELECT migrate.register_repeatable('refresh', $1)",
            &[&logged("refresh", "up")],
        )
        .unwrap();
    assert_eq!(up(&mut client).unwrap(), 4);
    assert_eq!(call(&mut client, "SELECT migrate.down(3)"), 3);

    // Each event sits between its own body's run and the next body's.
    let out_of_place: Vec<String> = client
        .query(
            "WITH h AS (SELECT h.id, h.version, split_part(h.event, ' ', -1) AS direction, h.at
                          FROM migrate.history() h
                         WHERE h.event IN ('up', 'down', 'repeatable reapply')),
                  r AS (SELECT r.*, lead(r.at) OVER (ORDER BY r.at) AS next_at FROM ran r)
             SELECT h.version || ' ' || h.direction
               FROM h LEFT JOIN r ON r.version = h.version
                                 AND r.direction = replace(h.direction, 'reapply', 'up')
              WHERE r.at IS NULL OR h.at < r.at OR h.at >= COALESCE(r.next_at, 'infinity')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(out_of_place, Vec::<String>::new());
    let journal: Vec<String> = client
        .query(
            "SELECT h.version || ' ' || h.event FROM migrate.history() h
              WHERE h.event <> 'register' AND h.event <> 'repeatable register' ORDER BY h.id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        journal,
        [
            "1 up",
            "2 up",
            "3 up",
            "refresh repeatable reapply",
            "refresh snapshot",
            "3 down",
            "2 down",
            "1 down",
            "1 snapshot"
        ]
    );

    // The applied row and its event share one time.
    assert_eq!(up(&mut client).unwrap(), 3);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.applied a JOIN migrate.events e ON e.id = a.event_id
              WHERE a.applied_at = e.at AND e.event = 'up'"
        ),
        3
    );
}

/// status() keeps its query planned for the backend's life: one connection sees it follow the
/// extension dropped and created again, and reads it wherever SQL takes a set, a scrollable
/// cursor included, whose backward fetches need a result set that can be read backwards once it
/// has spilled to disk.
#[test]
fn kept_plans_follow_the_extension_within_one_backend() {
    let db = TestDb::new("status_kept");
    let mut client = db.connect();
    // register() and register_repeatable() keep the plans of their lookups; status() its query.
    let registrations = [
        "SELECT migrate.register('1', 'one', 'CREATE TABLE one ()')",
        "SELECT migrate.register('1', 'one', 'CREATE TABLE one ()')",
        "SELECT migrate.register_repeatable('views', 'SELECT 1')",
        "SELECT migrate.register_repeatable('views', 'SELECT 1')",
    ];
    assert_eq!(
        text_rows(&mut client, &registrations),
        ["registered", "unchanged", "registered", "unchanged"]
    );
    assert_eq!(up(&mut client).unwrap(), 2);
    assert_eq!(states(&mut client), [("1".into(), "applied".into())]);

    client
        .batch_execute("DROP EXTENSION migrations; DROP TABLE one; CREATE EXTENSION migrations")
        .unwrap();
    assert_eq!(
        text_rows(&mut client, &registrations[2..]),
        ["registered", "unchanged"]
    );
    client
        .batch_execute(
            "DROP EXTENSION migrations; CREATE EXTENSION migrations;
             SELECT migrate.register(v::text, 'step', 'SELECT 1') FROM generate_series(2, 2001) v",
        )
        .unwrap();
    let versions: Vec<String> = (2..=2001).map(|v| v.to_string()).collect();
    let listed = states(&mut client);
    assert!(listed.iter().all(|(_, state)| state == "pending"));
    assert_eq!(
        listed.into_iter().map(|(v, _)| v).collect::<Vec<_>>(),
        versions
    );
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT (s).version FROM (SELECT migrate.status('default') AS s) f LIMIT 2"]
        ),
        ["2", "3"]
    );

    let mut transaction = client.transaction().unwrap();
    transaction
        .batch_execute(
            "SET LOCAL work_mem = '64kB';
             DECLARE c SCROLL CURSOR FOR SELECT version FROM migrate.status()",
        )
        .unwrap();
    let mut fetch = |direction: &str| -> Vec<String> {
        let rows = transaction.query(&format!("FETCH {direction} c"), &[]);
        rows.unwrap().iter().map(|row| row.get(0)).collect()
    };
    assert_eq!(fetch("ALL"), versions);
    let backwards: Vec<String> = versions.iter().rev().cloned().collect();
    assert_eq!(fetch("BACKWARD ALL"), backwards);
}

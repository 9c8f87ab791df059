//! pg_dump and restore keep every body, every history row, and status() (T24); a database at
//! the previous release updates in place, and its dumps restore onto the current one.

use migrations_tests::*;

fn run(program: &str, args: &[&str]) {
    run_client_program(&pg_bin(), &Server::shared(), program, args);
}

/// Dumps database `source` in the custom and the plain format and restores each into a new
/// database, `{prefix}_custom` and `{prefix}_plain`.
fn dump_and_restore(source: &str, prefix: &str) -> [TestDb; 2] {
    let dir = std::env::temp_dir().join(format!("migrations-dump-{source}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let custom = dir.join("dump.custom");
    let plain = dir.join("dump.sql");
    run("pg_dump", &["-Fc", "-f", custom.to_str().unwrap(), source]);
    run("pg_dump", &["-Fp", "-f", plain.to_str().unwrap(), source]);

    let custom_restore = TestDb::empty(&format!("{prefix}_custom"));
    run(
        "pg_restore",
        &[
            "--exit-on-error",
            "-d",
            &custom_restore.name,
            custom.to_str().unwrap(),
        ],
    );
    let plain_restore = TestDb::empty(&format!("{prefix}_plain"));
    run(
        "psql",
        &[
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &plain_restore.name,
            "-f",
            plain.to_str().unwrap(),
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    [custom_restore, plain_restore]
}

#[test]
fn dump_and_restore_keep_bodies_history_and_status() {
    let source = TestDb::new("dump_source");
    let mut client = source.connect();
    for i in 1..=5 {
        register(
            &mut client,
            &format!("{i}"),
            &format!("step {i}"),
            &format!("CREATE TABLE d{i} (id int);\nINSERT INTO d{i} VALUES ({i});"),
            Some(&format!("DROP TABLE d{i}")),
        );
    }
    client
        .query_one(
            "SELECT migrate.register('1', 'other', 'SELECT 1', NULL, 'other')",
            &[],
        )
        .unwrap();
    assert_eq!(call(&mut client, "SELECT migrate.up('3')"), 3);
    assert_eq!(call(&mut client, "SELECT migrate.down()"), 1);
    assert_eq!(call(&mut client, "SELECT migrate.up('3')"), 1);
    // A project that fans out over two tenant schemas, one migration behind in the second.
    client
        .batch_execute(
            "CREATE SCHEMA dump_t1; CREATE SCHEMA dump_t2;
             SELECT migrate.set_tenants(ARRAY['dump_t1', 'dump_t2'], canary => 1, project => 'tenanted');
             SELECT migrate.register('1', 'a', 'CREATE TABLE a (id int)', NULL, 'tenanted');
             SELECT migrate.up(project => 'tenanted');
             SELECT migrate.register('2', 'b', 'CREATE TABLE b (id int)', NULL, 'tenanted');
             CREATE TABLE dump_t2.b ();",
        )
        .unwrap();
    assert!(
        client
            .execute("CALL migrate.apply(project => 'tenanted')", &[])
            .is_err()
    );
    let tenanted = [
        "SELECT s::text FROM migrate.status('tenanted') s",
        "SELECT t::text FROM migrate.tenants('tenanted') t",
        "SELECT h::text FROM migrate.history('tenanted') h",
    ];
    let tenanted_before = text_rows(&mut client, &tenanted);
    assert_eq!(tenanted_before.len(), 4 + 2 + 6);
    let before = snapshot(&mut client);
    assert!(before.len() > 20);
    // The snapshots of the catalog, and the hashes status() shows.
    let catalogs = [
        "SELECT k::text FROM migrate.snapshots k ORDER BY k.id",
        "SELECT s::text FROM migrate.status() s",
    ];
    let catalogs_before = text_rows(&mut client, &catalogs);
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM migrate.snapshots"),
        3,
        "one after each call that ran migrations of a project of its own"
    );
    let last_event = count(&mut client, "SELECT max(id) FROM migrate.history()");

    // Also the books alone, restored into a database where the extension is already installed.
    let data_only = TestDb::new("restored_data_only");
    let file = std::env::temp_dir().join(format!("migrations-data-only-{}", std::process::id()));
    let file = file.to_str().unwrap();
    run(
        "pg_dump",
        &[
            "-Fc",
            "--data-only",
            "--schema=migrate",
            "-f",
            file,
            "dump_source",
        ],
    );
    run(
        "pg_restore",
        &["--exit-on-error", "-d", &data_only.name, file],
    );
    std::fs::remove_file(file).unwrap();
    let [custom, plain] = dump_and_restore("dump_source", "restored");

    for restored in [custom, plain, data_only] {
        let mut client = restored.connect();
        assert_eq!(
            snapshot(&mut client),
            before,
            "{} differs from the source",
            restored.name
        );
        assert_eq!(
            text_rows(&mut client, &tenanted),
            tenanted_before,
            "{}: the tenants' histories",
            restored.name
        );
        assert_eq!(
            text_rows(&mut client, &catalogs),
            catalogs_before,
            "{}: the snapshots",
            restored.name
        );
        // The restored database carries on: the rest applies once, event ids continue.
        assert_eq!(up(&mut client).unwrap(), 2);
        assert_eq!(count(&mut client, "SELECT count(*) FROM d5"), 1);
        assert_eq!(up(&mut client).unwrap(), 0);
        assert_eq!(
            count(
                &mut client,
                "SELECT min(id) FROM migrate.history() WHERE event = 'up' AND version = '4'"
            ),
            last_event + 1,
            "the history's sequence was restored"
        );
    }
}

/// The earlier releases, installed from their frozen scripts (see `scripts/test.sh`).
const PREVIOUS: [&str; 7] = [
    "0.1.0", "0.2.0", "0.2.1", "0.2.2", "0.3.0", "0.4.0", "0.5.0",
];

/// A database with an earlier release and some state: migrations 1-5 registered with logged
/// bodies, 1-3 applied, 4 reverted once.
fn at_previous_release(name: &str, release: &str) -> (TestDb, Client) {
    let db = TestDb::empty(name);
    let mut client = db.connect();
    client
        .batch_execute(&format!("CREATE EXTENSION migrations VERSION '{release}'"))
        .unwrap();
    create_applied_log(&mut client);
    for i in 1..=5 {
        let version = i.to_string();
        let up = logged_body(&version, &format!("CREATE TABLE u{i} (id int)"));
        let down = format!("DROP TABLE u{i}; DELETE FROM applied_log WHERE version = '{i}'");
        register(&mut client, &version, "step", &up, Some(&down));
    }
    assert_eq!(call(&mut client, "SELECT migrate.up('4')"), 4);
    assert_eq!(call(&mut client, "SELECT migrate.down()"), 1);
    (db, client)
}

fn extension_version(client: &mut Client) -> String {
    text_rows(
        client,
        &["SELECT extversion FROM pg_extension WHERE extname = 'migrations'"],
    )
    .remove(0)
}

/// The extension's objects with their definitions, privileges and comments: the same after an
/// update as after a fresh install when the update script is complete.
fn members(client: &mut Client) -> Vec<String> {
    text_rows(
        client,
        &[
            "SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
              WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'migrations')
              ORDER BY 1",
            "SELECT p.oid::regprocedure::text || ' ' || pg_get_functiondef(p.oid) || ' ' || coalesce(p.proacl::text, '-')
                    || ' ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
               FROM pg_proc p WHERE p.pronamespace = 'migrate'::regnamespace ORDER BY 1",
            "SELECT c.relname || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '-')
               FROM pg_class c WHERE c.relnamespace = 'migrate'::regnamespace ORDER BY 1",
            "SELECT a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                    || ' ' || a.attnotnull
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
              WHERE c.relnamespace = 'migrate'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY 1",
            "SELECT coalesce(nspacl::text, '-') FROM pg_namespace WHERE nspname = 'migrate'",
        ],
    )
}

#[test]
fn t24_every_earlier_release_updates_in_place_during_a_run() {
    let mut fresh = TestDb::new("t24_fresh").connect();
    let current = extension_version(&mut fresh);
    assert_eq!(
        text_rows(
            &mut fresh,
            &[&format!(
                "SELECT source || ' > ' || target FROM pg_extension_update_paths('migrations')
                  WHERE path IS NOT NULL AND (target = '{current}' OR source = '{current}') ORDER BY 1"
            )]
        ),
        PREVIOUS.map(|release| format!("{release} > {current}")),
        "a way up from every earlier release, no way down"
    );
    for (index, release) in PREVIOUS.iter().enumerate() {
        update_during_a_run(
            &format!("t24_update_{index}"),
            release,
            &current,
            &mut fresh,
        );
    }
}

/// Updates a database at `release` to `current` while a runner of `release` is in the middle of
/// a run, and compares the result with the `fresh` install.
fn update_during_a_run(name: &str, release: &str, current: &str, fresh: &mut Client) {
    let (db, mut client) = at_previous_release(name, release);
    assert_eq!(extension_version(&mut client), release);
    // Migration 6 parks its runner on an advisory lock this test holds.
    register(
        &mut client,
        "6",
        "parked",
        &logged_body(
            "6",
            "SELECT pg_advisory_lock_shared(4646); SELECT pg_advisory_unlock_shared(4646)",
        ),
        None,
    );
    let registry_before = text_rows(&mut client, &[REGISTRY]);
    let history_before = text_rows(&mut client, &[HISTORY]);

    // A runner of the previous release is in the middle of a run when the update comes.
    let holder = hold_advisory_lock(&db, 4646);
    let (_, running) = start_blocked(&db, up);
    let mut observer = db.connect();
    let mut updater = db.connect();
    let updater_pid = backend_pid(&mut updater);
    let updating =
        std::thread::spawn(move || updater.batch_execute("ALTER EXTENSION migrations UPDATE"));
    // The update finishes while the run is parked (or waits for it): either way it meets it.
    wait_for("the update to finish or to wait", || {
        updating.is_finished() || waiting_for_lock(&mut observer, updater_pid)
    });
    drop(holder);
    updating
        .join()
        .unwrap()
        .expect("ALTER EXTENSION migrations UPDATE");
    assert_eq!(
        running
            .join()
            .unwrap()
            .expect("the run of the previous release"),
        3
    );

    assert_eq!(extension_version(&mut client), current);
    // The registry is unchanged, and the history only grew by the run's events.
    assert_eq!(text_rows(&mut client, &[REGISTRY]), registry_before);
    assert!(later_columns_hold_defaults(&mut client));
    let history_after = text_rows(&mut client, &[HISTORY]);
    assert_eq!(history_after[..history_before.len()], history_before[..]);
    // Three up events, and from 0.5.0's tables on the snapshot stored after them.
    let snapshot = usize::from(release >= "0.5.0");
    assert_eq!(history_after.len(), history_before.len() + 3 + snapshot);
    assert!(
        text_rows(&mut client, &["SELECT problem FROM migrate.verify()"]).is_empty(),
        "the new call works on the old state"
    );
    assert_eq!(
        members(&mut client),
        members(fresh),
        "updated from {release}"
    );
    assert_invariant(&mut client, 0);
}

#[test]
fn t24_a_dump_of_an_earlier_release_restores_onto_the_current_one() {
    for (index, release) in PREVIOUS.iter().enumerate() {
        dump_of_release_restores(index, release);
    }
}

fn dump_of_release_restores(index: usize, release: &str) {
    let source = format!("t24_old_dump_{index}");
    let (_db, mut client) = at_previous_release(&source, release);
    let before = snapshot(&mut client);
    for restored in dump_and_restore(&source, &format!("t24_old_restored_{index}")) {
        let mut client = restored.connect();
        assert_ne!(extension_version(&mut client), release);
        assert_eq!(snapshot(&mut client), before, "{}", restored.name);
        assert!(later_columns_hold_defaults(&mut client));
        assert_eq!(
            text_rows(
                &mut client,
                &["SELECT version || ' ' || problem FROM migrate.verify()"]
            ),
            ["4 pending", "5 pending"]
        );
        assert_invariant(&mut client, 2);
        assert!(text_rows(&mut client, &["SELECT problem FROM migrate.verify()"]).is_empty());
    }
}

#[test]
fn verify_names_whatever_differs_from_the_registered_migrations() {
    let db = TestDb::new("verify_tampered");
    let mut client = db.connect();
    for i in 1..=4 {
        register(
            &mut client,
            &i.to_string(),
            "step",
            &format!("CREATE TABLE v{i} ()"),
            None,
        );
    }
    assert_eq!(call(&mut client, "SELECT migrate.up('3')"), 3);
    register(&mut client, "5", "broken", "SELECT 1/0", None);
    assert!(client.batch_execute("CALL migrate.apply()").is_err());
    let problems = |client: &mut Client| {
        text_rows(
            client,
            &["SELECT version || ': ' || problem || ': ' || detail FROM migrate.verify()"],
        )
    };
    assert_eq!(problems(&mut client), ["5: failed: not applied yet"]);

    // What only a superuser editing the tables by hand can do.
    client
        .batch_execute(
            "UPDATE migrate.migrations SET up_sql = up_sql || ' ' WHERE version = '1';
             UPDATE migrate.applied SET checksum = 'x' WHERE version = '2';
             DELETE FROM migrate.applied WHERE version = '3';",
        )
        .unwrap();
    let found = problems(&mut client);
    assert_eq!(found.len(), 5, "{found:?}");
    for expected in [
        "1: body changed",
        "2: checksum mismatch: applied with checksum x",
        "3: history mismatch: not applied, but the history shows it applied",
        "3: pending",
        "5: failed",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{expected} in {found:?}"
        );
    }
}

/// The updates to 0.3.0 and 0.4.0 replace functions whose signatures change; a role granted
/// them before keeps them after.
#[test]
fn t24_grants_on_replaced_functions_survive_the_update() {
    let (db, mut client) = at_previous_release("t24_grants", "0.2.2");
    client
        .batch_execute(
            "DROP ROLE IF EXISTS t24_deployer; CREATE ROLE t24_deployer;
             GRANT USAGE ON SCHEMA migrate TO t24_deployer;
             GRANT EXECUTE ON FUNCTION migrate.register(text, text, text, text, text),
                 migrate.plan(text, text), migrate.history(text), migrate.status(text),
                 migrate.verify(text) TO t24_deployer WITH GRANT OPTION;",
        )
        .unwrap();
    client
        .batch_execute("ALTER EXTENSION migrations UPDATE")
        .unwrap();
    let granted = |client: &mut Client, function: &str| -> bool {
        client
            .query_one(
                "SELECT has_function_privilege('t24_deployer', $1, 'EXECUTE')",
                &[&function],
            )
            .unwrap()
            .get(0)
    };
    for function in [
        "migrate.register(text, text, text, text, text, boolean)",
        "migrate.plan(text, text)",
        "migrate.history(text)",
        "migrate.status(text)",
        "migrate.verify(text)",
    ] {
        assert!(granted(&mut client, function), "{function}");
    }
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.pronamespace = 'migrate'::regnamespace AND a.is_grantable
                AND a.grantee = 't24_deployer'::regrole"
        ),
        5,
        "with the grant option"
    );
    assert!(!granted(&mut client, "migrate.plan_down(integer, text)"));
    drop(db);
}

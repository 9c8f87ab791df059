//! Nobody gains rights through a migration; nothing is granted to PUBLIC; the documented roles
//! can do what the README says and no more; a hostile search_path changes nothing.

use migrations_tests::*;

fn roles_recipe() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/roles.sql"
    ))
    .unwrap()
}

/// Roles are cluster-wide: each test uses its own names.
fn create_login(admin: &mut Client, role: &str) {
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN"
        ))
        .unwrap();
}

#[test]
fn a_registrant_gains_nothing_when_a_superuser_applies() {
    let db = TestDb::new("escalation");
    let mut admin = db.connect();
    create_login(&mut admin, "mallory");
    admin
        .batch_execute(
            "GRANT USAGE ON SCHEMA migrate TO mallory;
             GRANT EXECUTE ON FUNCTION migrate.register(text, text, text, text, text, boolean) TO mallory;
             GRANT CREATE ON SCHEMA public TO mallory;",
        )
        .unwrap();
    let mut mallory = db.connect_as("mallory");
    let attacks = [
        ("ALTER ROLE mallory SUPERUSER", "42501"),
        ("RESET ROLE; CREATE ROLE mallory_evil SUPERUSER", "42501"),
        (
            "SET ROLE postgres; CREATE ROLE mallory_evil SUPERUSER",
            "42501",
        ),
        (
            "SELECT set_config('role', 'postgres', true); CREATE ROLE mallory_evil SUPERUSER",
            "42501",
        ),
        (
            "SET SESSION AUTHORIZATION postgres; CREATE ROLE mallory_evil SUPERUSER",
            "42501",
        ),
        ("CREATE ROLE mallory_evil SUPERUSER", "42501"),
        ("COPY (SELECT 1) TO PROGRAM 'true'", "42501"),
        // A deferred trigger fires when the constraints are checked: at commit, that would be
        // as the superuser who applies, so the checks run at the end of the body, as mallory.
        (
            "CREATE TABLE trap (id int);
             CREATE FUNCTION trap() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; RETURN NULL; END $$;
             CREATE CONSTRAINT TRIGGER trap AFTER INSERT ON trap DEFERRABLE INITIALLY DEFERRED
                 FOR EACH ROW EXECUTE FUNCTION trap();
             INSERT INTO trap VALUES (1);",
            "42501",
        ),
    ];
    for ((body, sqlstate), call) in attacks.iter().flat_map(|attack| {
        ["SELECT migrate.up()", "CALL migrate.apply()"].map(|call| (attack, call))
    }) {
        register(&mut mallory, "1", "attack", body, None);
        // The superuser applies it: the body runs as mallory and fails.
        expect_sqlstate(admin.batch_execute(call), sqlstate);
        figure("privilege checks passed", 1);
        let superuser: bool = admin
            .query_one(
                "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(!superuser, "{body}");
        assert_eq!(
            count(
                &mut admin,
                "SELECT count(*) FROM pg_roles WHERE rolname = 'mallory_evil'"
            ),
            0,
            "{body}"
        );
        assert_eq!(
            count(
                &mut admin,
                "SELECT count(*) FROM migrate.status() WHERE state = 'applied'"
            ),
            0
        );
    }
    // A harmless body by mallory runs as mallory: the table is mallory's.
    register(
        &mut mallory,
        "1",
        "table",
        "CREATE TABLE mallory_table ()",
        None,
    );
    assert_eq!(up(&mut admin).unwrap(), 1);
    let owner: String = admin
        .query_one(
            "SELECT tableowner::text FROM pg_tables WHERE tablename = 'mallory_table'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(owner, "mallory");
    let registered_by: String = admin
        .query_one("SELECT registered_by FROM migrate.migrations", &[])
        .unwrap()
        .get(0);
    let applied_by: String = admin
        .query_one("SELECT applied_by FROM migrate.status()", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        (registered_by.as_str(), applied_by.as_str()),
        ("mallory", "postgres")
    );
    assert_invariant(&mut admin, 0);
}

#[test]
fn nothing_is_granted_to_public() {
    let db = TestDb::new("no_public");
    let mut client = db.connect();
    let public_grants = count(
        &mut client,
        "SELECT count(*) FROM (
             SELECT p.proacl AS acl, true AS null_is_public
               FROM pg_proc p WHERE p.pronamespace = 'migrate'::regnamespace
             UNION ALL SELECT c.relacl, false FROM pg_class c WHERE c.relnamespace = 'migrate'::regnamespace
             UNION ALL SELECT n.nspacl, false FROM pg_namespace n WHERE n.nspname = 'migrate') objects
         -- a function's NULL ACL means the default: EXECUTE for PUBLIC
         WHERE (objects.acl IS NULL AND objects.null_is_public)
            OR EXISTS (SELECT FROM aclexplode(objects.acl) a WHERE a.grantee = 0)",
    );
    assert_eq!(public_grants, 0);
}

#[test]
fn documented_roles_can_do_what_the_readme_says_and_no_more() {
    let db = TestDb::new("role_matrix");
    let mut admin = db.connect();
    admin
        .batch_execute("DROP ROLE IF EXISTS rm_nobody, rm_reader, rm_deployer, rm_owner, migrate_deployer, migrate_reader")
        .unwrap();
    admin.batch_execute(&roles_recipe()).unwrap();
    for role in ["rm_nobody", "rm_reader", "rm_deployer", "rm_owner"] {
        create_login(&mut admin, role);
    }
    // The database's owner, not a superuser: owning the database gives no rights on the
    // extension's objects.
    admin
        .batch_execute("ALTER DATABASE role_matrix OWNER TO rm_owner")
        .unwrap();
    admin
        .batch_execute(
            "GRANT migrate_reader TO rm_reader; GRANT migrate_deployer TO rm_deployer;
             CREATE TABLE schema_migrations (version text); GRANT SELECT ON schema_migrations TO rm_deployer;
             GRANT CREATE ON SCHEMA public TO rm_deployer;
             GRANT CREATE ON DATABASE role_matrix TO rm_deployer;
             CREATE SCHEMA matrix_app AUTHORIZATION rm_deployer;
             SELECT migrate.register('1', 'one', 'SELECT 1', project => 'matrix-snapshot');
             SELECT migrate.up(project => 'matrix-snapshot');",
        )
        .unwrap();

    let calls = [
        ("status", "SELECT count(*) FROM migrate.status()"),
        ("history", "SELECT count(*) FROM migrate.history()"),
        ("verify", "SELECT count(*) FROM migrate.verify()"),
        ("plan", "SELECT count(*) FROM migrate.plan()"),
        ("plan_down", "SELECT count(*) FROM migrate.plan_down(0)"),
        ("rehearse", "SELECT count(*) FROM migrate.rehearse()"),
        ("snapshot", "SELECT migrate.snapshot()"),
        (
            "snapshot_changes",
            "SELECT count(*) FROM migrate.snapshot_changes('{}', '{}')",
        ),
        (
            "drift",
            "SELECT count(*) FROM migrate.drift('matrix-snapshot')",
        ),
        (
            "reference_snapshot",
            "SELECT count(*) FROM migrate.reference_snapshot(NULL)",
        ),
        (
            "register",
            "SELECT migrate.register('1', 'one', 'CREATE TABLE matrix_one ()', 'DROP TABLE matrix_one')",
        ),
        (
            "register_script",
            "SELECT migrate.register_script('2', 'two', '-- migrate:up\nCREATE TABLE matrix_two ();\n-- migrate:down\nDROP TABLE matrix_two;')",
        ),
        (
            "register_files",
            "SELECT migrate.register_files(ARRAY['3_three.up.sql', '3_three.down.sql'], ARRAY['CREATE TABLE matrix_three ()', 'DROP TABLE matrix_three'])",
        ),
        ("files_unchanged", "SELECT migrate.files_unchanged('')"),
        (
            "register_repeatable",
            "SELECT migrate.register_repeatable('matrix view', 'CREATE OR REPLACE VIEW matrix_view AS SELECT 1')",
        ),
        ("adopt", "SELECT migrate.adopt('dbmate')"),
        (
            "tenants",
            "SELECT count(*) FROM migrate.tenants('matrix-tenants')",
        ),
        (
            "set_tenants",
            "SELECT migrate.set_tenants(ARRAY['public'], project => 'matrix-tenants')",
        ),
        (
            "unset_tenants",
            "SELECT migrate.unset_tenants('matrix-tenants')",
        ),
        ("import_dir", "SELECT migrate.import_dir('/')"),
        (
            "diff",
            "SELECT count(*) FROM migrate.diff('CREATE SCHEMA matrix_app; CREATE TABLE matrix_app.t ()', ARRAY['matrix_app'])",
        ),
        (
            "declare",
            "SELECT migrate.declare('1', 'one', 'CREATE SCHEMA matrix_app; CREATE TABLE matrix_app.t ()', 'matrix-declare', ARRAY['matrix_app'])",
        ),
        ("up", "SELECT migrate.up()"),
        ("apply", "CALL migrate.apply()"),
        ("down", "SELECT migrate.down(0)"),
        ("revert", "CALL migrate.revert(0)"),
        ("down_to", "SELECT migrate.down_to('1')"),
        ("baseline", "SELECT migrate.baseline('1')"),
        (
            "select migrations",
            "SELECT count(*) FROM migrate.migrations",
        ),
        (
            "insert applied",
            "INSERT INTO migrate.applied VALUES ('default', 'x', 1, now(), 'me', 0, 'c')",
        ),
        ("update events", "UPDATE migrate.events SET role = 'me'"),
        ("select snapshots", "SELECT count(*) FROM migrate.snapshots"),
        ("delete migrations", "DELETE FROM migrate.migrations"),
        ("nextval", "SELECT nextval('migrate.events_id_seq')"),
        (
            "select repeatables",
            "SELECT count(*) FROM migrate.repeatables",
        ),
        (
            "insert repeatable events",
            "INSERT INTO migrate.repeatable_events (project, name, event, role) VALUES ('default', 'x', 'reapply', 'me')",
        ),
        (
            "insert tenant sets",
            "INSERT INTO migrate.tenant_sets (project, schemas, configured_by) VALUES ('x', '{public}', 'me')",
        ),
        ("truncate events", "TRUNCATE migrate.events CASCADE"),
        ("create in schema", "CREATE TABLE migrate.intruder ()"),
        (
            "create function in schema",
            "CREATE FUNCTION migrate.status(integer) RETURNS int LANGUAGE sql AS 'SELECT 1'",
        ),
        (
            "alter function",
            "ALTER FUNCTION migrate.up(text, text) RESET ALL",
        ),
        (
            "alter table",
            "ALTER TABLE migrate.applied DROP CONSTRAINT applied_pkey",
        ),
        ("drop extension", "DROP EXTENSION migrations"),
        ("drop schema", "DROP SCHEMA migrate CASCADE"),
    ];
    let allowed: [(&str, &[&str]); 4] = [
        ("rm_nobody", &[]),
        ("rm_owner", &[]),
        (
            "rm_reader",
            &[
                "status",
                "history",
                "verify",
                "plan",
                "plan_down",
                "snapshot",
                "snapshot_changes",
                "drift",
                "tenants",
            ],
        ),
        (
            "rm_deployer",
            &[
                "status",
                "history",
                "verify",
                "plan",
                "plan_down",
                "snapshot",
                "snapshot_changes",
                "drift",
                "rehearse",
                "register",
                "register_script",
                "register_files",
                "files_unchanged",
                "register_repeatable",
                "adopt",
                "tenants",
                "set_tenants",
                "unset_tenants",
                "diff",
                "declare",
                "up",
                "apply",
                "down",
                "revert",
                "down_to",
                "baseline",
            ],
        ),
    ];
    for (role, allowed) in allowed {
        let mut client = db.connect_as(role);
        for (call, sql) in calls {
            let result = client.batch_execute(sql);
            if allowed.contains(&call) {
                result.unwrap_or_else(|e| panic!("{role} may {call}: {e:?}"));
            } else {
                let error = server_error(result);
                assert_eq!(
                    error.code().code(),
                    "42501",
                    "{role} may not {call}: {error:?}"
                );
            }
            figure("privilege checks passed", 1);
        }
    }
    // The deployer's work went through the functions only.
    assert_eq!(
        states(&mut admin),
        vec![
            ("1".to_owned(), "applied".to_owned()),
            ("2".to_owned(), "pending".to_owned()),
            ("3".to_owned(), "pending".to_owned()),
            // the one declare() registered
            ("1".to_owned(), "pending".to_owned()),
            // the setup's, whose snapshot drift() compares with
            ("1".to_owned(), "applied".to_owned())
        ]
    );
    assert_eq!(
        count(
            &mut admin,
            "SELECT count(*) FROM migrate.history() WHERE role = 'me'"
        ),
        0
    );
    // 2 and 3 run as the deployer that registered them.
    assert_invariant(&mut admin, 2);
}

#[test]
fn hostile_search_paths_and_body_settings_change_nothing() {
    let db = TestDb::new("search_path");
    let mut client = db.connect();
    // Objects that would capture unqualified names: they write to a canary when called.
    client
        .batch_execute(
            "CREATE SCHEMA hostile;
             CREATE TABLE public.canary (what text);
             CREATE FUNCTION hostile.now() RETURNS timestamptz LANGUAGE sql
                 AS $$ INSERT INTO public.canary VALUES ('now'); SELECT pg_catalog.now() $$;
             CREATE FUNCTION hostile.clock_timestamp() RETURNS timestamptz LANGUAGE sql
                 AS $$ INSERT INTO public.canary VALUES ('clock_timestamp'); SELECT pg_catalog.now() $$;
             CREATE FUNCTION hostile.text_eq(text, text) RETURNS boolean LANGUAGE sql
                 AS $$ INSERT INTO public.canary VALUES ('='); SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
             CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.text_eq);
             CREATE FUNCTION hostile.text_eq_bytea(bytea, bytea) RETURNS boolean LANGUAGE sql
                 AS $$ INSERT INTO public.canary VALUES ('bytea ='); SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
             CREATE OPERATOR hostile.= (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = hostile.text_eq_bytea);
             CREATE TEMP TABLE migrations (x int);
             CREATE TEMP TABLE events (x int);
             SET search_path = hostile, public, pg_catalog;",
        )
        .unwrap();
    // Bodies that change settings: none of it may reach bookkeeping or the next body.
    register(
        &mut client,
        "1",
        "sets things",
        "SET search_path = hostile, pg_catalog; SET LOCAL lock_timeout = '1ms'; SET statement_timeout = '1ms';
         SELECT set_config('work_mem', '99MB', false)",
        Some("SET LOCAL search_path = hostile, pg_catalog"),
    );
    register(
        &mut client,
        "2",
        "observes",
        "CREATE TABLE public.observed AS
             SELECT current_setting('search_path') AS search_path, current_setting('lock_timeout') AS lock_timeout,
                    current_setting('statement_timeout') AS statement_timeout, current_setting('work_mem') AS work_mem",
        Some("DROP TABLE public.observed"),
    );
    assert_eq!(up(&mut client).unwrap(), 2);
    let observed = client
        .query_one("SELECT * FROM public.observed", &[])
        .unwrap();
    assert_eq!(
        observed.get::<_, String>(0),
        "hostile, public, pg_catalog",
        "the caller's search_path"
    );
    // Bodies run under migrate.lock_timeout (5s by default), not body 1's 1ms.
    assert_eq!(observed.get::<_, String>(1), "5s");
    assert_eq!(observed.get::<_, String>(2), "0");
    assert_eq!(observed.get::<_, String>(3), "4MB");
    client
        .batch_execute("SELECT * FROM migrate.status(); SELECT * FROM migrate.history()")
        .unwrap();
    assert_eq!(call(&mut client, "SELECT migrate.down(2)"), 2);
    let setting: String = client.query_one("SHOW search_path", &[]).unwrap().get(0);
    assert_eq!(
        setting, "hostile, public, pg_catalog",
        "the session's settings are untouched"
    );
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM public.canary"),
        0,
        "no hostile object was called"
    );
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM pg_temp.migrations"),
        0
    );
    // From a session with a plain search path: the hostile one would call the canary objects.
    assert_invariant(&mut db.connect(), 2);
}

#[test]
fn t23_install_needs_a_superuser_and_captures_nothing_from_public() {
    let db = TestDb::empty("t23_install");
    let mut admin = db.connect();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS t23_creator; CREATE ROLE t23_creator LOGIN;
             GRANT CREATE ON DATABASE t23_install TO t23_creator;
             GRANT CREATE ON SCHEMA public TO t23_creator;",
        )
        .unwrap();
    let mut creator = db.connect_as("t23_creator");
    // Not trusted: CREATE on the database is not enough.
    expect_sqlstate(
        creator.batch_execute("CREATE EXTENSION migrations"),
        "42501",
    );
    // What a role that can write to public leaves for the install script and the functions to
    // capture, had they used one unqualified name: each writes to the canary.
    creator
        .batch_execute(
            "CREATE TABLE public.canary (what text); GRANT INSERT ON public.canary TO PUBLIC;
             CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql
                 AS $$ INSERT INTO public.canary VALUES ('now'); SELECT pg_catalog.now() $$;
             CREATE FUNCTION public.sha256(bytea) RETURNS bytea LANGUAGE sql
                 AS $$ INSERT INTO public.canary VALUES ('sha256'); SELECT pg_catalog.sha256($1) $$;
             CREATE FUNCTION public.encode(bytea, text) RETURNS text LANGUAGE sql
                 AS $$ INSERT INTO public.canary VALUES ('encode'); SELECT pg_catalog.encode($1, $2) $$;
             CREATE FUNCTION public.text_eq(text, text) RETURNS boolean LANGUAGE sql
                 AS $$ INSERT INTO public.canary VALUES ('='); SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
             CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.text_eq);
             CREATE TABLE public.migrations (x int); CREATE TABLE public.events (x int);",
        )
        .unwrap();
    admin
        .batch_execute(
            "SET search_path = public, pg_catalog; CREATE EXTENSION migrations;
             SELECT migrate.register('1', 'one', 'CREATE TABLE one ()');
             SELECT migrate.up(); SELECT * FROM migrate.status(); SELECT * FROM migrate.verify();
             SELECT * FROM migrate.history(); SELECT migrate.down_to('0') WHERE false;",
        )
        .unwrap();
    assert_eq!(
        count(&mut admin, "SELECT count(*) FROM public.canary"),
        0,
        "no object in public was used"
    );
    // Every object of the extension belongs to a superuser.
    let owners = text_rows(
        &mut admin,
        &["SELECT DISTINCT r.rolname || ' ' || r.rolsuper
             FROM pg_depend d
             JOIN LATERAL (SELECT proowner FROM pg_proc WHERE d.classid = 'pg_proc'::regclass AND oid = d.objid
                           UNION ALL SELECT relowner FROM pg_class WHERE d.classid = 'pg_class'::regclass AND oid = d.objid
                           UNION ALL SELECT nspowner FROM pg_namespace WHERE d.classid = 'pg_namespace'::regclass AND oid = d.objid)
                  o(owner) ON true
             JOIN pg_roles r ON r.oid = o.owner
            WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
              AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'migrations')"],
    );
    assert_eq!(owners, ["postgres true"]);
}

/// `pgspot` over the SQL the extension runs: the script `cargo pgrx schema` generates
/// (`MIGRATIONS_TEST_SCHEMA`), status()'s query, the frozen earlier releases, and each update
/// script read as the continuation of the release it updates (`--append`), so that replacing
/// one of that release's own functions is known to be safe.
#[test]
fn pgspot_finds_nothing_unsafe_in_the_extension_sql() {
    let schema = std::env::var("MIGRATIONS_TEST_SCHEMA")
        .expect("MIGRATIONS_TEST_SCHEMA is not set: run the tests through scripts/test.sh");
    let releases = repository().join("sql/releases");
    let mut checks = vec![vec![std::path::PathBuf::from(schema)]];
    for dir in [repository().join("sql"), releases.clone()] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(versions) = name
                .strip_prefix("migrations--")
                .and_then(|rest| rest.strip_suffix(".sql"))
            else {
                continue;
            };
            match versions.split_once("--") {
                Some((from, _)) => {
                    checks.push(vec![releases.join(format!("migrations--{from}.sql")), path])
                }
                None => checks.push(vec![path]),
            }
        }
    }
    // status()'s query, which the library prepares, read as a statement of its own.
    checks.push(vec![repository().join("sql/status.sql")]);
    assert!(checks.len() >= 6, "{checks:?}");
    for files in checks {
        let output = std::process::Command::new("python3")
            .args(["-m", "pgspot", "--append"])
            .args(&files)
            .output()
            .expect("python3 -m pgspot");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && report.contains("Errors: 0 Warnings: 0 Unknown: 0"),
            "pgspot {files:?}:\n{report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        figure("pgspot files checked, no finding", 1);
    }
}

/// A role that may register migrations and create objects in public, and the function it plants:
/// run by a superuser, `public.pw()` makes the role a superuser too.
fn hostile_registrant(db: &TestDb, admin: &mut Client, role: &str) -> Client {
    create_login(admin, role);
    admin
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA migrate TO {role};
             GRANT EXECUTE ON FUNCTION migrate.register(text, text, text, text, text, boolean) TO {role};
             GRANT CREATE ON SCHEMA public TO {role};"
        ))
        .unwrap();
    let mut registrant = db.connect_as(role);
    registrant
        .batch_execute(&format!(
            "CREATE FUNCTION public.pw() RETURNS int LANGUAGE plpgsql AS $$
             BEGIN
                 IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                     EXECUTE 'ALTER ROLE {role} SUPERUSER';
                 END IF;
                 RETURN 1;
             END $$;"
        ))
        .unwrap();
    registrant
}

fn is_superuser(admin: &mut Client, role: &str) -> bool {
    admin
        .query_one("SELECT rolsuper FROM pg_roles WHERE rolname = $1", &[&role])
        .unwrap()
        .get(0)
}

/// The statements whose effect outlives a body are refused when a body writes them out, in
/// either body, with 0A000 and a hint, and nothing is stored.
#[test]
fn t25_session_state_statements_are_refused_at_register() {
    let db = TestDb::new("t25_register");
    let mut admin = db.connect();
    let mut mallory = hostile_registrant(&db, &mut admin, "t25_register_mallory");
    let refused = [
        (
            // The reported escalation: at commit the cursor would run pw() as the superuser.
            "DECLARE c CURSOR WITH HOLD FOR SELECT public.pw() FROM generate_series(1, 2);",
            "DECLARE CURSOR WITH HOLD",
        ),
        ("PREPARE accounts AS SELECT public.pw()", "PREPARE"),
        ("LISTEN t25", "LISTEN"),
        ("LOAD 'auto_explain'", "LOAD"),
    ];
    for (body, statement) in refused {
        for (up, down) in [(body, None), ("SELECT 1", Some(body))] {
            let error = expect_sqlstate(
                mallory.query_one(
                    "SELECT migrate.register('1', 'refused', $1, $2)",
                    &[&format!("CREATE TABLE t25_kept ();\n{up}"), &down],
                ),
                "0A000",
            );
            assert_eq!(
                error.message(),
                format!("{statement} cannot run inside a migration")
            );
            assert!(error.hint().is_some_and(
                |hint| hint.contains("outlives the body") || hint.contains("stays loaded")
            ));
            figure("privilege checks passed", 1);
        }
    }
    // Declaring a cursor is fine when the body closes it.
    register(
        &mut mallory,
        "1",
        "closed cursor",
        "DECLARE c CURSOR FOR SELECT 1; FETCH c; CLOSE c;",
        None,
    );
    assert_eq!(up(&mut admin).unwrap(), 1);
    assert!(!is_superuser(&mut admin, "t25_register_mallory"));
    assert_invariant(&mut admin, 0);
}

/// What the applying session holds that no body may add to, each as a count that is 0 in a
/// session that ran nothing else.
const SESSION_STATE: [(&str, &str); 6] = [
    (
        "cursors",
        "SELECT count(*) FROM pg_cursors WHERE name <> ''",
    ),
    (
        "prepared statements",
        "SELECT count(*) FROM pg_prepared_statements WHERE from_sql",
    ),
    (
        "temporary objects",
        "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema())
              + (SELECT count(*) FROM pg_type WHERE typnamespace = pg_my_temp_schema())
              + (SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema())",
    ),
    (
        "advisory locks",
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    ),
    (
        "LISTEN channels",
        "SELECT count(*) FROM pg_listening_channels()",
    ),
    (
        "accounts other than public.accounts",
        "SELECT count(*) FROM accounts WHERE id <> 1",
    ),
];

/// Every kind of session state a body could leave for the caller, each reached the way that gets
/// past register (dynamic SQL, a function), applied by a superuser in every lane: the migration
/// fails with the SQLSTATE given, and the superuser's session holds nothing of it afterwards.
#[test]
fn t25_a_body_leaves_nothing_in_the_session_that_applies_it() {
    const ROLE: &str = "t25_mallory";
    let db = TestDb::new("t25_leftovers");
    let mut admin = db.connect();
    admin
        .batch_execute(
            "CREATE TABLE public.accounts (id int); INSERT INTO public.accounts VALUES (1);
             GRANT SELECT ON public.accounts TO PUBLIC;",
        )
        .unwrap();
    let mut mallory = hostile_registrant(&db, &mut admin, ROLE);
    mallory
        .batch_execute(
            "CREATE FUNCTION public.open_cursor() RETURNS refcursor LANGUAGE plpgsql AS $$
             DECLARE c refcursor := 'accounts';
             BEGIN OPEN c FOR SELECT public.pw(); RETURN c; END $$;",
        )
        .unwrap();
    let attacks = [
        (
            "DO $$ BEGIN EXECUTE 'DECLARE c CURSOR WITH HOLD FOR SELECT public.pw() FROM generate_series(1, 2)'; END $$",
            "0A000",
        ),
        (
            "DO $$ BEGIN EXECUTE 'PREPARE accounts AS SELECT public.pw()'; END $$",
            "0A000",
        ),
        ("DO $$ BEGIN EXECUTE 'LISTEN t25'; END $$", "0A000"),
        ("DO $$ BEGIN EXECUTE 'LOAD ''auto_explain'''; END $$", "0A000"),
        ("DECLARE accounts CURSOR FOR SELECT public.pw()", "0A000"),
        ("SELECT public.open_cursor()", "0A000"),
        (
            "CREATE TEMP VIEW accounts AS SELECT public.pw() + 1 AS id",
            "0A000",
        ),
        (
            "CREATE TEMP TABLE accounts (id int) ON COMMIT DROP;
             CREATE FUNCTION pg_temp.escalate() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN PERFORM public.pw(); RETURN NEW; END $$;
             CREATE TRIGGER escalate BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION pg_temp.escalate()",
            "0A000",
        ),
        (
            "CREATE DOMAIN pg_temp.int4 AS pg_catalog.int4 CHECK (public.pw() = 1)",
            "0A000",
        ),
        ("SELECT pg_advisory_lock(2525)", "0A000"),
        ("SELECT pg_advisory_lock_shared(25, 26); SELECT 1 / 0", "22012"),
    ];
    let lanes = ["up", "apply", "rehearse", "down"];
    for (case, ((body, sqlstate), lane)) in attacks
        .iter()
        .flat_map(|attack| lanes.map(|lane| (attack, lane)))
        .enumerate()
    {
        // A project of its own per case: a failed migration stays pending in its project.
        let project = format!("p{case}");
        let (up_body, down_body) = match lane {
            "down" => ("SELECT 1", Some(*body)),
            _ => (*body, None),
        };
        mallory
            .query_one(
                "SELECT migrate.register('1', 'attack', $1, $2, $3)",
                &[&up_body, &down_body, &project],
            )
            .unwrap_or_else(|e| panic!("register {body}: {e:?}"));
        let context = format!("{lane}: {body}");
        match lane {
            "up" => {
                expect_sqlstate(
                    admin.query_one("SELECT migrate.up(NULL, $1)", &[&project]),
                    sqlstate,
                );
            }
            "apply" => {
                expect_sqlstate(
                    admin.batch_execute(&format!("CALL migrate.apply(NULL, '{project}')")),
                    sqlstate,
                );
            }
            "rehearse" => {
                let row = admin
                    .query_one(
                        "SELECT up_ok, detail FROM migrate.rehearse(NULL, $1)",
                        &[&project],
                    )
                    .unwrap();
                assert_eq!(row.get::<_, Option<bool>>(0), Some(false), "{context}");
                let detail: String = row.get(1);
                assert!(
                    detail.contains(&format!("SQLSTATE {sqlstate}")),
                    "{context}: {detail}"
                );
            }
            _ => {
                assert_eq!(
                    call(&mut admin, &format!("SELECT migrate.up(NULL, '{project}')")),
                    1
                );
                expect_sqlstate(
                    admin.query_one("SELECT migrate.down(1, $1)", &[&project]),
                    sqlstate,
                );
            }
        }
        for (what, query) in SESSION_STATE {
            assert_eq!(count(&mut admin, query), 0, "{what} left by {context}");
        }
        // What the superuser does next in the session runs nothing of mallory's.
        admin
            .batch_execute("SELECT 1::int4; INSERT INTO accounts VALUES (1)")
            .unwrap();
        assert!(!is_superuser(&mut admin, ROLE), "{context}");
        figure("privilege checks passed", 1);
    }
    assert_eq!(
        count(
            &mut admin,
            "SELECT count(*) FROM migrate.status() WHERE version = '1' AND state = 'applied'"
        ),
        attacks.len() as i64,
        "only the harmless ups of the down lane were applied"
    );
}

/// A body stored by an earlier release, before these statements were refused, is refused when
/// it would run, and when a plan shows it.
#[test]
fn t25_a_stored_body_this_release_refuses_is_refused_by_plan_and_up() {
    const ROLE: &str = "t25_stored_mallory";
    let db = TestDb::new("t25_stored");
    let mut admin = db.connect();
    let mut mallory = hostile_registrant(&db, &mut admin, ROLE);
    register(&mut mallory, "1", "hold", "SELECT 1", None);
    // What 0.2.0 stored for the reported escalation.
    admin
        .batch_execute(
            "UPDATE migrate.migrations
                SET up_sql = 'DECLARE c CURSOR WITH HOLD FOR SELECT public.pw() FROM generate_series(1, 2)',
                    checksum = encode(sha256(convert_to('DECLARE c CURSOR WITH HOLD FOR SELECT public.pw() FROM generate_series(1, 2)', 'UTF8')), 'hex')",
        )
        .unwrap();
    for call in [
        "SELECT * FROM migrate.plan()",
        "SELECT migrate.up()",
        "CALL migrate.apply()",
    ] {
        let error = expect_sqlstate(admin.batch_execute(call), "0A000");
        assert_eq!(
            error.message(),
            "DECLARE CURSOR WITH HOLD cannot run inside a migration",
            "{call}"
        );
        figure("privilege checks passed", 1);
    }
    assert!(!is_superuser(&mut admin, ROLE));
    // verify() names it, as the reader role sees it.
    let problems = text_rows(
        &mut admin,
        &["SELECT version || ' ' || problem || ': ' || detail FROM migrate.verify()"],
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("1 refused statement: SQLSTATE 0A000: DECLARE CURSOR WITH HOLD cannot run inside a migration\nStatement 1 (line 1) of the up body"),
        "{problems:?}"
    );
    assert!(problems[1].starts_with("1 failed"), "{problems:?}");
}

//! Projects that fan out over tenant schemas (F01-F09): each migration once in each tenant,
//! with the tenant's search_path and a history of its own; a new tenant catches up; under
//! apply() a failing tenant stops alone and failing canaries keep the rest untouched; sixteen
//! callers at once; a terminated fan-out; the tenant query as the role that set it; what is
//! refused; down, revert, baseline and repeatables in each tenant.

use std::sync::{Arc, Barrier};
use std::thread;

use migrations_tests::*;

const PROJECT: &str = "app";

/// Schemas `{prefix}_1` to `{prefix}_{n}`, and a table outside them where bodies log where they
/// ran (`public.runs`, qualified: the bodies' search_path is the tenant's).
fn create_tenants(client: &mut Client, prefix: &str, n: usize) {
    let mut sql = String::from("CREATE TABLE public.runs (tenant text, version text);");
    for i in 1..=n {
        sql.push_str(&format!("CREATE SCHEMA {prefix}_{i};"));
    }
    client.batch_execute(&sql).unwrap();
}

/// The tenants of `PROJECT` are the schemas named `{prefix}_*`, in natural order.
fn set_tenants_by_query(client: &mut Client, prefix: &str, canary: i32) -> i32 {
    let query = format!(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE '{prefix}\\_%'
          ORDER BY length(nspname), nspname"
    );
    client
        .query_one(
            "SELECT migrate.set_tenants(query => $1, canary => $2, project => $3)",
            &[&query, &canary, &PROJECT],
        )
        .unwrap()
        .get(0)
}

/// A body that creates `sql`'s objects unqualified, in the tenant, and logs the tenant.
fn logged(version: &str, sql: &str) -> String {
    format!("{sql}; INSERT INTO public.runs VALUES (current_schema(), '{version}')")
}

fn register_in(client: &mut Client, version: &str, up: &str, down: Option<&str>) {
    client
        .query_one(
            "SELECT migrate.register($1, 'step', $2, $3, $4)",
            &[&version, &logged(version, up), &down, &PROJECT],
        )
        .unwrap();
}

/// Three migrations: a table, a column, an index.
fn register_three(client: &mut Client) {
    register_in(
        client,
        "1",
        "CREATE TABLE users (id int PRIMARY KEY)",
        Some("DROP TABLE users"),
    );
    register_in(
        client,
        "2",
        "ALTER TABLE users ADD COLUMN email text",
        Some("ALTER TABLE users DROP COLUMN email"),
    );
    register_in(
        client,
        "3",
        "CREATE INDEX users_email ON users (email)",
        Some("DROP INDEX users_email"),
    );
}

/// `tenant version` of every logged run, in the order they ran.
fn runs(client: &mut Client) -> Vec<String> {
    text_rows(
        client,
        &["SELECT tenant || ' ' || version FROM public.runs ORDER BY ctid"],
    )
}

/// `tenant version state` of every row of status() for `PROJECT`, in its order.
fn tenant_states(client: &mut Client) -> Vec<String> {
    text_rows(
        client,
        &[
            "SELECT tenant || ' ' || coalesce(version, name) || ' ' || state
             FROM migrate.status('app')",
        ],
    )
}

/// How many migrations are applied in `tenant`.
fn applied_in(client: &mut Client, tenant: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM migrate.status('app') WHERE tenant = $1 AND state = 'applied'",
            &[&tenant],
        )
        .unwrap()
        .get(0)
}

fn apply(client: &mut Client) -> Result<u64, postgres::Error> {
    client.execute("CALL migrate.apply(project => 'app')", &[])
}

#[test]
fn f01_each_migration_runs_once_in_each_tenant_with_its_search_path() {
    let db = TestDb::new("f01_fan_out");
    let mut client = db.connect();
    create_tenants(&mut client, "f01", 5);
    assert_eq!(set_tenants_by_query(&mut client, "f01", 0), 5);
    register_three(&mut client);
    assert_eq!(call(&mut client, "SELECT migrate.up(project => 'app')"), 15);
    let expected: Vec<String> = (1..=5)
        .flat_map(|t| (1..=3).map(move |v| format!("f01_{t} {v}")))
        .collect();
    assert_eq!(runs(&mut client), expected, "each once, tenant by tenant");
    for t in 1..=5 {
        assert!(table_exists(&mut client, &format!("f01_{t}.users")));
        assert!(table_exists(&mut client, &format!("f01_{t}.users_email")));
    }
    assert!(
        !table_exists(&mut client, "public.users"),
        "nothing outside"
    );
    assert_eq!(
        tenant_states(&mut client),
        expected
            .iter()
            .map(|run| format!("{run} applied"))
            .collect::<Vec<_>>()
    );
    // The session's own search_path is as it was.
    assert_eq!(
        text_rows(&mut client, &["SHOW search_path"]),
        ["\"$user\", public"]
    );
    // Each tenant has its own history: an up event per migration, naming the tenant.
    assert_eq!(
        count(
            &mut client,
            "SELECT count(DISTINCT (tenant, version)) FROM migrate.history('app') WHERE event = 'up'"
        ),
        15
    );
    assert_eq!(
        call(&mut client, "SELECT migrate.up(project => 'app')"),
        0,
        "nothing twice"
    );
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT count(*)::text FROM migrate.verify('app')"]
        ),
        ["0"]
    );
}

#[test]
fn f02_a_new_tenant_catches_up_and_a_list_keeps_its_order() {
    let db = TestDb::new("f02_catch_up");
    let mut client = db.connect();
    create_tenants(&mut client, "f02", 3);
    let listed: i32 = client
        .query_one(
            "SELECT migrate.set_tenants(ARRAY['f02_3', 'f02_1', 'f02_3', 'f02_2'], project => 'app')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(listed, 3, "each tenant once");
    register_in(&mut client, "1", "CREATE TABLE a (id int)", None);
    assert_eq!(call(&mut client, "SELECT migrate.up(project => 'app')"), 3);
    assert_eq!(runs(&mut client), ["f02_3 1", "f02_1 1", "f02_2 1"]);

    // By query, a schema created since the last run catches up on the next, alone.
    assert_eq!(set_tenants_by_query(&mut client, "f02", 0), 3);
    client.batch_execute("CREATE SCHEMA f02_4").unwrap();
    register_in(&mut client, "2", "CREATE TABLE b (id int)", None);
    assert_eq!(call(&mut client, "SELECT migrate.up(project => 'app')"), 5);
    assert_eq!(applied_in(&mut client, "f02_4"), 2);
    assert_eq!(
        runs(&mut client)[3..],
        ["f02_1 2", "f02_2 2", "f02_3 2", "f02_4 1", "f02_4 2"]
    );
}

#[test]
fn f03_under_apply_a_failing_tenant_stops_alone_and_resumes() {
    let db = TestDb::new("f03_failure");
    let mut client = db.connect();
    create_tenants(&mut client, "f03", 4);
    set_tenants_by_query(&mut client, "f03", 0);
    register_three(&mut client);
    // Tenant 2 already has the table migration 1 creates.
    client
        .batch_execute("CREATE TABLE f03_2.users (id int)")
        .unwrap();

    // up(): one transaction, so a failure in one tenant undoes every tenant.
    let error = expect_sqlstate(
        client.query_one("SELECT migrate.up(project => 'app')", &[]),
        "42P07",
    );
    assert!(error.detail().unwrap().contains("in tenant \"f03_2\""));
    assert!(runs(&mut client).is_empty());
    assert_eq!(applied_in(&mut client, "f03_1"), 0);

    // apply(): the other tenants go on, and the failure is reported per tenant.
    let error = expect_sqlstate(apply(&mut client), "42P07");
    assert_eq!(
        error.message(),
        "migrations failed in 1 of 4 tenants of project \"app\""
    );
    assert!(
        error.detail().unwrap().starts_with(
            "Tenant \"f03_2\": relation \"users\" already exists\nStatement 1 (line 1) of the up body of migration \"1\""
        ),
        "{:?}",
        error.detail()
    );
    let mut other = db.connect();
    for tenant in ["f03_1", "f03_3", "f03_4"] {
        assert_eq!(applied_in(&mut other, tenant), 3, "{tenant}: committed");
    }
    assert_eq!(
        text_rows(
            &mut other,
            &["SELECT version || ' ' || state FROM migrate.status('app') WHERE tenant = 'f03_2'"]
        ),
        ["1 failed", "2 pending", "3 pending"]
    );
    assert_eq!(
        text_rows(
            &mut other,
            &["SELECT tenant || ' ' || version || ' ' || problem FROM migrate.verify('app')"]
        ),
        ["f03_2 1 failed", "f03_2 2 pending", "f03_2 3 pending"]
    );

    // Fixed, the failed tenant resumes; nothing else runs again.
    client.batch_execute("DROP TABLE f03_2.users").unwrap();
    let before = runs(&mut client).len();
    apply(&mut client).unwrap();
    assert_eq!(
        runs(&mut client)[before..],
        ["f03_2 1", "f03_2 2", "f03_2 3"]
    );
    assert_eq!(runs(&mut client).len(), 12);
}

#[test]
fn f04_failing_canaries_keep_the_other_tenants_untouched() {
    let db = TestDb::new("f04_canary");
    let mut client = db.connect();
    create_tenants(&mut client, "f04", 5);
    set_tenants_by_query(&mut client, "f04", 2);
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT tenant || ' ' || canary FROM migrate.tenants('app')"]
        ),
        [
            "f04_1 true",
            "f04_2 true",
            "f04_3 false",
            "f04_4 false",
            "f04_5 false"
        ]
    );
    register_three(&mut client);
    client
        .batch_execute("CREATE TABLE f04_2.users (id int)")
        .unwrap();
    let error = expect_sqlstate(apply(&mut client), "42P07");
    assert_eq!(
        error.message(),
        "migrations failed in 1 of 5 tenants of project \"app\""
    );
    assert!(
        error
            .detail()
            .unwrap()
            .ends_with("A canary tenant failed: 3 other tenants not started."),
        "{:?}",
        error.detail()
    );
    assert_eq!(
        applied_in(&mut client, "f04_1"),
        3,
        "the canary that passed"
    );
    for tenant in ["f04_3", "f04_4", "f04_5"] {
        assert_eq!(applied_in(&mut client, tenant), 0, "{tenant}: not started");
        assert!(!table_exists(&mut client, &format!("{tenant}.users")));
    }
    client.batch_execute("DROP TABLE f04_2.users").unwrap();
    apply(&mut client).unwrap();
    assert_eq!(runs(&mut client).len(), 15);
}

#[test]
fn f05_sixteen_callers_apply_each_migration_once_in_each_tenant() {
    const CALLERS: usize = 16;
    const TENANTS: usize = 20;
    let db = TestDb::new("f05_callers");
    let mut client = db.connect();
    create_tenants(&mut client, "f05", TENANTS);
    set_tenants_by_query(&mut client, "f05", 3);
    let barrier = Arc::new(Barrier::new(CALLERS));
    let callers: Vec<_> = (0..CALLERS)
        .map(|i| {
            let mut caller = db.connect();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                // What each instance does at start-up: register everything, then run.
                register_three(&mut caller);
                if i % 2 == 0 {
                    i64::from(call(&mut caller, "SELECT migrate.up(project => 'app')"))
                } else {
                    apply(&mut caller).unwrap();
                    -1
                }
            })
        })
        .collect();
    let applied_by_up: i64 = callers
        .into_iter()
        .map(|caller| caller.join().unwrap())
        .filter(|&n| n >= 0)
        .sum();
    let runs = runs(&mut client);
    assert_eq!(
        runs.len(),
        TENANTS * 3,
        "each migration once in each tenant"
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(DISTINCT (tenant, version)) FROM public.runs"
        ),
        (TENANTS * 3) as i64
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.status('app') WHERE state = 'applied'"
        ),
        (TENANTS * 3) as i64
    );
    assert!(applied_by_up <= (TENANTS * 3) as i64);
    assert_eq!(runner_locks(&mut client, true), 0);
    figure("concurrent callers", CALLERS as u64);
    figure(
        "migrations applied by concurrent callers",
        (TENANTS * 3) as u64,
    );
    figure("duplicate applications found", 0);
}

#[test]
fn f06_a_terminated_fan_out_leaves_each_tenant_whole() {
    const KEY: i64 = 60_606;
    let db = TestDb::new("f06_terminate");
    let mut client = db.connect();
    create_tenants(&mut client, "f06", 5);
    set_tenants_by_query(&mut client, "f06", 0);
    register_in(&mut client, "1", "CREATE TABLE a (id int)", None);
    // In tenant 3, migration 2 waits for a lock the test holds: the run parks there.
    register_in(
        &mut client,
        "2",
        &format!(
            "CREATE TABLE b (id int);
             DO $$ BEGIN IF current_schema() = 'f06_3' THEN PERFORM pg_advisory_xact_lock({KEY}); END IF; END $$"
        ),
        None,
    );
    let holder = hold_advisory_lock(&db, KEY);
    let (pid, running) = start_blocked(&db, |caller| apply(caller).map(|_| ()));
    client
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    assert!(running.join().unwrap().is_err(), "terminated");
    drop(holder);
    figure("faults injected", 1);

    let mut client = db.connect();
    assert_eq!(applied_in(&mut client, "f06_1"), 2, "committed before");
    assert_eq!(applied_in(&mut client, "f06_2"), 2, "committed before");
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT version || ' ' || state FROM migrate.status('app') WHERE tenant = 'f06_3'"]
        ),
        ["1 applied", "2 pending"],
        "nothing of the interrupted migration, no failed state to clear"
    );
    assert!(!table_exists(&mut client, "f06_3.b"));
    for tenant in ["f06_4", "f06_5"] {
        assert_eq!(applied_in(&mut client, tenant), 0, "{tenant}: not reached");
    }
    assert_eq!(runner_locks(&mut client, true), 0, "the lock went with it");

    apply(&mut client).unwrap();
    assert_eq!(
        count(
            &mut client,
            "SELECT count(DISTINCT (tenant, version)) FROM public.runs"
        ),
        10
    );
    assert_eq!(runs(&mut client).len(), 10, "each once");
    figure("half-applied or twice-applied migrations found", 0);
}

#[test]
fn f07_the_tenant_query_runs_as_the_role_that_set_it() {
    let db = TestDb::new("f07_privileges");
    let mut admin = db.connect();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS f07_deployer;
             CREATE ROLE f07_deployer LOGIN;
             GRANT USAGE ON SCHEMA migrate TO f07_deployer;
             GRANT EXECUTE ON FUNCTION migrate.set_tenants(text[], text, integer, text),
                                       migrate.register(text, text, text, text, text, boolean),
                                       migrate.up(text, text), migrate.status(text)
                TO f07_deployer;
             CREATE TABLE public.runs (tenant text, version text);
             GRANT INSERT ON public.runs TO f07_deployer;
             CREATE TABLE public.victims (id int);
             INSERT INTO public.victims VALUES (1);
             CREATE SCHEMA f07_mine AUTHORIZATION f07_deployer;
             CREATE SCHEMA f07_other;",
        )
        .unwrap();
    let mut deployer = db.connect_as("f07_deployer");
    // Nothing of the books is the deployer's to read.
    expect_sqlstate(
        deployer.query("SELECT * FROM migrate.tenant_sets", &[]),
        "42501",
    );
    // The query names a schema by who runs it.
    deployer
        .query_one(
            "SELECT migrate.set_tenants(query => $$SELECT CASE WHEN current_user = 'f07_deployer' THEN 'f07_mine' ELSE 'f07_other' END$$, project => 'app')",
            &[],
        )
        .unwrap();
    deployer
        .query_one(
            "SELECT migrate.register('1', 'a', 'CREATE TABLE a (); INSERT INTO public.runs VALUES (current_schema(), current_user)', NULL, 'app')",
            &[],
        )
        .unwrap();
    // The superuser runs it: the query still runs as the deployer, and so does the body.
    assert_eq!(call(&mut admin, "SELECT migrate.up(project => 'app')"), 1);
    assert_eq!(
        text_rows(
            &mut admin,
            &["SELECT tenant || ' ' || version FROM public.runs"]
        ),
        ["f07_mine f07_deployer"]
    );
    assert!(!table_exists(&mut admin, "f07_other.a"));

    // The query is read-only: it cannot write through the superuser's call, nor its own.
    expect_sqlstate(
        deployer.query_one(
            "SELECT migrate.set_tenants(query => 'WITH d AS (DELETE FROM public.victims RETURNING 1) SELECT ''f07_mine'' FROM d', project => 'app')",
            &[],
        ),
        "0A000",
    );
    assert_eq!(count(&mut admin, "SELECT count(*) FROM public.victims"), 1);
    // A schema the registrant may not use stays out of reach, whoever runs up(): without
    // USAGE, it drops out of the body's search_path.
    deployer
        .query_one(
            "SELECT migrate.set_tenants(ARRAY['f07_mine', 'f07_other'], project => 'app')",
            &[],
        )
        .unwrap();
    expect_sqlstate(
        admin.query_one("SELECT migrate.up(project => 'app')", &[]),
        "3F000",
    );
    assert!(!table_exists(&mut admin, "f07_other.a"));

    // A configurer that is gone is named.
    admin
        .batch_execute(
            "UPDATE migrate.tenant_sets SET configured_by = 'f07_nobody', schemas = NULL, query = 'SELECT 1'",
        )
        .unwrap();
    let error = expect_sqlstate(
        admin.query_one("SELECT migrate.up(project => 'app')", &[]),
        "42704",
    );
    assert!(error.message().contains("\"f07_nobody\""));
}

#[test]
fn f08_what_tenants_refuse_is_refused_before_anything_runs() {
    let db = TestDb::new("f08_refusals");
    let mut client = db.connect();
    create_tenants(&mut client, "f08", 2);
    for (query, sqlstate) in [
        ("SELECT migrate.set_tenants(project => 'app')", "22023"),
        (
            "SELECT migrate.set_tenants(ARRAY['f08_1'], 'SELECT 1', project => 'app')",
            "22023",
        ),
        (
            "SELECT migrate.set_tenants(ARRAY['f08_1'], canary => -1, project => 'app')",
            "22023",
        ),
        (
            "SELECT migrate.set_tenants(ARRAY['f08_1', NULL], project => 'app')",
            "22004",
        ),
        (
            "SELECT migrate.set_tenants(ARRAY['f08_1', 'f08_missing'], project => 'app')",
            "3F000",
        ),
        (
            "SELECT migrate.set_tenants(query => 'SELECT NULL::text', project => 'app')",
            "22004",
        ),
        (
            "SELECT migrate.set_tenants(query => 'SELECT nope', project => 'app')",
            "42703",
        ),
    ] {
        expect_sqlstate(client.query_one(query, &[]), sqlstate);
    }
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM migrate.tenant_sets"),
        0
    );
    // A set with nothing applied in it can go again.
    client
        .query_one(
            "SELECT migrate.set_tenants(ARRAY['f08_1'], project => 'app')",
            &[],
        )
        .unwrap();
    let unset = "SELECT migrate.unset_tenants('app')::int";
    assert_eq!(call(&mut client, unset), 1);
    assert_eq!(call(&mut client, unset), 0);

    set_tenants_by_query(&mut client, "f08", 0);
    register_in(
        &mut client,
        "1",
        "CREATE TABLE a (id int)",
        Some("DROP TABLE a"),
    );
    for query in [
        "SELECT * FROM migrate.plan(project => 'app')",
        "SELECT * FROM migrate.plan_down(project => 'app')",
        "SELECT * FROM migrate.rehearse(project => 'app')",
        "SELECT migrate.adopt('flyway', 'app')",
    ] {
        let error = expect_sqlstate(client.query(query, &[]), "0A000");
        assert!(error.message().ends_with("in tenant schemas"), "{query}");
    }
    client
        .query_one(
            "SELECT migrate.register('2', 'index', 'CREATE INDEX CONCURRENTLY a_id ON a (id)', NULL, 'app', false)",
            &[],
        )
        .unwrap();
    expect_sqlstate(apply(&mut client), "0A000");
    expect_sqlstate(
        client.query_one("SELECT migrate.up(project => 'app')", &[]),
        "55000",
    );
    assert!(runs(&mut client).is_empty(), "nothing ran in any tenant");

    // A dropped tenant schema stops every run before it starts, and status() still answers.
    client
        .execute("DELETE FROM migrate.migrations WHERE version = '2'", &[])
        .unwrap();
    client.batch_execute("DROP SCHEMA f08_2").unwrap();
    expect_sqlstate(
        client.query_one(
            "SELECT migrate.set_tenants(ARRAY['f08_1', 'f08_2'], project => 'app')",
            &[],
        ),
        "3F000",
    );
    client.batch_execute("CREATE SCHEMA f08_2").unwrap();
    client
        .query_one(
            "SELECT migrate.set_tenants(ARRAY['f08_1', 'f08_2'], project => 'app')",
            &[],
        )
        .unwrap();
    client.batch_execute("DROP SCHEMA f08_2").unwrap();
    let error = expect_sqlstate(
        client.query_one("SELECT migrate.up(project => 'app')", &[]),
        "3F000",
    );
    assert_eq!(
        error.message(),
        "tenant schema \"f08_2\" of project \"app\" does not exist"
    );
    assert_eq!(applied_in(&mut client, "f08_1"), 0);
    assert_eq!(
        tenant_states(&mut client),
        ["f08_1 1 pending", "f08_2 1 pending"]
    );

    // A project applied in one schema cannot fan out, nor a tenant project stop fanning out.
    client.batch_execute("CREATE SCHEMA f08_2").unwrap();
    assert_eq!(call(&mut client, "SELECT migrate.up(project => 'app')"), 2);
    expect_sqlstate(
        client.query_one("SELECT migrate.unset_tenants('app')", &[]),
        "55000",
    );
    register(
        &mut client,
        "1",
        "plain",
        "CREATE TABLE plain (id int)",
        None,
    );
    call(&mut client, "SELECT migrate.up()");
    expect_sqlstate(
        client.query_one("SELECT migrate.set_tenants(ARRAY['f08_1'])", &[]),
        "55000",
    );
}

#[test]
fn f09_down_revert_baseline_and_repeatables_work_in_each_tenant() {
    let db = TestDb::new("f09_verbs");
    let mut client = db.connect();
    create_tenants(&mut client, "f09", 3);
    set_tenants_by_query(&mut client, "f09", 0);
    register_three(&mut client);
    assert_eq!(call(&mut client, "SELECT migrate.up('2', 'app')"), 6);
    assert_eq!(call(&mut client, "SELECT migrate.down(1, 'app')"), 3);
    for t in 1..=3 {
        assert_eq!(applied_in(&mut client, &format!("f09_{t}")), 1);
        assert!(table_exists(&mut client, &format!("f09_{t}.users")));
    }
    client
        .batch_execute("CALL migrate.revert(1, 'app')")
        .unwrap();
    for t in 1..=3 {
        assert!(!table_exists(&mut client, &format!("f09_{t}.users")));
    }
    // baseline marks in every tenant; a repeatable runs once in each, and again when it changes.
    client
        .batch_execute("CREATE TABLE f09_1.users (id int, email text); CREATE TABLE f09_2.users (id int, email text); CREATE TABLE f09_3.users (id int, email text)")
        .unwrap();
    assert_eq!(call(&mut client, "SELECT migrate.baseline('2', 'app')"), 6);
    // The first up() also applies migration 3 in each tenant.
    for (body, ran) in [
        (
            "CREATE OR REPLACE VIEW emails AS SELECT email FROM users",
            6,
        ),
        (
            "CREATE OR REPLACE VIEW emails AS SELECT email, id FROM users",
            3,
        ),
    ] {
        client
            .query_one(
                "SELECT migrate.register_repeatable('emails', $1, 'app')",
                &[&body],
            )
            .unwrap();
        assert_eq!(
            call(&mut client, "SELECT migrate.up(project => 'app')"),
            ran
        );
        assert_eq!(call(&mut client, "SELECT migrate.up(project => 'app')"), 0);
    }
    for t in 1..=3 {
        assert!(table_exists(&mut client, &format!("f09_{t}.emails")));
        assert_eq!(
            applied_in(&mut client, &format!("f09_{t}")),
            4,
            "3 and the repeatable"
        );
    }
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history('app') WHERE event = 'repeatable reapply'"
        ),
        6
    );
}

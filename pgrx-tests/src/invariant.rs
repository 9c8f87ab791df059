//! The check every scenario ends with: the books are consistent, each applied body's side
//! effect exists exactly once, no runner lock is left, and a fresh `up()` applies exactly the
//! rest.

use postgres::Client;

use crate::figures::figure;
use crate::sql::*;

/// A body whose side effect shows how often it ran: one row in `applied_log` per execution (see
/// `create_applied_log` and `assert_invariant`), after `sql`.
pub fn logged_body(version: &str, sql: &str) -> String {
    let sql = sql.trim_end().trim_end_matches(';');
    format!("{sql};\nINSERT INTO public.applied_log VALUES ('{version}', pg_backend_pid());")
}

pub fn create_applied_log(client: &mut Client) {
    client
        .batch_execute("CREATE TABLE public.applied_log (version text NOT NULL, pid int NOT NULL)")
        .expect("create applied_log");
}

/// The invariant every reliability test ends with, for the default project:
/// (a) the history is consistent: every applied migration has the registry's checksum and was
/// applied by an `up` (or `baseline`) event of its own; the applied set is the one the event log
/// gives; no pending migration sits below the highest applied one;
/// (b) every applied migration's side effect is present exactly once, every other's not at all
/// (bodies made by `logged_body`);
/// (c) no runner lock is left in `pg_locks`;
/// (d) a fresh `up()` applies exactly `remaining`, and a second one nothing.
#[track_caller]
pub fn assert_invariant(client: &mut Client, remaining: i32) {
    assert_history_consistent(client);
    assert_side_effects_once(client);
    assert_eq!(
        runner_locks(client, true),
        0,
        "a runner lock was left behind"
    );
    assert_eq!(runner_locks(client, false), 0, "a runner is still waiting");
    assert_eq!(up(client).expect("fresh up()"), remaining, "a fresh up()");
    assert_eq!(up(client).expect("second up()"), 0, "a second up()");
    assert_history_consistent(client);
    assert_side_effects_once(client);
    figure("invariant checks passed", 1);
}

#[track_caller]
fn assert_history_consistent(client: &mut Client) {
    let problems = text_rows(
        client,
        &[
            "SELECT 'checksum of ' || a.version FROM migrate.applied a
               JOIN migrate.migrations m USING (project, version) WHERE a.checksum <> m.checksum",
            "SELECT 'event of ' || a.version FROM migrate.applied a
               JOIN migrate.events e ON e.id = a.event_id
              WHERE e.version <> a.version OR e.project <> a.project
                 OR e.event NOT IN ('up', 'baseline') OR e.checksum IS DISTINCT FROM a.checksum",
            "SELECT 'event log disagrees on ' || m.version FROM migrate.migrations m
               LEFT JOIN migrate.applied a USING (project, version)
               LEFT JOIN LATERAL (SELECT e.event FROM migrate.events e
                                   WHERE (e.project, e.version) = (m.project, m.version)
                                     AND e.event IN ('up', 'down', 'baseline')
                                   ORDER BY e.id DESC LIMIT 1) last ON true
              WHERE (a.version IS NOT NULL) <> (coalesce(last.event, 'down') <> 'down')",
            "SELECT 'gap at ' || m.version FROM migrate.migrations m
              WHERE NOT EXISTS (SELECT FROM migrate.applied a WHERE (a.project, a.version) = (m.project, m.version))
                AND m.version_key < (SELECT n.version_key FROM migrate.migrations n
                                       JOIN migrate.applied a USING (project, version)
                                      WHERE n.project = m.project
                                      ORDER BY n.version_key DESC LIMIT 1)",
        ],
    );
    assert!(problems.is_empty(), "history inconsistent: {problems:?}");
}

#[track_caller]
fn assert_side_effects_once(client: &mut Client) {
    if !table_exists(client, "public.applied_log") {
        return;
    }
    let wrong = text_rows(
        client,
        &["SELECT m.version || ' ran ' || (SELECT count(*) FROM public.applied_log l WHERE l.version = m.version)
                 || ' times, applied: ' || (a.version IS NOT NULL)
             FROM migrate.migrations m LEFT JOIN migrate.applied a USING (project, version)
            WHERE (SELECT count(*) FROM public.applied_log l WHERE l.version = m.version)
                  <> CASE WHEN a.version IS NULL THEN 0 ELSE 1 END"],
    );
    figure(
        "half-applied or twice-applied migrations found",
        wrong.len() as u64,
    );
    assert!(wrong.is_empty(), "side effects: {wrong:?}");
}

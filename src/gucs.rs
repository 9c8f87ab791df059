//! Settings, all under the reserved prefix `migrate.`.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

/// `migrate.allow_out_of_order`: apply pending migrations older than the newest applied one.
static ALLOW_OUT_OF_ORDER: GucSetting<bool> = GucSetting::<bool>::new(false);

/// `migrate.lock_timeout` (ms): the `lock_timeout` each migration's statements run under.
static LOCK_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(5_000);

/// `migrate.lock_retries`: further attempts of a migration that hit `migrate.lock_timeout`.
static LOCK_RETRIES: GucSetting<i32> = GucSetting::<i32>::new(3);

/// `migrate.runner_wait` (ms): how long a call waits for the runner lock.
static RUNNER_WAIT: GucSetting<i32> = GucSetting::<i32>::new(60_000);

/// `migrate.max_body_size` (kB): the largest body a registering call accepts.
static MAX_BODY_SIZE: GucSetting<i32> = GucSetting::<i32>::new(64 * 1024);

/// When a verb stores a snapshot of the catalog (`migrate.snapshots`).
#[derive(PostgresGucEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snapshots {
    /// After every migration.
    #[name = c"each"]
    Each,
    /// After the last migration of a call; under `apply()` and `revert()` also before a migration
    /// that fails or runs statement by statement, so that what they committed has one.
    #[name = c"last"]
    Last,
    #[name = c"off"]
    Off,
}

/// `migrate.snapshots`: when the catalog is stored after migrations run.
static SNAPSHOTS: GucSetting<Snapshots> = GucSetting::<Snapshots>::new(Snapshots::Last);

pub fn snapshots() -> Snapshots {
    SNAPSHOTS.get()
}

pub fn allow_out_of_order() -> bool {
    ALLOW_OUT_OF_ORDER.get()
}

pub fn lock_timeout_ms() -> i32 {
    LOCK_TIMEOUT.get()
}

pub fn lock_retries() -> i32 {
    LOCK_RETRIES.get()
}

/// 0: wait without bound.
pub fn runner_wait_ms() -> i32 {
    RUNNER_WAIT.get()
}

/// The largest body accepted, in bytes; `None` for any size.
pub fn max_body_bytes() -> Option<usize> {
    let kb = MAX_BODY_SIZE.get();
    (kb > 0).then(|| kb as usize * 1024)
}

/// Defines the settings and reserves their prefix, from `_PG_init`.
pub fn init() {
    GucRegistry::define_bool_guc(
        c"migrate.allow_out_of_order",
        c"Lets migrate.up() apply pending migrations older than the newest applied one.",
        c"Off by default: up() then stops with an error that lists such migrations.",
        &ALLOW_OUT_OF_ORDER,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"migrate.lock_timeout",
        c"The lock_timeout every statement of a migration runs under; 0 waits forever.",
        c"A migration that cannot get a table lock in time fails (or is retried) instead of queueing all traffic on that table behind it.",
        &LOCK_TIMEOUT,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"migrate.lock_retries",
        c"How many more times a migration that hit migrate.lock_timeout is attempted, with backoff.",
        c"Each attempt is reported as a NOTICE. up() and down() run their migrations in one subtransaction first; after the first lock timeout they run again, each in a subtransaction of its own.",
        &LOCK_RETRIES,
        0,
        100,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"migrate.runner_wait",
        c"How long a call waits for another runner to finish; 0 waits forever.",
        c"Past it the call fails with SQLSTATE 55P03 and the process ID of the runner holding the lock.",
        &RUNNER_WAIT,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"migrate.max_body_size",
        c"The largest migration body a registering call accepts; 0 accepts any size.",
        c"Splitting a body into statements takes about twelve times its size in backend memory, at register and at apply.",
        &MAX_BODY_SIZE,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_enum_guc(
        c"migrate.snapshots",
        c"When migrations store a snapshot of the catalog: each, last or off.",
        c"last stores one after the last migration of a call (apply() and revert() also before a migration that fails or runs statement by statement); each after every migration, at the cost of a catalog read each; migrations that wrote no catalog row store the newest one again; drift() compares the catalog with the newest one.",
        &SNAPSHOTS,
        GucContext::Userset,
        GucFlags::default(),
    );
    crate::postgres::reserve_guc_prefix(c"migrate");
}

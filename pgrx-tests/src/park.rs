//! Parking a session where a test needs it, and knowing that it is there: no sleeps stand in
//! for synchronisation.

use std::thread;

use postgres::Client;

use crate::server::TestDb;
use crate::wait::wait_for;

/// Whether backend `pid` is waiting for a lock: the runner lock, one a body asks for, a table.
pub fn waiting_for_lock(observer: &mut Client, pid: i32) -> bool {
    observer
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted",
            &[&pid],
        )
        .expect("pg_locks")
        .get::<_, i64>(0)
        == 1
}

pub fn backend_pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pg_backend_pid()")
        .get(0)
}

/// A connection holding advisory lock `key`; a body that asks for it waits until the lock is
/// released or the connection dropped. Tests park runners this way: they then know where the
/// backend is by seeing it wait in `pg_locks`, without guessing at time.
pub fn hold_advisory_lock(db: &TestDb, key: i64) -> Client {
    let mut holder = db.connect();
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .expect("pg_advisory_lock");
    holder
}

/// Runs `call` on a new connection in a thread of its own and returns once that connection
/// waits for a lock: its backend's pid, and the thread, whose result is the call's.
pub fn start_blocked<T: Send + 'static>(
    db: &TestDb,
    call: impl FnOnce(&mut Client) -> T + Send + 'static,
) -> (i32, thread::JoinHandle<T>) {
    let mut client = db.connect();
    let pid = backend_pid(&mut client);
    let running = thread::spawn(move || call(&mut client));
    let mut observer = db.connect();
    wait_for("a call waiting for a lock", || {
        waiting_for_lock(&mut observer, pid)
    });
    (pid, running)
}

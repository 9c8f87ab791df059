//! Waiting for a condition another session brings about, polling, with a bound.

use std::thread;
use std::time::Duration;

/// Polls until `condition` holds: a condition the server reports, not a guessed delay. The
/// bound only stops a broken test from hanging.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..4000 {
        if condition() {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

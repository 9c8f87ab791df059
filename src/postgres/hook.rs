//! The utility hook: sees every utility statement the backend runs, so that what a body reaches
//! through dynamic SQL (`EXECUTE` in a `DO` block, a function it calls) is refused as surely as
//! what it writes out.

use std::ffi::c_char;
use std::sync::OnceLock;

use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use super::parser::{self, SessionStatement};
use crate::error::MigrateError;

/// What the hook asks: whether to look at all (a body is running), and the error for a
/// statement that would leave session state behind.
struct Check {
    active: fn() -> bool,
    refuse: fn(SessionStatement) -> MigrateError,
}

static CHECK: OnceLock<Check> = OnceLock::new();
static NEXT_PROCESS_UTILITY: OnceLock<pg_sys::ProcessUtility_hook_type> = OnceLock::new();

/// Installs the hook, once per backend (from `_PG_init`): while `active()` says so, the
/// statements of `parser::session_statement` fail with `refuse(..)`.
pub fn install(active: fn() -> bool, refuse: fn(SessionStatement) -> MigrateError) {
    CHECK.get_or_init(|| Check { active, refuse });
    // SAFETY: _PG_init runs once, before any statement of this library, on the backend's thread.
    unsafe {
        NEXT_PROCESS_UTILITY.get_or_init(|| pg_sys::ProcessUtility_hook);
        pg_sys::ProcessUtility_hook = Some(refuse_session_statements);
    }
}

/// Refuses what `CHECK` says, then passes every statement on to the next hook or the standard
/// one.
#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn refuse_session_statements(
    statement: *mut pg_sys::PlannedStmt,
    query: *const c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    environment: *mut pg_sys::QueryEnvironment,
    destination: *mut pg_sys::DestReceiver,
    completion: *mut pg_sys::QueryCompletion,
) {
    if let Some(check) = CHECK.get() {
        // control run "no utility hook"
        if (check.active)() {
            // SAFETY: the server passes a planned utility statement.
            if let Some(kind) = unsafe { parser::session_statement((*statement).utilityStmt) } {
                ErrorReport::from((check.refuse)(kind)).report(PgLogLevel::ERROR);
            }
        }
    }
    // The next hook and the standard one have different Rust types: one call written for both.
    macro_rules! pass_on {
        ($next:expr) => {
            $next(
                statement,
                query,
                read_only_tree,
                context,
                params,
                environment,
                destination,
                completion,
            )
        };
    }
    // SAFETY: the arguments are the server's, passed on unchanged.
    unsafe {
        match NEXT_PROCESS_UTILITY.get().copied().flatten() {
            Some(next) => pass_on!(next),
            None => pass_on!(pg_sys::standard_ProcessUtility),
        }
    }
}

//! Running one statement at top level from inside `CALL migrate.apply()`, the way a client's
//! query runs it: outside any transaction block, so that `CREATE INDEX CONCURRENTLY`, `VACUUM`
//! and the like may commit and start transactions of their own. It runs in the caller's own
//! backend: no other process exists to orphan, and no waiting caller holds a snapshot the
//! build would wait for.

use std::ffi::CString;
use std::panic::AssertUnwindSafe;

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::identity;
use super::transaction::Committing;
use crate::error::ErrorParts;

/// Runs `sql` (one statement) at top level as `registrant`, with `lock_timeout` set to
/// `lock_timeout_ms`, and commits it. Call it right after a commit, as the caller, with no
/// subtransaction open. Whichever way it ends, a new transaction is open afterwards, started
/// as the caller: a transaction begun while the registrant was current would restore the
/// registrant when it aborts, and leave the session acting as them.
pub fn run(
    sql: &str,
    registrant: pg_sys::Oid,
    lock_timeout_ms: i32,
    committing: &Committing,
) -> Result<(), ErrorParts> {
    let c_sql = CString::new(sql).expect("text values hold no NUL bytes");
    let (caller, context) = identity::current_identity();
    // SAFETY: reads the current memory context, restored below; the new context lives under
    // TopMemoryContext, because the statement's own commits reset every transaction's memory,
    // and is deleted below.
    let (memory, statement_memory) = unsafe {
        (
            pg_sys::CurrentMemoryContext,
            pg_sys::AllocSetContextCreateInternal(
                pg_sys::TopMemoryContext,
                c"migrate top-level statement".as_ptr(),
                pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
            ),
        )
    };
    // The statement's commits would end an SPI connection left open, with a warning.
    committing.close();
    let result = PgTryBuilder::new(AssertUnwindSafe(|| {
        // SAFETY: the statement is parsed and planned into `statement_memory`; the identity
        // and settings made here are undone below on success, and by the abort on error.
        unsafe {
            pg_sys::MemoryContextSwitchTo(statement_memory);
            let planned = planned_utility(&c_sql);
            let nest_level = pg_sys::NewGUCNestLevel();
            identity::set_lock_timeout(lock_timeout_ms);
            pg_sys::SetUserIdAndSecContext(
                registrant,
                context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
            );
            // What a client's query runs under, and nothing else: the statement pops it before
            // its first commit. The snapshot SPI set up for the CALL since the last commit
            // would stay on the stack across that commit.
            pg_sys::ForgetPortalSnapshots();
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            let mut completion: pg_sys::QueryCompletion = std::mem::zeroed();
            pg_sys::ProcessUtility(
                planned,
                c_sql.as_ptr(),
                false,
                pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                pg_sys::None_Receiver,
                &mut completion,
            );
            pg_sys::AtEOXact_GUC(false, nest_level);
        }
        Ok(())
    }))
    .catch_others(|caught| Err(ErrorParts::from(&caught)))
    .execute();
    // SAFETY: ends the transaction the statement left open, committing it or aborting it,
    // and starts the next one as the caller; then restores the caller's memory context and
    // reopens the connection `apply()` commits through.
    unsafe {
        while pg_sys::ActiveSnapshotSet() {
            pg_sys::PopActiveSnapshot();
        }
        if result.is_ok() {
            pg_sys::SetUserIdAndSecContext(caller, context);
            pg_sys::CommitTransactionCommand();
        } else {
            pg_sys::AbortCurrentTransaction();
            // control run "the registrant left current after a failed top-level statement"
            pg_sys::SetUserIdAndSecContext(caller, context);
        }
        pg_sys::StartTransactionCommand();
        pg_sys::MemoryContextSwitchTo(memory);
        pg_sys::MemoryContextDelete(statement_memory);
    }
    committing.reopen();
    result
}

/// The one utility statement of `sql`, wrapped as the planner wraps utility statements.
///
/// # Safety
/// Allocates in the current memory context, which must outlive the statement's run.
unsafe fn planned_utility(sql: &CString) -> *mut pg_sys::PlannedStmt {
    // SAFETY: `sql` was split from a body the parser accepted, so it holds one statement; the
    // nodes are allocated zeroed, as makeNode does.
    unsafe {
        let trees = pg_sys::raw_parser(sql.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        let raw = pg_sys::list_nth(trees, 0).cast::<pg_sys::RawStmt>();
        let planned = pg_sys::palloc0(std::mem::size_of::<pg_sys::PlannedStmt>())
            .cast::<pg_sys::PlannedStmt>();
        (*planned).type_ = pg_sys::NodeTag::T_PlannedStmt;
        (*planned).commandType = pg_sys::CmdType::CMD_UTILITY;
        (*planned).canSetTag = true;
        (*planned).utilityStmt = (*raw).stmt;
        (*planned).stmt_location = (*raw).stmt_location;
        (*planned).stmt_len = (*raw).stmt_len;
        planned
    }
}

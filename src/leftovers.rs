//! What a body may leave in the session that applies it: nothing that outlives the body's
//! identity. A body runs as its registrant, but the session is the caller's, and whatever session
//! state the body leaves behind is later used, run or committed as the caller.
//!
//! - Holdable cursors, prepared statements, LISTEN and LOAD are refused: at register when a body
//!   writes them out (`parse`), and by the utility hook below when a body reaches them through
//!   dynamic SQL. A holdable cursor runs its query at commit, a prepared statement whenever the
//!   session executes it, and neither is undone by a rollback.
//! - Cursors left open, temporary objects and session-level advisory locks are looked for at the
//!   end of every body and fail it: the rollback that follows drops the first two, and the locks,
//!   which no rollback releases, are released here.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::c_char;
use std::fmt;
use std::sync::OnceLock;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::pg_sys::{self, NodeTag};
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiResult, SpiTupleTable};
use pgrx::{PgBuiltInOids, PgOid};

use crate::error::{MigrateError, Place, Position};
use crate::{compat, session};

const HINT_HOLD: &str = "A holdable cursor outlives the body and runs its query at commit, as whoever commits: declare the cursor without WITH HOLD, and close it before the body ends.";
const HINT_PREPARE: &str = "A prepared statement outlives the body, and runs as whoever executes it later in the session: run the statement itself.";
const HINT_LISTEN: &str = "A LISTEN outlives the body, in the session of whoever applies the migration: listen from the application.";
const HINT_LOAD: &str = "A library a body loads stays loaded in the session of whoever applies the migration: load it with session_preload_libraries, or from a client.";

/// The statements whose effect outlives any body, with the hint to give.
///
/// # Safety
/// `node` must be a valid parse tree node, raw or analysed (the node types are the same).
pub unsafe fn session_statement(node: *mut pg_sys::Node) -> Option<(&'static str, &'static str)> {
    unsafe {
        match (*node).type_ {
            NodeTag::T_DeclareCursorStmt
                if (*(node as *mut pg_sys::DeclareCursorStmt)).options
                    & pg_sys::CURSOR_OPT_HOLD as i32
                    != 0 =>
            {
                Some(("DECLARE CURSOR WITH HOLD", HINT_HOLD))
            }
            NodeTag::T_PrepareStmt => Some(("PREPARE", HINT_PREPARE)),
            NodeTag::T_ListenStmt => Some(("LISTEN", HINT_LISTEN)),
            NodeTag::T_LoadStmt => Some(("LOAD", HINT_LOAD)),
            _ => None,
        }
    }
}

static NEXT_PROCESS_UTILITY: OnceLock<pg_sys::ProcessUtility_hook_type> = OnceLock::new();

/// Installs the utility hook, once per backend (from `_PG_init`).
pub fn init() {
    // SAFETY: _PG_init runs once, before any statement of this library, on the backend's thread.
    unsafe {
        NEXT_PROCESS_UTILITY.get_or_init(|| pg_sys::ProcessUtility_hook);
        pg_sys::ProcessUtility_hook = Some(refuse_session_statements);
    }
}

/// Refuses the statements of `session_statement` while a body runs, however the body reached
/// them (`EXECUTE` in a `DO` block, a function it calls); passes everything else on.
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
    if session::body_running() {
        // SAFETY: the server passes a planned utility statement.
        if let Some((statement, hint)) = unsafe { session_statement((*statement).utilityStmt) } {
            ErrorReport::from(MigrateError::RefusedWhileRunning { statement, hint })
                .report(PgLogLevel::ERROR);
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

/// An advisory lock this backend holds, in the terms of `pg_locks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct AdvisoryLock {
    classid: u32,
    objid: u32,
    /// 1 for a bigint key, 2 for a pair of integer keys.
    objsubid: u16,
    exclusive: bool,
}

impl AdvisoryLock {
    fn tag(&self) -> pg_sys::LOCKTAG {
        pg_sys::LOCKTAG {
            // SAFETY: the backend's own database, set before any statement runs.
            locktag_field1: unsafe { pg_sys::MyDatabaseId }.to_u32(),
            locktag_field2: self.classid,
            locktag_field3: self.objid,
            locktag_field4: self.objsubid,
            locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
            locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
        }
    }

    fn mode(&self) -> pg_sys::LOCKMODE {
        if self.exclusive {
            pg_sys::ExclusiveLock as pg_sys::LOCKMODE
        } else {
            pg_sys::ShareLock as pg_sys::LOCKMODE
        }
    }

    /// How many times the session holds this lock at session level. The shared lock table does
    /// not tell the session's holds from the transaction's; the backend's own lock entry does,
    /// and taking the lock once more (it is held, so this never waits) is how to reach it.
    fn session_holds(&self) -> i64 {
        let tag = self.tag();
        // SAFETY: the lock is held by this backend, so the acquisition is granted at once and
        // returns its entry; the release gives back exactly the hold it added, for the current
        // resource owner.
        unsafe {
            let local = compat::acquire_again(&tag, self.mode());
            let holds = if local.is_null() {
                0
            } else {
                std::slice::from_raw_parts((*local).lockOwners, (*local).numLockOwners as usize)
                    .iter()
                    .filter(|owner| owner.owner.is_null())
                    .map(|owner| owner.nLocks)
                    .sum()
            };
            pg_sys::LockRelease(&tag, self.mode(), false);
            holds
        }
    }

    fn release_session_hold(&self) {
        // SAFETY: called only for a hold the session has, so no warning is raised.
        unsafe { pg_sys::LockRelease(&self.tag(), self.mode(), true) };
    }
}

impl fmt::Display for AdvisoryLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = if self.exclusive { "" } else { "shared " };
        if self.objsubid == 1 {
            let key = (u64::from(self.classid) << 32 | u64::from(self.objid)) as i64;
            write!(f, "{shared}advisory lock {key}")
        } else {
            write!(
                f,
                "{shared}advisory lock ({}, {})",
                self.classid as i32, self.objid as i32
            )
        }
    }
}

/// The advisory locks this backend holds in its database, read from its own entries in the
/// shared lock table: the lists, one per lock partition, that its PGPROC heads. `pg_locks` would
/// copy the whole server's lock table after every body.
fn advisory_locks_held() -> Vec<AdvisoryLock> {
    /// A link of a circular list: `SHM_QUEUE` up to PostgreSQL 15, `dlist_node` from 16, both
    /// `{ prev, next }`, embedded in each PROCLOCK as `procLink`.
    #[repr(C)]
    struct Link {
        prev: *mut Link,
        next: *mut Link,
    }
    let link_offset = std::mem::offset_of!(pg_sys::PROCLOCK, procLink);
    let mut held = Vec::new();
    for partition in 0..pg_sys::NUM_LOCK_PARTITIONS as usize {
        // SAFETY: the partition's lock is held (shared) while its list is read: another backend
        // may add to this backend's lists when it moves fast-path locks to the shared table.
        // MyProc and MyDatabaseId are set before any statement runs.
        unsafe {
            let partition_lock = &raw mut (*pg_sys::MainLWLockArray
                .add(pg_sys::LOCK_MANAGER_LWLOCK_OFFSET as usize + partition))
            .lock;
            pg_sys::LWLockAcquire(partition_lock, pg_sys::LWLockMode::LW_SHARED);
            let head = (&raw mut (*pg_sys::MyProc).myProcLocks[partition]).cast::<Link>();
            let mut link = (*head).next;
            while !link.is_null() && link != head {
                let proclock = link
                    .cast::<u8>()
                    .sub(link_offset)
                    .cast::<pg_sys::PROCLOCK>();
                let tag = (*(*proclock).tag.myLock).tag;
                if tag.locktag_type == pg_sys::LockTagType::LOCKTAG_ADVISORY as u8
                    && tag.locktag_field1 == pg_sys::MyDatabaseId.to_u32()
                {
                    for exclusive in [true, false] {
                        let lock = AdvisoryLock {
                            classid: tag.locktag_field2,
                            objid: tag.locktag_field3,
                            objsubid: tag.locktag_field4,
                            exclusive,
                        };
                        if (*proclock).holdMask & (1 << lock.mode()) != 0 {
                            held.push(lock);
                        }
                    }
                }
                link = (*link).next;
            }
            pg_sys::LWLockRelease(partition_lock);
        }
    }
    held
}

/// What a body may not add to the session, in the caller's session as a run starts.
pub struct SessionState {
    /// Open cursors, by what tells them apart: name, query and creation time, so that a body
    /// that closes a cursor and opens another of the same name is seen.
    cursors: BTreeMap<String, String>,
    /// Advisory locks held at session level, and how many times.
    session_locks: BTreeMap<AdvisoryLock, i64>,
    /// Objects in the session's temporary schema: (catalog, object) and their description.
    temporary: BTreeMap<(u32, u32), String>,
}

/// Cursors: every portal a name can reach. Fully qualified: it runs under the caller's
/// search_path.
const CURSORS: &str = "
SELECT c.name, pg_catalog.concat_ws(' ', c.name, c.creation_time, c.statement)
  FROM pg_catalog.pg_cursor() c";

/// Every kind of object a temporary schema can hold.
const TEMPORARY_OBJECTS: &str = "
SELECT o.classid, o.objid, pg_catalog.pg_describe_object(o.classid, o.objid, 0)
  FROM (SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) $1
        UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid FROM pg_catalog.pg_type t
                   WHERE t.typnamespace OPERATOR(pg_catalog.=) $1 AND t.typrelid OPERATOR(pg_catalog.=) 0
                     AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e WHERE e.typarray OPERATOR(pg_catalog.=) t.oid)
        UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) $1
        UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_operator o WHERE o.oprnamespace OPERATOR(pg_catalog.=) $1
        UNION ALL SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, c.oid FROM pg_catalog.pg_collation c WHERE c.collnamespace OPERATOR(pg_catalog.=) $1
        UNION ALL SELECT 'pg_catalog.pg_conversion'::pg_catalog.regclass, c.oid FROM pg_catalog.pg_conversion c WHERE c.connamespace OPERATOR(pg_catalog.=) $1
        UNION ALL SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass, c.oid FROM pg_catalog.pg_opclass c WHERE c.opcnamespace OPERATOR(pg_catalog.=) $1
        UNION ALL SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, f.oid FROM pg_catalog.pg_opfamily f WHERE f.opfnamespace OPERATOR(pg_catalog.=) $1
        UNION ALL SELECT 'pg_catalog.pg_ts_config'::pg_catalog.regclass, c.oid FROM pg_catalog.pg_ts_config c WHERE c.cfgnamespace OPERATOR(pg_catalog.=) $1
        UNION ALL SELECT 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, d.oid FROM pg_catalog.pg_ts_dict d WHERE d.dictnamespace OPERATOR(pg_catalog.=) $1
        UNION ALL SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, s.oid FROM pg_catalog.pg_statistic_ext s WHERE s.stxnamespace OPERATOR(pg_catalog.=) $1
       ) o(classid, objid)";

impl SessionState {
    pub fn capture() -> Result<Self, MigrateError> {
        let cursors = select_kept(CURSORS, None, |rows| {
            let mut cursors = BTreeMap::new();
            for row in rows {
                cursors.insert(
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<String>(1)?.unwrap_or_default(),
                );
            }
            Ok(cursors)
        })?;
        let session_locks = advisory_locks_held()
            .into_iter()
            .filter_map(|lock| {
                let holds = lock.session_holds();
                (holds > 0).then_some((lock, holds))
            })
            .collect();
        Ok(SessionState {
            cursors,
            session_locks,
            temporary: temporary_objects()?,
        })
    }

    /// Fails `place`'s body if it left anything behind, after releasing the session-level
    /// advisory locks it took (nothing else would).
    pub fn check(&self, place: &Place) -> Result<(), MigrateError> {
        let now = SessionState::capture()?;
        let mut left: Vec<String> = self.release_session_locks_added(&now);
        let locks_released = !left.is_empty();
        left.extend(
            now.cursors
                .iter()
                .filter(|(identity, _)| !self.cursors.contains_key(*identity))
                .map(|(_, name)| format!("cursor \"{name}\"")),
        );
        left.extend(
            now.temporary
                .iter()
                .filter(|(object, _)| !self.temporary.contains_key(*object))
                .map(|(_, description)| format!("temporary {description}")),
        );
        if left.is_empty() {
            Ok(())
        } else {
            Err(MigrateError::LeftBehind {
                left,
                locks_released,
                place: place.at(Position::End),
            })
        }
    }

    /// After a failed body, whose rollback released everything else: the session-level
    /// advisory locks it took.
    pub fn release_after_failure(&self) -> Result<(), MigrateError> {
        self.release_session_locks_added(&SessionState::capture()?);
        Ok(())
    }

    fn release_session_locks_added(&self, now: &SessionState) -> Vec<String> {
        let mut released = Vec::new();
        for (lock, &holds) in &now.session_locks {
            let before = self.session_locks.get(lock).copied().unwrap_or(0);
            if holds > before {
                (before..holds).for_each(|_| lock.release_session_hold());
                released.push(format!("session-level {lock}"));
            }
        }
        released
    }
}

/// The objects of the session's temporary schema; none while the session has none.
fn temporary_objects() -> Result<BTreeMap<(u32, u32), String>, MigrateError> {
    let mut schema = pg_sys::InvalidOid;
    let mut toast_schema = pg_sys::InvalidOid;
    // SAFETY: two valid out-pointers.
    unsafe { pg_sys::GetTempNamespaceState(&mut schema, &mut toast_schema) };
    if schema == pg_sys::InvalidOid {
        return Ok(BTreeMap::new());
    }
    Ok(select_kept(TEMPORARY_OBJECTS, Some(schema), |rows| {
        let mut objects = BTreeMap::new();
        for row in rows {
            let object = (
                row.get::<pg_sys::Oid>(1)?.unwrap_or_default().to_u32(),
                row.get::<pg_sys::Oid>(2)?.unwrap_or_default().to_u32(),
            );
            objects.insert(object, row.get::<String>(3)?.unwrap_or_default());
        }
        Ok(objects)
    })?)
}

thread_local! {
    /// The plans of the queries above, made once per backend: they run after every body.
    static PLANS: RefCell<HashMap<&'static str, OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// Runs `query`, with one oid parameter or none, through a plan kept for the backend's life.
fn select_kept<R>(
    query: &'static str,
    argument: Option<pg_sys::Oid>,
    read: impl FnOnce(SpiTupleTable<'_>) -> SpiResult<R>,
) -> SpiResult<R> {
    let types: Vec<PgOid> = argument
        .iter()
        .map(|_| PgOid::BuiltIn(PgBuiltInOids::OIDOID))
        .collect();
    let arguments: Vec<_> = argument.into_iter().map(Into::into).collect();
    Spi::connect(|client| {
        PLANS.with_borrow_mut(|plans| {
            if !plans.contains_key(query) {
                plans.insert(query, client.prepare(query, &types)?.keep());
            }
            read(client.select(&plans[query], None, &arguments)?)
        })
    })
}

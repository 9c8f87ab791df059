//! What a body may leave in the session that applies it: nothing that outlives the body's
//! identity. A body runs as its registrant, but the session is the caller's, and whatever session
//! state the body leaves behind is later used, run or committed as the caller.
//!
//! - Holdable cursors, prepared statements, LISTEN and LOAD are refused: at register when a body
//!   writes them out (`parse`), and by the utility hook when a body reaches them through
//!   dynamic SQL. A holdable cursor runs its query at commit, a prepared statement whenever the
//!   session executes it, and neither is undone by a rollback.
//! - Cursors left open, temporary objects and session-level advisory locks are looked for at the
//!   end of every body and fail it: the rollback that follows drops the first two, and the locks,
//!   which no rollback releases, are released here.

use std::collections::BTreeMap;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::{SpiResult, SpiTupleTable};

use crate::call;
use crate::error::MigrateError;
use crate::place::{Place, Position};
use crate::postgres::advisory::{self, AdvisoryLock};
use crate::postgres::{backend, hook};
use crate::refuse;
use crate::store;

/// Installs the utility hook that refuses session statements while a body runs, once per
/// backend (from `_PG_init`).
pub fn init() {
    hook::install(call::body_running, |statement| {
        let (statement, hint) = refuse::session(statement);
        MigrateError::RefusedWhileRunning { statement, hint }
    });
}

/// What a body may not add to the session, in the caller's session as a run starts.
#[derive(Clone)]
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
        let session_locks = advisory::held()
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
        // control run "session-level advisory locks of a failed body kept"
        self.release_session_locks_added(&SessionState::capture()?);
        Ok(())
    }

    fn release_session_locks_added(&self, now: &SessionState) -> Vec<String> {
        let mut released = Vec::new();
        for (lock, &holds) in &now.session_locks {
            let before = self.session_locks.get(lock).copied().unwrap_or(0);
            if holds > before {
                // control run "session-level advisory locks of a body kept"
                (before..holds).for_each(|_| lock.release_session_hold());
                released.push(format!("session-level {lock}"));
            }
        }
        released
    }
}

/// The objects of the session's temporary schema; none while the session has none.
fn temporary_objects() -> Result<BTreeMap<(u32, u32), String>, MigrateError> {
    let Some(schema) = backend::temporary_schema() else {
        return Ok(BTreeMap::new());
    };
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

/// Runs `query`, with one oid parameter or none, through a plan kept for the backend's life:
/// the queries above run after every body.
fn select_kept<R>(
    query: &str,
    argument: Option<pg_sys::Oid>,
    read: impl FnOnce(SpiTupleTable<'_>) -> SpiResult<R>,
) -> SpiResult<R> {
    let arguments: Vec<_> = argument.into_iter().map(Into::into).collect();
    Spi::connect(|client| {
        read(client.select(
            &*store::kept_plan(client, query, &arguments)?,
            None,
            &arguments,
        )?)
    })
}

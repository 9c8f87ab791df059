//! What a body may not hold, and the hint each refusal gives: the statements PostgreSQL refuses
//! inside a function (they call `PreventInTransactionBlock` or need the client), those that
//! change the extension's own objects, and those whose effect outlives the body (see
//! `leftovers`).

use crate::place::Lane;
use crate::postgres::parser::{Leftover, RawStatement, SessionStatement, StatementKind};

const HINT_TRANSACTION: &str = "The runner begins and ends the transactions a migration runs in: remove transaction control statements.";
const HINT_CONCURRENTLY: &str = "A transactional migration runs inside a transaction, where CONCURRENTLY is impossible: register it with transactional => false, or leave out CONCURRENTLY.";
const HINT_VACUUM: &str = "A transactional migration runs inside a transaction, where VACUUM is impossible: register it with transactional => false; ANALYZE works in either.";
const HINT_UNNAMED_INDEX: &str = "Name the index: a build that fails or is interrupted leaves an INVALID index, which apply() drops by its name before it builds again.";
const HINT_COPY: &str = "Bodies run inside the server, where no client streams data; use INSERT, or COPY from a file on the server.";
const HINT_TOP_LEVEL: &str = "PostgreSQL runs this statement only outside a transaction block; run it from a client outside migrate.";
const HINT_OWN_OBJECTS: &str = "The extension keeps its own books: use its functions (down, register, ...), or ALTER EXTENSION and DROP EXTENSION from a client outside migrate.";
const HINT_HOLD: &str = "A holdable cursor outlives the body and runs its query at commit, as whoever commits: declare the cursor without WITH HOLD, and close it before the body ends.";
const HINT_PREPARE: &str = "A prepared statement outlives the body, and runs as whoever executes it later in the session: run the statement itself.";
const HINT_LISTEN: &str = "A LISTEN outlives the body, in the session of whoever applies the migration: listen from the application.";
const HINT_LOAD: &str = "A library a body loads stays loaded in the session of whoever applies the migration: load it with session_preload_libraries, or from a client.";

/// Whether PostgreSQL runs a statement of `kind` only at top level, outside a transaction
/// block: what a non-transactional migration may hold and a transactional one may not.
pub fn needs_top_level(kind: StatementKind) -> bool {
    matches!(kind, StatementKind::Concurrently(_) | StatementKind::Vacuum)
}

/// A refused statement, as the error names it, and the hint to give.
pub type Refusal = (&'static str, &'static str);

/// Why `statement` may not be in a body of a migration of `lane`, if it may not.
pub fn refusal(statement: &RawStatement, lane: Lane) -> Option<Refusal> {
    let transactional = lane.is_transactional();
    match statement.kind {
        StatementKind::OwnObjects(statement) => Some((statement, HINT_OWN_OBJECTS)),
        StatementKind::Session(statement) => Some(session(statement)),
        StatementKind::TransactionControl(statement) => Some((statement, HINT_TRANSACTION)),
        StatementKind::Concurrently(statement) if transactional => {
            Some((statement, HINT_CONCURRENTLY))
        }
        StatementKind::Concurrently(_) => matches!(
            statement.leftover,
            Some(Leftover::Index { index: None, .. })
        )
        .then_some((
            "CREATE INDEX CONCURRENTLY without an index name",
            HINT_UNNAMED_INDEX,
        )),
        StatementKind::Vacuum if transactional => Some(("VACUUM", HINT_VACUUM)),
        StatementKind::Vacuum => None,
        StatementKind::TopLevelOnly(statement) => Some((statement, HINT_TOP_LEVEL)),
        StatementKind::ClientCopy(statement) => Some((statement, HINT_COPY)),
        StatementKind::Other => None,
    }
}

/// The refusal of a statement that would leave state in the session, also when a running body
/// reaches it through dynamic SQL.
pub fn session(statement: SessionStatement) -> Refusal {
    match statement {
        SessionStatement::HoldableCursor => ("DECLARE CURSOR WITH HOLD", HINT_HOLD),
        SessionStatement::Prepare => ("PREPARE", HINT_PREPARE),
        SessionStatement::Listen => ("LISTEN", HINT_LISTEN),
        SessionStatement::Load => ("LOAD", HINT_LOAD),
    }
}

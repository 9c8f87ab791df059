//! The server's raw parser: the statements of a body as byte ranges, each with the kind of
//! statement it is, which is all the refusal policy (`crate::refuse`) needs to know of it.

use std::cell::Cell;
use std::ffi::{CStr, CString, c_void};

use pgrx::pg_sys::{self, NodeTag};
use pgrx::prelude::*;
use pgrx::{PgList, PgMemoryContexts};

use super::compat;
use crate::error::ErrorParts;

/// What the refusal policy tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementKind {
    /// A change to the extension's own tables, functions, schema or extension, named.
    OwnObjects(&'static str),
    /// A statement whose effect outlives the body, in the session that applies it.
    Session(SessionStatement),
    /// `BEGIN`, `COMMIT`, `SAVEPOINT`, ..., named.
    TransactionControl(&'static str),
    /// A `CONCURRENTLY` form, named: it runs only outside a transaction block.
    Concurrently(&'static str),
    /// `VACUUM`, which runs only outside a transaction block (`ANALYZE` alone is `Other`).
    Vacuum,
    /// Another statement PostgreSQL runs only outside a transaction block, named.
    TopLevelOnly(&'static str),
    /// `COPY` from or to the client, named.
    ClientCopy(&'static str),
    Other,
}

/// The statements that leave state in the session beyond the body that runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatement {
    HoldableCursor,
    Prepare,
    Listen,
    Load,
}

/// One top-level statement of a body.
pub struct RawStatement {
    /// Byte range in the body; `start` includes what follows the previous semicolon.
    pub start: usize,
    pub end: usize,
    pub kind: StatementKind,
    /// What the statement leaves half-done when it fails or is interrupted, for the
    /// concurrent forms that commit on their own.
    pub leftover: Option<Leftover>,
}

/// What a concurrent statement that did not finish leaves behind. Names are as written,
/// quoted where they are `regclass` input, and resolved only when they are looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leftover {
    /// `CREATE INDEX CONCURRENTLY`: the index it builds, INVALID until the build finishes.
    Index {
        /// The table, as `regclass` input: schema-qualified when the statement qualifies it.
        table: String,
        /// The index's name as the catalog has it; it lives in the table's schema. `None`
        /// when the statement leaves the name to the server.
        index: Option<String>,
    },
    /// `REINDEX ... CONCURRENTLY` of an index or a table (`relation`, as `regclass` input):
    /// the INVALID `_ccnew` and `_ccold` indexes an unfinished rebuild leaves on the table.
    Rebuild { relation: String, is_index: bool },
    /// `DROP INDEX CONCURRENTLY`: the indexes, as `regclass` input, gone once it finished.
    Drop(Vec<String>),
}

/// A syntax error, with where it was found.
pub struct ParseError {
    pub error: ErrorParts,
    /// 1-based character position, 0 when unknown.
    pub position: i32,
}

/// The top-level statements of `sql`, parsed in a memory context of their own.
pub fn parse(sql: &str) -> Result<Vec<RawStatement>, ParseError> {
    // Text from SQL never holds NUL; the parser still needs its own copy to be terminated.
    let c_sql = CString::new(sql).expect("text values hold no NUL bytes");
    let mut parser_memory = PgMemoryContexts::new("migrate body parser");
    // SAFETY: nothing allocated in the parser's context outlives it: statements are byte ranges
    // and kinds.
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe { parser_memory.switch_to(|_| parse_here(sql, &c_sql)) }
}

fn parse_here(sql: &str, c_sql: &CStr) -> Result<Vec<RawStatement>, ParseError> {
    let trees = raw_parse(c_sql)?;
    // SAFETY: raw_parser returns a List of RawStmt nodes, alive while the current context is.
    let trees = unsafe { PgList::<pg_sys::RawStmt>::from_pg(trees) };
    let mut statements = Vec::with_capacity(trees.len());
    for raw in trees.iter_ptr() {
        // A body may hold a hundred thousand statements: stay cancellable.
        pgrx::check_for_interrupts!();
        // SAFETY: a RawStmt of the list, whose statement is a valid raw parse tree.
        let (location, length, kind, leftover) =
            // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
            // struct its tag says it is.
            unsafe {
                (
                    (*raw).stmt_location as usize,
                    (*raw).stmt_len,
                    classify((*raw).stmt),
                    leftover((*raw).stmt),
                )
            };
        let end = if length == 0 {
            sql.len()
        } else {
            location + length as usize
        };
        statements.push(RawStatement {
            start: location,
            end,
            kind,
            leftover,
        });
    }
    Ok(statements)
}

thread_local! {
    /// Cursor position of the error being raised, caught by `remember_error_position`; pgrx keeps
    /// only the code and texts of a caught error.
    static ERROR_POSITION: Cell<i32> = const { Cell::new(0) };
}

unsafe extern "C-unwind" fn remember_error_position(_arg: *mut c_void) {
    // SAFETY: called by errfinish's walk of the context stack, while the error is current.
    ERROR_POSITION.set(unsafe { pg_sys::geterrposition() });
}

fn raw_parse(sql: &CStr) -> Result<*mut pg_sys::List, ParseError> {
    ERROR_POSITION.set(0);
    let mut callback = pg_sys::ErrorContextCallback {
        // SAFETY: reads the head of this backend's error context stack.
        previous: unsafe { pg_sys::error_context_stack },
        callback: Some(remember_error_position),
        arg: std::ptr::null_mut(),
    };
    // SAFETY: the callback lives on this frame and is unlinked below, on error and success
    // alike (the error is caught).
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe { pg_sys::error_context_stack = &mut callback };
    let result = PgTryBuilder::new(|| {
        // SAFETY: a NUL-terminated string; an error is caught just below.
        Ok(unsafe { pg_sys::raw_parser(sql.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT) })
    })
    .catch_others(|caught| {
        Err(ParseError {
            error: ErrorParts::from(&caught),
            position: ERROR_POSITION.get(),
        })
    })
    .execute();
    // SAFETY: restores the stack linked above.
    unsafe { pg_sys::error_context_stack = callback.previous };
    result
}

/// The extension's schema and name, which bodies may not change.
const SCHEMA: &CStr = c"migrate";
const EXTENSION: &CStr = c"migrations";

/// What kind of statement `node` is. A change to the extension's own objects is that first,
/// whatever else it is.
///
/// # Safety
/// `node` must be a valid raw parse tree node.
unsafe fn classify(node: *mut pg_sys::Node) -> StatementKind {
    // SAFETY: the caller's node.
    if let Some(statement) = unsafe { changes_own_objects(node) } {
        return StatementKind::OwnObjects(statement);
    }
    // SAFETY: the caller's node.
    if let Some(statement) = unsafe { session_statement(node) } {
        return StatementKind::Session(statement);
    }
    // SAFETY: each node is read as the struct its tag says it is.
    unsafe {
        match (*node).type_ {
            NodeTag::T_TransactionStmt => {
                use pg_sys::TransactionStmtKind::*;
                let statement = match (*(node as *mut pg_sys::TransactionStmt)).kind {
                    TRANS_STMT_BEGIN => "BEGIN",
                    TRANS_STMT_START => "START TRANSACTION",
                    TRANS_STMT_COMMIT => "COMMIT",
                    TRANS_STMT_ROLLBACK => "ROLLBACK",
                    TRANS_STMT_SAVEPOINT => "SAVEPOINT",
                    TRANS_STMT_RELEASE => "RELEASE SAVEPOINT",
                    TRANS_STMT_ROLLBACK_TO => "ROLLBACK TO SAVEPOINT",
                    TRANS_STMT_PREPARE => "PREPARE TRANSACTION",
                    TRANS_STMT_COMMIT_PREPARED => "COMMIT PREPARED",
                    _ => "ROLLBACK PREPARED",
                };
                StatementKind::TransactionControl(statement)
            }
            NodeTag::T_IndexStmt if (*(node as *mut pg_sys::IndexStmt)).concurrent => {
                StatementKind::Concurrently("CREATE INDEX CONCURRENTLY")
            }
            NodeTag::T_DropStmt if (*(node as *mut pg_sys::DropStmt)).concurrent => {
                StatementKind::Concurrently("DROP INDEX CONCURRENTLY")
            }
            NodeTag::T_ReindexStmt => {
                use pg_sys::ReindexObjectType::*;
                let reindex = node as *mut pg_sys::ReindexStmt;
                if option_is_on((*reindex).params, c"concurrently") {
                    StatementKind::Concurrently("REINDEX CONCURRENTLY")
                } else {
                    match (*reindex).kind {
                        REINDEX_OBJECT_SCHEMA => StatementKind::TopLevelOnly("REINDEX SCHEMA"),
                        REINDEX_OBJECT_SYSTEM => StatementKind::TopLevelOnly("REINDEX SYSTEM"),
                        REINDEX_OBJECT_DATABASE => StatementKind::TopLevelOnly("REINDEX DATABASE"),
                        _ => StatementKind::Other,
                    }
                }
            }
            NodeTag::T_VacuumStmt if (*(node as *mut pg_sys::VacuumStmt)).is_vacuumcmd => {
                StatementKind::Vacuum
            }
            NodeTag::T_AlterSystemStmt => StatementKind::TopLevelOnly("ALTER SYSTEM"),
            NodeTag::T_CreatedbStmt => StatementKind::TopLevelOnly("CREATE DATABASE"),
            NodeTag::T_DropdbStmt => StatementKind::TopLevelOnly("DROP DATABASE"),
            NodeTag::T_AlterDatabaseStmt
                if has_option(
                    (*(node as *mut pg_sys::AlterDatabaseStmt)).options,
                    c"tablespace",
                ) =>
            {
                StatementKind::TopLevelOnly("ALTER DATABASE SET TABLESPACE")
            }
            NodeTag::T_CreateTableSpaceStmt => StatementKind::TopLevelOnly("CREATE TABLESPACE"),
            NodeTag::T_DropTableSpaceStmt => StatementKind::TopLevelOnly("DROP TABLESPACE"),
            NodeTag::T_CreateSubscriptionStmt => StatementKind::TopLevelOnly("CREATE SUBSCRIPTION"),
            NodeTag::T_ClusterStmt if (*(node as *mut pg_sys::ClusterStmt)).relation.is_null() => {
                StatementKind::TopLevelOnly("CLUSTER without a table")
            }
            NodeTag::T_DiscardStmt
                if (*(node as *mut pg_sys::DiscardStmt)).target
                    == pg_sys::DiscardMode::DISCARD_ALL =>
            {
                StatementKind::TopLevelOnly("DISCARD ALL")
            }
            NodeTag::T_AlterTableStmt
                if detaches_concurrently(node as *mut pg_sys::AlterTableStmt) =>
            {
                StatementKind::Concurrently("ALTER TABLE DETACH PARTITION CONCURRENTLY")
            }
            NodeTag::T_CopyStmt => {
                let copy = node as *mut pg_sys::CopyStmt;
                match (
                    (*copy).filename.is_null() && !(*copy).is_program,
                    (*copy).is_from,
                ) {
                    (true, true) => StatementKind::ClientCopy("COPY FROM STDIN"),
                    (true, false) => StatementKind::ClientCopy("COPY TO STDOUT"),
                    _ => StatementKind::Other,
                }
            }
            _ => StatementKind::Other,
        }
    }
}

/// A name of a parse tree as `regclass` input: each part quoted.
///
/// # Safety
/// `name` must be a NUL-terminated string.
unsafe fn quoted(name: *const std::ffi::c_char) -> String {
    // SAFETY: the caller's NUL-terminated string.
    super::quote::identifier_of(unsafe { CStr::from_ptr(name) })
}

/// A relation of a parse tree as `regclass` input, schema-qualified when it is.
///
/// # Safety
/// `relation` must be a valid `RangeVar`.
unsafe fn relation_name(relation: *const pg_sys::RangeVar) -> String {
    // SAFETY: the caller's RangeVar; its names are NUL-terminated or null.
    unsafe {
        let relation = &*relation;
        if relation.schemaname.is_null() {
            quoted(relation.relname)
        } else {
            format!(
                "{}.{}",
                quoted(relation.schemaname),
                quoted(relation.relname)
            )
        }
    }
}

/// What the concurrent statement `node` leaves half-done when it does not finish.
///
/// # Safety
/// `node` must be a valid raw parse tree node.
unsafe fn leftover(node: *mut pg_sys::Node) -> Option<Leftover> {
    // SAFETY: each node is read as the struct its tag says it is; names are NUL-terminated.
    unsafe {
        match (*node).type_ {
            NodeTag::T_IndexStmt => {
                let index = &*node.cast::<pg_sys::IndexStmt>();
                (index.concurrent && !index.relation.is_null()).then(|| Leftover::Index {
                    table: relation_name(index.relation),
                    index: (!index.idxname.is_null())
                        .then(|| CStr::from_ptr(index.idxname).to_string_lossy().into_owned()),
                })
            }
            NodeTag::T_ReindexStmt => {
                use pg_sys::ReindexObjectType::{REINDEX_OBJECT_INDEX, REINDEX_OBJECT_TABLE};
                let reindex = &*node.cast::<pg_sys::ReindexStmt>();
                let concurrently = option_is_on(reindex.params, c"concurrently");
                let is_index = reindex.kind == REINDEX_OBJECT_INDEX;
                (concurrently
                    && (is_index || reindex.kind == REINDEX_OBJECT_TABLE)
                    && !reindex.relation.is_null())
                .then(|| Leftover::Rebuild {
                    relation: relation_name(reindex.relation),
                    is_index,
                })
            }
            NodeTag::T_DropStmt if (*node.cast::<pg_sys::DropStmt>()).concurrent => {
                let drop = &*node.cast::<pg_sys::DropStmt>();
                let names = PgList::<pg_sys::List>::from_pg(drop.objects)
                    .iter_ptr()
                    .map(|name| {
                        PgList::<pg_sys::Node>::from_pg(name)
                            .iter_ptr()
                            .map(|part| quoted(compat::string_node_text(part)))
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .collect();
                Some(Leftover::Drop(names))
            }
            _ => None,
        }
    }
}

/// The statements whose effect outlives any body.
///
/// # Safety
/// `node` must be a valid parse tree node, raw or analysed (utility statements are the same).
pub(super) unsafe fn session_statement(node: *mut pg_sys::Node) -> Option<SessionStatement> {
    // SAFETY: each node is read as the struct its tag says it is.
    unsafe {
        match (*node).type_ {
            NodeTag::T_DeclareCursorStmt => {
                let cursor = &*node.cast::<pg_sys::DeclareCursorStmt>();
                // control run "holdable cursors allowed"
                let holdable = cursor.options & pg_sys::CURSOR_OPT_HOLD as i32 != 0;
                holdable.then_some(SessionStatement::HoldableCursor)
            }
            NodeTag::T_PrepareStmt => Some(SessionStatement::Prepare),
            NodeTag::T_ListenStmt => Some(SessionStatement::Listen),
            NodeTag::T_LoadStmt => Some(SessionStatement::Load),
            _ => None,
        }
    }
}

/// Statements that would change the tables, functions, schema or extension whose records say
/// what is applied: only a role with rights on them (a superuser) could run them, and the books
/// would then lie. The direct forms are caught here; dynamic SQL is the registrant's own
/// responsibility, as any superuser's.
///
/// # Safety
/// `node` must be a valid raw parse tree node.
unsafe fn changes_own_objects(node: *mut pg_sys::Node) -> Option<&'static str> {
    use pg_sys::ObjectType::{OBJECT_EXTENSION, OBJECT_SCHEMA};
    const IN_SCHEMA: &str = "a change to an object of schema migrate";
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe {
        match (*node).type_ {
            NodeTag::T_InsertStmt => {
                in_schema((*(node as *mut pg_sys::InsertStmt)).relation).then_some(IN_SCHEMA)
            }
            NodeTag::T_UpdateStmt => {
                in_schema((*(node as *mut pg_sys::UpdateStmt)).relation).then_some(IN_SCHEMA)
            }
            NodeTag::T_DeleteStmt => {
                in_schema((*(node as *mut pg_sys::DeleteStmt)).relation).then_some(IN_SCHEMA)
            }
            NodeTag::T_TruncateStmt => PgList::<pg_sys::RangeVar>::from_pg(
                (*(node as *mut pg_sys::TruncateStmt)).relations,
            )
            .iter_ptr()
            .any(|relation| in_schema(relation))
            .then_some(IN_SCHEMA),
            NodeTag::T_AlterTableStmt => {
                in_schema((*(node as *mut pg_sys::AlterTableStmt)).relation).then_some(IN_SCHEMA)
            }
            NodeTag::T_RenameStmt => {
                let rename = node as *mut pg_sys::RenameStmt;
                (in_schema((*rename).relation)
                    || ((*rename).renameType == OBJECT_SCHEMA
                        && is_named((*rename).subname, SCHEMA))
                    || names_own_object((*rename).object, (*rename).renameType))
                .then_some(IN_SCHEMA)
            }
            NodeTag::T_DropStmt => {
                let drop = node as *mut pg_sys::DropStmt;
                PgList::<pg_sys::Node>::from_pg((*drop).objects)
                    .iter_ptr()
                    .any(|object| names_own_object(object, (*drop).removeType))
                    .then_some(match (*drop).removeType {
                        OBJECT_EXTENSION => "DROP EXTENSION migrations",
                        OBJECT_SCHEMA => "DROP SCHEMA migrate",
                        _ => "DROP of an object of schema migrate",
                    })
            }
            NodeTag::T_AlterExtensionStmt => is_named(
                (*(node as *mut pg_sys::AlterExtensionStmt)).extname,
                EXTENSION,
            )
            .then_some("ALTER EXTENSION migrations"),
            NodeTag::T_AlterExtensionContentsStmt => is_named(
                (*(node as *mut pg_sys::AlterExtensionContentsStmt)).extname,
                EXTENSION,
            )
            .then_some("ALTER EXTENSION migrations"),
            NodeTag::T_CreateFunctionStmt => {
                let function = node as *mut pg_sys::CreateFunctionStmt;
                ((*function).replace && qualified_in_schema((*function).funcname))
                    .then_some("CREATE OR REPLACE FUNCTION in schema migrate")
            }
            _ => None,
        }
    }
}

/// Whether `relation` is qualified with the extension's schema.
///
/// # Safety
/// `relation` must be null or a valid `RangeVar`.
unsafe fn in_schema(relation: *mut pg_sys::RangeVar) -> bool {
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe { !relation.is_null() && is_named((*relation).schemaname, SCHEMA) }
}

/// # Safety
/// `name` must be null or a NUL-terminated string.
unsafe fn is_named(name: *const std::ffi::c_char, expected: &CStr) -> bool {
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe { !name.is_null() && CStr::from_ptr(name) == expected }
}

/// Whether a list of names (`schema.object`, `schema.table.trigger`, ...) starts with the
/// extension's schema.
unsafe fn qualified_in_schema(names: *mut pg_sys::List) -> bool {
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe {
        let names = PgList::<pg_sys::Node>::from_pg(names);
        names.len() >= 2
            && names
                .get_ptr(0)
                .is_some_and(|first| string_is(first, SCHEMA))
    }
}

/// # Safety
/// `node` must be a valid node.
unsafe fn string_is(node: *mut pg_sys::Node, expected: &CStr) -> bool {
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe {
        (*node).type_ == NodeTag::T_String && is_named(compat::string_node_text(node), expected)
    }
}

/// Whether an object of a DROP or RENAME of `kind` is the extension, its schema, or an object
/// in its schema.
unsafe fn names_own_object(object: *mut pg_sys::Node, kind: pg_sys::ObjectType::Type) -> bool {
    use pg_sys::ObjectType::{OBJECT_EXTENSION, OBJECT_SCHEMA};
    if object.is_null() {
        return false;
    }
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe {
        match (*object).type_ {
            NodeTag::T_String => match kind {
                OBJECT_SCHEMA => string_is(object, SCHEMA),
                OBJECT_EXTENSION => string_is(object, EXTENSION),
                _ => false,
            },
            NodeTag::T_List => qualified_in_schema(object as *mut pg_sys::List),
            NodeTag::T_ObjectWithArgs => {
                qualified_in_schema((*(object as *mut pg_sys::ObjectWithArgs)).objname)
            }
            NodeTag::T_TypeName => qualified_in_schema((*(object as *mut pg_sys::TypeName)).names),
            _ => false,
        }
    }
}

/// The options of a `DefElem` list.
///
/// # Safety
/// `list` must be NIL or a valid list of `DefElem`s.
unsafe fn options(list: *mut pg_sys::List) -> impl Iterator<Item = *mut pg_sys::DefElem> {
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe { PgList::<pg_sys::DefElem>::from_pg(list) }
        .iter_ptr()
        .collect::<Vec<_>>()
        .into_iter()
}

/// # Safety
/// As for `options`.
unsafe fn has_option(list: *mut pg_sys::List, name: &CStr) -> bool {
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe { options(list).any(|option| CStr::from_ptr((*option).defname) == name) }
}

/// # Safety
/// As for `options`.
unsafe fn option_is_on(list: *mut pg_sys::List, name: &CStr) -> bool {
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe {
        options(list).any(|option| {
            CStr::from_ptr((*option).defname) == name && pg_sys::defGetBoolean(option)
        })
    }
}

/// # Safety
/// `alter` must be a valid `AlterTableStmt`.
unsafe fn detaches_concurrently(alter: *mut pg_sys::AlterTableStmt) -> bool {
    // SAFETY: the caller passes valid nodes (or null where checked); each is read as the
    // struct its tag says it is.
    unsafe {
        PgList::<pg_sys::AlterTableCmd>::from_pg((*alter).cmds)
            .iter_ptr()
            .any(|cmd| {
                (*cmd).subtype == pg_sys::AlterTableType::AT_DetachPartition
                    && !(*cmd).def.is_null()
                    && (*((*cmd).def as *mut pg_sys::PartitionCmd)).concurrent
            })
    }
}

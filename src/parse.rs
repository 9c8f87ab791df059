//! Reads bodies with the server's own parser: splits them into statements with their line
//! numbers, and refuses what PostgreSQL cannot run inside a function.

use std::cell::Cell;
use std::ffi::{CStr, CString, c_void};

use pgrx::PgList;
use pgrx::PgMemoryContexts;
use pgrx::pg_sys::{self, NodeTag};
use pgrx::prelude::*;

use crate::error::{ErrorParts, MigrateError, Place, Position};
use crate::{compat, leftovers};

/// One top-level statement of a body, as a byte range of the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub start: usize,
    pub end: usize,
    /// The line of the statement's first token (leading comments skipped).
    pub line: usize,
}

/// Splits `sql` into its top-level statements. Fails, naming `place` with a statement and line,
/// on a syntax error, a psql meta-command, a body without statements, or a statement that cannot
/// run inside a function.
pub fn statements(sql: &str, place: &Place) -> Result<Vec<Statement>, MigrateError> {
    // Text from SQL never holds NUL; the parser still needs its own copy to be terminated.
    let c_sql = CString::new(sql).expect("text values hold no NUL bytes");
    let mut parser_memory = PgMemoryContexts::new("migrate body parser");
    // SAFETY: nothing allocated in the parser's context outlives it: statements are byte ranges.
    let parsed = unsafe { parser_memory.switch_to(|_| split(sql, &c_sql, place)) }?;
    if parsed.is_empty() {
        return Err(MigrateError::EmptyBody {
            place: place.clone(),
        });
    }
    Ok(parsed)
}

fn split(sql: &str, c_sql: &CStr, place: &Place) -> Result<Vec<Statement>, MigrateError> {
    let trees = raw_parse(c_sql).map_err(|error| parse_failure(sql, error, place))?;
    let mut statements = Vec::new();
    let mut lines = Lines::default();
    // SAFETY: raw_parser returns a List of RawStmt nodes, alive while the current context is.
    for (index, raw) in unsafe { PgList::<pg_sys::RawStmt>::from_pg(trees) }
        .iter_ptr()
        .enumerate()
    {
        let (location, length, node) =
            unsafe { ((*raw).stmt_location as usize, (*raw).stmt_len, (*raw).stmt) };
        let end = if length == 0 {
            sql.len()
        } else {
            location + length as usize
        };
        // A body may hold a hundred thousand statements: stay cancellable.
        pgrx::check_for_interrupts!();
        let line = lines.line_at(sql, first_token(sql, location));
        let position = Position::Statement {
            number: index + 1,
            line,
        };
        if let Some((statement, hint)) = unsafe { refusal(node) } {
            return Err(MigrateError::RefusedStatement {
                statement,
                hint,
                place: place.at(position),
            });
        }
        statements.push(Statement {
            start: location,
            end,
            line,
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
    ERROR_POSITION.set(unsafe { pg_sys::geterrposition() });
}

struct ParseError {
    error: ErrorParts,
    /// 1-based character position, 0 when unknown.
    position: i32,
}

fn raw_parse(sql: &CStr) -> Result<*mut pg_sys::List, ParseError> {
    ERROR_POSITION.set(0);
    let mut callback = pg_sys::ErrorContextCallback {
        previous: unsafe { pg_sys::error_context_stack },
        callback: Some(remember_error_position),
        arg: std::ptr::null_mut(),
    };
    unsafe { pg_sys::error_context_stack = &mut callback };
    let result = PgTryBuilder::new(|| {
        Ok(unsafe { pg_sys::raw_parser(sql.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT) })
    })
    .catch_others(|caught| {
        Err(ParseError {
            error: ErrorParts::from(&caught),
            position: ERROR_POSITION.get(),
        })
    })
    .execute();
    unsafe { pg_sys::error_context_stack = callback.previous };
    result
}

fn parse_failure(sql: &str, error: ParseError, place: &Place) -> MigrateError {
    let offset = usize::try_from(error.position - 1)
        .ok()
        .and_then(|chars| sql.char_indices().nth(chars))
        .map(|(offset, _)| offset);
    let Some(offset) = offset else {
        return MigrateError::BodyFailed {
            error: error.error,
            place: place.clone(),
        };
    };
    let place = place.at(Position::Line(line_of(sql, offset)));
    if sql[offset..].starts_with('\\') {
        let command = sql[offset..]
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("\\")
            .to_owned();
        return MigrateError::MetaCommand { command, place };
    }
    MigrateError::BodyFailed {
        error: error.error,
        place,
    }
}

fn line_of(sql: &str, offset: usize) -> usize {
    Lines::default().line_at(sql, offset)
}

/// Line numbers of increasing offsets, counting each newline once: a body of a hundred thousand
/// statements is split in linear time.
#[derive(Default)]
struct Lines {
    offset: usize,
    newlines: usize,
}

impl Lines {
    fn line_at(&mut self, sql: &str, offset: usize) -> usize {
        debug_assert!(offset >= self.offset, "offsets must increase");
        self.newlines += sql.as_bytes()[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.offset = offset;
        1 + self.newlines
    }
}

/// Skips white space and comments from `offset`: a statement's location includes whatever
/// follows the previous semicolon.
fn first_token(sql: &str, mut offset: usize) -> usize {
    let bytes = sql.as_bytes();
    loop {
        while offset < bytes.len() && bytes[offset].is_ascii_whitespace() {
            offset += 1;
        }
        if bytes[offset..].starts_with(b"--") {
            while offset < bytes.len() && bytes[offset] != b'\n' {
                offset += 1;
            }
        } else if bytes[offset..].starts_with(b"/*") {
            let mut depth = 0;
            while offset < bytes.len() {
                if bytes[offset..].starts_with(b"/*") {
                    depth += 1;
                    offset += 2;
                } else if bytes[offset..].starts_with(b"*/") {
                    depth -= 1;
                    offset += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    offset += 1;
                }
            }
        } else {
            return offset;
        }
    }
}

const HINT_TRANSACTION: &str =
    "Each migration runs inside the caller's transaction; remove transaction control statements.";
const HINT_CONCURRENTLY: &str = "Each migration runs inside a transaction, where CONCURRENTLY is impossible; leave out CONCURRENTLY, or run the statement from a client outside migrate.";
const HINT_VACUUM: &str =
    "Run VACUUM from a client after migrating; ANALYZE works inside a migration.";
const HINT_COPY: &str = "Bodies run inside the server, where no client streams data; use INSERT, or COPY from a file on the server.";
const HINT_TOP_LEVEL: &str = "PostgreSQL runs this statement only outside a transaction block; run it from a client outside migrate.";
const HINT_OWN_OBJECTS: &str = "The extension keeps its own books: use its functions (down, register, ...), or ALTER EXTENSION and DROP EXTENSION from a client outside migrate.";

/// The extension's schema and name, which bodies may not change.
const SCHEMA: &CStr = c"migrate";
const EXTENSION: &CStr = c"migrations";

/// The statements PostgreSQL refuses inside a function (they call `PreventInTransactionBlock`
/// or need the client), those that change the extension's own objects, and those whose effect
/// outlives the body (`leftovers`), with the hint to give.
///
/// # Safety
/// `node` must be a valid raw parse tree node.
unsafe fn refusal(node: *mut pg_sys::Node) -> Option<(&'static str, &'static str)> {
    if let Some(statement) = unsafe { changes_own_objects(node) } {
        return Some((statement, HINT_OWN_OBJECTS));
    }
    if let Some(refused) = unsafe { leftovers::session_statement(node) } {
        return Some(refused);
    }
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
                Some((statement, HINT_TRANSACTION))
            }
            NodeTag::T_IndexStmt if (*(node as *mut pg_sys::IndexStmt)).concurrent => {
                Some(("CREATE INDEX CONCURRENTLY", HINT_CONCURRENTLY))
            }
            NodeTag::T_DropStmt if (*(node as *mut pg_sys::DropStmt)).concurrent => {
                Some(("DROP INDEX CONCURRENTLY", HINT_CONCURRENTLY))
            }
            NodeTag::T_ReindexStmt => {
                use pg_sys::ReindexObjectType::*;
                let reindex = node as *mut pg_sys::ReindexStmt;
                if option_is_on((*reindex).params, c"concurrently") {
                    Some(("REINDEX CONCURRENTLY", HINT_CONCURRENTLY))
                } else {
                    match (*reindex).kind {
                        REINDEX_OBJECT_SCHEMA => Some(("REINDEX SCHEMA", HINT_TOP_LEVEL)),
                        REINDEX_OBJECT_SYSTEM => Some(("REINDEX SYSTEM", HINT_TOP_LEVEL)),
                        REINDEX_OBJECT_DATABASE => Some(("REINDEX DATABASE", HINT_TOP_LEVEL)),
                        _ => None,
                    }
                }
            }
            NodeTag::T_VacuumStmt if (*(node as *mut pg_sys::VacuumStmt)).is_vacuumcmd => {
                Some(("VACUUM", HINT_VACUUM))
            }
            NodeTag::T_AlterSystemStmt => Some(("ALTER SYSTEM", HINT_TOP_LEVEL)),
            NodeTag::T_CreatedbStmt => Some(("CREATE DATABASE", HINT_TOP_LEVEL)),
            NodeTag::T_DropdbStmt => Some(("DROP DATABASE", HINT_TOP_LEVEL)),
            NodeTag::T_AlterDatabaseStmt
                if has_option(
                    (*(node as *mut pg_sys::AlterDatabaseStmt)).options,
                    c"tablespace",
                ) =>
            {
                Some(("ALTER DATABASE SET TABLESPACE", HINT_TOP_LEVEL))
            }
            NodeTag::T_CreateTableSpaceStmt => Some(("CREATE TABLESPACE", HINT_TOP_LEVEL)),
            NodeTag::T_DropTableSpaceStmt => Some(("DROP TABLESPACE", HINT_TOP_LEVEL)),
            NodeTag::T_CreateSubscriptionStmt => Some(("CREATE SUBSCRIPTION", HINT_TOP_LEVEL)),
            NodeTag::T_ClusterStmt if (*(node as *mut pg_sys::ClusterStmt)).relation.is_null() => {
                Some(("CLUSTER without a table", HINT_TOP_LEVEL))
            }
            NodeTag::T_DiscardStmt
                if (*(node as *mut pg_sys::DiscardStmt)).target
                    == pg_sys::DiscardMode::DISCARD_ALL =>
            {
                Some(("DISCARD ALL", HINT_TOP_LEVEL))
            }
            NodeTag::T_AlterTableStmt
                if detaches_concurrently(node as *mut pg_sys::AlterTableStmt) =>
            {
                Some((
                    "ALTER TABLE DETACH PARTITION CONCURRENTLY",
                    HINT_CONCURRENTLY,
                ))
            }
            NodeTag::T_CopyStmt => {
                let copy = node as *mut pg_sys::CopyStmt;
                match (
                    (*copy).filename.is_null() && !(*copy).is_program,
                    (*copy).is_from,
                ) {
                    (true, true) => Some(("COPY FROM STDIN", HINT_COPY)),
                    (true, false) => Some(("COPY TO STDOUT", HINT_COPY)),
                    _ => None,
                }
            }
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
unsafe fn in_schema(relation: *mut pg_sys::RangeVar) -> bool {
    unsafe { !relation.is_null() && is_named((*relation).schemaname, SCHEMA) }
}

unsafe fn is_named(name: *const std::ffi::c_char, expected: &CStr) -> bool {
    unsafe { !name.is_null() && CStr::from_ptr(name) == expected }
}

/// Whether a list of names (`schema.object`, `schema.table.trigger`, ...) starts with the
/// extension's schema.
unsafe fn qualified_in_schema(names: *mut pg_sys::List) -> bool {
    unsafe {
        let names = PgList::<pg_sys::Node>::from_pg(names);
        names.len() >= 2
            && names
                .get_ptr(0)
                .is_some_and(|first| string_is(first, SCHEMA))
    }
}

unsafe fn string_is(node: *mut pg_sys::Node, expected: &CStr) -> bool {
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

unsafe fn options(list: *mut pg_sys::List) -> impl Iterator<Item = *mut pg_sys::DefElem> {
    unsafe { PgList::<pg_sys::DefElem>::from_pg(list) }
        .iter_ptr()
        .collect::<Vec<_>>()
        .into_iter()
}

unsafe fn has_option(list: *mut pg_sys::List, name: &CStr) -> bool {
    unsafe { options(list).any(|option| CStr::from_ptr((*option).defname) == name) }
}

unsafe fn option_is_on(list: *mut pg_sys::List, name: &CStr) -> bool {
    unsafe {
        options(list).any(|option| {
            CStr::from_ptr((*option).defname) == name && pg_sys::defGetBoolean(option)
        })
    }
}

unsafe fn detaches_concurrently(alter: *mut pg_sys::AlterTableStmt) -> bool {
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

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    use super::statements;
    use crate::error::{Body, MigrateError, Place, Position};

    fn place() -> Place {
        Place {
            project: "default".into(),
            version: "1".into(),
            name: "t".into(),
            body: Body::Up,
            position: Position::Whole,
        }
    }

    fn texts(sql: &str) -> Vec<(String, usize)> {
        statements(sql, &place())
            .unwrap()
            .into_iter()
            .map(|s| (sql[s.start..s.end].trim().to_owned(), s.line))
            .collect()
    }

    #[pg_test]
    fn splits_statements_and_finds_their_lines() {
        let sql = "-- header\nCREATE TABLE a (x text);\n\n/* a\n   comment */ INSERT INTO a VALUES ('; not a split');\nDO $$ BEGIN RAISE NOTICE ';'; END $$;\nSELECT 1";
        let found = texts(sql);
        assert_eq!(found.len(), 4);
        assert_eq!(found[0].1, 2, "leading comments do not count");
        assert_eq!(
            found[1],
            (
                "/* a\n   comment */ INSERT INTO a VALUES ('; not a split')".to_owned(),
                5
            )
        );
        assert_eq!(found[2].1, 6);
        assert_eq!(
            found[3],
            ("SELECT 1".to_owned(), 7),
            "a last statement without semicolon"
        );
    }

    #[pg_test]
    fn syntax_errors_and_meta_commands_carry_their_line() {
        match statements("SELECT 1;\n\nSELEC 2;", &place()) {
            Err(MigrateError::BodyFailed { error, place }) => {
                assert_eq!(error.code, PgSqlErrorCode::ERRCODE_SYNTAX_ERROR);
                assert_eq!(place.position, Position::Line(3));
            }
            other => panic!("{other:?}"),
        }
        match statements("SELECT 1;\n  \\set x 1\n", &place()) {
            Err(MigrateError::MetaCommand { command, place }) => {
                assert_eq!(command, "\\set");
                assert_eq!(place.position, Position::Line(2));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            statements(" -- nothing\n/* at all */", &place()),
            Err(MigrateError::EmptyBody { .. })
        ));
    }

    #[pg_test]
    fn refuses_what_cannot_run_in_a_function_and_only_that() {
        for (sql, kind) in [
            (
                "CREATE INDEX CONCURRENTLY i ON t (x)",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "DROP INDEX CONCURRENTLY IF EXISTS i",
                "DROP INDEX CONCURRENTLY",
            ),
            ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
            ("REINDEX DATABASE d", "REINDEX DATABASE"),
            ("REINDEX SYSTEM d", "REINDEX SYSTEM"),
            ("VACUUM FULL", "VACUUM"),
            ("ALTER SYSTEM RESET ALL", "ALTER SYSTEM"),
            (
                "ALTER DATABASE d SET TABLESPACE ts",
                "ALTER DATABASE SET TABLESPACE",
            ),
            (
                "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
                "CREATE SUBSCRIPTION",
            ),
            ("ABORT", "ROLLBACK"),
            ("COMMIT PREPARED 'x'", "COMMIT PREPARED"),
            ("ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED"),
            (
                "DROP EXTENSION IF EXISTS migrations CASCADE",
                "DROP EXTENSION migrations",
            ),
            ("DROP SCHEMA x, migrate CASCADE", "DROP SCHEMA migrate"),
            (
                "DROP TABLE public.t, migrate.events",
                "DROP of an object of schema migrate",
            ),
            (
                "DROP FUNCTION migrate.status(text)",
                "DROP of an object of schema migrate",
            ),
            (
                "DROP TRIGGER t ON migrate.events",
                "DROP of an object of schema migrate",
            ),
            (
                "ALTER EXTENSION migrations UPDATE",
                "ALTER EXTENSION migrations",
            ),
            (
                "ALTER EXTENSION migrations DROP TABLE migrate.events",
                "ALTER EXTENSION migrations",
            ),
            (
                "CREATE OR REPLACE FUNCTION migrate.status(text) RETURNS int LANGUAGE sql AS 'SELECT 1'",
                "CREATE OR REPLACE FUNCTION in schema migrate",
            ),
            (
                "TRUNCATE t, migrate.events CASCADE",
                "a change to an object of schema migrate",
            ),
            (
                "DELETE FROM migrate.applied",
                "a change to an object of schema migrate",
            ),
            (
                "UPDATE migrate.migrations SET up_sql = ''",
                "a change to an object of schema migrate",
            ),
            (
                "INSERT INTO migrate.applied SELECT * FROM x",
                "a change to an object of schema migrate",
            ),
            (
                "ALTER TABLE migrate.applied DROP CONSTRAINT applied_pkey",
                "a change to an object of schema migrate",
            ),
            (
                "ALTER TABLE migrate.events RENAME TO e",
                "a change to an object of schema migrate",
            ),
            (
                "ALTER SCHEMA migrate RENAME TO m",
                "a change to an object of schema migrate",
            ),
            (
                "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
                "DECLARE CURSOR WITH HOLD",
            ),
            ("PREPARE p AS SELECT 1", "PREPARE"),
            ("LISTEN channel", "LISTEN"),
            ("LOAD 'auto_explain'", "LOAD"),
        ] {
            match statements(&format!("SELECT 1;\n{sql}"), &place()) {
                Err(MigrateError::RefusedStatement {
                    statement, place, ..
                }) => {
                    assert_eq!(statement, kind);
                    assert_eq!(place.position, Position::Statement { number: 2, line: 2 });
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
        for sql in [
            "REINDEX (CONCURRENTLY false) TABLE t",
            "REINDEX TABLE t",
            "ANALYZE t",
            "CLUSTER t",
            "ALTER DATABASE d SET work_mem = '8MB'",
            "ALTER TABLE p DETACH PARTITION p1",
            "DISCARD PLANS",
            "COPY t FROM '/tmp/file'",
            "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
            "CREATE INDEX i ON t (x)",
            // Session state the body itself ends, and messages sent at commit.
            "DECLARE c CURSOR FOR SELECT 1",
            "CLOSE c",
            "UNLISTEN *",
            "NOTIFY channel, 'reload'",
            "CREATE TEMP TABLE scratch (x int)",
            // Reading the books, granting on them, and names that only look alike are fine.
            "SELECT * FROM migrate.status()",
            "GRANT EXECUTE ON FUNCTION migrate.status(text) TO reader",
            "DELETE FROM app.migrate",
            "DROP TABLE migrate",
            "DROP SCHEMA migrations",
            "DROP EXTENSION pgcrypto",
            "CREATE FUNCTION migrate_helper() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "ALTER TABLE app.events ADD COLUMN migrate int",
        ] {
            assert!(statements(sql, &place()).is_ok(), "{sql}");
        }
    }
}

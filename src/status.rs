//! `migrate.status()`: its query is `sql/status.sql`, planned once per backend.

use std::ffi::CStr;

use pgrx::pg_sys;

use crate::postgres::kept_query::KeptQuery;

const QUERY: &CStr =
    match CStr::from_bytes_with_nul(concat!(include_str!("../sql/status.sql"), "\0").as_bytes()) {
        Ok(query) => query,
        Err(_) => panic!("sql/status.sql holds a NUL byte"),
    };

thread_local! {
    static STATUS: KeptQuery = const { KeptQuery::new(QUERY) };
}

/// Returns the rows of `project` (NULL: every project) as the result set of `fcinfo`'s call.
pub fn rows(fcinfo: pg_sys::FunctionCallInfo, project: Option<&str>) {
    STATUS.with(|query| query.return_rows(fcinfo, project));
}

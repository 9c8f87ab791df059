//! Names and values quoted by the server's own rules, for the SQL the extension writes.

use std::ffi::{CStr, CString};

use pgrx::pg_sys;

/// `name` as an identifier: bare when the server would read it back unchanged, else
/// double-quoted (keywords included).
pub fn identifier(name: &str) -> String {
    identifier_of(&CString::new(name).expect("a catalog name has no NUL"))
}

/// The same for a name the server handed over.
pub fn identifier_of(name: &CStr) -> String {
    // SAFETY: a NUL-terminated string; quote_identifier returns it or a palloc'd quoted copy.
    unsafe {
        CStr::from_ptr(pg_sys::quote_identifier(name.as_ptr()))
            .to_string_lossy()
            .into_owned()
    }
}

/// `value` as a string literal, read back the same whatever standard_conforming_strings says.
pub fn literal(value: &str) -> String {
    let value = CString::new(value).expect("a catalog text has no NUL");
    // SAFETY: a NUL-terminated string; quote_literal_cstr returns a palloc'd quoted copy.
    unsafe {
        CStr::from_ptr(pg_sys::quote_literal_cstr(value.as_ptr()))
            .to_string_lossy()
            .into_owned()
    }
}

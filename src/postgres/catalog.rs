//! Lookups in the system catalog through its caches: no query to parse and plan, which is most
//! of what a new backend's first call pays for, and every start-up is a new backend's first call.

use std::ffi::CStr;

use pgrx::pg_sys;

/// The relation `schema.name`, if there is one.
pub fn relation(schema: &CStr, name: &CStr) -> Option<pg_sys::Oid> {
    // SAFETY: lookups by name with missing_ok: each returns InvalidOid when nothing is found.
    let oid = unsafe {
        let namespace = pg_sys::get_namespace_oid(schema.as_ptr(), true);
        if namespace == pg_sys::InvalidOid {
            return None;
        }
        pg_sys::get_relname_relid(name.as_ptr(), namespace)
    };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

/// Whether `relation` has a column `name` that is not dropped.
pub fn has_column(relation: pg_sys::Oid, name: &CStr) -> bool {
    // SAFETY: a cache lookup by key; it ignores dropped columns and finds nothing for an
    // unknown relation.
    unsafe { pg_sys::SearchSysCacheExistsAttName(relation, name.as_ptr()) }
}

/// The role that owns the extension, and so its tables.
pub fn extension_owner() -> pg_sys::Oid {
    // SAFETY: pg_extension is scanned by its name index under AccessShareLock, as
    // get_extension_oid() does, and the tuple is read before the scan ends.
    let owner = unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let extensions = pg_sys::table_open(pg_sys::ExtensionRelationId, lock);
        let mut key = pg_sys::ScanKeyData::default();
        pg_sys::ScanKeyInit(
            &mut key,
            pg_sys::Anum_pg_extension_extname as pg_sys::AttrNumber,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::Oid::from(pg_sys::F_NAMEEQ),
            pg_sys::Datum::from(c"migrations".as_ptr()),
        );
        let scan = pg_sys::systable_beginscan(
            extensions,
            pg_sys::Oid::from(pg_sys::ExtensionNameIndexId),
            true,
            std::ptr::null_mut(),
            1,
            &mut key,
        );
        let tuple = pg_sys::systable_getnext(scan);
        let owner = (!tuple.is_null()).then(|| {
            (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_extension>(tuple)).extowner
        });
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(extensions, lock);
        owner
    };
    owner.expect("the extension is installed while its functions run")
}

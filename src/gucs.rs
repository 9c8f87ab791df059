//! Settings, all under the reserved prefix `migrate.`.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// `migrate.allow_out_of_order`: apply pending migrations older than the newest applied one.
pub static ALLOW_OUT_OF_ORDER: GucSetting<bool> = GucSetting::<bool>::new(false);

pub fn init() {
    GucRegistry::define_bool_guc(
        c"migrate.allow_out_of_order",
        c"Lets migrate.up() apply pending migrations older than the newest applied one.",
        c"Off by default: up() then stops with an error that lists such migrations.",
        &ALLOW_OUT_OF_ORDER,
        GucContext::Userset,
        GucFlags::default(),
    );
    // SAFETY: called once from _PG_init with a static name.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"migrate".as_ptr()) };
}

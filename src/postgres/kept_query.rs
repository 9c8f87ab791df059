//! A set-returning function whose rows are those of one query, planned once per backend, written
//! straight into the function's result set, as PL/pgSQL's `RETURN QUERY` does. Before
//! PostgreSQL 18 a SQL function plans its body on every call, and PL/pgSQL cannot declare a
//! function whose parameter and result column share a name (`status(project)` has both).

use std::cell::Cell;
use std::ffi::{CStr, c_char};

use pgrx::pg_sys;
use pgrx::prelude::*;

// tstoreReceiver.h, which pgrx does not bind; the same six arguments from 14 to 18.
unsafe extern "C-unwind" {
    fn SetTuplestoreDestReceiverParams(
        receiver: *mut pg_sys::DestReceiver,
        store: *mut pg_sys::Tuplestorestate,
        context: pg_sys::MemoryContext,
        detoast: bool,
        target: pg_sys::TupleDesc,
        map_failure: *const c_char,
    );
}

/// A read-only query of one text parameter, `$1`. The plan cache plans it again when what it
/// reads changes (a table altered, the extension dropped and created again).
pub struct KeptQuery {
    sql: &'static CStr,
    plan: Cell<pg_sys::SPIPlanPtr>,
}

impl KeptQuery {
    pub const fn new(sql: &'static CStr) -> Self {
        Self {
            sql,
            plan: Cell::new(std::ptr::null_mut()),
        }
    }

    /// Makes the query's rows, with `argument` as `$1`, the result set of the set-returning
    /// function `fcinfo` calls; they are converted to its declared columns, or refused.
    pub fn return_rows(&self, fcinfo: pg_sys::FunctionCallInfo, argument: Option<&str>) {
        let result = ResultSet::materialized(fcinfo);
        // SAFETY: SPI is connected and finished here, around the one execution; the plan is
        // prepared under SPI and kept (moved out of SPI's memory) before it is stored; the
        // parameter list and the text datum live in SPI's memory until SPI_finish, after the
        // execution; the receiver writes into the result set's store, in the memory of the query
        // that called the function, which outlives this call; the receiver is destroyed before
        // SPI_finish, and SetTuplestoreDestReceiverParams only sets the receiver's fields.
        unsafe {
            if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
                error!("could not connect to SPI");
            }
            let mut plan = self.plan.get();
            if plan.is_null() {
                let mut types = [pg_sys::TEXTOID];
                plan = pg_sys::SPI_prepare(self.sql.as_ptr(), 1, types.as_mut_ptr());
                if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
                    error!("could not prepare the query of a set-returning function");
                }
                self.plan.set(plan);
            }
            let parameters = pg_sys::makeParamList(1);
            let parameter = &mut *(*parameters).params.as_mut_ptr();
            parameter.value = argument.into_datum().unwrap_or(pg_sys::Datum::from(0));
            parameter.isnull = argument.is_none();
            parameter.pflags = pg_sys::PARAM_FLAG_CONST as u16;
            parameter.ptype = pg_sys::TEXTOID;

            let receiver = pg_sys::CreateDestReceiver(pg_sys::CommandDest::DestTuplestore);
            SetTuplestoreDestReceiverParams(
                receiver,
                result.store,
                result.memory,
                false,
                result.columns,
                c"structure of query does not match function result type".as_ptr(),
            );
            let options = pg_sys::SPIExecuteOptions {
                params: parameters,
                read_only: true,
                dest: receiver,
                ..Default::default()
            };
            let code = pg_sys::SPI_execute_plan_extended(plan, &options);
            if code != pg_sys::SPI_OK_SELECT as i32 {
                error!("the query of a set-returning function failed: SPI code {code}");
            }
            if let Some(destroy) = (*receiver).rDestroy {
                destroy(receiver);
            }
            pg_sys::SPI_finish();
        }
    }
}

/// The result set of a set-returning function's call, in materialize mode: the store its rows go
/// into, its declared columns, and the memory both live in.
struct ResultSet {
    store: *mut pg_sys::Tuplestorestate,
    columns: pg_sys::TupleDesc,
    memory: pg_sys::MemoryContext,
}

impl ResultSet {
    /// Makes the result set of the call `fcinfo` ready for rows, or refuses a call whose caller
    /// cannot take a set.
    fn materialized(fcinfo: pg_sys::FunctionCallInfo) -> Self {
        // SAFETY: fcinfo is the call's own; resultinfo is read as a ReturnSetInfo only once its
        // node tag says it is one; the store and the copy of the columns are made in the calling
        // query's memory, which outlives the call, as the executor reads the store after it
        // returns.
        unsafe {
            let result = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
            let materialize = pg_sys::SetFunctionReturnMode::SFRM_Materialize as i32;
            if result.is_null()
                || (*result).type_ != pg_sys::NodeTag::T_ReturnSetInfo
                || (*result).allowedModes & materialize == 0
            {
                ereport!(
                    ERROR,
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    "set-valued function called in context that cannot accept a set"
                );
            }
            let mut columns: pg_sys::TupleDesc = std::ptr::null_mut();
            if pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut columns)
                != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE
            {
                error!("return type must be a row type");
            }
            let memory = (*(*result).econtext).ecxt_per_query_memory;
            let previous = pg_sys::MemoryContextSwitchTo(memory);
            let random_access = (*result).allowedModes
                & pg_sys::SetFunctionReturnMode::SFRM_Materialize_Random as i32
                != 0;
            let store = pg_sys::tuplestore_begin_heap(random_access, false, pg_sys::work_mem);
            let columns = pg_sys::CreateTupleDescCopy(columns);
            pg_sys::MemoryContextSwitchTo(previous);
            (*result).returnMode = pg_sys::SetFunctionReturnMode::SFRM_Materialize;
            (*result).setResult = store;
            (*result).setDesc = columns;
            Self {
                store,
                columns,
                memory,
            }
        }
    }
}

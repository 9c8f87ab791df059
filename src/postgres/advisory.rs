//! The advisory locks this backend holds, read from its own entries in the shared lock table,
//! and how many of their holds are at session level.

use std::fmt;

use pgrx::pg_sys;

use super::{backend, compat};

/// An advisory lock this backend holds, in the terms of `pg_locks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AdvisoryLock {
    classid: u32,
    objid: u32,
    /// 1 for a bigint key, 2 for a pair of integer keys.
    objsubid: u16,
    exclusive: bool,
}

impl AdvisoryLock {
    fn tag(&self) -> pg_sys::LOCKTAG {
        pg_sys::LOCKTAG {
            locktag_field1: backend::database().to_u32(),
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
    pub fn session_holds(&self) -> i64 {
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

    pub fn release_session_hold(&self) {
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
pub fn held() -> Vec<AdvisoryLock> {
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

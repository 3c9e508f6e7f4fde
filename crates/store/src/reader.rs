//! Reads that do not wait for the disk: a second, read-only connection (WAL mode lets it read
//! the last committed state while the writer thread commits), used by the API's reads of calls.
//!
//! A read must still see what was queued behind for its call ([`crate::Store::write_behind`]:
//! the dial path answers before its row is committed). So writes behind are counted per call
//! until committed, and a read of a call with writes in flight — or a listing while any are in
//! flight — goes through the writer's queue as before, behind them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use crate::StoreError;

/// Writes behind not yet committed, by call.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    by_call: Mutex<HashMap<Uuid, u32>>,
}

impl InFlight {
    pub(crate) fn begin(&self, call_id: Uuid) {
        if let Ok(mut m) = self.by_call.lock() {
            *m.entry(call_id).or_default() += 1;
        }
    }

    pub(crate) fn end(&self, call_id: Uuid) {
        if let Ok(mut m) = self.by_call.lock() {
            if let Some(n) = m.get_mut(&call_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&call_id);
                }
            }
        }
    }

    /// Whether a read of `call` (None: of any call) could miss a write queued before it. A
    /// poisoned lock answers yes: the queue is always right, only slower.
    pub(crate) fn pending(&self, call: Option<Uuid>) -> bool {
        match self.by_call.lock() {
            Ok(m) => match call {
                Some(id) => m.contains_key(&id),
                None => !m.is_empty(),
            },
            Err(_) => true,
        }
    }
}

/// The read-only connection (None for an in-memory store: a second connection would see
/// another database) and the writes in flight.
#[derive(Clone, Default)]
pub(crate) struct Reader {
    conn: Option<Arc<Mutex<Connection>>>,
    pub(crate) in_flight: Arc<InFlight>,
}

impl Reader {
    /// Opens the read-only connection on the database the writer has migrated.
    pub(crate) fn open(path: &Path) -> Result<Reader, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // A checkpoint or WAL recovery can hold a reader back briefly.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Reader {
            conn: Some(Arc::new(Mutex::new(conn))),
            in_flight: Arc::default(),
        })
    }

    /// The connection to read `call` (None: any call) on, when the read needs nothing from
    /// the writer's queue.
    pub(crate) fn for_read(&self, call: Option<Uuid>) -> Option<Arc<Mutex<Connection>>> {
        let conn = self.conn.as_ref()?;
        (!self.in_flight.pending(call)).then(|| conn.clone())
    }
}

/// Runs `f` on the read-only connection, on the blocking pool.
pub(crate) async fn read<T, F>(conn: Arc<Mutex<Connection>>, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut conn = conn
            .lock()
            .map_err(|_| StoreError::Task("the store's reader lock is poisoned".into()))?;
        f(&mut conn)
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))?
}

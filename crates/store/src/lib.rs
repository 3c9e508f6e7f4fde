//! Calls, call events, the webhook outbox and what a restart repairs after a crash (live SIP
//! dialogs, open recordings) in SQLite, with migrations.
//!
//! [`Store`] is a cheap-to-clone handle on one SQLite connection (WAL mode). Every method is
//! async and runs its SQLite work on tokio's blocking pool, so callers never block a runtime
//! worker. The schema is migrated at open (see [`SCHEMA_VERSION`]).
//!
//! The webhook outbox keeps each job until it is delivered or given up. Jobs of one call are
//! handed out strictly in order: [`Store::due_webhooks`] only ever returns the oldest pending
//! job of a call, so the next one becomes due once that one is delivered or given up.

mod crash;
mod leg;
mod schema;

pub use crash::OpenRecording;
pub use leg::leg_type_name;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

pub use schema::SCHEMA_VERSION;

mod group_commit;
mod reader;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("schema migration to version {version} failed: {source}")]
    Migration {
        version: u32,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the database has schema version {found}, newer than this build supports ({supported})"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("schema: {0}")]
    Schema(String),
    #[error("bad cursor: {0}")]
    BadCursor(String),
    #[error("no call with id {0}")]
    CallNotFound(Uuid),
    #[error("no webhook job with id {0}")]
    WebhookNotFound(i64),
    #[error("corrupt row: column {column}: {detail}")]
    Corrupt {
        column: &'static str,
        detail: String,
    },
    #[error("store worker task failed: {0}")]
    Task(String),
}

/// One call, as persisted on every status change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallRecord {
    pub id: Uuid,
    pub project_id: Uuid,
    pub node_id: Uuid,
    pub segment_id: Uuid,
    pub event_channel: String,
    pub from: String,
    pub to: String,
    pub direction: String,
    pub leg_type: String,
    pub url: Option<String>,
    pub status: String,
    pub parent_id: Option<Uuid>,
    pub created_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub end_reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub billing_ms: Option<i64>,
    pub status_url: Option<String>,
    /// JSON array text, e.g. `["ringing","ended"]`.
    pub status_events: String,
    /// JSON text.
    pub dial_request: String,
    pub sip_call_id: Option<String>,
    /// JSON text of the call's `control::MediaReport`, once its media ran. Read with the row;
    /// written only by [`Store::set_media_stats`] (insert and update leave it alone).
    pub media_stats: Option<String>,
    /// Whether the far end holds the call. Read with the row; written only by
    /// [`Store::set_held`].
    pub held: bool,
}

/// A webhook to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub call_id: Option<Uuid>,
    pub url: String,
    pub body: Vec<u8>,
    /// Also the time of its first attempt.
    pub created_at_ms: i64,
}

/// A webhook the worker gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedWebhook {
    pub id: i64,
    pub call_id: Option<Uuid>,
    pub url: String,
    pub attempts: u32,
    pub created_at_ms: i64,
    pub last_attempt_at_ms: i64,
    pub last_error: String,
}

/// A pending webhook handed to the delivery worker.
#[derive(Debug, Clone)]
pub struct WebhookJob {
    pub id: i64,
    pub call_id: Option<Uuid>,
    pub url: String,
    pub body: Vec<u8>,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_at_ms: i64,
}

/// One entry of a call's event log.
#[derive(Debug, Clone)]
pub struct CallEvent {
    pub call_id: Uuid,
    pub at_ms: i64,
    pub kind: String,
    pub detail: String,
}

/// A handle on the store. Cheap to clone; all clones share one connection, owned by one
/// writer thread ([`group_commit`]), and a read-only one for the API's reads ([`reader`]).
#[derive(Clone)]
pub struct Store {
    jobs: std::sync::mpsc::Sender<group_commit::Job>,
    reader: reader::Reader,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

const CALL_COLUMNS: &str = "id, project_id, node_id, segment_id, event_channel, from_addr, \
    to_addr, direction, leg_type, url, status, parent_id, created_at_ms, answered_at_ms, \
    ended_at_ms, end_reason, duration_ms, billing_ms, status_url, status_events, dial_request, \
    sip_call_id, media_stats, held";

const INSERT_CALL: &str = "INSERT INTO calls (id, project_id, node_id, segment_id, \
    event_channel, from_addr, to_addr, direction, leg_type, url, status, parent_id, \
    created_at_ms, answered_at_ms, ended_at_ms, end_reason, duration_ms, billing_ms, status_url, \
    status_events, dial_request, sip_call_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
    ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)";

const UPDATE_CALL: &str = "UPDATE calls SET project_id = ?2, node_id = ?3, segment_id = ?4, \
    event_channel = ?5, from_addr = ?6, to_addr = ?7, direction = ?8, leg_type = ?9, url = ?10, \
    status = ?11, parent_id = ?12, created_at_ms = ?13, answered_at_ms = ?14, ended_at_ms = ?15, \
    end_reason = ?16, duration_ms = ?17, billing_ms = ?18, status_url = ?19, status_events = ?20, \
    dial_request = ?21, sip_call_id = ?22 WHERE id = ?1";

/// A pending job is the head of its call when no older job of that call is still pending.
const PENDING_HEAD: &str = "w.state = 'pending' AND (w.call_id IS NULL OR w.id = \
    (SELECT MIN(p.id) FROM webhook_outbox p WHERE p.call_id = w.call_id AND p.state = 'pending'))";

impl Store {
    /// Opens (creating if needed) the database file and migrates it to [`SCHEMA_VERSION`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let opened = tokio::task::spawn_blocking(move || {
            let mut conn = Connection::open(&path).map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
            schema::configure(&conn)?;
            schema::migrate(&mut conn)?;
            owner_only(&path);
            let reader = reader::Reader::open(&path)?;
            Ok::<_, StoreError>((conn, reader))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        let (conn, reader) = opened;
        Ok(Store {
            jobs: group_commit::start(conn)?,
            reader,
        })
    }

    /// A fresh private in-memory database, for tests.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let conn = tokio::task::spawn_blocking(|| -> Result<Connection, StoreError> {
            let mut conn = Connection::open_in_memory()?;
            schema::configure(&conn)?;
            schema::migrate(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(Store {
            jobs: group_commit::start(conn)?,
            reader: reader::Reader::default(),
        })
    }

    /// Queues `f` for the next group commit on the writer thread; `done` gets its result once
    /// that transaction is on disk (or `f`'s error, its writes undone). False (and `done` is
    /// never called) when the writer thread has stopped.
    fn submit<T, F, D>(&self, f: F, done: D) -> bool
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        D: FnOnce(Result<T, StoreError>) + Send + 'static,
    {
        let job: group_commit::Job = Box::new(move |conn| {
            let out = f(conn);
            let failed = out.is_err();
            let reply: group_commit::Reply = Box::new(move |committed| {
                done(match committed {
                    Ok(()) => out,
                    Err(e) => out.and(Err(e)),
                })
            });
            (failed, reply)
        });
        self.jobs.send(job).is_ok()
    }

    /// Runs `f` with the connection on the writer thread, inside the next group commit; the
    /// answer comes once that transaction is on disk (or `f`'s error, its writes undone).
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.submit(f, move |result| {
            let _ = tx.send(result);
        });
        if !sent {
            return Err(StoreError::Task(
                "the store's writer thread has stopped".into(),
            ));
        }
        rx.await
            .map_err(|_| StoreError::Task("the store's writer thread dropped a job".into()))?
    }

    /// Queues `f` without waiting: it is in the next group commit, ahead of anything queued
    /// after it (so later reads and writes of the call see it). A failure is logged. For the
    /// writes before a call's INVITE (docs/call-lifecycle.md, "Durability").
    fn write_behind<F>(&self, call_id: Uuid, what: &'static str, f: F)
    where
        F: FnOnce(&mut Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let in_flight = self.reader.in_flight.clone();
        in_flight.begin(call_id);
        let sent = self.submit(f, move |result| {
            in_flight.end(call_id);
            if let Err(e) = result {
                tracing::error!(%call_id, error = %e, "the call's {what} could not be stored");
            }
        });
        if !sent {
            self.reader.in_flight.end(call_id);
            tracing::error!(%call_id, "the call's {what} could not be stored: the store's writer thread has stopped");
        }
    }

    /// Runs the read `f` without waiting for the writer's commits when nothing queued behind
    /// for `call` (None: for any call) is still in flight; else behind those writes, on the
    /// writer thread ([`reader`]).
    async fn read<T, F>(&self, call: Option<Uuid>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match self.reader.for_read(call) {
            Some(conn) => reader::read(conn, f).await,
            None => self.with_conn(f).await,
        }
    }

    /// The schema version recorded in the database.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.with_conn(|conn| schema::current_version(conn)).await
    }

    // ---------------------------------------------------------------------------------------
    // Calls
    // ---------------------------------------------------------------------------------------

    pub async fn insert_call(&self, r: CallRecord) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            execute_call(conn, INSERT_CALL, &r)?;
            Ok(())
        })
        .await
    }

    /// Queues the insert of a new call without waiting for it ([`Store::write_behind`]): for
    /// the dial path, which answers without waiting for the disk.
    pub fn insert_call_behind(&self, r: CallRecord) {
        self.write_behind(r.id, "record", move |conn| {
            execute_call(conn, INSERT_CALL, &r).map(|_| ())
        });
    }

    /// [`Store::update_call`] without waiting ([`Store::write_behind`]): the status a new
    /// outbound call has before its INVITE.
    pub fn update_call_behind(&self, r: CallRecord) {
        self.write_behind(r.id, "status", move |conn| update_call_row(conn, &r));
    }

    /// Replaces the whole row of the call `r.id`; [`StoreError::CallNotFound`] if there is none.
    pub async fn update_call(&self, r: CallRecord) -> Result<(), StoreError> {
        self.with_conn(move |conn| update_call_row(conn, &r)).await
    }

    /// Stores the call's media statistics (JSON text); [`StoreError::CallNotFound`] if there is
    /// no such call.
    pub async fn set_media_stats(&self, id: Uuid, json: String) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            match conn.execute(
                "UPDATE calls SET media_stats = ?2 WHERE id = ?1",
                params![id.to_string(), json],
            )? {
                0 => Err(StoreError::CallNotFound(id)),
                _ => Ok(()),
            }
        })
        .await
    }

    /// Stores whether the far end holds the call; [`StoreError::CallNotFound`] if there is no
    /// such call.
    pub async fn set_held(&self, id: Uuid, held: bool) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            match conn.execute(
                "UPDATE calls SET held = ?2 WHERE id = ?1",
                params![id.to_string(), held],
            )? {
                0 => Err(StoreError::CallNotFound(id)),
                _ => Ok(()),
            }
        })
        .await
    }

    /// The call `id` of `project_id`; another project's call is `None`.
    pub async fn get_call(
        &self,
        project_id: Uuid,
        id: Uuid,
    ) -> Result<Option<CallRecord>, StoreError> {
        self.read(Some(id), move |conn| {
            let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?1 AND project_id = ?2");
            let row = conn
                .query_row(
                    &sql,
                    params![id.to_string(), project_id.to_string()],
                    |row| Ok(RawCall::from_row(row)),
                )
                .optional()?;
            row.map(|raw| raw?.into_record()).transpose()
        })
        .await
    }

    /// A page of the project's calls, newest first (`created_at_ms` descending, then `id`
    /// descending), optionally only those with `status`. `cursor` is the opaque value a
    /// previous page returned; the returned cursor is `Some` when more rows follow.
    pub async fn list_calls(
        &self,
        project_id: Uuid,
        status: Option<&str>,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<CallRecord>, Option<String>), StoreError> {
        let after = cursor.as_deref().map(parse_cursor).transpose()?;
        let status = status.map(str::to_owned);
        let limit = limit.max(1);
        self.read(None, move |conn| {
            let mut sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ?1");
            if status.is_some() {
                sql.push_str(" AND status = ?2");
            }
            if after.is_some() {
                sql.push_str(" AND (created_at_ms < ?3 OR (created_at_ms = ?3 AND id < ?4))");
            }
            sql.push_str(" ORDER BY created_at_ms DESC, id DESC LIMIT ?5");
            let (after_ms, after_id) = match after {
                Some((ms, id)) => (Some(ms), Some(id.to_string())),
                None => (None, None),
            };
            // One extra row tells whether another page follows.
            let fetch = i64::try_from(limit)
                .unwrap_or(i64::MAX - 1)
                .saturating_add(1);
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(
                params![project_id.to_string(), status, after_ms, after_id, fetch],
                |row| Ok(RawCall::from_row(row)),
            )?;
            let mut records = Vec::new();
            for raw in rows {
                records.push(raw??.into_record()?);
            }
            let next = if records.len() > limit {
                records.truncate(limit);
                records
                    .last()
                    .map(|r| format!("{}:{}", r.created_at_ms, r.id))
            } else {
                None
            };
            Ok((records, next))
        })
        .await
    }

    pub async fn append_call_event(
        &self,
        call_id: Uuid,
        at_ms: i64,
        kind: &str,
        detail_json: String,
    ) -> Result<(), StoreError> {
        let kind = kind.to_owned();
        self.with_conn(move |conn| insert_call_event(conn, call_id, at_ms, &kind, &detail_json))
            .await
    }

    /// [`Store::append_call_event`] without waiting ([`Store::write_behind`]).
    pub fn append_call_event_behind(
        &self,
        call_id: Uuid,
        at_ms: i64,
        kind: &str,
        detail_json: String,
    ) {
        let kind = kind.to_owned();
        self.write_behind(call_id, "event", move |conn| {
            insert_call_event(conn, call_id, at_ms, &kind, &detail_json)
        });
    }

    /// The call's events in the order they were appended.
    pub async fn call_events(&self, call_id: Uuid) -> Result<Vec<CallEvent>, StoreError> {
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT at_ms, kind, detail FROM call_events WHERE call_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![call_id.to_string()], |row| {
                Ok(CallEvent {
                    call_id,
                    at_ms: row.get(0)?,
                    kind: row.get(1)?,
                    detail: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Calls still live (`ended_at_ms` unset) by status, for the operator's `/metrics`
    /// (the partial index `calls_live` keeps it to the live rows).
    pub async fn live_calls_by_status(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(None, |conn| {
            let mut stmt = conn.prepare(
                "SELECT status, COUNT(*) FROM calls WHERE ended_at_ms IS NULL \
                 GROUP BY status ORDER BY status",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (status, n) = row?;
                out.push((status, u64::try_from(n).unwrap_or(0)));
            }
            Ok(out)
        })
        .await
    }

    /// Ends every call still live (`ended_at_ms` unset): status `ended`, `end_reason`,
    /// `ended_at_ms = now_ms`, and for answered calls `duration_ms = billing_ms = now_ms -
    /// answered_at_ms`. Returns the updated records.
    pub async fn mark_live_calls_ended(
        &self,
        end_reason: &str,
        now_ms: i64,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let end_reason = end_reason.to_owned();
        self.with_conn(move |conn| {
            // A savepoint: the job already runs inside the writer's transaction.
            let tx = conn.savepoint()?;
            let mut records = Vec::new();
            {
                let sql = format!(
                    "SELECT {CALL_COLUMNS} FROM calls WHERE ended_at_ms IS NULL \
                     ORDER BY created_at_ms, id"
                );
                let mut stmt = tx.prepare(&sql)?;
                let rows = stmt.query_map([], |row| Ok(RawCall::from_row(row)))?;
                for raw in rows {
                    records.push(raw??.into_record()?);
                }
            }
            for r in &mut records {
                r.status = "ended".to_owned();
                r.end_reason = Some(end_reason.clone());
                r.ended_at_ms = Some(now_ms);
                if let Some(answered) = r.answered_at_ms {
                    let d = now_ms.saturating_sub(answered).max(0);
                    r.duration_ms = Some(d);
                    r.billing_ms = Some(d);
                }
                execute_call(&tx, UPDATE_CALL, r)?;
            }
            tx.commit()?;
            Ok(records)
        })
        .await
    }

    // ---------------------------------------------------------------------------------------
    // Webhook outbox
    // ---------------------------------------------------------------------------------------

    /// Puts a webhook in the outbox, due at once. Returns its id; ids grow with insertion.
    pub async fn enqueue_webhook(&self, w: NewWebhook) -> Result<i64, StoreError> {
        self.with_conn(move |conn| insert_webhook(conn, &w)).await
    }

    /// [`Store::enqueue_webhook`] without waiting ([`Store::write_behind`]): it is committed
    /// with, or before, whatever is queued after it — a call's `ended` webhook ahead of the
    /// `ended` status (docs/call-lifecycle.md, "Durability").
    pub fn enqueue_webhook_behind(&self, w: NewWebhook) {
        let call_id = w.call_id.unwrap_or_default();
        self.write_behind(call_id, "webhook", move |conn| {
            insert_webhook(conn, &w).map(|_| ())
        });
    }

    /// Jobs ready to send at `now_ms`, oldest first, at most `limit`: pending, due, and for
    /// each call only its oldest pending job. Jobs without a call are independent.
    pub async fn due_webhooks(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<WebhookJob>, StoreError> {
        self.due_webhooks_except(now_ms, limit, Vec::new()).await
    }

    /// [`Store::due_webhooks`] without the jobs whose URL is at one of `origins` (each the
    /// URL text up to the end of its authority, e.g. `https://hooks.example:8443`): the
    /// delivery worker leaves out destinations that already have all the requests in flight
    /// it allows, so that their backlog cannot hide other destinations' jobs.
    pub async fn due_webhooks_except(
        &self,
        now_ms: i64,
        limit: usize,
        origins: Vec<String>,
    ) -> Result<Vec<WebhookJob>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |conn| {
            let mut except = String::new();
            let mut values: Vec<rusqlite::types::Value> = vec![now_ms.into(), limit.into()];
            for origin in &origins {
                let len = i64::try_from(origin.chars().count()).unwrap_or(i64::MAX);
                let (o, l) = (values.len() + 1, values.len() + 2);
                values.push(origin.clone().into());
                values.push(len.into());
                except.push_str(&format!(
                    " AND NOT (substr(w.url, 1, ?{l}) = ?{o} AND (length(w.url) = ?{l} \
                     OR substr(w.url, ?{l} + 1, 1) IN ('/', '?', '#')))"
                ));
            }
            let sql = format!(
                "SELECT w.id, w.call_id, w.url, w.body, w.attempts, w.created_at_ms \
                 FROM webhook_outbox w WHERE {PENDING_HEAD} AND w.next_attempt_at_ms <= ?1{except} \
                 ORDER BY w.id LIMIT ?2"
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })?;
            let mut jobs = Vec::new();
            for row in rows {
                let (id, call_id, url, body, attempts, created_at_ms) = row?;
                jobs.push(WebhookJob {
                    id,
                    call_id: outbox_call_id(call_id.as_deref())?,
                    url,
                    body,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    created_at_ms,
                });
            }
            Ok(jobs)
        })
        .await
    }

    /// The earliest time a pending job can be handed out by [`Store::due_webhooks`] (jobs
    /// queued behind an older job of their call do not count), or `None` with nothing pending.
    pub async fn next_webhook_due_at(&self) -> Result<Option<i64>, StoreError> {
        self.with_conn(|conn| {
            let sql = format!(
                "SELECT MIN(w.next_attempt_at_ms) FROM webhook_outbox w WHERE {PENDING_HEAD}"
            );
            Ok(conn.query_row(&sql, [], |row| row.get::<_, Option<i64>>(0))?)
        })
        .await
    }

    /// The job was delivered (the attempt that delivered it is counted).
    pub async fn mark_webhook_delivered(
        &self,
        id: i64,
        at_ms: i64,
        http_status: u16,
    ) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            let n = conn.execute(
                "UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1, \
                 delivered_at_ms = ?2, http_status = ?3, last_error = NULL WHERE id = ?1",
                params![id, at_ms, http_status],
            )?;
            found_job(n, id)
        })
        .await
    }

    /// An attempt failed and another follows at `next_attempt_at_ms`; `attempts` is the
    /// number made so far.
    pub async fn reschedule_webhook(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at_ms: i64,
        last_error: &str,
    ) -> Result<(), StoreError> {
        let last_error = last_error.to_owned();
        self.with_conn(move |conn| {
            let n = conn.execute(
                "UPDATE webhook_outbox SET attempts = ?2, next_attempt_at_ms = ?3, \
                 last_error = ?4 WHERE id = ?1",
                params![id, attempts, next_attempt_at_ms, last_error],
            )?;
            found_job(n, id)
        })
        .await
    }

    /// The job will not be tried again; the next job of its call becomes due.
    pub async fn give_up_webhook(
        &self,
        id: i64,
        attempts: u32,
        last_error: &str,
    ) -> Result<(), StoreError> {
        let last_error = last_error.to_owned();
        self.with_conn(move |conn| {
            let n = conn.execute(
                "UPDATE webhook_outbox SET state = 'given_up', attempts = ?2, last_error = ?3 \
                 WHERE id = ?1",
                params![id, attempts, last_error],
            )?;
            found_job(n, id)
        })
        .await
    }

    /// Retention: removes delivered jobs delivered before `delivered_before_ms` and given-up
    /// jobs last tried before `given_up_before_ms`. Returns how many rows went.
    pub async fn purge_webhooks(
        &self,
        delivered_before_ms: i64,
        given_up_before_ms: i64,
    ) -> Result<usize, StoreError> {
        self.with_conn(move |conn| {
            let n = conn.execute(
                "DELETE FROM webhook_outbox WHERE \
                 (state = 'delivered' AND delivered_at_ms < ?1) OR \
                 (state = 'given_up' AND next_attempt_at_ms < ?2)",
                params![delivered_before_ms, given_up_before_ms],
            )?;
            Ok(n)
        })
        .await
    }

    /// A project's given-up jobs (those of its calls), newest first, at most `limit`: what the
    /// operator needs to see of undeliverable webhooks.
    pub async fn given_up_webhooks(
        &self,
        project_id: Uuid,
        limit: usize,
    ) -> Result<Vec<FailedWebhook>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT w.id, w.call_id, w.url, w.attempts, w.created_at_ms, \
                 w.next_attempt_at_ms, COALESCE(w.last_error, '') FROM webhook_outbox w \
                 JOIN calls c ON c.id = w.call_id \
                 WHERE w.state = 'given_up' AND c.project_id = ?2 \
                 ORDER BY w.id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit, project_id.to_string()], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, String>(6)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, call_id, url, attempts, created_at_ms, last_attempt_at_ms, last_error) =
                    row?;
                out.push(FailedWebhook {
                    id,
                    call_id: outbox_call_id(call_id.as_deref())?,
                    url,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    created_at_ms,
                    last_attempt_at_ms,
                    last_error,
                });
            }
            Ok(out)
        })
        .await
    }

    /// How many jobs are neither delivered nor given up.
    pub async fn pending_webhooks(&self) -> Result<usize, StoreError> {
        self.with_conn(|conn| {
            let n: i64 = conn.query_row(
                "SELECT COUNT(*) FROM webhook_outbox WHERE state = 'pending'",
                [],
                |row| row.get(0),
            )?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }
}

fn found_job(updated: usize, id: i64) -> Result<(), StoreError> {
    if updated == 0 {
        Err(StoreError::WebhookNotFound(id))
    } else {
        Ok(())
    }
}

/// Puts `w` in the outbox, due at once; its id.
fn insert_webhook(conn: &mut Connection, w: &NewWebhook) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO webhook_outbox (call_id, url, body, created_at_ms, next_attempt_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![
            w.call_id.map(|c| c.to_string()),
            w.url,
            w.body,
            w.created_at_ms
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Replaces the row of `r.id`; [`StoreError::CallNotFound`] if there is none.
fn update_call_row(conn: &Connection, r: &CallRecord) -> Result<(), StoreError> {
    match execute_call(conn, UPDATE_CALL, r)? {
        0 => Err(StoreError::CallNotFound(r.id)),
        _ => Ok(()),
    }
}

/// Runs [`INSERT_CALL`] or [`UPDATE_CALL`] (same parameter order) for `r`.
fn insert_call_event(
    conn: &Connection,
    call_id: Uuid,
    at_ms: i64,
    kind: &str,
    detail_json: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO call_events (call_id, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)",
        params![call_id.to_string(), at_ms, kind, detail_json],
    )?;
    Ok(())
}

fn execute_call(conn: &Connection, sql: &str, r: &CallRecord) -> Result<usize, StoreError> {
    Ok(conn.execute(
        sql,
        params![
            r.id.to_string(),
            r.project_id.to_string(),
            r.node_id.to_string(),
            r.segment_id.to_string(),
            r.event_channel,
            r.from,
            r.to,
            r.direction,
            r.leg_type,
            r.url,
            r.status,
            r.parent_id.map(|p| p.to_string()),
            r.created_at_ms,
            r.answered_at_ms,
            r.ended_at_ms,
            r.end_reason,
            r.duration_ms,
            r.billing_ms,
            r.status_url,
            r.status_events,
            r.dial_request,
            r.sip_call_id,
        ],
    )?)
}

/// A `calls` row before its ids are parsed.
struct RawCall {
    id: String,
    project_id: String,
    node_id: String,
    segment_id: String,
    parent_id: Option<String>,
    record: CallRecord,
}

impl RawCall {
    /// Reads a row selected with [`CALL_COLUMNS`].
    fn from_row(row: &Row<'_>) -> Result<RawCall, StoreError> {
        Ok(RawCall {
            id: row.get(0)?,
            project_id: row.get(1)?,
            node_id: row.get(2)?,
            segment_id: row.get(3)?,
            parent_id: row.get(11)?,
            record: CallRecord {
                id: Uuid::nil(),
                project_id: Uuid::nil(),
                node_id: Uuid::nil(),
                segment_id: Uuid::nil(),
                event_channel: row.get(4)?,
                from: row.get(5)?,
                to: row.get(6)?,
                direction: row.get(7)?,
                leg_type: row.get(8)?,
                url: row.get(9)?,
                status: row.get(10)?,
                parent_id: None,
                created_at_ms: row.get(12)?,
                answered_at_ms: row.get(13)?,
                ended_at_ms: row.get(14)?,
                end_reason: row.get(15)?,
                duration_ms: row.get(16)?,
                billing_ms: row.get(17)?,
                status_url: row.get(18)?,
                status_events: row.get(19)?,
                dial_request: row.get(20)?,
                sip_call_id: row.get(21)?,
                media_stats: row.get(22)?,
                held: row.get(23)?,
            },
        })
    }

    fn into_record(self) -> Result<CallRecord, StoreError> {
        let mut r = self.record;
        r.id = parse_uuid("calls.id", &self.id)?;
        r.project_id = parse_uuid("calls.project_id", &self.project_id)?;
        r.node_id = parse_uuid("calls.node_id", &self.node_id)?;
        r.segment_id = parse_uuid("calls.segment_id", &self.segment_id)?;
        r.parent_id = self
            .parent_id
            .as_deref()
            .map(|p| parse_uuid("calls.parent_id", p))
            .transpose()?;
        Ok(r)
    }
}

/// Makes the database file and its WAL/shared-memory companions readable by the owner only
/// (0600): they hold call records (numbers, URIs, callback URLs) and webhook bodies.
/// SQLite creates the companions with the main file's mode, so new ones follow.
fn owner_only(db: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut names = vec![db.to_path_buf()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            names.push(p.into());
        }
        for p in names {
            if p.exists() {
                if let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                {
                    tracing::warn!(path = %p.display(), error = %e, "cannot make the file owner-only");
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
}

/// The call an outbox row belongs to (none for webhooks about no call).
fn outbox_call_id(text: Option<&str>) -> Result<Option<Uuid>, StoreError> {
    text.map(|c| parse_uuid("webhook_outbox.call_id", c))
        .transpose()
}

fn parse_uuid(column: &'static str, text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt {
        column,
        detail: format!("{text:?} is not a UUID: {e}"),
    })
}

/// Parses a cursor made by [`Store::list_calls`]: `<created_at_ms>:<id>`.
fn parse_cursor(cursor: &str) -> Result<(i64, Uuid), StoreError> {
    let bad = || {
        let shown: String = cursor.chars().take(64).collect();
        StoreError::BadCursor(format!("{shown:?} is not a cursor this server issued"))
    };
    let (ms, id) = cursor.split_once(':').ok_or_else(bad)?;
    let ms: i64 = ms.parse().map_err(|_| bad())?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((ms, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing() {
        let id = Uuid::new_v4();
        assert_eq!(parse_cursor(&format!("12:{id}")).unwrap(), (12, id));
        for bad in [
            "",
            "12",
            "x:y",
            &format!("a:{id}"),
            "12:nope",
            &format!(":{id}"),
        ] {
            assert!(
                matches!(parse_cursor(bad), Err(StoreError::BadCursor(_))),
                "{bad}"
            );
        }
    }

    fn call(project: Uuid, status: &str) -> CallRecord {
        CallRecord {
            id: Uuid::new_v4(),
            project_id: project,
            status: status.into(),
            created_at_ms: 1_000,
            direction: "outbound".into(),
            leg_type: "outbound-api".into(),
            status_events: "[]".into(),
            dial_request: "{}".into(),
            ..CallRecord::default()
        }
    }

    /// Holds the writer thread for `ms` (a commit stuck on a slow disk) without waiting.
    fn stall_writer(store: &Store, ms: u64) {
        let stalled = store.submit(
            move |_| {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(())
            },
            |_: Result<(), StoreError>| {},
        );
        assert!(stalled);
    }

    /// The API's reads go to the read-only connection while the writer is stuck, except a
    /// read of a call whose queued write is not committed yet: that one waits for it.
    #[tokio::test]
    async fn reads_do_not_wait_for_a_stuck_writer_unless_they_need_its_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("dialtone.db")).await.unwrap();
        let project = Uuid::new_v4();
        let committed = call(project, "answered");
        store.insert_call(committed.clone()).await.unwrap();

        stall_writer(&store, 1_500);
        let t0 = std::time::Instant::now();
        let got = store.get_call(project, committed.id).await.unwrap();
        let (page, _) = store.list_calls(project, None, 10, None).await.unwrap();
        let live = store.live_calls_by_status().await.unwrap();
        assert!(
            t0.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(got.map(|c| c.status), Some("answered".into()));
        assert_eq!(page.len(), 1);
        assert_eq!(live, vec![("answered".to_string(), 1)]);

        // A call queued behind the stuck writer: its read (and a listing) wait and see it.
        let queued = call(project, "queued");
        store.insert_call_behind(queued.clone());
        let got = store.get_call(project, queued.id).await.unwrap();
        assert!(t0.elapsed() >= std::time::Duration::from_millis(1_000));
        assert_eq!(got.map(|c| c.status), Some("queued".into()));
        // Committed now: nothing in flight, the reader sees it too.
        assert!(store.reader.for_read(None).is_some());
        let (page, _) = store.list_calls(project, None, 10, None).await.unwrap();
        assert_eq!(page.len(), 2);
    }

    /// An update behind of a committed call is seen by the next read (the read waits for it).
    #[tokio::test]
    async fn an_update_behind_is_seen_by_the_next_read_of_a_file_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("dialtone.db")).await.unwrap();
        let project = Uuid::new_v4();
        let r = call(project, "queued");
        store.insert_call(r.clone()).await.unwrap();
        for status in ["initiated", "ringing", "answered"] {
            stall_writer(&store, 50);
            store.update_call_behind(CallRecord {
                status: status.into(),
                ..r.clone()
            });
            let got = store.get_call(project, r.id).await.unwrap();
            assert_eq!(got.map(|c| c.status), Some(status.to_string()));
        }
    }
}

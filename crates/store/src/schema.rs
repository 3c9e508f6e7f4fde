//! Schema migrations, applied in order at open and tracked in `PRAGMA user_version`.
//!
//! A migration is never edited once released: a change to the schema is a new entry at the
//! end of [`MIGRATIONS`]. Each one runs in its own transaction together with the bump of
//! `user_version`, so a crash mid-migration leaves the database at the previous version.

use rusqlite::Connection;

use crate::StoreError;

/// The migrations, in order; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: calls, call events, the webhook outbox.
    r#"
    CREATE TABLE calls (
        id              TEXT PRIMARY KEY NOT NULL,
        project_id      TEXT NOT NULL,
        node_id         TEXT NOT NULL,
        segment_id      TEXT NOT NULL,
        event_channel   TEXT NOT NULL,
        from_addr       TEXT NOT NULL,
        to_addr         TEXT NOT NULL,
        direction       TEXT NOT NULL,
        leg_type        TEXT NOT NULL,
        url             TEXT,
        status          TEXT NOT NULL,
        parent_id       TEXT,
        created_at_ms   INTEGER NOT NULL,
        answered_at_ms  INTEGER,
        ended_at_ms     INTEGER,
        end_reason      TEXT,
        duration_ms     INTEGER,
        billing_ms      INTEGER,
        status_url      TEXT,
        status_events   TEXT NOT NULL,
        dial_request    TEXT NOT NULL,
        sip_call_id     TEXT
    );
    CREATE INDEX calls_by_project ON calls (project_id, created_at_ms DESC, id DESC);
    CREATE INDEX calls_live ON calls (created_at_ms) WHERE ended_at_ms IS NULL;

    CREATE TABLE call_events (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id  TEXT NOT NULL,
        at_ms    INTEGER NOT NULL,
        kind     TEXT NOT NULL,
        detail   TEXT NOT NULL
    );
    CREATE INDEX call_events_by_call ON call_events (call_id, seq);

    CREATE TABLE webhook_outbox (
        id                  INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id             TEXT,
        url                 TEXT NOT NULL,
        body                BLOB NOT NULL,
        created_at_ms       INTEGER NOT NULL,
        state               TEXT NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'delivered', 'given_up')),
        attempts            INTEGER NOT NULL DEFAULT 0,
        next_attempt_at_ms  INTEGER NOT NULL,
        delivered_at_ms     INTEGER,
        http_status         INTEGER,
        last_error          TEXT
    );
    CREATE INDEX outbox_pending_by_call ON webhook_outbox (call_id, id) WHERE state = 'pending';
    CREATE INDEX outbox_pending_by_due ON webhook_outbox (next_attempt_at_ms, id)
        WHERE state = 'pending';
    "#,
    // 2: what a restart needs after a crash (crash.rs): the SIP dialogs of answered calls (to
    // send each far end a BYE) and the recordings still being written (for their final event).
    r#"
    CREATE TABLE live_dialogs (
        call_id      TEXT PRIMARY KEY NOT NULL,
        dialog       TEXT NOT NULL,
        saved_at_ms  INTEGER NOT NULL
    );

    CREATE TABLE open_recordings (
        id             TEXT PRIMARY KEY NOT NULL,
        call_id        TEXT NOT NULL,
        project_id     TEXT NOT NULL,
        control_id     TEXT NOT NULL,
        status_url     TEXT,
        url            TEXT NOT NULL,
        format         TEXT NOT NULL,
        audio          TEXT NOT NULL,
        path           TEXT NOT NULL,
        started_at_ms  INTEGER NOT NULL
    );
    "#,
    // 3: a call's media statistics (JSON of `control::MediaReport`, written while it is live
    // and at hang-up) and whether the far end holds it; written apart from the rest of the
    // row (`Store::set_media_stats`, `Store::set_held`).
    r#"
    ALTER TABLE calls ADD COLUMN media_stats TEXT;
    ALTER TABLE calls ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    "#,
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Connection settings applied on every open.
pub(crate) fn configure(conn: &Connection) -> Result<(), StoreError> {
    // `journal_mode` answers with the mode in force ("memory" for in-memory databases).
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    // FULL: a committed row (a queued webhook above all) survives power loss, not only a crash.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// The version recorded in the database.
pub(crate) fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Schema(format!("negative user_version {v}")))
}

/// Applies every migration the database has not seen yet, each in its own transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = current_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let target = index as u32 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql).map_err(|e| StoreError::Migration {
            version: target,
            source: e,
        })?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(version = target, "store schema migrated");
    }
    Ok(())
}

//! What a restart needs to repair after a crash: the SIP dialog of every answered call (kept
//! from the answer until the call ends, so the next start can send each far end a BYE) and
//! every recording still being written (kept from its start until its final event is queued,
//! so the next start can repair the file and queue that event).
//!
//! The dialog is an opaque text the SIP adapter writes and reads (`sip::SavedDialog`); the
//! store only keeps it by call.

use rusqlite::params;
use uuid::Uuid;

use crate::{Store, StoreError};

/// A recording being written: what its final `calling.call.record` event needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRecording {
    pub id: Uuid,
    pub call_id: Uuid,
    pub project_id: Uuid,
    pub control_id: String,
    pub status_url: Option<String>,
    /// The URL the recording is served at.
    pub url: String,
    /// `mp3` or `wav`.
    pub format: String,
    /// The event's `record.audio` object, JSON text.
    pub audio: String,
    /// The file being written.
    pub path: String,
    pub started_at_ms: i64,
}

fn uuid_col(column: &'static str, text: String) -> Result<Uuid, StoreError> {
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt {
        column,
        detail: e.to_string(),
    })
}

impl Store {
    /// Keeps (or replaces) the SIP dialog of a live call.
    pub async fn save_dialog(
        &self,
        call_id: Uuid,
        dialog: String,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            conn.execute(
                "INSERT INTO live_dialogs (call_id, dialog, saved_at_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (call_id) DO UPDATE SET dialog = ?2, saved_at_ms = ?3",
                params![call_id.to_string(), dialog, now_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// The call's dialog is over (or was ended after a restart): forget it.
    pub async fn forget_dialog(&self, call_id: Uuid) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            conn.execute(
                "DELETE FROM live_dialogs WHERE call_id = ?1",
                params![call_id.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    /// Every dialog kept, oldest first: `(call id, dialog text)`.
    pub async fn live_dialogs(&self) -> Result<Vec<(Uuid, String)>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT call_id, dialog FROM live_dialogs ORDER BY saved_at_ms, call_id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, dialog) = row?;
                out.push((uuid_col("live_dialogs.call_id", id)?, dialog));
            }
            Ok(out)
        })
        .await
    }

    /// A recording started.
    pub async fn recording_started(&self, r: OpenRecording) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO open_recordings (id, call_id, project_id, control_id, \
                 status_url, url, format, audio, path, started_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    r.id.to_string(),
                    r.call_id.to_string(),
                    r.project_id.to_string(),
                    r.control_id,
                    r.status_url,
                    r.url,
                    r.format,
                    r.audio,
                    r.path,
                    r.started_at_ms
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// A recording's final event is queued: it is no longer open.
    pub async fn recording_closed(&self, id: Uuid) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            conn.execute(
                "DELETE FROM open_recordings WHERE id = ?1",
                params![id.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    /// Recordings started and never closed, oldest first.
    pub async fn open_recordings(&self) -> Result<Vec<OpenRecording>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, call_id, project_id, control_id, status_url, url, format, audio, \
                 path, started_at_ms FROM open_recordings ORDER BY started_at_ms, id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, String>(8)?,
                    row.get::<_, i64>(9)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, call, project, control_id, status_url, url, format, audio, path, at) =
                    row?;
                out.push(OpenRecording {
                    id: uuid_col("open_recordings.id", id)?,
                    call_id: uuid_col("open_recordings.call_id", call)?,
                    project_id: uuid_col("open_recordings.project_id", project)?,
                    control_id,
                    status_url,
                    url,
                    format,
                    audio,
                    path,
                    started_at_ms: at,
                });
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: Uuid, at: i64) -> OpenRecording {
        OpenRecording {
            id,
            call_id: Uuid::new_v4(),
            project_id: Uuid::new_v4(),
            control_id: "rec1".into(),
            status_url: Some("http://127.0.0.1:9/rec".into()),
            url: format!("http://127.0.0.1:8080/api/calling/recordings/{id}.wav"),
            format: "wav".into(),
            audio: r#"{"format":"wav"}"#.into(),
            path: format!("/tmp/{id}.wav"),
            started_at_ms: at,
        }
    }

    #[tokio::test]
    async fn dialogs_are_kept_until_forgotten() {
        let store = Store::open_in_memory().await.unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        store.save_dialog(a, "one".into(), 10).await.unwrap();
        store.save_dialog(b, "two".into(), 20).await.unwrap();
        store.save_dialog(a, "one again".into(), 5).await.unwrap();
        assert_eq!(
            store.live_dialogs().await.unwrap(),
            [(a, "one again".to_string()), (b, "two".to_string())]
        );
        store.forget_dialog(a).await.unwrap();
        store.forget_dialog(Uuid::new_v4()).await.unwrap();
        assert_eq!(
            store.live_dialogs().await.unwrap(),
            [(b, "two".to_string())]
        );
    }

    #[tokio::test]
    async fn recordings_are_open_until_closed() {
        let store = Store::open_in_memory().await.unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        store.recording_started(rec(b, 20)).await.unwrap();
        store.recording_started(rec(a, 10)).await.unwrap();
        let mut without_url = rec(Uuid::new_v4(), 30);
        without_url.status_url = None;
        store.recording_started(without_url.clone()).await.unwrap();
        let open = store.open_recordings().await.unwrap();
        assert_eq!(open.len(), 3);
        assert_eq!((open[0].id, open[1].id), (a, b));
        assert_eq!(open[2], without_url);
        store.recording_closed(a).await.unwrap();
        store.recording_closed(without_url.id).await.unwrap();
        let open = store.open_recordings().await.unwrap();
        assert_eq!(open.iter().map(|r| r.id).collect::<Vec<_>>(), [b]);
    }
}

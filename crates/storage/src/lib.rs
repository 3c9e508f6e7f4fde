//! Where finished recordings live. Objects are named by the caller (`{project}/{id}.{ext}`)
//! and kept in a local folder ([`LocalDir`], the data dir) or an S3-compatible bucket
//! ([`S3Bucket`]), both behind [`ObjectStore`]. [`Recordings`] is the node's recording storage:
//! the recorder writes into the local folder; a finished file is uploaded to the bucket when
//! there is one (retried with backoff, then removed locally), files a previous run left are
//! found again, and a recording's bytes come from the local file while it is there, else from
//! the bucket.

mod s3;

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tracing::{info, warn};
use uuid::Uuid;

pub use s3::{S3Bucket, S3Config};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("s3 request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("s3 answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("object name {0:?} is not a relative path")]
    BadName(String),
}

/// Named objects: put whole, get whole (`None` when there is no such object).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put(&self, name: &str, body: Vec<u8>, content_type: &str) -> Result<(), StorageError>;
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;
}

/// Objects as files below a folder; a name is a relative path (`..` is refused).
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: PathBuf) -> Self {
        LocalDir { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of object `name`.
    pub fn path(&self, name: &str) -> Result<PathBuf, StorageError> {
        let rel = Path::new(name);
        if name.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(StorageError::BadName(name.to_string()));
        }
        Ok(self.root.join(rel))
    }
}

#[async_trait]
impl ObjectStore for LocalDir {
    async fn put(
        &self,
        name: &str,
        body: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), StorageError> {
        let path = self.path(name)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::write(&path, body).await?;
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match tokio::fs::read(self.path(name)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Tries of one upload before the file is left in the local folder (it is still served from
/// there and tried again on the next start).
const UPLOAD_TRIES: u32 = 8;

/// The node's recordings: a local folder (where they are written) and, optionally, a bucket.
#[derive(Clone)]
pub struct Recordings {
    local: LocalDir,
    bucket: Option<S3Bucket>,
    /// First wait between upload tries (doubled each time, at most 30 s).
    retry_wait: Duration,
}

/// A recording file in the local folder: `<project>/<recording id>.<format>`.
#[derive(Debug, Clone)]
pub struct StoredRecording {
    pub project: String,
    pub path: PathBuf,
    pub format: record::Format,
}

impl Recordings {
    /// Recordings in `dir`; with `s3`, finished ones go to that bucket over `http`.
    pub fn new(dir: PathBuf, s3: Option<S3Config>, http: reqwest::Client) -> Self {
        Recordings {
            local: LocalDir::new(dir),
            bucket: s3.map(|c| S3Bucket::new(c, http)),
            retry_wait: Duration::from_millis(500),
        }
    }

    /// The local folder.
    pub fn dir(&self) -> &Path {
        self.local.root()
    }

    /// The object name of a recording: `{project}/{rec_id}.{ext}`.
    pub fn name(project: Uuid, rec_id: Uuid, format: record::Format) -> String {
        format!("{project}/{rec_id}.{}", format.extension())
    }

    /// The local file a recording is written to.
    pub fn path(&self, project: Uuid, rec_id: Uuid, format: record::Format) -> PathBuf {
        self.dir()
            .join(project.to_string())
            .join(format!("{rec_id}.{}", format.extension()))
    }

    /// Makes sure a project's recordings can be written (its folder exists).
    pub async fn ready(&self, project: Uuid) -> Result<(), StorageError> {
        let dir = self.dir().join(project.to_string());
        tokio::fs::create_dir_all(&dir).await.map_err(|e| {
            warn!(dir = %dir.display(), error = %e, "recordings cannot be stored");
            StorageError::Io(e)
        })
    }

    /// Uploads a finished recording to the bucket (retried with backoff) and then removes the
    /// local copy; until then the local file is what is served. Nothing without a bucket.
    pub async fn upload(&self, project: Uuid, rec_id: Uuid, format: record::Format) {
        let path = self.path(project, rec_id, format);
        let name = Self::name(project, rec_id, format);
        self.upload_file(rec_id, &path, &name, format.content_type())
            .await;
    }

    /// The object name of a received fax: `{project}/{fax_id}.pdf`, beside the recordings.
    pub fn fax_name(project: Uuid, fax_id: Uuid) -> String {
        format!("{project}/{fax_id}.pdf")
    }

    /// The local file a received fax's PDF is written to.
    pub fn fax_path(&self, project: Uuid, fax_id: Uuid) -> PathBuf {
        self.dir()
            .join(project.to_string())
            .join(format!("{fax_id}.pdf"))
    }

    /// Uploads a received fax's PDF like a finished recording (then the local copy goes).
    pub async fn upload_fax(&self, project: Uuid, fax_id: Uuid) {
        let path = self.fax_path(project, fax_id);
        let name = Self::fax_name(project, fax_id);
        self.upload_file(fax_id, &path, &name, "application/pdf")
            .await;
    }

    /// A received fax's PDF: the local file while it is there, else the bucket's object.
    pub async fn fax_bytes(
        &self,
        project: Uuid,
        fax_id: Uuid,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.named_bytes(&Self::fax_name(project, fax_id)).await
    }

    async fn upload_file(&self, rec_id: Uuid, path: &Path, name: &str, content_type: &str) {
        let Some(bucket) = self.bucket.as_ref() else {
            return;
        };
        let key = bucket.key(name);
        let mut wait = self.retry_wait;
        for attempt in 1..=UPLOAD_TRIES {
            let bytes = match tokio::fs::read(path).await {
                Ok(b) => b,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "file to upload is unreadable");
                    return;
                }
            };
            match bucket.put(name, bytes, content_type).await {
                Ok(()) => {
                    info!(id = %rec_id, %key, "uploaded");
                    if let Err(e) = tokio::fs::remove_file(path).await {
                        warn!(path = %path.display(), error = %e, "uploaded file not removed");
                    }
                    return;
                }
                Err(e) => {
                    warn!(id = %rec_id, attempt, error = %e, "upload failed");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
        warn!(id = %rec_id, "left in the data dir; a recording is uploaded again on start");
    }

    /// Recordings a previous run did not upload (crash, storage down): (project, id, format)
    /// of each; none without a bucket.
    pub fn leftovers(&self) -> Vec<(Uuid, Uuid, record::Format)> {
        if self.bucket.is_none() {
            return Vec::new();
        }
        stored_recordings(self.dir())
            .into_iter()
            .filter_map(|rec| {
                let project = rec.project.parse().ok()?;
                let rec_id = rec.path.file_stem()?.to_str()?.parse().ok()?;
                Some((project, rec_id, rec.format))
            })
            .collect()
    }

    /// A recording's bytes: the local file while it is there, else the bucket's object;
    /// `None` when neither has it.
    pub async fn bytes(
        &self,
        project: Uuid,
        rec_id: Uuid,
        format: record::Format,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.named_bytes(&Self::name(project, rec_id, format)).await
    }

    async fn named_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(bytes) = self.local.get(name).await? {
            return Ok(Some(bytes));
        }
        match self.bucket.as_ref() {
            Some(bucket) => bucket.get(name).await,
            None => Ok(None),
        }
    }
}

/// Every recording file below `dir` (files of other kinds are skipped).
pub fn stored_recordings(dir: &Path) -> Vec<StoredRecording> {
    let mut out = Vec::new();
    let Ok(projects) = std::fs::read_dir(dir) else {
        return out;
    };
    for project in projects.flatten() {
        let Ok(files) = std::fs::read_dir(project.path()) else {
            continue;
        };
        let name = project.file_name().to_string_lossy().into_owned();
        for file in files.flatten() {
            let path = file.path();
            let format = path
                .extension()
                .and_then(|e| e.to_str())
                .and_then(record::Format::from_name);
            if let Some(format) = format {
                out.push(StoredRecording {
                    project: name.clone(),
                    path,
                    format,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    #[tokio::test]
    async fn local_dir_puts_and_gets_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalDir::new(dir.path().to_path_buf());
        assert!(local.get("p/a.wav").await.unwrap().is_none());
        local
            .put("p/a.wav", b"abc".to_vec(), "audio/wav")
            .await
            .unwrap();
        assert_eq!(
            local.get("p/a.wav").await.unwrap().as_deref(),
            Some(&b"abc"[..])
        );
        for bad in ["", "../x", "/etc/passwd", "p/../../x"] {
            assert!(
                matches!(local.path(bad), Err(StorageError::BadName(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn local_recordings_are_served_and_listed_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let recs = Recordings::new(dir.path().to_path_buf(), None, http());
        let (project, rec_id) = (Uuid::new_v4(), Uuid::new_v4());
        let path = recs.path(project, rec_id, record::Format::Mp3);
        assert_eq!(path, dir.path().join(format!("{project}/{rec_id}.mp3")));
        assert!(recs
            .bytes(project, rec_id, record::Format::Mp3)
            .await
            .unwrap()
            .is_none());
        recs.ready(project).await.unwrap();
        std::fs::write(&path, b"mp3").unwrap();
        std::fs::write(path.with_extension("txt"), b"other").unwrap();
        assert_eq!(
            recs.bytes(project, rec_id, record::Format::Mp3)
                .await
                .unwrap()
                .as_deref(),
            Some(&b"mp3"[..])
        );
        let stored = stored_recordings(recs.dir());
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].project, project.to_string());
        // Without a bucket nothing is left to upload, and an upload is a no-op.
        assert!(recs.leftovers().is_empty());
        recs.upload(project, rec_id, record::Format::Mp3).await;
        assert!(path.exists());
    }

    #[test]
    fn leftovers_name_project_and_recording() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = S3Config {
            endpoint: "http://127.0.0.1:1".into(),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key: "k".into(),
            secret_key: "s".into(),
            prefix: String::new(),
        };
        let recs = Recordings::new(dir.path().to_path_buf(), Some(cfg), http());
        let (project, rec_id) = (Uuid::new_v4(), Uuid::new_v4());
        let path = recs.path(project, rec_id, record::Format::Wav);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"wav").unwrap();
        std::fs::create_dir_all(dir.path().join("not-a-project")).unwrap();
        std::fs::write(dir.path().join("not-a-project/x.wav"), b"wav").unwrap();
        assert_eq!(
            recs.leftovers()
                .into_iter()
                .map(|(p, r, _)| (p, r))
                .collect::<Vec<_>>(),
            vec![(project, rec_id)]
        );
    }
}

//! A sandbox's state survives restarts as one JSON snapshot file, written atomically (temporary
//! file, then rename) shortly after every change and once more at shutdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

pub trait Snapshots: Send + Sync + 'static {
    type Data: Serialize + DeserializeOwned + Send + 'static;
    /// The state to write, when it changed since the last call.
    fn take_dirty(&self) -> Option<Self::Data>;
}

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read the sandbox state {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the sandbox state {path} is not valid: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
}

/// The saved state, when the file exists.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, PersistError> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PersistError::Read { path: path.to_path_buf(), source }),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| PersistError::Parse { path: path.to_path_buf(), source }),
    }
}

pub fn save<T: Serialize>(path: &Path, data: &T) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let file = std::fs::File::create(&tmp)?;
    let mut writer = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut writer, data)?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Writes snapshots until `stop` turns true, then writes the last one.
pub async fn run_writer<S: Snapshots>(source: Arc<S>, path: PathBuf, mut stop: watch::Receiver<bool>) {
    let flush = |source: &Arc<S>| {
        if let Some(data) = source.take_dirty() {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = save(&path, &data) {
                    tracing::error!(error = %e, path = %path.display(), "could not save the sandbox state");
                }
            })
        } else {
            tokio::task::spawn(async {})
        }
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                let _ = flush(&source).await;
            }
            _ = stop.changed() => break,
        }
    }
    let _ = flush(&source).await;
}

//! A sandbox's state survives restarts as one JSON snapshot file, written atomically (temporary
//! file, then rename) shortly after every change and once more at shutdown.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

pub trait Snapshots: Send + Sync + 'static {
    type Data: Serialize + DeserializeOwned + Send + 'static;
    /// Whether the state changed since the last call.
    fn take_dirty(&self) -> bool;
    /// Writes the state as JSON (the shape of `Data`). Large record maps are written in chunks,
    /// each under a short read lock, so that requests never wait long for a snapshot.
    fn write_snapshot(&self, out: &mut dyn Write) -> std::io::Result<()>;
}

/// Records per read-lock hold while a snapshot is written.
pub const CHUNK: usize = 4096;

/// Runs the callback on a record map (or `None`) under a read lock.
pub type WithMap<'a, T> = dyn Fn(&mut dyn FnMut(Option<&BTreeMap<u64, T>>)) + 'a;

/// Writes `"name":{"id":record,...}` from `map`, `CHUNK` records per hold of the read lock that
/// `with` takes: records added or changed meanwhile land in the next snapshot (the change marks
/// the state dirty again).
pub fn write_map_chunked<T: Serialize>(out: &mut dyn Write, name: &str, with: &WithMap<'_, T>) -> std::io::Result<()> {
    write!(out, "\"{name}\":{{")?;
    let mut from: Option<u64> = None;
    let mut first = true;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    loop {
        buf.clear();
        let mut error = None;
        let mut done = true;
        with(&mut |map| {
            let Some(map) = map else { return };
            let range = match from {
                None => map.range(..),
                Some(id) => map.range((Bound::Excluded(id), Bound::Unbounded)),
            };
            for (n, (id, record)) in range.enumerate() {
                if n == CHUNK {
                    done = false;
                    break;
                }
                if !first {
                    buf.push(b',');
                }
                first = false;
                let _ = write!(buf, "\"{id}\":");
                if let Err(e) = serde_json::to_writer(&mut buf, record) {
                    error = Some(e);
                    return;
                }
                from = Some(*id);
            }
        });
        if let Some(e) = error {
            return Err(e.into());
        }
        out.write_all(&buf)?;
        if done {
            break;
        }
    }
    out.write_all(b"}")
}

/// Writes `,"name":value`.
pub fn write_field<T: Serialize + ?Sized>(out: &mut dyn Write, name: &str, value: &T) -> std::io::Result<()> {
    write!(out, ",\"{name}\":")?;
    serde_json::to_writer(out, value)?;
    Ok(())
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
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| PersistError::Parse { path: path.to_path_buf(), source }),
    }
}

pub fn save(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let written = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if written.is_err() {
        // A partial file (e.g. the disk filled up) is not left behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::rename(tmp, path)
}

/// Writes snapshots until `stop` turns true, then writes the last one. Each is written on a
/// blocking thread; one at a time.
pub async fn run_writer<S: Snapshots>(source: Arc<S>, path: PathBuf, mut stop: watch::Receiver<bool>) {
    let flush = |source: &Arc<S>| {
        let dirty = source.take_dirty();
        let (source, path) = (source.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            if !dirty {
                return;
            }
            let started = std::time::Instant::now();
            match save(&path, |out| source.write_snapshot(out)) {
                Err(e) => tracing::error!(error = %e, path = %path.display(), "could not save the sandbox state"),
                Ok(()) if started.elapsed() > Duration::from_secs(1) => {
                    tracing::info!(ms = started.elapsed().as_millis() as u64, path = %path.display(), "sandbox state saved")
                }
                Ok(()) => {}
            }
        })
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

//! [`FileStore`]: the embedded store, one JSON file under the state dir, written atomically
//! (temp file + fsync + rename) so a crash mid-write never leaves a torn registry.

use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

use super::{ServerDef, Store, StoreError};

/// File-backed store. Keeps the current map in memory so each write rewrites the file from
/// it; a mutex keeps writes to the file in call order.
pub struct FileStore {
    path: PathBuf,
    servers: Arc<Mutex<BTreeMap<String, ServerDef>>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FileFormat {
    format: u32,
    servers: Vec<ServerDef>,
}

impl FileStore {
    /// Opens (or prepares to create) `{state_dir}/registry.json`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("registry.json"),
            servers: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Where the registry file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, ServerDef>) + 'static,
    ) -> LocalBoxFuture<'static, Result<(), StoreError>> {
        let servers = self.servers.clone();
        let path = self.path.clone();
        async move {
            let mut map = servers.lock().await;
            let mut next = map.clone();
            change(&mut next);
            let body = serde_json::to_vec_pretty(&FileFormat {
                format: 1,
                servers: next.values().cloned().collect(),
            })
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            tokio::task::spawn_blocking(move || write_atomic(&path, &body))
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))??;
            *map = next;
            Ok(())
        }
        .boxed_local()
    }
}

fn write_atomic(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Unavailable(format!("create {}: {e}", dir.display())))?;
    let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
    // 0600: the registry holds upstream credentials (headers, env).
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
    }
    .map_err(|e| StoreError::Unavailable(format!("write {}: {e}", tmp.display())))?;
    f.write_all(body)
        .and_then(|_| f.sync_all())
        .map_err(|e| StoreError::Unavailable(format!("write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| StoreError::Unavailable(format!("rename to {}: {e}", path.display())))
}

impl Store for FileStore {
    fn load_all(&self) -> LocalBoxFuture<'static, Result<Vec<ServerDef>, StoreError>> {
        let servers = self.servers.clone();
        let path = self.path.clone();
        async move {
            let read = tokio::task::spawn_blocking(move || match std::fs::read(&path) {
                Ok(bytes) => serde_json::from_slice::<FileFormat>(&bytes)
                    .map(|f| f.servers)
                    .map_err(|e| {
                        StoreError::Unavailable(format!(
                            "{} is not a valid registry file ({e}); move it away to start empty",
                            path.display()
                        ))
                    }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(StoreError::Unavailable(format!(
                    "read {}: {e}",
                    path.display()
                ))),
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
            let mut map = servers.lock().await;
            *map = read.iter().map(|d| (d.id.clone(), d.clone())).collect();
            Ok(read)
        }
        .boxed_local()
    }

    fn upsert(&self, def: ServerDef) -> LocalBoxFuture<'static, Result<(), StoreError>> {
        self.write(move |m| {
            m.insert(def.id.clone(), def);
        })
    }

    fn delete(&self, id: String) -> LocalBoxFuture<'static, Result<(), StoreError>> {
        self.write(move |m| {
            m.remove(&id);
        })
    }
}

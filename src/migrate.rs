//! `mcp-hub registry export|import`: moves server definitions between the embedded file
//! store and Redis (or backs either up), through the same `Store` the hub uses.

use mcp_hub_actors::registry::{ServerDef, Store};
use serde::{Deserialize, Serialize};

use crate::cli::RegistryAction;
use crate::config::Settings;
use crate::startup::{open_store, AnyStore};

#[derive(Serialize, Deserialize)]
struct Dump {
    format: u32,
    servers: Vec<ServerDef>,
}

/// Runs an export or import against the store the settings name.
pub async fn run(settings: Settings, action: RegistryAction) -> Result<(), String> {
    let store: Box<dyn Store> = match open_store(&settings).await.map_err(|e| e.to_string())? {
        AnyStore::File(s) => Box::new(s),
        AnyStore::Redis(s) => Box::new(s),
    };
    match action {
        RegistryAction::Export => {
            let mut servers = store.sync(Vec::new()).await.map_err(|e| e.to_string())?;
            servers.sort_by(|a, b| a.id.cmp(&b.id));
            let out = serde_json::to_string_pretty(&Dump { format: 1, servers })
                .map_err(|e| e.to_string())?;
            println!("{out}");
            Ok(())
        }
        RegistryAction::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let dump: Dump = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not a registry export: {e}", file.display()))?;
            for (i, def) in dump.servers.iter().enumerate() {
                def.validate()
                    .map_err(|e| format!("servers[{i}] ({}): {e}", def.id))?;
            }
            let _ = store.sync(Vec::new()).await.map_err(|e| e.to_string())?;
            for def in &dump.servers {
                store.upsert(def.clone()).await.map_err(|e| e.to_string())?;
            }
            eprintln!("imported {} servers", dump.servers.len());
            Ok(())
        }
    }
}

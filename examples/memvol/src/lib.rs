//! memvol: an in-memory volume plugin, the example to copy when writing a
//! Docker volume plugin with `plugin-server`.
//!
//! Volumes live in a map; their mountpoints are directories under a root
//! (`<root>/<name>`), created on mount when possible. Nothing is really
//! mounted, so memvol runs anywhere, yet a real Docker engine can use it:
//! `docker volume create -d memvol v1`, `docker run -v v1:/data …`.
//!
//! Errors follow the plugin convention (a [`PluginError`] becomes
//! `500 {"Err": …}`; the docker CLI shows `VolumeDriver.Create: …`):
//! creating an existing volume with other options, removing, getting or
//! mounting a missing one, removing one in use, and any create given the
//! option `fail=<message>` (a switch for tests of the error path).
//!
//! [`cli`] is the command line the `memvol` binary runs.
//!
//! **What it must never do:** mount anything, or fail a mount because the
//! mountpoint directory cannot be created.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use plugin_server::plugin_proto::GoTime;
use plugin_server::volume::*;
use plugin_server::{BuildError, Plugin, PluginError};

pub mod cli;

/// The in-memory volume driver.
#[derive(Debug)]
pub struct MemVol {
    root: PathBuf,
    volumes: Mutex<BTreeMap<String, Vol>>,
}

#[derive(Debug)]
struct Vol {
    opts: BTreeMap<String, String>,
    created_at: String,
    /// The containers (mount ids) using the volume.
    mounts: BTreeSet<String>,
}

impl MemVol {
    /// A driver with no volumes whose mountpoints are under `root`.
    pub fn new(root: impl Into<PathBuf>) -> MemVol {
        MemVol {
            root: root.into(),
            volumes: Mutex::new(BTreeMap::new()),
        }
    }

    /// The driver as a plugin, ready for a [`plugin_server::Server`].
    pub fn plugin(self) -> Result<Plugin, BuildError> {
        Plugin::builder().volume(self).build()
    }

    fn mountpoint(&self, name: &str) -> String {
        self.root.join(name).to_string_lossy().into_owned()
    }

    /// Runs `f` on volume `name`, or fails with `no such volume`.
    fn with<T>(&self, name: &str, f: impl FnOnce(&mut Vol) -> T) -> Result<T, PluginError> {
        // A poisoned lock only means another call panicked mid-way; the map
        // is still usable.
        let mut vols = self.volumes.lock().unwrap_or_else(|e| e.into_inner());
        let vol = vols.get_mut(name).ok_or_else(|| no_such_volume(name))?;
        Ok(f(vol))
    }

    fn describe(&self, name: &str, vol: &Vol) -> Volume {
        let status = BTreeMap::from([("mounts".to_owned(), vol.mounts.len().into())]);
        Volume {
            name: name.to_owned(),
            mountpoint: self.mountpoint(name),
            created_at: vol.created_at.clone(),
            status,
        }
    }
}

fn no_such_volume(name: &str) -> PluginError {
    PluginError::new(format!("no such volume: {name}"))
}

impl VolumeDriver for MemVol {
    async fn create(&self, req: CreateRequest) -> Result<(), PluginError> {
        let opts = req.opts.unwrap_or_default();
        if let Some(msg) = opts.get("fail") {
            return Err(PluginError::new(msg.clone()));
        }
        let mut vols = self.volumes.lock().unwrap_or_else(|e| e.into_inner());
        match vols.get(&req.name) {
            // Docker may create a volume it already knows again: same
            // options is a success, as with Docker's own local driver.
            Some(v) if v.opts == opts => Ok(()),
            Some(_) => Err(PluginError::new(format!(
                "volume {} already exists with different options",
                req.name
            ))),
            None => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let created_at = GoTime::from_unix(now.as_secs() as i64, 0).to_string();
                let mounts = BTreeSet::new();
                vols.insert(
                    req.name,
                    Vol {
                        opts,
                        created_at,
                        mounts,
                    },
                );
                Ok(())
            }
        }
    }

    async fn remove(&self, req: RemoveRequest) -> Result<(), PluginError> {
        let mut vols = self.volumes.lock().unwrap_or_else(|e| e.into_inner());
        match vols.get(&req.name) {
            None => Err(no_such_volume(&req.name)),
            Some(v) if !v.mounts.is_empty() => {
                Err(PluginError::new(format!("volume {} is in use", req.name)))
            }
            Some(_) => {
                vols.remove(&req.name);
                let _ = std::fs::remove_dir(self.mountpoint(&req.name));
                Ok(())
            }
        }
    }

    async fn path(&self, req: PathRequest) -> Result<PathResponse, PluginError> {
        self.with(&req.name, |_| ())?;
        let mountpoint = self.mountpoint(&req.name);
        Ok(PathResponse {
            mountpoint,
            ..Default::default()
        })
    }

    async fn mount(&self, req: MountRequest) -> Result<MountResponse, PluginError> {
        self.with(&req.name, |v| v.mounts.insert(req.id.clone()))?;
        let mountpoint = self.mountpoint(&req.name);
        // Docker bind-mounts this directory into the container; without
        // permission to create it (tests, no root) the name still works.
        if let Err(e) = std::fs::create_dir_all(&mountpoint) {
            tracing::warn!(%mountpoint, error = %e, "could not create the mountpoint");
        }
        Ok(MountResponse {
            mountpoint,
            ..Default::default()
        })
    }

    async fn unmount(&self, req: UnmountRequest) -> Result<(), PluginError> {
        self.with(&req.name, |v| v.mounts.remove(&req.id)).map(drop)
    }

    async fn get(&self, req: GetRequest) -> Result<GetResponse, PluginError> {
        let volume = self.with(&req.name, |v| self.describe(&req.name, v))?;
        Ok(GetResponse {
            volume: Some(volume),
            ..Default::default()
        })
    }

    async fn list(&self) -> Result<ListResponse, PluginError> {
        let vols = self.volumes.lock().unwrap_or_else(|e| e.into_inner());
        let volumes = vols.iter().map(|(n, v)| self.describe(n, v)).collect();
        Ok(ListResponse {
            volumes,
            ..Default::default()
        })
    }

    // `capabilities` keeps the kit's default: local scope.
}

//! The engine-side `VolumeDriver` proxy (spec §5): Docker's generated
//! `volumeDriverProxy`, with its per-call timeouts and its reading of the
//! 200-with-`Err` convention.

use std::collections::BTreeMap;
use std::sync::Arc;

use plugin_proto::volume::{
    CapabilitiesRequest, Capability, CreateRequest, GetRequest, ListRequest, MountRequest,
    PathRequest, RemoveRequest, UnmountRequest, Volume,
};
use plugin_proto::{Call, ErrReply, kinds};

use crate::Plugin;
use crate::error::Error;
use crate::proxy::{ErrStyle, Target};

/// Typed `VolumeDriver.*` calls to one activated plugin.
///
/// Each call carries Docker's per-attempt timeout (two minutes for
/// `Create` and `Mount`, one minute for the rest). A non-200 reply is a
/// status error reading `VolumeDriver.<Method>: <message>`; a 200 reply
/// with a non-empty `Err` is an error whose text is the plugin's message
/// alone, as Docker's proxy reports it.
#[derive(Clone, Debug)]
pub struct VolumeDriver(Target);

impl VolumeDriver {
    /// The proxy for an activated plugin that implements `VolumeDriver`
    /// (Docker's volume store gets its drivers by that kind).
    pub fn new(plugin: &Arc<Plugin>) -> Result<VolumeDriver, Error> {
        Target::new(plugin, kinds::VOLUME_DRIVER).map(VolumeDriver)
    }

    /// The plugin behind this proxy.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.0.plugin
    }

    async fn call<C: Call>(&self, request: &C) -> Result<C::Reply, Error>
    where
        C::Reply: ErrReply,
    {
        self.0.call_checked(request, ErrStyle::Bare).await
    }

    /// `VolumeDriver.Create`; `opts: None` is sent as `"Opts":null`, as
    /// Docker sends a nil map.
    pub async fn create(
        &self,
        name: &str,
        opts: Option<BTreeMap<String, String>>,
    ) -> Result<(), Error> {
        self.call(&CreateRequest {
            name: name.to_owned(),
            opts,
        })
        .await
        .map(drop)
    }

    /// `VolumeDriver.Remove`.
    pub async fn remove(&self, name: &str) -> Result<(), Error> {
        self.call(&RemoveRequest {
            name: name.to_owned(),
        })
        .await
        .map(drop)
    }

    /// `VolumeDriver.Path`: the volume's mountpoint on the host.
    pub async fn path(&self, name: &str) -> Result<String, Error> {
        Ok(self
            .call(&PathRequest {
                name: name.to_owned(),
            })
            .await?
            .mountpoint)
    }

    /// `VolumeDriver.Mount` for the caller `id`: the mountpoint.
    pub async fn mount(&self, name: &str, id: &str) -> Result<String, Error> {
        Ok(self
            .call(&MountRequest {
                name: name.to_owned(),
                id: id.to_owned(),
            })
            .await?
            .mountpoint)
    }

    /// `VolumeDriver.Unmount` for the caller `id`.
    pub async fn unmount(&self, name: &str, id: &str) -> Result<(), Error> {
        self.call(&UnmountRequest {
            name: name.to_owned(),
            id: id.to_owned(),
        })
        .await
        .map(drop)
    }

    /// `VolumeDriver.Get`: `None` when the plugin answers without a volume
    /// and without an error.
    pub async fn get(&self, name: &str) -> Result<Option<Volume>, Error> {
        Ok(self
            .call(&GetRequest {
                name: name.to_owned(),
            })
            .await?
            .volume)
    }

    /// `VolumeDriver.List`.
    pub async fn list(&self) -> Result<Vec<Volume>, Error> {
        Ok(self.call(&ListRequest::default()).await?.volumes)
    }

    /// `VolumeDriver.Capabilities`.
    pub async fn capabilities(&self) -> Result<Capability, Error> {
        Ok(self
            .call(&CapabilitiesRequest::default())
            .await?
            .capabilities)
    }
}

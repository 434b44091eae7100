//! Volume plugins (`VolumeDriver`): implement [`VolumeDriver`] and register
//! it with [`PluginBuilder::volume`]. The request and reply types are
//! re-exported from [`plugin_proto::volume`].

use std::future::Future;

pub use plugin_proto::volume::*;

use crate::plugin::{done, routes};
use crate::{PluginBuilder, PluginError};

/// A volume driver. Docker calls it for `docker volume create/ls/inspect/rm`
/// and for containers mounting its volumes.
///
/// Return a [`PluginError`] to fail a call: Docker shows
/// `VolumeDriver.<Method>: <message>`. Replies are plain values; leave
/// their `err` field empty.
pub trait VolumeDriver: Send + Sync + 'static {
    /// Creates volume `req.name` with driver options `req.opts`
    /// (`docker volume create -o k=v`).
    fn create(&self, req: CreateRequest) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Removes a volume.
    fn remove(&self, req: RemoveRequest) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// The host path of a volume (empty when it has none yet).
    fn path(
        &self,
        req: PathRequest,
    ) -> impl Future<Output = Result<PathResponse, PluginError>> + Send;

    /// Makes a volume available on the host for container `req.id` and
    /// returns where. Called once per container using it; pair with
    /// [`unmount`](VolumeDriver::unmount).
    fn mount(
        &self,
        req: MountRequest,
    ) -> impl Future<Output = Result<MountResponse, PluginError>> + Send;

    /// Container `req.id` no longer uses the volume.
    fn unmount(&self, req: UnmountRequest) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// One volume. An absent volume should be an error (Docker reports
    /// `no such volume` for an empty reply anyway).
    fn get(&self, req: GetRequest)
    -> impl Future<Output = Result<GetResponse, PluginError>> + Send;

    /// Every volume the driver knows.
    fn list(&self) -> impl Future<Output = Result<ListResponse, PluginError>> + Send;

    /// The driver's scope. Optional: the default answers
    /// `{"Capabilities":{"Scope":"local"}}`, which is also what Docker
    /// assumes when the call fails.
    fn capabilities(
        &self,
    ) -> impl Future<Output = Result<CapabilitiesResponse, PluginError>> + Send {
        async {
            Ok(CapabilitiesResponse {
                capabilities: Capability {
                    scope: LOCAL_SCOPE.to_owned(),
                },
                ..CapabilitiesResponse::default()
            })
        }
    }
}

impl PluginBuilder {
    /// Registers a volume driver: `VolumeDriver` joins the manifest and its
    /// eight methods are served.
    pub fn volume(self, driver: impl VolumeDriver) -> PluginBuilder {
        routes!(self.implements(plugin_proto::kinds::VOLUME_DRIVER), driver;
            CreateRequest => |d, r| d.create(r).await.map(done);
            RemoveRequest => |d, r| d.remove(r).await.map(done);
            PathRequest => |d, r| d.path(r).await;
            MountRequest => |d, r| d.mount(r).await;
            UnmountRequest => |d, r| d.unmount(r).await.map(done);
            GetRequest => |d, r| d.get(r).await;
            ListRequest => |d, _r| d.list().await;
            CapabilitiesRequest => |d, _r| d.capabilities().await;
        )
    }
}

/// A shared driver (`Arc<T>`) serves like the driver itself, so the
/// caller can keep a handle on its state.
impl<T: VolumeDriver> VolumeDriver for std::sync::Arc<T> {
    fn create(&self, req: CreateRequest) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::create(self, req)
    }

    fn remove(&self, req: RemoveRequest) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::remove(self, req)
    }

    fn path(
        &self,
        req: PathRequest,
    ) -> impl Future<Output = Result<PathResponse, PluginError>> + Send {
        T::path(self, req)
    }

    fn mount(
        &self,
        req: MountRequest,
    ) -> impl Future<Output = Result<MountResponse, PluginError>> + Send {
        T::mount(self, req)
    }

    fn unmount(&self, req: UnmountRequest) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::unmount(self, req)
    }

    fn get(
        &self,
        req: GetRequest,
    ) -> impl Future<Output = Result<GetResponse, PluginError>> + Send {
        T::get(self, req)
    }

    fn list(&self) -> impl Future<Output = Result<ListResponse, PluginError>> + Send {
        T::list(self)
    }

    fn capabilities(
        &self,
    ) -> impl Future<Output = Result<CapabilitiesResponse, PluginError>> + Send {
        T::capabilities(self)
    }
}

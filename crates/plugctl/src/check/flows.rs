//! The calls `check` makes for each subsystem, in dockerd's order, and the
//! findings only one subsystem can have.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use plugin_registry::proto::{authz, ipam, kinds, network, volume};
use serde_json::Value;

use super::{Checker, Expect, get_ci};

/// The reply keys Docker's Go types declare, per subsystem.
pub(super) fn keys(kind: &str) -> &'static [&'static str] {
    match kind {
        kinds::VOLUME_DRIVER => &[
            "Err",
            "Volume",
            "Volumes",
            "Name",
            "Mountpoint",
            "CreatedAt",
            "Status",
            "Capabilities",
            "Scope",
        ],
        kinds::IPAM_DRIVER => &[
            "Error",
            "RequiresMACAddress",
            "RequiresRequestReplay",
            "LocalDefaultAddressSpace",
            "GlobalDefaultAddressSpace",
            "PoolID",
            "Pool",
            "Data",
            "Address",
        ],
        kinds::NETWORK_DRIVER => &["Err", "Scope", "ConnectivityScope", "GwAllocChecker"],
        _ => &["Allow", "Msg", "Err"],
    }
}

pub(super) async fn run(kind: &str, c: &mut Checker<'_>) {
    match kind {
        kinds::VOLUME_DRIVER => volume_driver(c).await,
        kinds::IPAM_DRIVER => ipam_driver(c).await,
        kinds::NETWORK_DRIVER => network_driver(c).await,
        _ => authz_plugin(c).await,
    }
}

/// A name no one else uses: `plugctl-check-<pid>-<nanoseconds>`.
fn scratch() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("plugctl-check-{}-{nanos:08x}", std::process::id())
}

fn str_field<'v>(json: Option<&'v Value>, key: &str) -> Option<&'v str> {
    json.and_then(|j| get_ci(j, key)).and_then(Value::as_str)
}

/// `docker volume create`, `inspect`, `ls`, a container using the volume,
/// `docker volume rm`, then an inspect of the removed volume (whose error
/// shows the plugin's error convention).
async fn volume_driver(c: &mut Checker<'_>) {
    let (reply, caps) = c
        .call(&volume::CapabilitiesRequest {}, Expect::Optional, "")
        .await;
    let method = volume::CAPABILITIES;
    let missing = match (reply.status, &caps) {
        (_, Some(_)) => "200 without Capabilities".to_owned(),
        (Some(status), None) => format!("{status} reply"),
        (None, None) => reply.error.clone().unwrap_or_default(),
    };
    match caps.as_ref().and_then(|j| get_ci(j, "Capabilities")) {
        None | Some(Value::Null) => c.find(
            "capabilities_missing",
            "warning",
            method,
            missing,
            "Docker falls back to local scope: a cluster-wide (global) driver's volumes are \
             treated as local to each node",
        ),
        Some(capability) => {
            let scope = str_field(Some(capability), "Scope").unwrap_or_default();
            let lower = scope.to_ascii_lowercase();
            if !scope.is_empty() && lower != volume::LOCAL_SCOPE && lower != volume::GLOBAL_SCOPE {
                c.find(
                    "invalid_scope",
                    "warning",
                    method,
                    format!("Scope {scope:?}"),
                    "Docker logs \"Volume driver returned an invalid scope\" and uses local",
                );
            }
        }
    }

    let name = scratch();
    let (created, _) = c
        .call(
            &volume::CreateRequest {
                name: name.clone(),
                opts: None,
            },
            Expect::Success,
            "`docker volume create` fails with this text",
        )
        .await;
    if !created.ok() {
        return;
    }
    c.call(
        &volume::GetRequest { name: name.clone() },
        Expect::Success,
        "`docker volume inspect` and every use of the volume fail",
    )
    .await;
    let (_, list) = c
        .call(
            &volume::ListRequest {},
            Expect::Success,
            "`docker volume ls` logs the error and leaves this driver's volumes out",
        )
        .await;
    if let Some(Value::Null) = list.as_ref().and_then(|j| get_ci(j, "Volumes")) {
        c.find(
            "null_list",
            "warning",
            volume::LIST,
            "\"Volumes\": null where a list is expected",
            "Docker reads it as no volumes (a Go nil slice), even the one just created; \
             decoders expecting an array reject the reply",
        );
    }
    c.call(
        &volume::PathRequest { name: name.clone() },
        Expect::Success,
        "`docker volume inspect` shows no Mountpoint",
    )
    .await;
    let id = format!("{:064x}", u128::from(std::process::id()));
    let (mounted, mount) = c
        .call(
            &volume::MountRequest {
                name: name.clone(),
                id: id.clone(),
            },
            Expect::Success,
            "containers using the volume fail to start",
        )
        .await;
    if mounted.ok() {
        if mount.is_some()
            && str_field(mount.as_ref(), "Mountpoint")
                .unwrap_or_default()
                .is_empty()
        {
            c.find(
                "mount_without_mountpoint",
                "error",
                volume::MOUNT,
                "200 without a Mountpoint",
                "Docker accepts it and gives the container runtime a bind mount with an \
                 empty source: the container fails to start",
            );
        }
        c.call(
            &volume::UnmountRequest {
                name: name.clone(),
                id,
            },
            Expect::Success,
            "stopping the container logs the error and the volume stays in use",
        )
        .await;
    }
    c.call(
        &volume::RemoveRequest { name: name.clone() },
        Expect::Success,
        "`docker volume rm` fails",
    )
    .await;
    c.call(&volume::GetRequest { name }, Expect::Failure, "")
        .await;
}

/// What libnetwork asks a remote IPAM driver when it registers it and when
/// a network and a container on it are created, then released.
async fn ipam_driver(c: &mut Checker<'_>) {
    c.call(&ipam::GetCapabilitiesRequest {}, Expect::Optional, "")
        .await;
    let (_, spaces) = c
        .call(
            &ipam::GetDefaultAddressSpacesRequest {},
            Expect::Success,
            "libnetwork cannot register the driver: every network using it fails",
        )
        .await;
    let space = str_field(spaces.as_ref(), "LocalDefaultAddressSpace")
        .unwrap_or_default()
        .to_owned();
    if spaces.is_some() && space.is_empty() {
        c.find(
            "call_failed",
            "error",
            ipam::GET_DEFAULT_ADDRESS_SPACES,
            "no LocalDefaultAddressSpace",
            "libnetwork asks for pools in an empty address space",
        );
    }
    let (_, pool) = c
        .call(
            &ipam::RequestPoolRequest {
                address_space: space,
                pool: String::new(),
                sub_pool: String::new(),
                options: Some(BTreeMap::new()),
                v6: false,
            },
            Expect::Success,
            "`docker network create` with this IPAM driver fails",
        )
        .await;
    let Some(pool_id) = str_field(pool.as_ref(), "PoolID").map(str::to_owned) else {
        return;
    };
    let (_, address) = c
        .call(
            &ipam::RequestAddressRequest {
                pool_id: pool_id.clone(),
                address: String::new(),
                options: Some(BTreeMap::new()),
            },
            Expect::Success,
            "containers cannot join networks of this driver",
        )
        .await;
    if let Some(address) = str_field(address.as_ref(), "Address") {
        // Docker releases the address without its prefix length.
        let ip = address.split('/').next().unwrap_or_default().to_owned();
        c.call(
            &ipam::ReleaseAddressRequest {
                pool_id: pool_id.clone(),
                address: ip,
            },
            Expect::Success,
            "removing a container logs the error and the address leaks in the plugin",
        )
        .await;
    }
    c.call(
        &ipam::ReleasePoolRequest { pool_id },
        Expect::Success,
        "`docker network rm` logs the error and the pool leaks in the plugin",
    )
    .await;
}

/// libnetwork's remote driver: the capabilities it registers the driver
/// with, then a network created and deleted.
async fn network_driver(c: &mut Checker<'_>) {
    let (_, caps) = c
        .call(
            &network::GetCapabilitiesRequest {},
            Expect::Success,
            "libnetwork never registers the driver: `docker network create -d` with it fails",
        )
        .await;
    if let Some(caps) = &caps {
        for key in ["Scope", "ConnectivityScope"] {
            let scope = str_field(Some(caps), key).unwrap_or_default();
            let allowed = scope == network::LOCAL_SCOPE
                || scope == network::GLOBAL_SCOPE
                || (key == "ConnectivityScope" && scope.is_empty());
            if !allowed {
                c.find(
                    "invalid_scope",
                    "error",
                    network::GET_CAPABILITIES,
                    format!("{key} {scope:?}"),
                    "libnetwork refuses the driver (\"invalid capability: expecting 'local' \
                     or 'global'\"): no network can use it",
                );
            }
        }
    }
    let id = format!(
        "{:064x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let (created, _) = c
        .call(
            &network::CreateNetworkRequest {
                network_id: id.clone(),
                options: Some(BTreeMap::new()),
                ipv4_data: Some(vec![network::IpamData {
                    address_space: "LocalDefault".to_owned(),
                    pool: Some("10.250.0.0/24".to_owned()),
                    gateway: Some("10.250.0.1/24".to_owned()),
                    aux_addresses: None,
                }]),
                ipv6_data: Some(Vec::new()),
            },
            Expect::Success,
            "`docker network create` fails",
        )
        .await;
    if created.ok() {
        c.call(
            &network::DeleteNetworkRequest { network_id: id },
            Expect::Success,
            "`docker network rm` fails",
        )
        .await;
    }
}

/// Docker's authorization middleware: a request and its response for a
/// harmless `GET /_ping`.
async fn authz_plugin(c: &mut Checker<'_>) {
    let request = authz::Request {
        user: "plugctl-check".to_owned(),
        user_authn_method: "TLS".to_owned(),
        request_method: "GET".to_owned(),
        request_uri: "/_ping".to_owned(),
        ..Default::default()
    };
    let denied = "Docker denies the request (an authorization plugin that fails denies)";
    for (reply, method) in [
        (
            c.call(&authz::AuthZReq(request.clone()), Expect::Success, denied)
                .await
                .1,
            authz::AUTHZ_REQ,
        ),
        (
            c.call(
                &authz::AuthZRes(authz::Request {
                    response_status_code: 200,
                    response_body: b"OK".to_vec(),
                    ..request.clone()
                }),
                Expect::Success,
                denied,
            )
            .await
            .1,
            authz::AUTHZ_RES,
        ),
    ] {
        if let Some(reply) = reply
            && !get_ci(&reply, "Allow").is_some_and(Value::is_boolean)
        {
            c.find(
                "call_failed",
                "error",
                method,
                "no boolean Allow in the reply",
                "Docker reads a missing Allow as false and denies the request",
            );
        }
    }
}

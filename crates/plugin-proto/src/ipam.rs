//! Typed messages of the `IpamDriver` subsystem: libnetwork's remote IPAM
//! driver (`libnetwork/docs/ipam.md`; `ipams/remote/api/api.go`).
//!
//! On registration libnetwork calls `GetCapabilities` (optional) and
//! `GetDefaultAddressSpaces`, both with an empty body; then it requests and
//! releases pools and addresses as networks and endpoints come and go.
//!
//! Unlike every other subsystem, the 200-with-error field of IPAM replies
//! is **`Error`**, not `Err` (`api.Response{Error string}`); libnetwork
//! reports a non-empty one as `remote: <Error>`. A non-200 reply still
//! uses `Err`, like any plugin error (checklist 23).
//!
//! **What it must never do:** IO, or reject a reply Docker would accept.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::message::impl_err_reply;
use crate::{Call, null_as_default};

/// `IpamDriver.GetCapabilities`.
pub const GET_CAPABILITIES: &str = "IpamDriver.GetCapabilities";
/// `IpamDriver.GetDefaultAddressSpaces`.
pub const GET_DEFAULT_ADDRESS_SPACES: &str = "IpamDriver.GetDefaultAddressSpaces";
/// `IpamDriver.RequestPool`.
pub const REQUEST_POOL: &str = "IpamDriver.RequestPool";
/// `IpamDriver.ReleasePool`.
pub const RELEASE_POOL: &str = "IpamDriver.ReleasePool";
/// `IpamDriver.RequestAddress`.
pub const REQUEST_ADDRESS: &str = "IpamDriver.RequestAddress";
/// `IpamDriver.ReleaseAddress`.
pub const RELEASE_ADDRESS: &str = "IpamDriver.ReleaseAddress";

/// The `RequestAddress` option carrying the endpoint's MAC address, sent
/// when the driver reports `RequiresMACAddress`.
pub const MAC_ADDRESS_OPTION: &str = "com.docker.network.endpoint.macaddress";
/// The `RequestAddress` option saying what the address is for.
pub const REQUEST_ADDRESS_TYPE_OPTION: &str = "RequestAddressType";
/// The [`REQUEST_ADDRESS_TYPE_OPTION`] value of a network's gateway.
pub const GATEWAY_ADDRESS_TYPE: &str = "com.docker.network.gateway";

/// `IpamDriver.GetCapabilities`, sent with an empty body. Optional: a
/// driver without it gets empty capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetCapabilitiesRequest {}

/// The reply to [`GetCapabilitiesRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapabilitiesResponse {
    /// `RequestAddress` needs the endpoint's MAC address (sent as the
    /// [`MAC_ADDRESS_OPTION`] option).
    #[serde(rename = "RequiresMACAddress", deserialize_with = "null_as_default")]
    pub requires_mac_address: bool,
    /// On daemon start, libnetwork must replay pool and address requests
    /// for existing local networks.
    #[serde(rename = "RequiresRequestReplay", deserialize_with = "null_as_default")]
    pub requires_request_replay: bool,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Error",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub error: String,
}

/// `IpamDriver.GetDefaultAddressSpaces`, sent with an empty body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetDefaultAddressSpacesRequest {}

/// The reply to [`GetDefaultAddressSpacesRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AddressSpacesResponse {
    /// The address space for local-scope networks.
    #[serde(
        rename = "LocalDefaultAddressSpace",
        deserialize_with = "null_as_default"
    )]
    pub local_default_address_space: String,
    /// The address space for global-scope networks.
    #[serde(
        rename = "GlobalDefaultAddressSpace",
        deserialize_with = "null_as_default"
    )]
    pub global_default_address_space: String,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Error",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub error: String,
}

/// `IpamDriver.RequestPool`: register a pool (reference-counted by the
/// driver; identical requests must give the same pool).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestPoolRequest {
    /// The address space (mandatory).
    #[serde(rename = "AddressSpace", deserialize_with = "null_as_default")]
    pub address_space: String,
    /// The wanted pool in CIDR form; empty lets the driver choose.
    #[serde(rename = "Pool", deserialize_with = "null_as_default")]
    pub pool: String,
    /// A sub-range of the pool in CIDR form; invalid without `pool`.
    #[serde(rename = "SubPool", deserialize_with = "null_as_default")]
    pub sub_pool: String,
    /// Driver-specific options.
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
    /// A driver-chosen pool must be IPv6.
    #[serde(rename = "V6", deserialize_with = "null_as_default")]
    pub v6: bool,
}

/// The reply to [`RequestPoolRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestPoolResponse {
    /// The pool's id; the same pool has the same id.
    #[serde(rename = "PoolID", deserialize_with = "null_as_default")]
    pub pool_id: String,
    /// The pool in CIDR form.
    #[serde(rename = "Pool", deserialize_with = "null_as_default")]
    pub pool: String,
    /// Driver metadata for the pool.
    #[serde(rename = "Data", deserialize_with = "null_as_default")]
    pub data: BTreeMap<String, String>,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Error",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub error: String,
}

/// `IpamDriver.ReleasePool`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleasePoolRequest {
    /// The pool's id.
    #[serde(rename = "PoolID", deserialize_with = "null_as_default")]
    pub pool_id: String,
}

/// `IpamDriver.RequestAddress`: reserve an address in a pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestAddressRequest {
    /// The pool's id.
    #[serde(rename = "PoolID", deserialize_with = "null_as_default")]
    pub pool_id: String,
    /// The preferred address in plain form (`A.B.C.D`); empty lets the
    /// driver choose.
    #[serde(rename = "Address", deserialize_with = "null_as_default")]
    pub address: String,
    /// Driver-specific options ([`MAC_ADDRESS_OPTION`],
    /// [`REQUEST_ADDRESS_TYPE_OPTION`], …).
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
}

/// The reply to [`RequestAddressRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestAddressResponse {
    /// The reserved address in CIDR form (`A.B.C.D/MM`).
    #[serde(rename = "Address", deserialize_with = "null_as_default")]
    pub address: String,
    /// Driver metadata.
    #[serde(rename = "Data", deserialize_with = "null_as_default")]
    pub data: BTreeMap<String, String>,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Error",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub error: String,
}

/// `IpamDriver.ReleaseAddress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleaseAddressRequest {
    /// The pool's id.
    #[serde(rename = "PoolID", deserialize_with = "null_as_default")]
    pub pool_id: String,
    /// The address to release.
    #[serde(rename = "Address", deserialize_with = "null_as_default")]
    pub address: String,
}

/// A reply that is only `{"Error": …}` (IPAM's key, not `Err`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorResponse {
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Error",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub error: String,
}

impl_err_reply!(
    error: CapabilitiesResponse,
    AddressSpacesResponse,
    RequestPoolResponse,
    RequestAddressResponse,
    ErrorResponse,
);

impl Call for GetCapabilitiesRequest {
    const METHOD: &'static str = GET_CAPABILITIES;
    type Reply = CapabilitiesResponse;
    const SENDS_BODY: bool = false;
}

impl Call for GetDefaultAddressSpacesRequest {
    const METHOD: &'static str = GET_DEFAULT_ADDRESS_SPACES;
    type Reply = AddressSpacesResponse;
    const SENDS_BODY: bool = false;
}

impl Call for RequestPoolRequest {
    const METHOD: &'static str = REQUEST_POOL;
    type Reply = RequestPoolResponse;
}

impl Call for ReleasePoolRequest {
    const METHOD: &'static str = RELEASE_POOL;
    type Reply = ErrorResponse;
}

impl Call for RequestAddressRequest {
    const METHOD: &'static str = REQUEST_ADDRESS;
    type Reply = RequestAddressResponse;
}

impl Call for ReleaseAddressRequest {
    const METHOD: &'static str = RELEASE_ADDRESS;
    type Reply = ErrorResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::decode_call_reply;
    use crate::{ErrReply, encode_args};
    use crate::{decode_request, encode_request};
    use serde::de::DeserializeOwned;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
        let wire = encode_args(Some(v)).unwrap();
        assert_eq!(&serde_json::from_slice::<T>(&wire).unwrap(), v);
    }

    fn map(k: &str, v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(k.to_owned(), v.to_owned())])
    }

    #[test]
    fn registration_calls_have_no_body() {
        // libnetwork: a.call("GetDefaultAddressSpaces", nil, …) — checklist 21
        assert!(
            encode_request(&GetCapabilitiesRequest {})
                .unwrap()
                .is_empty()
        );
        assert!(
            encode_request(&GetDefaultAddressSpacesRequest {})
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            decode_request::<GetDefaultAddressSpacesRequest>(b"").unwrap(),
            GetDefaultAddressSpacesRequest {}
        );
    }

    #[test]
    fn request_bytes() {
        // checklist 21: Go encoding of the IPAM requests
        let r = RequestPoolRequest {
            address_space: "LocalDefault".into(),
            pool: String::new(),
            sub_pool: String::new(),
            options: None,
            v6: true,
        };
        assert_eq!(
            &encode_request(&r).unwrap()[..],
            b"{\"AddressSpace\":\"LocalDefault\",\"Pool\":\"\",\"SubPool\":\"\",\"Options\":null,\"V6\":true}\n"
        );
        let r = RequestAddressRequest {
            pool_id: "p".into(),
            address: String::new(),
            options: Some(map(REQUEST_ADDRESS_TYPE_OPTION, GATEWAY_ADDRESS_TYPE)),
        };
        assert_eq!(
            &encode_request(&r).unwrap()[..],
            b"{\"PoolID\":\"p\",\"Address\":\"\",\"Options\":{\"RequestAddressType\":\"com.docker.network.gateway\"}}\n"
        );
        assert_eq!(
            &encode_request(&ReleaseAddressRequest {
                pool_id: "p".into(),
                address: "10.0.0.2".into()
            })
            .unwrap()[..],
            b"{\"PoolID\":\"p\",\"Address\":\"10.0.0.2\"}\n"
        );
    }

    #[test]
    fn documented_examples_decode() {
        // Shapes from libnetwork docs/ipam.md (values filled in).
        let a = decode_call_reply::<GetDefaultAddressSpacesRequest>(
            br#"{"LocalDefaultAddressSpace": "local", "GlobalDefaultAddressSpace": "global"}"#,
        )
        .unwrap();
        assert_eq!(a.global_default_address_space, "global");
        let p: RequestPoolRequest = decode_request(
            br#"{"AddressSpace": "as", "Pool": "10.0.0.0/16", "SubPool": "10.0.1.0/24", "Options": {"k": "v"}, "V6": false}"#,
        )
        .unwrap();
        assert_eq!(p.sub_pool, "10.0.1.0/24");
        assert_eq!(p.options, Some(map("k", "v")));
        let r = decode_call_reply::<RequestPoolRequest>(
            br#"{"PoolID": "id1", "Pool": "10.0.0.0/16", "Data": {"k": "v"}}"#,
        )
        .unwrap();
        assert_eq!(
            (r.pool_id.as_str(), r.pool.as_str()),
            ("id1", "10.0.0.0/16")
        );
        let r = decode_call_reply::<ReleasePoolRequest>(b"{}").unwrap();
        assert_eq!(r.err(), None);
        let r = decode_call_reply::<RequestAddressRequest>(
            br#"{"Address": "10.0.0.2/16", "Data": {}}"#,
        )
        .unwrap();
        assert_eq!(r.address, "10.0.0.2/16");
        let c = decode_call_reply::<GetCapabilitiesRequest>(br#"{"RequiresMACAddress": true}"#)
            .unwrap();
        assert!(c.requires_mac_address && !c.requires_request_replay);
    }

    #[test]
    fn error_key_is_error_not_err() {
        // ipams/remote/api: Response{Error string}
        let r = decode_call_reply::<ReleasePoolRequest>(br#"{"Error":"pool busy"}"#).unwrap();
        assert_eq!(r.err(), Some("pool busy"));
        // `Err` is an unknown key here, as in Go.
        let r = decode_call_reply::<ReleasePoolRequest>(br#"{"Err":"ignored"}"#).unwrap();
        assert_eq!(r.err(), None);
        assert_eq!(
            serde_json::to_string(&ErrorResponse::from_err("x")).unwrap(),
            r#"{"Error":"x"}"#
        );
        assert_eq!(
            serde_json::to_string(&ErrorResponse::default()).unwrap(),
            "{}"
        );
        let r = decode_call_reply::<RequestPoolRequest>(
            br#"{"PoolID":null,"Data":null,"Error":null,"Extra":true}"#,
        )
        .unwrap();
        assert_eq!(r, RequestPoolResponse::default());
    }

    #[test]
    fn round_trips() {
        // checklist 21/22: every IPAM message survives encode and decode
        round_trip(&GetCapabilitiesRequest {});
        round_trip(&CapabilitiesResponse {
            requires_mac_address: true,
            requires_request_replay: true,
            error: String::new(),
        });
        round_trip(&GetDefaultAddressSpacesRequest {});
        round_trip(&AddressSpacesResponse {
            local_default_address_space: "l".into(),
            global_default_address_space: "g".into(),
            error: "e".into(),
        });
        round_trip(&RequestPoolRequest {
            address_space: "a".into(),
            pool: "p".into(),
            sub_pool: "s".into(),
            options: Some(map("k", "v")),
            v6: true,
        });
        round_trip(&RequestPoolResponse {
            pool_id: "i".into(),
            pool: "p".into(),
            data: map("k", "v"),
            error: String::new(),
        });
        round_trip(&ReleasePoolRequest {
            pool_id: "i".into(),
        });
        round_trip(&RequestAddressRequest {
            pool_id: "i".into(),
            address: "a".into(),
            options: Some(map(MAC_ADDRESS_OPTION, "02:42:ac:11:00:02")),
        });
        round_trip(&RequestAddressResponse {
            address: "a/24".into(),
            data: BTreeMap::new(),
            error: String::new(),
        });
        round_trip(&ReleaseAddressRequest {
            pool_id: "i".into(),
            address: "a".into(),
        });
        round_trip(&ErrorResponse { error: "e".into() });
    }

    #[test]
    fn methods() {
        // checklist 15: every method is a valid `Subsystem.Method` path
        let all = [
            <GetCapabilitiesRequest as Call>::METHOD,
            <GetDefaultAddressSpacesRequest as Call>::METHOD,
            <RequestPoolRequest as Call>::METHOD,
            <ReleasePoolRequest as Call>::METHOD,
            <RequestAddressRequest as Call>::METHOD,
            <ReleaseAddressRequest as Call>::METHOD,
        ];
        for m in all {
            assert!(m.starts_with("IpamDriver."), "{m}");
            assert!(crate::validate_method(m).is_ok(), "{m}");
        }
    }
}

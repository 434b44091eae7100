//! Typed messages of the `MetricsCollector` subsystem (Docker's
//! `plugins_metrics` documentation; `daemon/metrics.go`).
//!
//! The daemon exposes its Prometheus metrics on a unix socket
//! (`/run/docker/metrics.sock` inside a managed plugin's rootfs) and tells
//! collectors when it appears and goes:
//!
//! - `MetricsCollector.StartMetrics`, sent with an **empty body** (Go nil
//!   arguments, although the documentation shows `{}`). The documentation
//!   answers `{"Err": …}`, and Docker up to v27 read it (a non-empty `Err`
//!   failed the start); since v28 (`daemon/internal/metrics`) the daemon
//!   never reads the reply ([`Call::READS_REPLY`] is `false`): only a
//!   transport or status error fails the start and is logged.
//! - `MetricsCollector.StopMetrics`, sent with an empty body; the daemon
//!   never reads the reply either.
//!
//! **What it must never do:** IO.

use serde::{Deserialize, Serialize};

use crate::{Call, Empty, ErrResponse};

/// `MetricsCollector.StartMetrics`.
pub const START_METRICS: &str = "MetricsCollector.StartMetrics";
/// `MetricsCollector.StopMetrics`.
pub const STOP_METRICS: &str = "MetricsCollector.StopMetrics";

/// `MetricsCollector.StartMetrics`: the metrics socket is ready to scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartMetricsRequest {}

/// `MetricsCollector.StopMetrics`: the metrics socket is going away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopMetricsRequest {}

impl Call for StartMetricsRequest {
    const METHOD: &'static str = START_METRICS;
    type Reply = ErrResponse;
    const SENDS_BODY: bool = false;
    const READS_REPLY: bool = false;
}

impl Call for StopMetricsRequest {
    const METHOD: &'static str = STOP_METRICS;
    type Reply = Empty;
    const SENDS_BODY: bool = false;
    const READS_REPLY: bool = false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrReply;
    use crate::message::decode_call_reply;
    use crate::{decode_message, decode_request, encode_request};

    #[test]
    fn both_calls_have_an_empty_body() {
        // daemon/metrics.go: Call(…StartMetrics, nil, &res) and Call(…StopMetrics, nil, nil)
        assert!(encode_request(&StartMetricsRequest {}).unwrap().is_empty());
        assert!(encode_request(&StopMetricsRequest {}).unwrap().is_empty());
        // Plugins see an empty body, or `{}` from clients following the docs.
        for body in [&b""[..], b"{}", b" \n"] {
            assert_eq!(
                decode_request::<StartMetricsRequest>(body).unwrap(),
                StartMetricsRequest {}
            );
            assert_eq!(
                decode_request::<StopMetricsRequest>(body).unwrap(),
                StopMetricsRequest {}
            );
        }
    }

    #[test]
    fn replies() {
        // Documented response: {"Err": ""}; `{}` is allowed too. Plugins
        // decode it so (the kit answers it), the daemon no longer reads it.
        for body in [&br#"{"Err": ""}"#[..], b"{}"] {
            assert_eq!(decode_message::<ErrResponse>(body).unwrap().err(), None);
        }
        let r = decode_message::<ErrResponse>(br#"{"Err":"no socket"}"#).unwrap();
        assert_eq!(r.err(), Some("no socket"));
        // daemon/internal/metrics: Call(…StartMetrics, nil, nil): not parsed.
        for body in [&br#"{"Err":"no socket"}"#[..], b"", b"not json"] {
            assert_eq!(
                decode_call_reply::<StartMetricsRequest>(body).unwrap(),
                ErrResponse::default()
            );
        }
        // StopMetrics: the body is never parsed, even when it is not JSON.
        assert_eq!(
            decode_call_reply::<StopMetricsRequest>(b"not json").unwrap(),
            Empty {}
        );
        assert_eq!(
            decode_call_reply::<StopMetricsRequest>(b"").unwrap(),
            Empty {}
        );
    }

    #[test]
    fn round_trips_and_methods() {
        // checklist 15: valid method paths; messages survive encode and decode
        for (m, want) in [
            (<StartMetricsRequest as Call>::METHOD, START_METRICS),
            (<StopMetricsRequest as Call>::METHOD, STOP_METRICS),
        ] {
            assert_eq!(m, want);
            assert!(crate::validate_method(m).is_ok());
        }
        let text = serde_json::to_string(&StartMetricsRequest {}).unwrap();
        assert_eq!(
            serde_json::from_str::<StartMetricsRequest>(&text).unwrap(),
            StartMetricsRequest {}
        );
        let text = serde_json::to_string(&StopMetricsRequest {}).unwrap();
        assert_eq!(
            serde_json::from_str::<StopMetricsRequest>(&text).unwrap(),
            StopMetricsRequest {}
        );
    }
}

//! Typed messages of the `LogDriver` subsystem (Docker's `plugins_logging`
//! documentation; `daemon/logger/proxy.go`, `plugin.go`, `adapter.go`),
//! and the log entry stream.
//!
//! The JSON calls:
//!
//! - `LogDriver.StartLogging` `{File, Info}`: the daemon created a FIFO at
//!   `File` and will write the container's output to it; the plugin must
//!   keep reading it or the container blocks.
//! - `LogDriver.StopLogging` `{File}`: the daemon removes the FIFO once
//!   the plugin answers, so drain it first.
//! - `LogDriver.Capabilities`, sent with an **empty body**, answered
//!   `{"Cap":{"ReadLogs":true}}` (the documentation's bare
//!   `{"ReadLogs":true}` is wrong: the daemon reads `Cap`). Any failure
//!   means no capabilities.
//! - `LogDriver.ReadLogs` `{Info, Config}` (the documentation's
//!   `ReadConfig` key is wrong too), a stream call ([`StreamCall`]): the
//!   reply body is the entry stream below, not JSON.
//!
//! **The entry stream** (FIFO and `ReadLogs` reply alike) is a sequence of
//! frames, each a 4-byte big-endian unsigned length followed by that many
//! bytes of a protobuf `LogEntry` (`api/types/plugins/logdriver/entry.proto`):
//!
//! ```text
//! message LogEntry {
//!   string source = 1;                                   // "stdout" / "stderr"
//!   int64 time_nano = 2;                                 // Unix nanoseconds
//!   bytes line = 3;                                      // without the newline
//!   bool partial = 4;                                    // more of the line follows
//!   PartialLogEntryMetadata partial_log_metadata = 5;
//! }
//! message PartialLogEntryMetadata { bool last = 1; string id = 2; int32 ordinal = 3; }
//! ```
//!
//! [`LogEntry`] encodes and decodes that by hand (proto3: default values
//! are not written, fields in number order, unknown fields skipped), and
//! [`decode_frame`] / [`encode_frame`] handle the framing on byte buffers;
//! the codec lives in a module of its own (`log/entry.rs`), re-exported
//! here.
//! Docker's decoder trusts any length prefix; here a frame longer than a
//! limit ([`DEFAULT_MAX_FRAME_LEN`] unless given) is an error, so garbage
//! cannot make a reader allocate gigabytes.
//!
//! **What it must never do:** IO, or panic on any input: every length and
//! varint is checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::message::impl_err_reply;
use crate::{Call, ErrResponse, GoTime, StreamCall, null_as_default};

mod entry;

pub use entry::{
    DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, Frame, FrameDecoder, LogEntry, LogError,
    PartialLogEntryMetadata, decode_frame, decode_frame_with_limit, encode_frame,
};

/// `LogDriver.StartLogging`.
pub const START_LOGGING: &str = "LogDriver.StartLogging";
/// `LogDriver.StopLogging`.
pub const STOP_LOGGING: &str = "LogDriver.StopLogging";
/// `LogDriver.Capabilities`.
pub const CAPABILITIES: &str = "LogDriver.Capabilities";
/// `LogDriver.ReadLogs`.
pub const READ_LOGS: &str = "LogDriver.ReadLogs";

/// [`LogEntry::source`] of standard output.
pub const SOURCE_STDOUT: &str = "stdout";
/// [`LogEntry::source`] of standard error.
pub const SOURCE_STDERR: &str = "stderr";

/// What the daemon tells a log driver about the container being logged
/// (Docker's `logger.Info`). Only `ContainerID` is always set.
///
/// Nil Go maps and slices are `None` and encode as `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Info {
    /// The `--log-opt` options.
    #[serde(rename = "Config")]
    pub config: Option<BTreeMap<String, String>>,
    /// The full container id.
    #[serde(rename = "ContainerID", deserialize_with = "null_as_default")]
    pub container_id: String,
    /// The container name, with its leading `/`.
    #[serde(rename = "ContainerName", deserialize_with = "null_as_default")]
    pub container_name: String,
    /// The entrypoint.
    #[serde(rename = "ContainerEntrypoint", deserialize_with = "null_as_default")]
    pub container_entrypoint: String,
    /// The command arguments.
    #[serde(rename = "ContainerArgs")]
    pub container_args: Option<Vec<String>>,
    /// The image id.
    #[serde(rename = "ContainerImageID", deserialize_with = "null_as_default")]
    pub container_image_id: String,
    /// The image name.
    #[serde(rename = "ContainerImageName", deserialize_with = "null_as_default")]
    pub container_image_name: String,
    /// When the container was created.
    #[serde(rename = "ContainerCreated", deserialize_with = "null_as_default")]
    pub container_created: GoTime,
    /// The environment, `KEY=value`.
    #[serde(rename = "ContainerEnv")]
    pub container_env: Option<Vec<String>>,
    /// The labels.
    #[serde(rename = "ContainerLabels")]
    pub container_labels: Option<BTreeMap<String, String>>,
    /// The json-file log path, when there is one.
    #[serde(rename = "LogPath", deserialize_with = "null_as_default")]
    pub log_path: String,
    /// The daemon's name (`docker`).
    #[serde(rename = "DaemonName", deserialize_with = "null_as_default")]
    pub daemon_name: String,
}

/// `LogDriver.StartLogging`: start consuming the FIFO at `file`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartLoggingRequest {
    /// The FIFO path (`/run/docker/logging/<random id>`), new on each call.
    #[serde(rename = "File", deserialize_with = "null_as_default")]
    pub file: String,
    /// The container.
    #[serde(rename = "Info", deserialize_with = "null_as_default")]
    pub info: Info,
}

/// `LogDriver.StopLogging`: stop consuming the FIFO at `file`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StopLoggingRequest {
    /// The FIFO path given to `StartLogging`.
    #[serde(rename = "File", deserialize_with = "null_as_default")]
    pub file: String,
}

/// `LogDriver.Capabilities`, sent with an empty body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitiesRequest {}

/// A log driver's capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capability {
    /// The driver implements `LogDriver.ReadLogs` (`docker logs`).
    #[serde(rename = "ReadLogs", deserialize_with = "null_as_default")]
    pub read_logs: bool,
}

/// The reply to [`CapabilitiesRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapabilitiesResponse {
    /// The capabilities.
    #[serde(rename = "Cap", deserialize_with = "null_as_default")]
    pub cap: Capability,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Err",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

/// How to read logs back (Docker's `logger.ReadConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReadConfig {
    /// The oldest entry to send; the zero time means no bound.
    #[serde(rename = "Since", deserialize_with = "null_as_default")]
    pub since: GoTime,
    /// The newest entry to send; the zero time means no bound.
    #[serde(rename = "Until", deserialize_with = "null_as_default")]
    pub until: GoTime,
    /// How many of the last entries to send; negative means all.
    #[serde(rename = "Tail", deserialize_with = "null_as_default")]
    pub tail: i64,
    /// Keep the stream open and send new entries as they come.
    #[serde(rename = "Follow", deserialize_with = "null_as_default")]
    pub follow: bool,
}

/// `LogDriver.ReadLogs`: stream back stored entries (`docker logs`). The
/// reply is a frame stream, see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReadLogsRequest {
    /// The container whose logs to read.
    #[serde(rename = "Info", deserialize_with = "null_as_default")]
    pub info: Info,
    /// What to read.
    #[serde(rename = "Config", deserialize_with = "null_as_default")]
    pub config: ReadConfig,
}

impl_err_reply!(err: CapabilitiesResponse);

impl Call for StartLoggingRequest {
    const METHOD: &'static str = START_LOGGING;
    type Reply = ErrResponse;
}

impl Call for StopLoggingRequest {
    const METHOD: &'static str = STOP_LOGGING;
    type Reply = ErrResponse;
}

impl Call for CapabilitiesRequest {
    const METHOD: &'static str = CAPABILITIES;
    type Reply = CapabilitiesResponse;
    const SENDS_BODY: bool = false;
}

impl StreamCall for ReadLogsRequest {
    const METHOD: &'static str = READ_LOGS;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::decode_call_reply;
    use crate::{ErrReply, encode_args, encode_stream_request};
    use crate::{decode_message, decode_request, encode_request};

    fn info() -> Info {
        Info {
            config: Some(BTreeMap::from([("max-size".into(), "10m".into())])),
            container_id: "abc123".into(),
            container_name: "/web".into(),
            container_entrypoint: "nginx".into(),
            container_args: Some(vec!["-g".into(), "daemon off;".into()]),
            container_image_id: "sha256:0f".into(),
            container_image_name: "nginx:latest".into(),
            container_created: GoTime::parse("2024-05-06T07:08:09.123456789Z").unwrap(),
            container_env: Some(vec!["A=1".into()]),
            container_labels: Some(BTreeMap::new()),
            log_path: String::new(),
            daemon_name: "docker".into(),
        }
    }

    #[test]
    fn zero_info_is_what_go_marshals() {
        // json.Marshal(logger.Info{}): nil maps and slices are null, zero time.
        assert_eq!(
            serde_json::to_string(&Info::default()).unwrap(),
            r#"{"Config":null,"ContainerID":"","ContainerName":"","ContainerEntrypoint":"","ContainerArgs":null,"ContainerImageID":"","ContainerImageName":"","ContainerCreated":"0001-01-01T00:00:00Z","ContainerEnv":null,"ContainerLabels":null,"LogPath":"","DaemonName":""}"#
        );
        assert_eq!(
            serde_json::to_string(&ReadConfig::default()).unwrap(),
            r#"{"Since":"0001-01-01T00:00:00Z","Until":"0001-01-01T00:00:00Z","Tail":0,"Follow":false}"#
        );
    }

    #[test]
    fn call_shapes() {
        // daemon/logger/proxy.go: Capabilities with nil args, ReadLogs through Stream.
        assert!(encode_request(&CapabilitiesRequest {}).unwrap().is_empty());
        assert_eq!(
            &encode_request(&StopLoggingRequest {
                file: "/run/docker/logging/1".into()
            })
            .unwrap()[..],
            b"{\"File\":\"/run/docker/logging/1\"}\n"
        );
        let start = StartLoggingRequest {
            file: "/run/docker/logging/1".into(),
            info: Info {
                container_id: "c".into(),
                ..Info::default()
            },
        };
        let body = encode_request(&start).unwrap();
        assert!(body.starts_with(
            b"{\"File\":\"/run/docker/logging/1\",\"Info\":{\"Config\":null,\"ContainerID\":\"c\""
        ));
        let read = ReadLogsRequest {
            info: info(),
            config: ReadConfig {
                tail: -1,
                follow: true,
                ..ReadConfig::default()
            },
        };
        let body = encode_stream_request(&read).unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains(r#""Config":{"Since":"0001-01-01T00:00:00Z","Until":"0001-01-01T00:00:00Z","Tail":-1,"Follow":true}"#), "{text}");
        assert!(text.contains(r#""ContainerCreated":"2024-05-06T07:08:09.123456789Z""#));
        assert!(text.ends_with("}\n"));
        assert_eq!(
            <ReadLogsRequest as StreamCall>::METHOD,
            "LogDriver.ReadLogs"
        );
    }

    #[test]
    fn documented_examples_decode() {
        // Bodies from Docker's plugins_logging documentation.
        let s: StartLoggingRequest = decode_request(
            br#"{"File": "/path/to/file/stream", "Info": {"ContainerID": "123456"}}"#,
        )
        .unwrap();
        assert_eq!(s.file, "/path/to/file/stream");
        assert_eq!(s.info.container_id, "123456");
        assert!(s.info.container_created.is_zero());
        let s: StopLoggingRequest = decode_request(br#"{"File": "/path/to/file/stream"}"#).unwrap();
        assert_eq!(s.file, "/path/to/file/stream");
        assert_eq!(
            decode_call_reply::<StartLoggingRequest>(br#"{"Err": ""}"#)
                .unwrap()
                .err(),
            None
        );
        assert_eq!(
            decode_call_reply::<StopLoggingRequest>(b"{}")
                .unwrap()
                .err(),
            None
        );
        // The documented `{"ReadLogs": true}` is not what the daemon reads.
        let c = decode_call_reply::<CapabilitiesRequest>(br#"{"ReadLogs": true}"#).unwrap();
        assert!(!c.cap.read_logs);
        let c =
            decode_call_reply::<CapabilitiesRequest>(br#"{"Cap": {"ReadLogs": true}}"#).unwrap();
        assert!(c.cap.read_logs);
        // The documented ReadLogs body uses `ReadConfig`, which the daemon never sends.
        let r: ReadLogsRequest =
            decode_message(br#"{"ReadConfig": {}, "Info": {"ContainerID": "123456"}}"#).unwrap();
        assert_eq!(r.info.container_id, "123456");
        assert_eq!(r.config, ReadConfig::default());
    }

    #[test]
    fn round_trips() {
        // checklist 21/22: every LogDriver message survives encode and decode
        fn rt<
            T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + Default,
        >(
            v: &T,
        ) {
            let wire = encode_args(Some(v)).unwrap();
            assert_eq!(&serde_json::from_slice::<T>(&wire).unwrap(), v);
            assert_eq!(&decode_message::<T>(&wire).unwrap(), v);
        }
        rt(&Info::default());
        rt(&info());
        rt(&StartLoggingRequest {
            file: "f".into(),
            info: info(),
        });
        rt(&StopLoggingRequest { file: "f".into() });
        rt(&CapabilitiesRequest {});
        rt(&CapabilitiesResponse {
            cap: Capability { read_logs: true },
            err: "e".into(),
        });
        rt(&ReadLogsRequest {
            info: info(),
            config: ReadConfig {
                since: GoTime::parse("2024-01-01T00:00:00+01:00").unwrap(),
                until: GoTime::from_unix_nanos(1),
                tail: 10,
                follow: true,
            },
        });
    }
}

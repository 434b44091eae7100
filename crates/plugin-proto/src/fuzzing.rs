//! Fuzz target bodies, shared by `fuzz/` and the corpus replay test.
//!
//! Each `pub fn name(data: &[u8])` is one target: it feeds `data` to the
//! code under test and panics when an invariant breaks, so libFuzzer
//! (`fuzz/fuzz_targets/<name>.rs`) and `cargo test` (which replays
//! `fuzz/corpus/<name>/`) run exactly the same checks. [`TARGETS`] lists
//! them all so that no target can go unreplayed.
//!
//! The bodies run millions of times a minute: they do no IO and keep their
//! own models small.

use std::time::Duration;

use crate::gojson;
use crate::log;
use crate::retry::{self, RetryPolicy};
use crate::spec::{self, PluginJson};
use crate::{
    Address, Endpoint, Manifest, SpecContent, SpecError, StatusError, TlsOptions, VIRTUAL_HOST,
    encode_args, encode_call_head, encode_json_spec, encode_spec, parse_json_spec, parse_spec,
};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` file and
/// corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("addr_parse", addr_parse),
    ("spec_file", spec_file),
    ("json_spec", json_spec),
    ("manifest_roundtrip", manifest_roundtrip),
    ("status_error_body", status_error_body),
    ("args_roundtrip", args_roundtrip),
    ("backoff_schedule", backoff_schedule),
    ("json_go_model", json_go_model),
    ("log_frames", log_frames),
    ("spec_roundtrip", spec_roundtrip),
];

/// `Address::parse` on any text: never panics; an accepted address displays
/// as its input, re-parses to itself, and its endpoint, scheme and `Host`
/// header agree with each other.
pub fn addr_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Address::parse(&text) {
        Ok(a) => check_address(&text, &a),
        // Error texts quote the input: formatting must not panic either.
        Err(e) => drop(e.to_string()),
    }
}

fn check_address(text: &str, a: &Address) {
    assert_eq!(a.as_str(), text);
    assert_eq!(a.to_string(), text);
    match Address::parse(&a.to_string()) {
        Ok(again) => assert_eq!(&again, a, "re-parse of {text:?}"),
        Err(e) => panic!("{text:?} parsed but its display does not: {e}"),
    }
    assert_eq!(a.http_scheme(), if a.is_tls() { "https" } else { "http" });
    match a.endpoint() {
        Endpoint::Unix(path) => {
            assert!(a.is_local() && !a.is_tls());
            assert_eq!(a.host_header(), VIRTUAL_HOST);
            assert!(
                path.as_os_str().as_encoded_bytes().starts_with(b"/"),
                "{text:?}: unix path {path:?} is not absolute"
            );
        }
        Endpoint::NamedPipe(pipe) => {
            assert!(a.is_local() && !a.is_tls());
            assert_eq!(a.host_header(), VIRTUAL_HOST);
            assert!(!pipe.is_empty());
        }
        Endpoint::Tcp(dial) => {
            assert!(!a.is_local());
            let host = a.host_header();
            assert!(!host.is_empty(), "{text:?}: empty Host header");
            // The dial target is `host:port`, split unambiguously at its
            // last colon.
            let Some((name, port)) = dial.rsplit_once(':') else {
                panic!("{text:?}: dial target {dial:?} has no port");
            };
            assert!(
                !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
                "{text:?}: dial target {dial:?} has a bad port"
            );
            if name.starts_with('[') {
                assert!(
                    name.ends_with(']'),
                    "{text:?}: dial target {dial:?} has a broken IPv6 literal"
                );
            } else {
                assert!(
                    !name.contains(':'),
                    "{text:?}: dial target {dial:?} has an ambiguous host"
                );
            }
            // The Host header is the dial target, or the dial target less
            // the scheme's default port.
            let default = if a.is_tls() { ":443" } else { ":80" };
            assert!(
                host == dial || format!("{host}{default}") == *dial,
                "{text:?}: Host {host:?} does not match dial target {dial:?}"
            );
            // A Host header never carries URL delimiters or spaces.
            assert!(
                !host
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "/?#@".contains(c)),
                "{text:?}: Host header {host:?}"
            );
        }
    }
    // Building a request may fail (`http` refuses some hosts) but never panics.
    let _ = a.check_dialable();
    let _ = encode_call_head(a, "Plugin.Activate", Some(0));
}

/// `parse_spec` on any bytes: never panics; accepts exactly what
/// `Address::parse` accepts after trimming, and keeps the trimmed text as
/// the address, with Docker's insecure TLS default.
pub fn spec_file(data: &[u8]) {
    let result = parse_spec(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(matches!(result, Err(SpecError::NotUtf8)), "{result:?}");
        return;
    };
    let trimmed = text.trim();
    match (result, Address::parse(trimmed)) {
        (Ok(s), Ok(a)) => {
            assert_eq!(s.address.as_str(), trimmed);
            assert_eq!(s.address, a);
            assert_eq!(s.tls, Some(TlsOptions::insecure()));
            assert_eq!(s.implements, None);
        }
        (Err(SpecError::Address(e)), Err(direct)) => {
            assert_eq!(e, direct);
            drop(e.to_string());
        }
        (r, a) => panic!("{trimmed:?}: parse_spec gave {r:?} but Address::parse {a:?}"),
    }
}

/// `parse_json_spec` on any bytes: never panics; a `TLSConfig` without
/// `CAFile` is insecure; what it accepts, written back with
/// `encode_json_spec`, reads back the same.
pub fn json_spec(data: &[u8]) {
    match parse_json_spec(data) {
        Ok(s) => {
            if let Some(t) = &s.tls
                && t.ca_file.is_none()
            {
                assert!(t.insecure_skip_verify, "TLSConfig without CAFile: {t:?}");
            }
            let bytes = match encode_json_spec(&s, "fuzz") {
                Ok(b) => b,
                Err(e) => panic!("cannot encode {s:?}: {e}"),
            };
            match parse_json_spec(&bytes) {
                Ok(back) => assert_eq!(back, s, "{:?}", String::from_utf8_lossy(&bytes)),
                Err(e) => panic!("{s:?} re-encoded as {bytes:?} fails: {e}"),
            }
        }
        Err(e) => drop(e.to_string()),
    }
}

/// The spec writers against the readers, both ways.
///
/// - Read → write → read: whatever `parse_json_spec` or `parse_spec`
///   accepts, written in the same format, reads back equal, and writing
///   that again gives the same bytes.
/// - Write → read: a spec built from the input's NUL-separated fields
///   (address, a flags byte, CA, certificate and key paths, name,
///   `Implements` entries), written as `.json`, reads back equal, except
///   that a `TLSConfig` without `CAFile` reads back insecure (Docker's
///   rule). Written as `.spec` it is refused unless a `.spec` can hold it,
///   and then reads back as the address with Docker's insecure default.
pub fn spec_roundtrip(data: &[u8]) {
    if let Ok(spec) = parse_json_spec(data) {
        let once = json_write_read(&spec, "fuzz");
        assert_eq!(once.0, spec);
        let twice = json_write_read(&once.0, "fuzz");
        assert_eq!(twice, once, "writing is not stable");
    }
    if let Ok(spec) = parse_spec(data) {
        let written = match encode_spec(&spec) {
            Ok(b) => b,
            Err(e) => panic!("{spec:?} was read from a .spec but cannot be written: {e}"),
        };
        match parse_spec(&written) {
            Ok(back) => assert_eq!(back, spec),
            Err(e) => panic!("{spec:?} written as {written:?} fails: {e}"),
        }
        assert_eq!(
            encode_spec(&spec).ok(),
            Some(written),
            "writing is not stable"
        );
    }
    let Some((spec, name)) = spec_from_fields(data) else {
        return;
    };
    let mut expected = spec.clone();
    if let Some(t) = expected.tls.as_mut()
        && t.ca_file.is_none()
    {
        t.insecure_skip_verify = true;
    }
    assert_eq!(json_write_read(&spec, &name).0, expected);
    let spec_file_can_hold = spec.implements.is_none()
        && spec
            .tls
            .as_ref()
            .is_none_or(|t| *t == TlsOptions::insecure())
        && spec.address.as_str().trim() == spec.address.as_str();
    match encode_spec(&spec) {
        Ok(written) => {
            assert!(spec_file_can_hold, "{spec:?} written as a lossy .spec");
            match parse_spec(&written) {
                Ok(back) => {
                    assert_eq!(back.address, spec.address);
                    assert_eq!(back.tls, Some(TlsOptions::insecure()));
                    assert_eq!(back.implements, None);
                }
                Err(e) => panic!("{spec:?} written as {written:?} fails: {e}"),
            }
        }
        Err(e) => {
            assert!(!spec_file_can_hold, "{spec:?} refused as a .spec: {e}");
            assert!(matches!(e, SpecError::Unwritable(_)), "{e:?}");
        }
    }
}

/// Writes `spec` as a `.json` spec and reads it back.
fn json_write_read(spec: &SpecContent, name: &str) -> (SpecContent, Vec<u8>) {
    let written = match encode_json_spec(spec, name) {
        Ok(b) => b,
        Err(e) => panic!("{spec:?} cannot be written: {e}"),
    };
    match parse_json_spec(&written) {
        Ok(back) => (back, written),
        Err(e) => panic!(
            "{spec:?} written as {:?} fails: {e}",
            String::from_utf8_lossy(&written)
        ),
    }
}

/// A spec from NUL-separated fields: address, flags, CA, certificate, key,
/// name, then `Implements` entries. Flags: bit 0 a `TLSConfig`, bit 1
/// `InsecureSkipVerify`, bit 2 `ExclusiveRootPools`, bit 3 `Implements`,
/// bits 4–7 pick `ClientAuth` and `MinVersion`. `None` when the address
/// does not parse or a field is missing.
fn spec_from_fields(data: &[u8]) -> Option<(SpecContent, String)> {
    let mut fields = data.split(|b| *b == 0);
    let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
    let address = Address::parse(&text(fields.next()?)).ok()?;
    let flags = fields.next()?.first().copied().unwrap_or(0);
    let path = |f: Option<&[u8]>| {
        f.map(text)
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from)
    };
    let (ca, cert, key) = (
        path(fields.next()),
        path(fields.next()),
        path(fields.next()),
    );
    let name = fields.next().map(text).unwrap_or_default();
    let mut spec = SpecContent::new(address);
    if flags & 1 != 0 {
        spec = spec.with_tls(TlsOptions {
            ca_file: ca,
            cert_file: cert,
            key_file: key,
            insecure_skip_verify: flags & 2 != 0,
            exclusive_root_pools: flags & 4 != 0,
            client_auth: i64::from(flags >> 4) - 8,
            min_version: u16::from(flags >> 4) * 0x0101,
        });
    }
    if flags & 8 != 0 {
        spec = spec.with_implements(fields.map(text));
    }
    Some((spec, name))
}

/// `Manifest::decode` on any bytes: never panics; an accepted manifest,
/// Go-encoded as the engine or a plugin would send it, decodes to itself
/// (hickory-proto's parse → encode → parse pattern).
pub fn manifest_roundtrip(data: &[u8]) {
    match Manifest::decode(data) {
        Ok(m) => {
            let bytes = match encode_args(Some(&m)) {
                Ok(b) => b,
                Err(e) => panic!("cannot encode {m:?}: {e}"),
            };
            assert!(bytes.ends_with(b"\n"));
            match Manifest::decode(&bytes) {
                Ok(back) => assert_eq!(back, m),
                Err(e) => panic!("{m:?} encoded as {bytes:?} fails: {e}"),
            }
        }
        Err(e) => drop(e.to_string()),
    }
}

/// `StatusError::from_reply` on any body: never panics; the message is the
/// raw body (lossily decoded), or else a non-empty string held by a key
/// spelled like `Err` in a body that is one whole JSON object; the text is
/// `method: message`.
pub fn status_error_body(data: &[u8]) {
    const METHOD: &str = "VolumeDriver.Create";
    // Vary the status with the input without spending input bytes on it.
    let status = 201 + (data.len() % 399) as u16;
    let e = StatusError::from_reply(METHOD, status, data);
    assert_eq!(e.status(), status);
    assert_eq!(e.method(), METHOD);
    assert_eq!(e.is_not_found(), status == 404);
    assert_eq!(e.to_string(), format!("{METHOD}: {}", e.message()));
    let raw = String::from_utf8_lossy(data);
    if e.message() != raw {
        let text = gojson::go_lossy_utf8(data);
        let value: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(err) => panic!(
                "message {:?} from a body that is not JSON: {err}",
                e.message()
            ),
        };
        let Some(object) = value.as_object() else {
            panic!(
                "message {:?} from a body that is not an object",
                e.message()
            );
        };
        assert!(!e.message().is_empty());
        assert!(
            object
                .iter()
                .any(|(k, v)| go_fold(k) == "ERR" && v.as_str() == Some(e.message())),
            "message {:?} is not an Err value of {object:?}",
            e.message()
        );
    }
    if let Ok(code) = http::StatusCode::from_u16(status) {
        let via_reply = crate::decode_reply(METHOD, code, bytes::Bytes::copy_from_slice(data));
        assert_eq!(via_reply, Err(e));
    }
}

/// Call arguments: any JSON value serde can read, encoded with
/// `encode_args`, ends in a newline, carries no raw `<`, `>`, `&`, U+2028 or
/// U+2029, and reads back as the same value.
pub fn args_roundtrip(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let bytes = match encode_args(Some(&value)) {
        Ok(b) => b,
        Err(e) => panic!("cannot encode {value:?}: {e}"),
    };
    assert!(bytes.ends_with(b"\n"), "{bytes:?}");
    assert!(
        !bytes.iter().any(|b| matches!(b, b'<' | b'>' | b'&')),
        "unescaped HTML in {bytes:?}"
    );
    assert!(
        !bytes
            .windows(3)
            .any(|w| w == [0xe2, 0x80, 0xa8] || w == [0xe2, 0x80, 0xa9]),
        "raw line separator in {bytes:?}"
    );
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(back) => assert!(same_json(&value, &back), "{value:?} came back as {back:?}"),
        Err(e) => panic!("{bytes:?} does not read back: {e}"),
    }
}

/// JSON equality by value: a float equals an integer of the same value
/// (Go writes `5.0` as `5`, which reads back as an integer). Floats must
/// be equal exactly: the workspace turns on serde_json's
/// `float_roundtrip`, so a float read, written the shortest way and read
/// again comes back bit for bit, as with Go (finding 9). Also used by
/// `plugin_server::fuzzing`.
pub fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            }
        }
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same_json(vx, vy))
        }
        _ => a == b,
    }
}

/// Reads fixed-size integers from fuzz input, zero-padding at the end.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn duration(&mut self) -> Duration {
        Duration::new(self.u64(), self.u32() % 1_000_000_000)
    }
}

/// The frame cap `log_frames` decodes with: small, so inputs reach it.
const LOG_FRAME_LIMIT: usize = 256;

/// A log entry stream (length-prefixed protobuf `LogEntry` frames, as the
/// daemon writes to a log driver's FIFO) from arbitrary bytes. The first
/// byte sets the size of the pieces the stream arrives in; the rest is the
/// stream. Never panics; [`log::FrameDecoder`] fed piece by piece yields
/// exactly the entries, and the error, that [`log::decode_frame_with_limit`]
/// gives on the whole stream, so how a read splits the stream never
/// matters; a frame over the cap is an error as soon as its prefix is in;
/// every entry decoded encodes ([`log::encode_frame`]) to a frame that
/// decodes back equal, taking all of its bytes.
pub fn log_frames(data: &[u8]) {
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);

    // The whole stream at once.
    let mut whole = Vec::new();
    let mut rest = stream;
    let whole_end = loop {
        match log::decode_frame_with_limit(rest, LOG_FRAME_LIMIT) {
            Ok(log::Frame::Entry { entry, consumed }) => {
                assert!(consumed >= log::FRAME_HEADER_LEN && consumed <= rest.len());
                rest = &rest[consumed..];
                whole.push(entry);
            }
            Ok(log::Frame::Incomplete { needed }) => {
                assert!(
                    needed > rest.len(),
                    "incomplete with {needed} of {} in",
                    rest.len()
                );
                break Ok(rest.len());
            }
            Err(e) => {
                if let log::LogError::FrameTooLarge { len, max } = &e {
                    assert_eq!(*max, LOG_FRAME_LIMIT);
                    assert!(*len > LOG_FRAME_LIMIT as u64);
                }
                break Err(e);
            }
        }
    };

    // The same stream in pieces.
    let mut decoder = log::FrameDecoder::with_limit(LOG_FRAME_LIMIT);
    let mut pieces = Vec::new();
    let mut streamed_end = None;
    'feed: for chunk in stream.chunks(piece) {
        decoder.push(chunk);
        loop {
            match decoder.next_entry() {
                Ok(Some(entry)) => pieces.push(entry),
                Ok(None) => break,
                Err(e) => {
                    streamed_end = Some(Err(e));
                    break 'feed;
                }
            }
        }
    }
    let streamed_end = streamed_end.unwrap_or(Ok(decoder.pending()));
    assert_eq!(
        pieces, whole,
        "entries differ when the stream comes in pieces of {piece}"
    );
    assert_eq!(
        streamed_end, whole_end,
        "the stream ends differently in pieces of {piece}"
    );

    for entry in &whole {
        let mut frame = Vec::new();
        if log::encode_frame(entry, &mut frame).is_err() {
            panic!("an entry decoded from a capped frame does not encode: {entry:?}");
        }
        assert_eq!(frame.len(), log::FRAME_HEADER_LEN + entry.encoded_len());
        match log::decode_frame(&frame) {
            Ok(log::Frame::Entry {
                entry: again,
                consumed,
            }) => {
                assert_eq!(&again, entry, "round trip through {frame:?}");
                assert_eq!(consumed, frame.len());
            }
            other => panic!("an encoded entry does not decode ({other:?}): {frame:?}"),
        }
    }
}

/// The retry schedule from arbitrary numbers: backoff is in [1 s, 30 s],
/// doubles then caps, never shrinks; `should_abort` is `elapsed + next >=
/// budget`; `next_delay` is the backoff exactly when not aborting; a whole
/// schedule ends within its budget; Go-style duration texts parse back to
/// the same duration.
pub fn backoff_schedule(data: &[u8]) {
    let mut input = Input(data);
    let retries = input.u32();
    let elapsed = input.duration();
    let budget = input.duration();

    let delay = retry::backoff(retries);
    let expected = if retries < 5 { 1u64 << retries } else { 30 };
    assert_eq!(delay, Duration::from_secs(expected), "backoff({retries})");
    if let Some(next) = retries.checked_add(1) {
        assert!(retry::backoff(next) >= delay);
    }

    let abort = retry::should_abort(elapsed, delay, budget);
    let want_abort = elapsed.checked_add(delay).is_none_or(|t| t >= budget);
    assert_eq!(abort, want_abort, "{elapsed:?} + {delay:?} vs {budget:?}");
    let policy = RetryPolicy::with_budget(budget);
    assert_eq!(policy.budget(), Some(budget));
    assert_eq!(
        policy.next_delay(retries, elapsed),
        (!abort).then_some(delay)
    );
    assert_eq!(RetryPolicy::none().next_delay(retries, elapsed), None);

    // A whole schedule: attempts that each take `attempt` before failing,
    // within a budget of up to about 18 hours.
    let budget = Duration::from_millis(u64::from(input.u16()) * 1000);
    let attempt = Duration::from_millis(u64::from(input.u16()));
    let policy = RetryPolicy::with_budget(budget);
    let (mut now, mut n) = (Duration::ZERO, 0u32);
    loop {
        now += attempt;
        let Some(wait) = policy.next_delay(n, now) else {
            break;
        };
        assert!(now + wait < budget, "retry {n} at {now:?} + {wait:?}");
        now += wait;
        n += 1;
        assert!(n <= 65_536, "schedule does not end");
    }

    for d in [elapsed, delay, attempt, budget] {
        let text = retry::go_duration(d);
        assert_eq!(
            parse_go_duration(&text),
            Some(d.as_nanos()),
            "{d:?} printed as {text:?}"
        );
    }
}

/// Go's `time.ParseDuration` for the forms `go_duration` prints, in
/// nanoseconds.
fn parse_go_duration(text: &str) -> Option<u128> {
    const UNITS: [(&str, u128); 6] = [
        ("ns", 1),
        ("µs", 1_000),
        ("ms", 1_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
    ];
    if text == "0s" {
        return Some(0);
    }
    let mut total = 0u128;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(end);
        let (unit, scale) = UNITS.iter().find(|(u, _)| tail.starts_with(u))?;
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        total += whole.parse::<u128>().ok()? * scale;
        if !fraction.is_empty() {
            let digits = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
            let part = fraction.parse::<u128>().ok()? * scale;
            if part % digits != 0 {
                return None;
            }
            total += part / digits;
        }
        rest = &tail[unit.len()..];
    }
    Some(total)
}

/// Go's key folding for matching against ASCII field names: ASCII letters
/// fold to upper case, and the only non-ASCII runes whose simple case
/// folding orbit holds an ASCII letter, U+017F (ſ) and U+212A (Kelvin),
/// fold to `S` and `K`. Any other rune can never match an ASCII name (Go's
/// `foldName` maps it to a non-ASCII rune), so it stays as it is.
fn go_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            '\u{17f}' => 'S',
            '\u{212a}' => 'K',
            c => c,
        })
        .collect()
}

/// Differential target: a small model of Go's `json.Decoder.Decode` into
/// Docker's `Plugin` struct (plus our `Implements` extension), written
/// independently of `gojson` (its own byte-level parser, no serde),
/// compared with `decode_plugin_json` and `parse_json_spec`.
///
/// The model follows Go's rules: the first value only (anything may follow
/// it), keys matched with Go's case folding, the last duplicate winning,
/// `null` leaving fields alone (and setting pointers and slices to nil),
/// invalid UTF-8 in strings replaced byte by byte and lone surrogate escapes
/// replaced by U+FFFD, type errors reported as the first in document order,
/// integers parsed from their literal text, and a `[]string` decoded into
/// the previous slice (a `null` element keeps the old element).
///
/// Scope: inputs where serde_json, on which `gojson` rests, cannot follow Go
/// are skipped, not compared. They are listed as divergences in
/// `FUZZING.md`: nesting deeper than serde_json's limit of 128 (Go allows
/// 10000), lone surrogate escapes (Go: U+FFFD; serde_json: an error),
/// numbers beyond ±1e307 (Go: kept as text; serde_json: an error), a
/// `\u` escape cut short by the end of input with a non-hex byte in it
/// (Go: a syntax error; serde_json: unexpected EOF), a
/// top-level number or literal followed directly by a non-delimiter (Go
/// stops before it; serde_json's stream reader refuses it), integer fields
/// given `-0`, fractions, exponents or out-of-range digits (Go reports the
/// literal text, serde_json only has the parsed float), and `null` elements
/// past the end of a shorter earlier `Implements` array (Go's result then
/// depends on the slice's capacity, which varies between Go versions).
pub fn json_go_model(data: &[u8]) {
    let model = model::decode(data);
    let ours = spec::decode_plugin_json(data);
    let model = match model {
        Err(model::Outcome::Excluded(_)) => return,
        Err(model::Outcome::Failed(e)) => Err(e),
        Ok(p) => Ok(p),
    };
    match (&model, &ours) {
        (Ok(m), Ok(o)) => compare_fields(data, m, o),
        (Err(m), Err(o)) => {
            let ours = match o {
                crate::DecodeError::Eof => model::GoError::Eof,
                crate::DecodeError::UnexpectedEof => model::GoError::UnexpectedEof,
                crate::DecodeError::Syntax(_) => model::GoError::Syntax,
                other => model::GoError::Type(other.to_string()),
            };
            assert_eq!(m, &ours, "{:?}", String::from_utf8_lossy(data));
        }
        _ => panic!(
            "{:?}: Go model says {model:?}, decode_plugin_json {ours:?}",
            String::from_utf8_lossy(data)
        ),
    }

    // The whole spec: the address Go decodes is parsed by the same rules,
    // and TLS options without a CA file are insecure.
    let full = parse_json_spec(data);
    match (&model, &full) {
        (Ok(m), Ok(s)) => {
            assert_eq!(s.address.as_str(), m.addr);
            match (&m.tls, &s.tls) {
                (None, None) => {}
                (Some(mt), Some(st)) => assert_eq!(
                    st.insecure_skip_verify,
                    mt.insecure_skip_verify || mt.ca_file.is_empty()
                ),
                (m, s) => panic!("TLS: model {m:?}, parse_json_spec {s:?}"),
            }
        }
        (Ok(m), Err(SpecError::Address(e))) => {
            assert_eq!(Address::parse(&m.addr).as_ref().err(), Some(e));
        }
        (Err(_), Err(SpecError::Json(_))) => {}
        _ => panic!(
            "{:?}: Go model says {model:?}, parse_json_spec {full:?}",
            String::from_utf8_lossy(data)
        ),
    }
}

/// Why [`json_go_model`] skips `data` without comparing, or `None` when it
/// compares.
pub fn json_go_model_scope(data: &[u8]) -> Option<&'static str> {
    match model::decode(data) {
        Err(model::Outcome::Excluded(why)) => Some(why),
        _ => None,
    }
}

fn compare_fields(data: &[u8], m: &model::Plugin, o: &PluginJson) {
    let show = || String::from_utf8_lossy(data).into_owned();
    assert_eq!(m.addr, o.addr, "Addr of {:?}", show());
    assert_eq!(m.implements, o.implements, "Implements of {:?}", show());
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    match (&m.tls, &o.tls) {
        (None, None) => {}
        (Some(mt), Some(ot)) => {
            let ours = model::Tls {
                ca_file: path(&ot.ca_file),
                cert_file: path(&ot.cert_file),
                key_file: path(&ot.key_file),
                insecure_skip_verify: ot.insecure_skip_verify,
                client_auth: ot.client_auth,
                exclusive_root_pools: ot.exclusive_root_pools,
                min_version: ot.min_version,
            };
            assert_eq!(mt, &ours, "TLSConfig of {:?}", show());
        }
        (mt, ot) => panic!("TLSConfig of {:?}: model {mt:?}, ours {ot:?}", show()),
    }
}

/// The Go model behind [`json_go_model`]: a byte-level JSON parser with Go's
/// syntax rules and a decoder with `encoding/json`'s rules for the `Plugin`
/// struct. Independent of `gojson` on purpose.
mod model {
    use super::go_fold;

    /// A parsed JSON value; numbers keep their literal text, as Go does.
    #[derive(Debug)]
    pub(super) enum Value {
        Null,
        Bool(bool),
        Number(String),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        fn kind(&self) -> &'static str {
            match self {
                Value::Null => "null",
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            }
        }
    }

    /// How Go's decoder fails, at the level the comparison checks.
    #[derive(Debug, PartialEq, Eq)]
    pub(super) enum GoError {
        Eof,
        UnexpectedEof,
        Syntax,
        /// The full `json: cannot unmarshal …` text.
        Type(String),
    }

    /// Why the model gives no answer to compare.
    #[derive(Debug)]
    pub(super) enum Outcome {
        Failed(GoError),
        /// Outside the model's scope (see `json_go_model`).
        Excluded(&'static str),
    }

    impl From<GoError> for Outcome {
        fn from(e: GoError) -> Self {
            Outcome::Failed(e)
        }
    }

    /// go-connections' `tlsconfig.Options`, Go's zero values included.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub(super) struct Tls {
        pub(super) ca_file: String,
        pub(super) cert_file: String,
        pub(super) key_file: String,
        pub(super) insecure_skip_verify: bool,
        pub(super) client_auth: i64,
        pub(super) exclusive_root_pools: bool,
        pub(super) min_version: u16,
    }

    /// Docker's `Plugin` as Go fills it from a `.json` spec.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub(super) struct Plugin {
        pub(super) addr: String,
        pub(super) tls: Option<Tls>,
        pub(super) implements: Option<Vec<String>>,
    }

    /// Deeper nesting is out of scope: serde_json stops at 128 levels.
    const MAX_DEPTH: usize = 100;

    struct Parser<'a> {
        bytes: &'a [u8],
        pos: usize,
        depth: usize,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<u8> {
            self.bytes.get(self.pos).copied()
        }

        fn next(&mut self) -> Option<u8> {
            let b = self.peek()?;
            self.pos += 1;
            Some(b)
        }

        fn skip_space(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.pos += 1;
            }
        }

        /// The next byte must be `want`.
        fn expect(&mut self, want: u8) -> Result<(), Outcome> {
            match self.next() {
                None => Err(GoError::UnexpectedEof.into()),
                Some(b) if b == want => Ok(()),
                Some(_) => Err(GoError::Syntax.into()),
            }
        }

        fn value(&mut self) -> Result<Value, Outcome> {
            match self.peek() {
                None => Err(GoError::UnexpectedEof.into()),
                Some(b'{') => self.object(),
                Some(b'[') => self.array(),
                Some(b'"') => Ok(Value::String(self.string()?)),
                Some(b't') => self.literal(b"true", Value::Bool(true)),
                Some(b'f') => self.literal(b"false", Value::Bool(false)),
                Some(b'n') => self.literal(b"null", Value::Null),
                Some(b'-' | b'0'..=b'9') => self.number(),
                Some(_) => Err(GoError::Syntax.into()),
            }
        }

        fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, Outcome> {
            for &want in word {
                self.expect(want)?;
            }
            Ok(value)
        }

        fn digits(&mut self) -> Result<(), Outcome> {
            match self.next() {
                None => return Err(GoError::UnexpectedEof.into()),
                Some(b'0'..=b'9') => {}
                Some(_) => return Err(GoError::Syntax.into()),
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
            Ok(())
        }

        fn number(&mut self) -> Result<Value, Outcome> {
            let start = self.pos;
            if self.peek() == Some(b'-') {
                self.pos += 1;
            }
            match self.peek() {
                // One leading zero; a digit after it ends the number.
                Some(b'0') => self.pos += 1,
                _ => self.digits()?,
            }
            if self.peek() == Some(b'.') {
                self.pos += 1;
                self.digits()?;
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.pos += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.pos += 1;
                }
                self.digits()?;
            }
            let text = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
            match text.parse::<f64>() {
                Ok(f) if f.abs() < 1e307 => Ok(Value::Number(text)),
                _ => Err(Outcome::Excluded("number beyond serde_json's range")),
            }
        }

        fn hex4(&mut self) -> Result<u32, Outcome> {
            // serde_json reports EOF when fewer than four bytes are left,
            // before it looks at them; Go reports the first non-hex byte.
            let rest = &self.bytes[self.pos..];
            if rest.len() < 4 && !rest.iter().all(u8::is_ascii_hexdigit) {
                return Err(Outcome::Excluded("truncated \\u escape"));
            }
            let mut n = 0;
            for _ in 0..4 {
                let d = match self.next() {
                    None => return Err(GoError::UnexpectedEof.into()),
                    Some(b) => (b as char).to_digit(16).ok_or(GoError::Syntax)?,
                };
                n = n * 16 + d;
            }
            Ok(n)
        }

        /// A string, unquoted as Go's `unquote` does.
        fn string(&mut self) -> Result<String, Outcome> {
            self.expect(b'"')?;
            let mut out = String::new();
            loop {
                match self.next() {
                    None => return Err(GoError::UnexpectedEof.into()),
                    Some(b'"') => return Ok(out),
                    Some(b'\\') => match self.next() {
                        None => return Err(GoError::UnexpectedEof.into()),
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let unit = self.hex4()?;
                            out.push(self.unicode_escape(unit)?);
                        }
                        Some(_) => return Err(GoError::Syntax.into()),
                    },
                    Some(0..=0x1f) => return Err(GoError::Syntax.into()),
                    Some(_) => {
                        // Go's utf8.DecodeRune: one rune of its exact width,
                        // or U+FFFD for a single bad byte.
                        let start = self.pos - 1;
                        let rest = &self.bytes[start..];
                        let rune = (1..=rest.len().min(4)).find_map(|w| {
                            std::str::from_utf8(&rest[..w])
                                .ok()
                                .and_then(|s| s.chars().next())
                                .map(|c| (c, w))
                        });
                        match rune {
                            Some((c, w)) => {
                                out.push(c);
                                self.pos = start + w;
                            }
                            None => out.push('\u{fffd}'),
                        }
                    }
                }
            }
        }

        /// `\uXXXX` whose value is `unit`: a surrogate pair joins with the
        /// next escape; any other surrogate is U+FFFD in Go (out of scope).
        fn unicode_escape(&mut self, unit: u32) -> Result<char, Outcome> {
            if !(0xd800..0xe000).contains(&unit) {
                return Ok(char::from_u32(unit).unwrap_or('\u{fffd}'));
            }
            if unit < 0xdc00 && self.bytes[self.pos..].starts_with(b"\\u") {
                let save = self.pos;
                self.pos += 2;
                if let Ok(low) = self.hex4()
                    && (0xdc00..0xe000).contains(&low)
                {
                    let c = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                    return Ok(char::from_u32(c).unwrap_or('\u{fffd}'));
                }
                self.pos = save;
            }
            Err(Outcome::Excluded("lone surrogate escape"))
        }

        fn enter(&mut self) -> Result<(), Outcome> {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(Outcome::Excluded("nesting beyond serde_json's limit"));
            }
            self.pos += 1;
            self.skip_space();
            Ok(())
        }

        fn array(&mut self) -> Result<Value, Outcome> {
            self.enter()?;
            let mut items = Vec::new();
            if self.peek() == Some(b']') {
                self.pos += 1;
            } else {
                loop {
                    self.skip_space();
                    items.push(self.value()?);
                    self.skip_space();
                    match self.next() {
                        None => return Err(GoError::UnexpectedEof.into()),
                        Some(b',') => {}
                        Some(b']') => break,
                        Some(_) => return Err(GoError::Syntax.into()),
                    }
                }
            }
            self.depth -= 1;
            Ok(Value::Array(items))
        }

        fn object(&mut self) -> Result<Value, Outcome> {
            self.enter()?;
            let mut entries = Vec::new();
            if self.peek() == Some(b'}') {
                self.pos += 1;
            } else {
                loop {
                    self.skip_space();
                    if self.peek().is_none() {
                        return Err(GoError::UnexpectedEof.into());
                    }
                    let key = self.string()?;
                    self.skip_space();
                    self.expect(b':')?;
                    self.skip_space();
                    let value = self.value()?;
                    entries.push((key, value));
                    self.skip_space();
                    match self.next() {
                        None => return Err(GoError::UnexpectedEof.into()),
                        Some(b',') => {}
                        Some(b'}') => break,
                        Some(_) => return Err(GoError::Syntax.into()),
                    }
                }
            }
            self.depth -= 1;
            Ok(Value::Object(entries))
        }
    }

    /// Go's `json.NewDecoder(r).Decode(&v)`: the first value of the input.
    fn first_value(bytes: &[u8]) -> Result<Value, Outcome> {
        let mut p = Parser {
            bytes,
            pos: 0,
            depth: 0,
        };
        p.skip_space();
        if p.peek().is_none() {
            return Err(GoError::Eof.into());
        }
        let value = p.value()?;
        if matches!(value, Value::Null | Value::Bool(_) | Value::Number(_))
            && p.peek().is_some_and(|b| !b" \t\n\r\"[]{},:".contains(&b))
        {
            return Err(Outcome::Excluded("top-level literal followed by junk"));
        }
        Ok(value)
    }

    /// Decoding state: Go keeps the first type error and goes on.
    struct Decoder {
        error: Option<String>,
        excluded: Option<&'static str>,
        /// The backing array of the `Implements` slice, for `null` elements.
        backing: Vec<String>,
    }

    impl Decoder {
        fn type_error(&mut self, value: &str, path: &str, ty: &str) {
            self.error.get_or_insert_with(|| {
                format!(
                    "json: cannot unmarshal {value} into Go struct field Plugin.{path} of type {ty}"
                )
            });
        }

        fn string(&mut self, v: &Value, slot: &mut String, path: &str) {
            match v {
                Value::Null => {}
                Value::String(s) => slot.clone_from(s),
                other => self.type_error(other.kind(), path, "string"),
            }
        }

        fn bool(&mut self, v: &Value, slot: &mut bool, path: &str) {
            match v {
                Value::Null => {}
                Value::Bool(b) => *slot = *b,
                other => self.type_error(other.kind(), path, "bool"),
            }
        }

        fn int<T: TryFrom<i64> + TryFrom<u64>>(
            &mut self,
            v: &Value,
            slot: &mut T,
            path: &str,
            ty: &str,
            signed: bool,
        ) {
            match v {
                Value::Null => {}
                Value::Number(text) => {
                    let plain = !text.contains(['.', 'e', 'E']) && text != "-0";
                    let parsed = if signed {
                        text.parse::<i64>().ok().and_then(|n| T::try_from(n).ok())
                    } else {
                        text.parse::<u64>().ok().and_then(|n| T::try_from(n).ok())
                    };
                    let in_range = text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok();
                    if !plain || !in_range {
                        self.excluded
                            .get_or_insert("integer field given a non-plain number");
                    }
                    match parsed {
                        Some(n) => *slot = n,
                        None => self.type_error(&format!("number {text}"), path, ty),
                    }
                }
                other => self.type_error(other.kind(), path, ty),
            }
        }

        fn tls(&mut self, entries: &[(String, Value)], tls: &mut Tls) {
            for (key, v) in entries {
                match go_fold(key).as_str() {
                    "CAFILE" => self.string(v, &mut tls.ca_file, "TLSConfig.CAFile"),
                    "CERTFILE" => self.string(v, &mut tls.cert_file, "TLSConfig.CertFile"),
                    "KEYFILE" => self.string(v, &mut tls.key_file, "TLSConfig.KeyFile"),
                    "INSECURESKIPVERIFY" => self.bool(
                        v,
                        &mut tls.insecure_skip_verify,
                        "TLSConfig.InsecureSkipVerify",
                    ),
                    "EXCLUSIVEROOTPOOLS" => self.bool(
                        v,
                        &mut tls.exclusive_root_pools,
                        "TLSConfig.ExclusiveRootPools",
                    ),
                    "CLIENTAUTH" => self.int(
                        v,
                        &mut tls.client_auth,
                        "TLSConfig.ClientAuth",
                        "tls.ClientAuthType",
                        true,
                    ),
                    "MINVERSION" => self.int(
                        v,
                        &mut tls.min_version,
                        "TLSConfig.MinVersion",
                        "uint16",
                        false,
                    ),
                    _ => {}
                }
            }
        }

        /// A `[]string`: Go decodes an array into the existing slice, so a
        /// `null` element (which leaves a string alone) keeps what the
        /// slice held at that index.
        fn string_list(&mut self, v: &Value, slot: &mut Option<Vec<String>>) {
            match v {
                Value::Null => {
                    *slot = None;
                    self.backing.clear();
                }
                Value::Array(items) => {
                    let old_len = slot.as_ref().map_or(0, Vec::len);
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let old = || {
                            if i < old_len {
                                self.backing[i].clone()
                            } else {
                                String::new()
                            }
                        };
                        match item {
                            Value::String(s) => out.push(s.clone()),
                            Value::Null => {
                                if i >= old_len && i < self.backing.len() {
                                    self.excluded
                                        .get_or_insert("null element over a stale slice element");
                                }
                                out.push(old());
                            }
                            other => {
                                let o = old();
                                self.type_error(other.kind(), "Implements", "string");
                                out.push(o);
                            }
                        }
                    }
                    if items.is_empty() {
                        self.backing.clear();
                    }
                    for (i, s) in out.iter().enumerate() {
                        match self.backing.get_mut(i) {
                            Some(b) => b.clone_from(s),
                            None => self.backing.push(s.clone()),
                        }
                    }
                    *slot = Some(out);
                }
                other => self.type_error(other.kind(), "Implements", "[]string"),
            }
        }
    }

    /// Decodes a `.json` spec as Docker's `readPluginJSONInfo` does, before
    /// the address is looked at.
    pub(super) fn decode(bytes: &[u8]) -> Result<Plugin, Outcome> {
        let entries = match first_value(bytes)? {
            Value::Null => return Ok(Plugin::default()),
            Value::Object(entries) => entries,
            other => {
                return Err(GoError::Type(format!(
                    "json: cannot unmarshal {} into Go value of type plugins.Plugin",
                    other.kind()
                ))
                .into());
            }
        };
        let mut d = Decoder {
            error: None,
            excluded: None,
            backing: Vec::new(),
        };
        let mut p = Plugin::default();
        for (key, v) in &entries {
            match go_fold(key).as_str() {
                "ADDR" => d.string(v, &mut p.addr, "Addr"),
                "TLSCONFIG" => match v {
                    Value::Null => p.tls = None,
                    Value::Object(tls) => d.tls(tls, p.tls.get_or_insert_with(Tls::default)),
                    other => d.type_error(other.kind(), "TLSConfig", "tlsconfig.Options"),
                },
                "IMPLEMENTS" => d.string_list(v, &mut p.implements),
                _ => {}
            }
        }
        if let Some(why) = d.excluded {
            return Err(Outcome::Excluded(why));
        }
        match d.error {
            Some(e) => Err(GoError::Type(e).into()),
            None => Ok(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_runs_on_empty_and_small_inputs() {
        for (name, target) in TARGETS {
            for input in [&b""[..], b"{", b"null", b"\xff", b"tcp://h:1"] {
                eprintln!("{name} {input:?}");
                target(input);
            }
        }
    }

    #[test]
    fn go_durations_parse_back() {
        for (text, ns) in [
            ("0s", 0),
            ("1.5µs", 1500),
            ("1h0m0s", 3_600_000_000_000),
            ("2.25ms", 2_250_000),
        ] {
            assert_eq!(parse_go_duration(text), Some(ns), "{text}");
        }
    }

    #[test]
    fn model_scope_is_what_serde_json_cannot_follow() {
        for (input, why) in [
            (&"[".repeat(101).into_bytes()[..], "nesting"),
            (br#"{"Addr":"\ud800"}"#, "surrogate"),
            (br#"{"x":1e400}"#, "number"),
            (b"nullx", "top-level"),
            (b"\"\\uu", "truncated"),
            (br#"{"TLSConfig":{"ClientAuth":-0}}"#, "integer"),
            (
                br#"{"Implements":["a","b"],"Implements":["c"],"Implements":["c",null]}"#,
                "stale",
            ),
        ] {
            let scope = json_go_model_scope(input);
            assert!(
                scope.is_some_and(|s| s.contains(why)),
                "{input:?}: {scope:?}"
            );
        }
        assert_eq!(
            json_go_model_scope(br#"{"Implements":["a"],"Implements":[null]}"#),
            None
        );
    }

    #[test]
    fn model_folds_keys_like_go() {
        let m = |s: &str| model::decode(s.as_bytes());
        let p = m("{\"TL\u{17f}Config\":{\"\u{212a}eyFile\":\"/k\"},\"addr\":\"x\"}").unwrap();
        assert_eq!(p.addr, "x");
        assert_eq!(p.tls.unwrap().key_file, "/k");
        // Dotless i is not in the simple folding orbit of i.
        let p = m("{\"TLSConf\u{131}g\":{}}").unwrap();
        assert_eq!(p.tls, None);
    }
}

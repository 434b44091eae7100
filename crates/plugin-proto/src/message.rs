//! What every typed subsystem message shares: the [`Call`] trait tying a
//! request to its method and reply, the 200-with-`Err` convention
//! ([`ErrReply`]), and decoding with Go's `encoding/json` rules.
//!
//! The subsystem modules ([`volume`](crate::volume),
//! [`network`](crate::network), …) hold plain serde structs whose JSON keys
//! are Docker's Go field names. Two rules hold for all of them:
//!
//! - **Encoding** is what Docker's Go side writes: field order, `null` for
//!   a nil map or slice (modelled as `Option`), HTML escaping and the
//!   trailing newline (use [`encode_request`], which goes through
//!   [`encode_args`](crate::encode_args)).
//! - **Decoding** never rejects what Go accepts: unknown keys are ignored,
//!   a missing or `null` field keeps its zero value (every non-`Option`
//!   field carries `#[serde(default, deserialize_with = "null_as_default")]`,
//!   so plain `serde_json` works too). [`decode_message`] adds the rest of
//!   Go's rules: case-insensitive keys, the last duplicate winning, only the
//!   first JSON value read, a `null` body giving the zero value.
//!
//! **What it must never do:** IO of any kind, or panic on any input.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};

use crate::gojson::{self, DecodeError, GoValue};
use crate::{EncodeError, encode_args, encode_stream_args};

/// A typed request: which method carries it, what comes back, and how
/// Docker sends it.
///
/// Engines use it to make typed calls ([`encode_request`], then
/// [`decode_message`] unless [`Call::READS_REPLY`] is `false`;
/// `plugin-client`'s `Client::call` does both); plugin servers use [`Call::METHOD`] to dispatch
/// and [`decode_request`] to read the body.
pub trait Call: Serialize {
    /// `Subsystem.Method`, e.g. `"VolumeDriver.Create"`.
    const METHOD: &'static str;

    /// The reply type (`Default` because Go leaves a target untouched on
    /// `null`; `Send + 'static` so a call's future can be sent between
    /// threads: replies are plain data).
    type Reply: DeserializeOwned + Serialize + Default + Send + 'static;

    /// Whether Docker sends the request as a JSON body. `false` for the
    /// calls Docker makes with nil arguments, which go out with an empty
    /// body and `Content-Length: 0` (checklist 21), such as
    /// `NetworkDriver.GetCapabilities`.
    const SENDS_BODY: bool = true;

    /// Whether Docker reads the reply body at all. `false` for calls made
    /// with a nil reply target (`MetricsCollector.StopMetrics`), whose body
    /// is never parsed (checklist 22).
    const READS_REPLY: bool = true;

    /// The per-attempt timeout Docker applies (`WithRequestTimeout`), if
    /// any. Volume calls have one (spec §5); the others do not.
    const TIMEOUT: Option<Duration> = None;
}

/// A request whose reply is a raw byte stream rather than JSON, sent as
/// Docker's `Client.Stream` sends it: the arguments are always encoded
/// (checklist 21). `LogDriver.ReadLogs` is the one such call.
pub trait StreamCall: Serialize {
    /// `Subsystem.Method`, e.g. `"LogDriver.ReadLogs"`.
    const METHOD: &'static str;
}

/// Replies that carry the 200-with-`Err` convention (spec §4): the plugin
/// answers 200 and puts its error in a string field.
///
/// Docker's typed proxies turn a non-empty value into an error without a
/// method prefix (libnetwork adds `remote: `).
pub trait ErrReply {
    /// The error, `Some` only for a non-empty value.
    fn err(&self) -> Option<&str>;

    /// Sets the error field (for plugin servers building a failure reply).
    fn set_err(&mut self, message: String);

    /// A reply holding only `message` as its error.
    fn from_err(message: impl Into<String>) -> Self
    where
        Self: Default,
    {
        let mut reply = Self::default();
        reply.set_err(message.into());
        reply
    }
}

/// Implements [`ErrReply`] for reply structs whose error lives in `$field`.
macro_rules! impl_err_reply {
    ($field:ident: $($t:ty),+ $(,)?) => {
        $(
            impl $crate::ErrReply for $t {
                fn err(&self) -> Option<&str> {
                    Some(self.$field.as_str()).filter(|e| !e.is_empty())
                }
                fn set_err(&mut self, message: String) {
                    self.$field = message;
                }
            }
        )+
    };
}
pub(crate) use impl_err_reply;

/// A reply that is only `{"Err": …}`, the shape of most replies.
///
/// An empty `Err` is left out when serialised (`{}`), which Docker's
/// documentation allows; decoding accepts it missing, `null` or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrResponse {
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Err",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

impl_err_reply!(err: ErrResponse);

/// An empty JSON object: the request `struct{}` Docker sends as `{}\n`, or
/// a reply whose content is ignored. Decoding accepts any object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Empty {}

/// A `deserialize_with` for Go's rule that `null` leaves a field at its
/// zero value: with `#[serde(default, deserialize_with = "null_as_default")]`
/// a field accepts a missing key, `null` and a present value alike.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Encodes a request body as Docker does: Go-style JSON with a trailing
/// newline, or an empty body for calls Docker makes with nil arguments
/// ([`Call::SENDS_BODY`]).
pub fn encode_request<C: Call>(request: &C) -> Result<Bytes, EncodeError> {
    if C::SENDS_BODY {
        encode_args(Some(request))
    } else {
        encode_args::<C>(None)
    }
}

/// Encodes a stream request body as Docker's `Stream` does (always JSON).
pub fn encode_stream_request<S: StreamCall>(request: &S) -> Result<Bytes, EncodeError> {
    encode_stream_args(Some(request))
}

/// Decodes a JSON message with Go's `encoding/json` rules (checklist 22):
/// only the first value counts and trailing bytes are ignored; `null` is
/// the zero value; object keys match field names case-insensitively (Go's
/// simple folding), the last duplicate winning; unknown keys are ignored;
/// a `null` member leaves its field at its zero value; invalid UTF-8 in
/// strings becomes U+FFFD. An empty body is the error `EOF`.
pub fn decode_message<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, DecodeError> {
    match gojson::first_value(body)? {
        GoValue::Null => Ok(T::default()),
        value => T::deserialize(GoDe(value)).map_err(|e| DecodeError::Data(e.to_string())),
    }
}

/// Decodes the 200 reply to `C` as Docker does: not at all when Docker
/// ignores the body ([`Call::READS_REPLY`]), otherwise with
/// [`decode_message`].
///
/// A non-empty error field is not turned into an error here; see
/// [`ErrReply`]. (The unit tests of each subsystem check replies with it;
/// `plugin-client` reads replies itself, as it must not buffer a body
/// Docker never reads.)
#[cfg(test)]
pub(crate) fn decode_call_reply<C: Call>(body: &[u8]) -> Result<C::Reply, DecodeError> {
    if C::READS_REPLY {
        decode_message(body)
    } else {
        Ok(C::Reply::default())
    }
}

/// Decodes a request body on the plugin side. An empty body is the zero
/// request for calls Docker sends without one ([`Call::SENDS_BODY`]), and
/// the error `EOF` otherwise, as Go plugin kits answer.
pub fn decode_request<C>(body: &[u8]) -> Result<C, DecodeError>
where
    C: Call + DeserializeOwned + Default,
{
    if !C::SENDS_BODY && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(C::default());
    }
    decode_message(body)
}

/// A Go `time.Time` as it travels in JSON: RFC 3339 with nanoseconds
/// (`2006-01-02T15:04:05.999999999Z07:00`), trailing zeros of the
/// fraction dropped, `Z` for a zero offset.
///
/// The default is Go's zero time, `0001-01-01T00:00:00Z`, which Docker
/// sends for unset times. Equality compares the instant and the offset, as
/// Go's `==` does; compare [`unix_nanos`](GoTime::unix_nanos) for instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GoTime {
    secs: i64,
    nanos: u32,
    offset: i32,
}

/// Why a time text is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parsing time {text:?} as \"2006-01-02T15:04:05Z07:00\": not RFC 3339")]
pub struct GoTimeError {
    text: String,
}

const SECS_PER_DAY: i64 = 86_400;
const NANOS_PER_SEC: i128 = 1_000_000_000;

impl GoTime {
    /// Go's zero time, `0001-01-01T00:00:00Z`.
    pub const ZERO: GoTime = GoTime {
        secs: -62_135_596_800,
        nanos: 0,
        offset: 0,
    };

    /// A UTC time `secs` seconds and `nanos` nanoseconds after the Unix
    /// epoch (`nanos` beyond a second carries into `secs`).
    pub fn from_unix(secs: i64, nanos: u32) -> GoTime {
        GoTime {
            secs: secs.saturating_add(i64::from(nanos / 1_000_000_000)),
            nanos: nanos % 1_000_000_000,
            offset: 0,
        }
    }

    /// A UTC time from nanoseconds since the Unix epoch, as Go's
    /// `time.Unix(0, n)` (the log entries' `time_nano`).
    pub fn from_unix_nanos(nanos: i64) -> GoTime {
        let n = i128::from(nanos);
        // Both parts fit: |n / 1e9| < 2^34 and the remainder is in [0, 1e9).
        GoTime {
            secs: n.div_euclid(NANOS_PER_SEC) as i64,
            nanos: n.rem_euclid(NANOS_PER_SEC) as u32,
            offset: 0,
        }
    }

    /// Nanoseconds since the Unix epoch (wide enough for any time).
    pub fn unix_nanos(&self) -> i128 {
        i128::from(self.secs) * NANOS_PER_SEC + i128::from(self.nanos)
    }

    /// Whole seconds since the Unix epoch.
    pub fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// The nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// The zone offset, in seconds east of UTC.
    pub fn offset_secs(&self) -> i32 {
        self.offset
    }

    /// The same instant shown at another zone offset (seconds east of UTC);
    /// `None` when the offset is a day or more, which RFC 3339 cannot show.
    pub fn with_offset(self, offset_secs: i32) -> Option<GoTime> {
        (offset_secs.unsigned_abs() < 86_400).then_some(GoTime {
            offset: offset_secs,
            ..self
        })
    }

    /// Go's `IsZero`: the instant is the zero time, whatever the offset.
    pub fn is_zero(&self) -> bool {
        self.secs == GoTime::ZERO.secs && self.nanos == 0
    }

    /// Parses RFC 3339 as Go's `time.Time.UnmarshalJSON` does: four-digit
    /// year, upper-case `T` and `Z`, an optional fraction (digits beyond
    /// nine are dropped) and a `Z` or `±hh:mm` zone.
    pub fn parse(text: &str) -> Result<GoTime, GoTimeError> {
        parse_rfc3339(text.as_bytes()).ok_or_else(|| GoTimeError {
            text: text.to_owned(),
        })
    }

    fn local_secs(&self) -> i64 {
        self.secs.saturating_add(i64::from(self.offset))
    }

    /// The calendar year at the time's own offset.
    pub fn year(&self) -> i64 {
        civil_from_days(self.local_secs().div_euclid(SECS_PER_DAY)).0
    }
}

impl Default for GoTime {
    fn default() -> Self {
        GoTime::ZERO
    }
}

impl fmt::Display for GoTime {
    /// Go's `Format(time.RFC3339Nano)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.local_secs();
        let (year, month, day) = civil_from_days(local.div_euclid(SECS_PER_DAY));
        let sod = local.rem_euclid(SECS_PER_DAY);
        if (0..=9999).contains(&year) {
            write!(f, "{year:04}")?;
        } else if year < 0 {
            write!(f, "-{:04}", year.unsigned_abs())?;
        } else {
            write!(f, "{year}")?;
        }
        write!(
            f,
            "-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )?;
        if self.nanos > 0 {
            let digits = format!("{:09}", self.nanos);
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        if self.offset == 0 {
            f.write_str("Z")
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let minutes = self.offset.unsigned_abs() / 60;
            write!(f, "{sign}{:02}:{:02}", minutes / 60, minutes % 60)
        }
    }
}

impl Serialize for GoTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !(0..=9999).contains(&self.year()) {
            return Err(serde::ser::Error::custom(
                "Time.MarshalJSON: year outside of range [0,9999]",
            ));
        }
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Go: `null` leaves the time unchanged, that is zero for a new value.
        match Option::<Cow<'de, str>>::deserialize(deserializer)? {
            None => Ok(GoTime::ZERO),
            Some(text) => GoTime::parse(&text).map_err(de::Error::custom),
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number from [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small: day in 1..=31, month in 1..=12.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse_rfc3339(s: &[u8]) -> Option<GoTime> {
    let num = |from: usize, to: usize, min: u32, max: u32| -> Option<u32> {
        let digits = s.get(from..to)?;
        let mut n = 0u32;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(d - b'0');
        }
        (min..=max).contains(&n).then_some(n)
    };
    let at = |i: usize, c: u8| s.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let year = i64::from(num(0, 4, 0, 9999)?);
    let month = num(5, 7, 1, 12)?;
    let day = num(8, 10, 1, days_in_month(year, month))?;
    let hour = i64::from(num(11, 13, 0, 23)?);
    let min = i64::from(num(14, 16, 0, 59)?);
    let sec = i64::from(num(17, 19, 0, 59)?);
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if rest.len() >= 2 && rest[0] == b'.' && rest[1].is_ascii_digit() {
        let n = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        let mut scale = 100_000_000u32;
        for &d in rest[1..].iter().take(n.min(9)) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
        }
        rest = &rest[1 + n..];
    }
    let offset = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<i32> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i32::from(a - b'0') * 10 + i32::from(b - b'0'))
            };
            let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = (h * 60 + m) * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let local = days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + min * 60 + sec;
    Some(GoTime {
        secs: local - i64::from(offset),
        nanos,
        offset,
    })
}

/// A [`Deserializer`] over a [`GoValue`] that applies Go's struct rules:
/// keys fold to field names, the last duplicate wins, `null` members are
/// skipped and a `null` where a scalar, list or map is expected is its
/// zero value.
struct GoDe(GoValue);

type GoDeError = de::value::Error;

impl GoDe {
    fn unexpected(&self) -> Unexpected<'_> {
        match &self.0 {
            GoValue::Null => Unexpected::Unit,
            GoValue::Bool(b) => Unexpected::Bool(*b),
            GoValue::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Unexpected::Unsigned(u),
                (_, Some(i), _) => Unexpected::Signed(i),
                (_, _, Some(f)) => Unexpected::Float(f),
                _ => Unexpected::Other("number"),
            },
            GoValue::String(s) => Unexpected::Str(s),
            GoValue::Array(_) => Unexpected::Seq,
            GoValue::Object(_) => Unexpected::Map,
        }
    }

    fn invalid<'de, V: Visitor<'de>, T>(self, visitor: &V) -> Result<T, GoDeError> {
        Err(de::Error::invalid_type(self.unexpected(), visitor))
    }
}

impl<'de> IntoDeserializer<'de, GoDeError> for GoDe {
    type Deserializer = GoDe;
    fn into_deserializer(self) -> GoDe {
        self
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    items: Vec<GoValue>,
    visitor: V,
) -> Result<V::Value, GoDeError> {
    let mut seq = SeqDeserializer::new(items.into_iter().map(GoDe));
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

fn visit_object<'de, V: Visitor<'de>>(
    entries: Vec<(String, GoValue)>,
    visitor: V,
) -> Result<V::Value, GoDeError> {
    let mut map = MapDeserializer::new(entries.into_iter().map(|(k, v)| (k, GoDe(v))));
    let value = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(value)
}

/// Go's member-to-field matching: an exact name first, else the first
/// field equal under case folding; `null` members leave their field alone;
/// later duplicates replace earlier ones (serde would reject them).
///
/// Linear in the number of members: a reply with a million keys must not
/// cost a million squared comparisons.
fn struct_members(entries: Vec<(String, GoValue)>, fields: &[&str]) -> Vec<(String, GoValue)> {
    let mut out: Vec<Option<(String, GoValue)>> = Vec::with_capacity(entries.len());
    // Where each key's latest member sits in `out`; an earlier one is
    // blanked, so the survivor keeps the position of the last duplicate.
    let mut latest: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for (key, value) in entries {
        if matches!(value, GoValue::Null) {
            continue;
        }
        let key = if fields.contains(&key.as_str()) {
            key
        } else if let Some(field) = fields.iter().find(|f| gojson::fold_eq(f, &key)) {
            (*field).to_owned()
        } else {
            key
        };
        if let Some(earlier) = latest.insert(key.clone(), out.len()) {
            out[earlier] = None;
        }
        out.push(Some((key, value)));
    }
    out.into_iter().flatten().collect()
}

macro_rules! null_is_zero {
    ($($method:ident => $visit:ident($($zero:expr)?)),+ $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoDeError> {
                match self.0 {
                    GoValue::Null => visitor.$visit($($zero)?),
                    _ => self.deserialize_any(visitor),
                }
            }
        )+
    };
}

impl<'de> Deserializer<'de> for GoDe {
    type Error = GoDeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoDeError> {
        match self.0 {
            GoValue::Null => visitor.visit_unit(),
            GoValue::Bool(b) => visitor.visit_bool(b),
            GoValue::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (_, Some(i), _) => visitor.visit_i64(i),
                (_, _, Some(f)) => visitor.visit_f64(f),
                _ => Err(de::Error::custom("number out of range")),
            },
            GoValue::String(s) => visitor.visit_string(s),
            GoValue::Array(items) => visit_array(items, visitor),
            GoValue::Object(entries) => visit_object(entries, visitor),
        }
    }

    null_is_zero! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0),
        deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0),
        deserialize_i64 => visit_i64(0),
        deserialize_i128 => visit_i64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_u128 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_unit => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoDeError> {
        match self.0 {
            GoValue::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoDeError> {
        match self.0 {
            GoValue::Null => visit_array(Vec::new(), visitor),
            GoValue::Array(items) => visit_array(items, visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoDeError> {
        match self.0 {
            GoValue::Null => visit_object(Vec::new(), visitor),
            GoValue::Object(entries) => visit_object(entries, visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GoDeError> {
        match self.0 {
            GoValue::Null => visit_object(Vec::new(), visitor),
            GoValue::Object(entries) => visit_object(struct_members(entries, fields), visitor),
            // Go never fills a struct from an array, unlike serde derive.
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GoDeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GoDeError> {
        match self.0 {
            GoValue::String(s) => visitor.visit_enum(s.into_deserializer()),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoDeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit_struct tuple tuple_struct identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Probe {
        #[serde(rename = "Name", deserialize_with = "null_as_default")]
        name: String,
        #[serde(rename = "ID", deserialize_with = "null_as_default")]
        id: String,
        #[serde(rename = "Count", deserialize_with = "null_as_default")]
        count: i64,
        #[serde(rename = "On", deserialize_with = "null_as_default")]
        on: bool,
        #[serde(rename = "List", deserialize_with = "null_as_default")]
        list: Vec<String>,
        #[serde(rename = "Map")]
        map: Option<BTreeMap<String, String>>,
        #[serde(rename = "Inner")]
        inner: Option<Box<Probe>>,
        #[serde(rename = "When", deserialize_with = "null_as_default")]
        when: GoTime,
    }

    #[test]
    fn null_as_default_accepts_missing_null_and_present_with_plain_serde() {
        // checklist 22: a missing or null field keeps its zero value (plain serde_json path)
        let p: Probe = serde_json::from_str(r#"{"Name":null,"Count":null,"List":null}"#).unwrap();
        assert_eq!(p, Probe::default());
        let p: Probe = serde_json::from_str("{}").unwrap();
        assert_eq!(p, Probe::default());
        let p: Probe = serde_json::from_str(r#"{"Name":"x","Count":3}"#).unwrap();
        assert_eq!((p.name.as_str(), p.count), ("x", 3));
    }

    #[test]
    fn go_rules_keys_fold_last_duplicate_wins_unknown_ignored() {
        // checklist 22 (Go json.Decoder semantics for typed replies)
        let p: Probe = decode_message(
            br#"{"name":"a","NAME":"b","id":"i","cOuNt":2,"Unknown":{"x":[1]},"on":true} junk"#,
        )
        .unwrap();
        assert_eq!(p.name, "b");
        assert_eq!(p.id, "i");
        assert_eq!(p.count, 2);
        assert!(p.on);
    }

    #[test]
    fn many_members_decode_in_linear_time() {
        // A hostile reply with 200 000 unknown keys and as many duplicates:
        // member matching used to compare each key with every earlier one
        // (minutes of CPU that no timeout can interrupt).
        let mut body = String::from("{");
        for i in 0..200_000 {
            body.push_str(&format!("\"k{i}\":1,\"name\":\"n{i}\","));
        }
        body.push_str("\"Count\":7}");
        let start = std::time::Instant::now();
        let p: Probe = decode_message(body.as_bytes()).unwrap();
        assert_eq!((p.name.as_str(), p.count), ("n199999", 7));
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn go_rules_null_is_zero_everywhere() {
        // checklist 22: null leaves the target (and each field) at its zero value
        assert_eq!(decode_message::<Probe>(b"null").unwrap(), Probe::default());
        assert_eq!(
            decode_message::<Probe>(
                br#"{"Name":null,"Count":null,"On":null,"List":null,"Map":null,"Inner":null,"When":null}"#
            )
            .unwrap(),
            Probe::default()
        );
        // null inside a map becomes the element's zero value, as in Go
        let p: Probe = decode_message(br#"{"Map":{"a":null,"b":"x"},"List":["y",null]}"#).unwrap();
        assert_eq!(p.map.unwrap()["a"], "");
        assert_eq!(p.list, ["y", ""]);
        // a null member does not undo an earlier value (Go: null is a no-op)
        let p: Probe = decode_message(br#"{"Name":"kept","name":null}"#).unwrap();
        assert_eq!(p.name, "kept");
    }

    #[test]
    fn go_rules_errors() {
        // checklist 22: an empty body is EOF, a cut one unexpected EOF; Go never fills a struct from an array
        assert_eq!(decode_message::<Probe>(b"").unwrap_err(), DecodeError::Eof);
        assert_eq!(
            decode_message::<Probe>(b"{\"Name\":").unwrap_err(),
            DecodeError::UnexpectedEof
        );
        assert!(matches!(
            decode_message::<Probe>(br#"{"Name":5}"#).unwrap_err(),
            DecodeError::Data(_)
        ));
        // serde derive would fill a struct from an array; Go refuses.
        assert!(decode_message::<Probe>(br#"["a","b"]"#).is_err());
        assert!(decode_message::<Probe>(br#"{"Inner":[1]}"#).is_err());
    }

    #[test]
    fn nested_structs_fold_too() {
        // checklist 22: Go key matching applies at every depth
        let p: Probe =
            decode_message(br#"{"inner":{"name":"n","when":"2020-01-02T03:04:05Z"}}"#).unwrap();
        let inner = p.inner.unwrap();
        assert_eq!(inner.name, "n");
        assert_eq!(inner.when.to_string(), "2020-01-02T03:04:05Z");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        // spec §12: invalid UTF-8 inside a string becomes U+FFFD
        let p: Probe = decode_message(b"{\"Name\":\"a\xffb\"}").unwrap();
        assert_eq!(p.name, "a\u{fffd}b");
    }

    #[test]
    fn err_response_shapes() {
        // spec §4: 200 with Err; empty Err serialises as {}
        assert_eq!(
            serde_json::to_string(&ErrResponse::default()).unwrap(),
            "{}"
        );
        let e = ErrResponse::from_err("boom");
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"Err":"boom"}"#);
        assert_eq!(e.err(), Some("boom"));
        for body in [&b"{}"[..], br#"{"Err":null}"#, br#"{"Err":""}"#, b"null"] {
            let r: ErrResponse = decode_message(body).unwrap();
            assert_eq!(r.err(), None, "{body:?}");
        }
        let r: ErrResponse = decode_message(br#"{"err":"lower"}"#).unwrap();
        assert_eq!(r.err(), Some("lower"));
    }

    #[test]
    fn empty_is_braces_and_accepts_any_object() {
        // spec §5 / checklist 21: struct{} requests go out as `{}\n`
        assert_eq!(&encode_args(Some(&Empty {})).unwrap()[..], b"{}\n");
        assert_eq!(decode_message::<Empty>(br#"{"a":1}"#).unwrap(), Empty {});
        assert_eq!(
            serde_json::from_str::<Empty>(r#"{"a":1}"#).unwrap(),
            Empty {}
        );
    }

    #[test]
    fn go_time_zero_and_epoch() {
        // no checklist item: Go time.Time JSON, carried by the log driver's Info and ReadConfig
        assert_eq!(GoTime::default().to_string(), "0001-01-01T00:00:00Z");
        assert!(GoTime::default().is_zero());
        assert_eq!(GoTime::parse("0001-01-01T00:00:00Z").unwrap(), GoTime::ZERO);
        assert_eq!(GoTime::from_unix(0, 0).to_string(), "1970-01-01T00:00:00Z");
        assert!(!GoTime::from_unix(0, 0).is_zero());
    }

    #[test]
    fn go_time_known_values() {
        // Values checked with GNU date: `date -u -d @1483319045`.
        let t = GoTime::parse("2017-01-02T03:04:05.123456789+02:00").unwrap();
        assert_eq!(t.unix_secs(), 1_483_319_045);
        assert_eq!(t.subsec_nanos(), 123_456_789);
        assert_eq!(t.offset_secs(), 7200);
        assert_eq!(t.to_string(), "2017-01-02T03:04:05.123456789+02:00");
        assert_eq!(
            t.with_offset(0).unwrap().to_string(),
            "2017-01-02T01:04:05.123456789Z"
        );
        let t = GoTime::parse("2000-02-29T23:59:59.5-05:30").unwrap();
        assert_eq!(t.unix_secs(), 951_888_599);
        assert_eq!(t.to_string(), "2000-02-29T23:59:59.5-05:30");
        // Trailing zeros go; digits beyond nine are dropped (Go).
        let t = GoTime::parse("2024-03-01T00:00:00.1200000001Z").unwrap();
        assert_eq!(t.subsec_nanos(), 120_000_000);
        assert_eq!(t.to_string(), "2024-03-01T00:00:00.12Z");
        assert_eq!(
            GoTime::from_unix_nanos(1_700_000_000_000_000_001).to_string(),
            "2023-11-14T22:13:20.000000001Z"
        );
        assert_eq!(
            GoTime::from_unix_nanos(-1).to_string(),
            "1969-12-31T23:59:59.999999999Z"
        );
        assert_eq!(GoTime::from_unix_nanos(-1).unix_nanos(), -1);
    }

    #[test]
    fn go_time_rejects_what_go_rejects() {
        // no checklist item: Go's strict RFC 3339 parse (time.Time.UnmarshalJSON)
        for bad in [
            "",
            "2017-01-02",
            "2017-01-02 03:04:05Z",
            "2017-01-02t03:04:05Z",
            "2017-01-02T03:04:05z",
            "2017-01-02T03:04:05",
            "2017-13-02T03:04:05Z",
            "2017-02-29T03:04:05Z",
            "2017-01-02T24:04:05Z",
            "2017-01-02T03:04:60Z",
            "2017-01-02T03:04:05.Z",
            "2017-01-02T03:04:05+2:00",
            "2017-01-02T03:04:05+24:00",
            "17-01-02T03:04:05Z",
            "2017-01-02T03:04:05Zjunk",
            "२०१७-01-02T03:04:05Z",
        ] {
            assert!(GoTime::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn go_time_json() {
        // no checklist item: Go's time.Time MarshalJSON / UnmarshalJSON
        let t: GoTime = serde_json::from_str(r#""2017-01-02T03:04:05Z""#).unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#""2017-01-02T03:04:05Z""#
        );
        assert_eq!(
            serde_json::from_str::<GoTime>("null").unwrap(),
            GoTime::ZERO
        );
        assert!(serde_json::from_str::<GoTime>("5").is_err());
        assert!(serde_json::to_string(&GoTime::from_unix(i64::MAX / 2, 0)).is_err());
        assert!(serde_json::to_string(&GoTime::from_unix(i64::MIN, 0)).is_err());
        assert_eq!(GoTime::from_unix(0, 0).with_offset(86_400), None);
    }

    #[test]
    fn civil_round_trip_over_a_wide_range() {
        // no checklist item: calendar arithmetic behind GoTime
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    proptest::proptest! {
        #[test]
        fn go_time_text_round_trips(secs in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000, off in -1439i32..1440) {
            // no checklist item: GoTime text round trip
            let t = GoTime::from_unix(secs, nanos).with_offset(off * 60).unwrap();
            if (0..=9999).contains(&t.year()) {
                let back = GoTime::parse(&t.to_string()).unwrap();
                proptest::prop_assert_eq!(back, t);
            }
        }

        #[test]
        fn go_time_parse_never_panics(s in "\\PC{0,40}") {
            // crate invariant: parsers never panic
            let _ = GoTime::parse(&s);
        }

        #[test]
        fn decode_message_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            // crate invariant: parsers never panic (checklist 22 decoder)
            let _ = decode_message::<Probe>(&bytes);
        }
    }
}

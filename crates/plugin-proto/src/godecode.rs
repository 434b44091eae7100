//! Go's `encoding/json` decoding rules for serde types: [`decode_message`]
//! reads a body into any `Deserialize` type the way Go's `json.Unmarshal`
//! fills a struct, and [`null_as_default`] gives plain serde the rule that
//! `null` leaves a field at its zero value.
//!
//! The bytes are parsed by `gojson.rs` (first value only, invalid UTF-8 as
//! U+FFFD); this module walks the parsed value with Go's struct rules.
//!
//! **What it must never do:** IO of any kind, or panic on any input.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Unexpected, Visitor};

use crate::gojson::{self, DecodeError, GoValue};

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
    use crate::GoTime;
    use serde::Serialize;
    use std::collections::BTreeMap;
    use std::time::Duration;

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

    /// FUZZING.md finding 9: floats are read correctly rounded, as Go's
    /// `strconv.ParseFloat` reads them (serde_json's `float_roundtrip`),
    /// so a float a plugin reads is the one a Go plugin reads, and writing
    /// it back and reading it again changes nothing.
    #[test]
    fn floats_are_read_correctly_rounded_as_go_reads_them() {
        let cases: [(&str, f64); 3] = [
            (
                "555500000000000000000000000000007683156601792772323",
                5.555e50,
            ),
            ("5.5550000000000004e50", 5.5550000000000004e50),
            ("0.30000000000000004", 0.30000000000000004),
        ];
        for (text, go) in cases {
            let read: serde_json::Value = decode_message(text.as_bytes()).unwrap();
            assert_eq!(
                read.as_f64().map(f64::to_bits),
                Some(go.to_bits()),
                "{text}"
            );
            let written = crate::encode_args(Some(&read)).unwrap();
            let again: serde_json::Value = decode_message(&written).unwrap();
            assert_eq!(
                again.as_f64().map(f64::to_bits),
                Some(go.to_bits()),
                "{text}"
            );
        }
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

    proptest::proptest! {
        #[test]
        fn decode_message_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            // crate invariant: parsers never panic (checklist 22 decoder)
            let _ = decode_message::<Probe>(&bytes);
        }
    }
}

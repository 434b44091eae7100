//! Go `encoding/json` semantics where serde's differ (rust-stack.md §1.9).
//!
//! Docker reads spec files, manifests and error bodies with Go's decoder:
//! only the first JSON value counts, keys match case-insensitively (with
//! Unicode simple folding, so `TLſConfig` matches `TLSConfig`), the last of
//! duplicate keys wins, `null` leaves a field as it was, unknown keys are
//! ignored and invalid UTF-8 becomes U+FFFD. serde derive does none of
//! that, so the decoders here walk a [`GoValue`] that keeps every key in
//! document order, duplicates included.
//!
//! Encoding goes the other way: [`encode`] writes what Go's `json.Encoder`
//! writes (HTML-escaped, with a trailing newline).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value that keeps object members in order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GoValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<GoValue>),
    Object(Vec<(String, GoValue)>),
}

impl GoValue {
    /// Go's name for the JSON kind in `UnmarshalTypeError` texts.
    pub(crate) fn kind(&self) -> Cow<'static, str> {
        match self {
            GoValue::Null => "null".into(),
            GoValue::Bool(_) => "bool".into(),
            GoValue::Number(_) => "number".into(),
            GoValue::String(_) => "string".into(),
            GoValue::Array(_) => "array".into(),
            GoValue::Object(_) => "object".into(),
        }
    }

    /// The members of an object whose key folds to `name`, in order. Go
    /// applies each in turn, so the last one decides.
    pub(crate) fn members<'a>(
        entries: &'a [(String, GoValue)],
        name: &'a str,
    ) -> impl Iterator<Item = &'a GoValue> + 'a {
        entries
            .iter()
            .filter(move |(k, _)| fold_eq(k, name))
            .map(|(_, v)| v)
    }
}

impl<'de> Deserialize<'de> for GoValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GoValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<GoValue, E> {
                Ok(GoValue::Null)
            }
            fn visit_none<E>(self) -> Result<GoValue, E> {
                Ok(GoValue::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<GoValue, E> {
                Ok(GoValue::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<GoValue, E> {
                Ok(GoValue::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<GoValue, E> {
                Ok(GoValue::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<GoValue, E> {
                serde_json::Number::from_f64(n)
                    .map(GoValue::Number)
                    .ok_or_else(|| E::custom("number out of range"))
            }
            fn visit_str<E>(self, s: &str) -> Result<GoValue, E> {
                Ok(GoValue::String(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<GoValue, E> {
                Ok(GoValue::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GoValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(GoValue::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GoValue, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, GoValue>()? {
                    entries.push(entry);
                }
                Ok(GoValue::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Why a Go-style decode failed; the texts are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input held no JSON value at all (Go's `io.EOF`).
    #[error("EOF")]
    Eof,
    /// The input stopped inside a value (Go's `io.ErrUnexpectedEOF`).
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// The input is not JSON.
    #[error("{0}")]
    Syntax(String),
    /// The JSON does not fit the target type (serde's text; used by
    /// [`decode_json`](crate::decode_json) for caller-defined types).
    #[error("{0}")]
    Data(String),
    /// A value of the wrong JSON kind for its field, in Go's words:
    /// `json: cannot unmarshal string into Go struct field Plugin.TLSConfig of type tlsconfig.Options`.
    #[error("json: cannot unmarshal {value} into {target}")]
    Type {
        /// The JSON kind found (`string`, `number 70000`, …).
        value: String,
        /// `Go struct field <Struct>.<path> of type <type>` or `Go value of type <type>`.
        target: String,
    },
}

impl DecodeError {
    pub(crate) fn field(value: impl Into<String>, strukt: &str, path: &str, ty: &str) -> Self {
        DecodeError::Type {
            value: value.into(),
            target: format!("Go struct field {strukt}.{path} of type {ty}"),
        }
    }

    pub(crate) fn value(value: impl Into<String>, ty: &str) -> Self {
        DecodeError::Type {
            value: value.into(),
            target: format!("Go value of type {ty}"),
        }
    }
}

/// Decodes the first JSON value of `bytes`, ignoring anything after it, as
/// Go's `json.Decoder.Decode` does.
pub(crate) fn first_value(bytes: &[u8]) -> Result<GoValue, DecodeError> {
    let text = go_lossy_utf8(bytes);
    let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<GoValue>();
    match stream.next() {
        None => Err(DecodeError::Eof),
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) if e.is_eof() => Err(DecodeError::UnexpectedEof),
        Some(Err(e)) => Err(DecodeError::Syntax(e.to_string())),
    }
}

/// Decodes `bytes` as exactly one JSON value, as Go's `json.Unmarshal`
/// does: trailing non-space bytes are an error.
pub(crate) fn whole_value(bytes: &[u8]) -> Result<GoValue, DecodeError> {
    let text = go_lossy_utf8(bytes);
    serde_json::from_str::<GoValue>(&text).map_err(|e| {
        if e.is_eof() {
            DecodeError::UnexpectedEof
        } else {
            DecodeError::Syntax(e.to_string())
        }
    })
}

/// Go's decoder replaces each byte of an invalid UTF-8 sequence inside a
/// string with U+FFFD; outside strings such bytes are a syntax error either
/// way, so replacing them everywhere gives Go's results. The answer is a
/// `str` so that serde_json reads it with `from_str`, which does not check
/// the UTF-8 of every string a second time (a 64 KiB reply paid for both).
pub(crate) fn go_lossy_utf8(bytes: &[u8]) -> Cow<'_, str> {
    let mut rest = match std::str::from_utf8(bytes) {
        Ok(text) => return Cow::Borrowed(text),
        Err(_) => bytes,
    };
    let mut out = String::with_capacity(bytes.len() + 16);
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `good` is the valid prefix `from_utf8` just checked.
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                let n = e.error_len().unwrap_or(bad.len());
                for _ in 0..n {
                    out.push('\u{fffd}');
                }
                rest = &bad[n..];
            }
        }
    }
    Cow::Owned(out)
}

/// Unicode simple case folding equality, as Go's `encoding/json` matches
/// keys to field names.
pub(crate) fn fold_eq(a: &str, b: &str) -> bool {
    let mut ai = a.chars();
    let mut bi = b.chars();
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y || simple_fold_eq(x, y) => {}
            _ => return false,
        }
    }
}

fn simple_fold_eq(x: char, y: char) -> bool {
    // Turkic dotless ı and dotted İ have case mappings to i/I but no simple
    // case folding, so Go matches them only to themselves (found by the
    // json_go_model fuzz target: `TLSConfıg` was taken for `TLSConfig`).
    if matches!(x, '\u{130}' | '\u{131}') || matches!(y, '\u{130}' | '\u{131}') {
        return false;
    }
    let one = |mut it: std::char::ToUppercase| match (it.next(), it.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    };
    let lower = |c: char| {
        let mut it = c.to_lowercase();
        match (it.next(), it.next()) {
            (Some(l), None) => Some(l),
            _ => None,
        }
    };
    let (ux, uy) = (one(x.to_uppercase()), one(y.to_uppercase()));
    (ux.is_some() && ux == uy) || (lower(x).is_some() && lower(x) == lower(y))
}

/// A string field: `null` leaves it unchanged (Go), anything else but a
/// string is a type error.
pub(crate) fn string_field(
    v: &GoValue,
    slot: &mut String,
    strukt: &str,
    path: &str,
) -> Result<(), DecodeError> {
    match v {
        GoValue::Null => Ok(()),
        GoValue::String(s) => {
            slot.clone_from(s);
            Ok(())
        }
        other => Err(DecodeError::field(other.kind(), strukt, path, "string")),
    }
}

/// A bool field with Go's `null` rule.
pub(crate) fn bool_field(
    v: &GoValue,
    slot: &mut bool,
    strukt: &str,
    path: &str,
) -> Result<(), DecodeError> {
    match v {
        GoValue::Null => Ok(()),
        GoValue::Bool(b) => {
            *slot = *b;
            Ok(())
        }
        other => Err(DecodeError::field(other.kind(), strukt, path, "bool")),
    }
}

/// An integer field of a Go type whose range is `T`'s. Go rejects
/// fractions and out-of-range values with `number <text>`.
pub(crate) fn int_field<T: TryFrom<i64> + TryFrom<u64>>(
    v: &GoValue,
    slot: &mut T,
    strukt: &str,
    path: &str,
    go_type: &str,
) -> Result<(), DecodeError> {
    match v {
        GoValue::Null => Ok(()),
        GoValue::Number(n) => {
            let parsed = if let Some(i) = n.as_i64() {
                T::try_from(i).ok()
            } else if let Some(u) = n.as_u64() {
                T::try_from(u).ok()
            } else {
                None
            };
            match parsed {
                Some(x) => {
                    *slot = x;
                    Ok(())
                }
                None => Err(DecodeError::field(
                    format!("number {n}"),
                    strukt,
                    path,
                    go_type,
                )),
            }
        }
        other => Err(DecodeError::field(other.kind(), strukt, path, go_type)),
    }
}

/// A `[]string` field: `null` resets it to nil (Go sets a nil slice).
pub(crate) fn string_list_field(
    v: &GoValue,
    slot: &mut Option<Vec<String>>,
    strukt: &str,
    path: &str,
) -> Result<(), DecodeError> {
    match v {
        GoValue::Null => {
            *slot = None;
            Ok(())
        }
        GoValue::Array(items) => {
            // Go decodes into the existing slice, and `null` leaves a string
            // alone: a null element keeps what the previous array (a
            // duplicate key) had at that index, and is "" past its end.
            // Found by the json_go_model fuzz target.
            let old = slot.as_deref().unwrap_or_default();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    GoValue::String(s) => out.push(s.clone()),
                    GoValue::Null => out.push(old.get(i).cloned().unwrap_or_default()),
                    other => return Err(DecodeError::field(other.kind(), strukt, path, "string")),
                }
            }
            *slot = Some(out);
            Ok(())
        }
        other => Err(DecodeError::field(other.kind(), strukt, path, "[]string")),
    }
}

/// Encodes `value` as Go's `json.Encoder.Encode` does: HTML-escaped `<`,
/// `>`, `&`, escaped U+2028 and U+2029, and a trailing newline
/// (checklist 21). One pass: strings are escaped as they are written
/// (`gowrite.rs`), so a large body is neither scanned nor copied twice.
pub(crate) fn encode<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    crate::gowrite::write_value(&mut out, value)?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_ignores_trailing_bytes() {
        assert_eq!(
            first_value(b"{\"a\":1} garbage").unwrap(),
            GoValue::Object(vec![("a".into(), GoValue::Number(1.into()))])
        );
        assert_eq!(first_value(b"").unwrap_err(), DecodeError::Eof);
        assert_eq!(first_value(b"  \n").unwrap_err(), DecodeError::Eof);
        assert_eq!(
            first_value(b"{\"a\":").unwrap_err(),
            DecodeError::UnexpectedEof
        );
        assert!(matches!(
            first_value(b"}").unwrap_err(),
            DecodeError::Syntax(_)
        ));
    }

    #[test]
    fn whole_value_rejects_trailing_bytes() {
        assert!(whole_value(b"{\"Err\":\"x\"} junk").is_err());
        assert!(whole_value(b"{\"Err\":\"x\"}\n").is_ok());
    }

    #[test]
    fn duplicates_are_kept_in_order() {
        let GoValue::Object(e) = first_value(br#"{"Addr":"a","addr":"b","ADDR":"c"}"#).unwrap()
        else {
            panic!()
        };
        let all: Vec<_> = GoValue::members(&e, "Addr").collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2], &GoValue::String("c".into()));
    }

    #[test]
    fn keys_fold_like_go() {
        assert!(fold_eq("tlsconfig", "TLSConfig"));
        assert!(fold_eq("TLſConfig", "TLSConfig"));
        assert!(fold_eq("\u{212a}ey", "key"));
        assert!(!fold_eq("TLSConfi", "TLSConfig"));
        assert!(!fold_eq("Addr_", "Addr"));
        // No simple folding for the Turkic i's, whatever their case mappings.
        assert!(!fold_eq("TLSConf\u{131}g", "TLSConfig"));
        assert!(!fold_eq("\u{130}mplements", "Implements"));
        assert!(!fold_eq("\u{131}", "I"));
    }

    #[test]
    fn null_list_elements_keep_the_previous_arrays_elements() {
        // Go decodes a duplicate `[]string` key into the same slice.
        let GoValue::Object(e) =
            first_value(br#"{"L":["a","b","c"],"L":[null,"x"],"M":[null,"y"]}"#).unwrap()
        else {
            panic!()
        };
        let mut slot = None;
        for v in GoValue::members(&e, "L") {
            string_list_field(v, &mut slot, "S", "L").unwrap();
        }
        assert_eq!(slot, Some(vec!["a".to_owned(), "x".to_owned()]));
        let mut slot = None;
        for v in GoValue::members(&e, "M") {
            string_list_field(v, &mut slot, "S", "M").unwrap();
        }
        assert_eq!(slot, Some(vec![String::new(), "y".to_owned()]));
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let v = first_value(b"\"a\xffb\xe2\x82c\"").unwrap();
        assert_eq!(v, GoValue::String("a\u{fffd}b\u{fffd}\u{fffd}c".into()));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(first_value(deep.as_bytes()).is_err());
    }

    #[test]
    fn encode_escapes_html_and_line_separators_and_appends_newline() {
        // checklist 21
        #[derive(serde::Serialize)]
        #[allow(non_snake_case)]
        struct Args {
            Name: &'static str,
            Opts: Option<()>,
        }
        let out = encode(&Args {
            Name: "a<b>&c\u{2028}\u{2029}",
            Opts: None,
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"Name\":\"a\\u003cb\\u003e\\u0026c\\u2028\\u2029\",\"Opts\":null}\n"
        );
        assert_eq!(encode(&serde_json::json!({})).unwrap(), b"{}\n");
    }
}

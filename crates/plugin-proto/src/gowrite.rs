//! The serializer behind [`gojson::encode`](crate::gojson): what Go's
//! `json.Encoder` writes for a value, in one pass into a `Vec<u8>`.
//!
//! Byte for byte what Go 1.19 (the build Docker's behaviour was recorded
//! with) writes: strings with Go's escapes (`<`, `>`, `&`, U+2028 and
//! U+2029 as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`; control
//! characters but `\t`, `\n`, `\r` as `\u00XX`, backspace and form feed
//! included), floats by Go's rule (`1`, `1e+21`, `1.5e-7`; NaN and
//! infinities are Go's error), integers and structure as serde_json's
//! compact writer, whose error texts it keeps. It exists because
//! serde_json escapes strings a byte at a time: a 64 KiB argument cost
//! ~13 µs there, where skipping clean 32-byte blocks with one branch-free
//! test each (which the compiler vectorises) and copying each clean run
//! once costs a few.
//!
//! **What it must never do:** write anything Go's encoder would not (the
//! tests below compare against Go's output and a plain model of it; the
//! `args_roundtrip` fuzz target reads everything back), or use `unsafe`.

use serde::Serialize;
use serde::ser::{self, Error as _, Impossible};
use serde_json::Error;
use serde_json::ser::{CompactFormatter, Formatter as _};

/// Writes `value` into `out` as Go's encoder would, without the newline.
pub(crate) fn write_value<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), Error> {
    value.serialize(&mut GoWriter { out })
}

/// The struct names serde_json's `arbitrary_precision` numbers and
/// `raw_value` values serialize under: their one field is JSON text that
/// serde_json writes as it is. Recognised whether or not those features
/// are on, since a dependency may turn them on for the whole build.
const RAW_TOKENS: [&str; 2] = [
    "$serde_json::private::Number",
    "$serde_json::private::RawValue",
];

/// What Go's encoder writes for each byte inside a string: 0 for the byte
/// itself, `u` for `\u00XX`, another letter for its two-byte escape, and
/// `E` for the lead byte 0xE2 of U+2028 and U+2029 (checked further).
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    // Go before 1.22 (Docker's reference build is Go 1.19) writes
    // backspace and form feed as `\u0008` and `\u000c`, not `\b`, `\f`.
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'<' as usize] = b'u';
    t[b'>' as usize] = b'u';
    t[b'&' as usize] = b'u';
    t[0xe2] = b'E';
    t
};

/// Whether a block holds no byte that may need an escape. Branch-free, so
/// the compiler turns it into vector compares; `| 2` and `| 4` fold `<`
/// with `>` and `"` with `&`, and `& 0xe0` finds the control bytes, which
/// saves a few instructions per 16 bytes over seven plain comparisons.
fn block_is_clean(block: &[u8; 32]) -> bool {
    block.iter().fold(0u8, |hits, &b| {
        hits | u8::from(
            ((b | 2) == b'>') | ((b | 4) == b'&') | (b == b'\\') | (b == 0xe2) | (b & 0xe0 == 0),
        )
    }) == 0
}

/// Appends `s` as a JSON string with Go's escapes.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `bytes[start..i]` is clean and not yet copied.
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        // Clean blocks are only scanned here; a block with a hit is then
        // walked byte by byte to its end, so dense escapes never rescan.
        let stop = match bytes.get(i..).and_then(|rest| rest.first_chunk::<32>()) {
            Some(block) if block_is_clean(block) => {
                i += 32;
                continue;
            }
            Some(_) => i + 32,
            None => bytes.len(),
        };
        while i < stop {
            let b = bytes[i];
            let mut len = 1;
            let escape: [u8; 6];
            let text: &[u8] = match ESCAPE[usize::from(b)] {
                0 => {
                    i += 1;
                    continue;
                }
                b'E' => match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(0x80), Some(0xa8)) => {
                        len = 3;
                        b"\\u2028"
                    }
                    (Some(0x80), Some(0xa9)) => {
                        len = 3;
                        b"\\u2029"
                    }
                    _ => {
                        i += 1;
                        continue;
                    }
                },
                b'u' => {
                    escape = [
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 0xf)],
                    ];
                    &escape
                }
                letter => {
                    escape = [b'\\', letter, 0, 0, 0, 0];
                    &escape[..2]
                }
            };
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(text);
            i += len;
            start = i;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A float as Go's encoder writes it: the shortest digits that read back
/// to the same value, without an exponent (`1`, not serde_json's `1.0`;
/// `100000000000000000000`, not `1e20`) unless the magnitude is below
/// 1e-6 or at least 1e21, where the exponent has a sign (`1e+21`) and no
/// leading zero (`1.5e-7`). NaN and infinities are Go's error, not
/// serde_json's `null`.
fn go_float<F>(out: &mut Vec<u8>, v: F, finite: bool, exponent: bool) -> Result<(), Error>
where
    F: std::fmt::Display + std::fmt::LowerExp,
{
    use std::io::Write as _;
    if !finite {
        let text = v.to_string();
        let text = match text.as_str() {
            "inf" => "+Inf",
            "-inf" => "-Inf",
            _ => "NaN",
        };
        return Err(Error::custom(format!("json: unsupported value: {text}")));
    }
    // Rust's `Display` and `{:e}` print the shortest round-trip digits, as
    // Go's `strconv.FormatFloat(f, 'f' or 'e', -1, bits)` does.
    let written = if exponent {
        let start = out.len();
        let written = write!(out, "{v:e}");
        if let Some(e) = out[start..].iter().position(|&b| b == b'e')
            && out.get(start + e + 1) != Some(&b'-')
        {
            out.insert(start + e + 1, b'+');
        }
        written
    } else {
        write!(out, "{v}")
    };
    written.map_err(Error::io)
}

/// Integers go through serde_json's own formatter, so they are its digits.
fn number(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut CompactFormatter, &mut Vec<u8>) -> std::io::Result<()>,
) -> Result<(), Error> {
    write(&mut CompactFormatter, out).map_err(Error::io)
}

struct GoWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl GoWriter<'_> {
    fn null(&mut self) {
        self.out.extend_from_slice(b"null");
    }

    /// `{"variant":` of an externally tagged enum value.
    fn open_variant(&mut self, variant: &str) {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
    }

    fn compound(&mut self, open: &[u8], close: &'static [u8]) -> Compound<'_> {
        self.out.extend_from_slice(open);
        Compound {
            first: true,
            close,
            raw: false,
            w: GoWriter {
                out: &mut *self.out,
            },
        }
    }
}

macro_rules! numbers {
    ($($method:ident($ty:ty) => $write:ident),+ $(,)?) => {
        $(
            fn $method(self, v: $ty) -> Result<(), Error> {
                number(self.out, |f, w| f.$write(w, v))
            }
        )+
    };
}

impl<'w> ser::Serializer for &'w mut GoWriter<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'w>;
    type SerializeTuple = Compound<'w>;
    type SerializeTupleStruct = Compound<'w>;
    type SerializeTupleVariant = Compound<'w>;
    type SerializeMap = Compound<'w>;
    type SerializeStruct = Compound<'w>;
    type SerializeStructVariant = Compound<'w>;

    numbers! {
        serialize_i8(i8) => write_i8,
        serialize_i16(i16) => write_i16,
        serialize_i32(i32) => write_i32,
        serialize_i64(i64) => write_i64,
        serialize_i128(i128) => write_i128,
        serialize_u8(u8) => write_u8,
        serialize_u16(u16) => write_u16,
        serialize_u32(u32) => write_u32,
        serialize_u64(u64) => write_u64,
        serialize_u128(u128) => write_u128,
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        let exponent = {
            let abs = v.abs();
            abs != 0.0 && !(1e-6..1e21).contains(&abs)
        };
        go_float(self.out, v, v.is_finite(), exponent)
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        let exponent = {
            let abs = v.abs();
            abs != 0.0 && !(1e-6..1e21).contains(&abs)
        };
        go_float(self.out, v, v.is_finite(), exponent)
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        number(self.out, |f, w| f.write_byte_array(w, v))
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.null();
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.null();
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.null();
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        write_str(self.out, variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.open_variant(variant);
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w>, Error> {
        Ok(self.compound(b"[", b"]"))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Compound<'w>, Error> {
        Ok(self.compound(b"[", b"]"))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'w>, Error> {
        Ok(self.compound(b"[", b"]"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w>, Error> {
        self.open_variant(variant);
        Ok(self.compound(b"[", b"]}"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w>, Error> {
        Ok(self.compound(b"{", b"}"))
    }

    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Compound<'w>, Error> {
        if RAW_TOKENS.contains(&name) {
            let mut raw = self.compound(b"", b"");
            raw.raw = true;
            return Ok(raw);
        }
        Ok(self.compound(b"{", b"}"))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w>, Error> {
        self.open_variant(variant);
        Ok(self.compound(b"{", b"}}"))
    }
}

/// An array, object or enum value being written: `close` ends it.
struct Compound<'w> {
    w: GoWriter<'w>,
    first: bool,
    close: &'static [u8],
    /// One of [`RAW_TOKENS`]: the field's text is written as it is.
    raw: bool,
}

impl Compound<'_> {
    fn comma(&mut self) {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.comma();
        value.serialize(&mut self.w)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        if self.raw {
            return match serde_json::to_value(value)? {
                serde_json::Value::String(text) if RAW_TOKENS.contains(&key) => {
                    self.w.out.extend_from_slice(text.as_bytes());
                    Ok(())
                }
                _ => Err(Error::custom("expected RawValue")),
            };
        }
        self.comma();
        write_str(self.w.out, key);
        self.w.out.push(b':');
        value.serialize(&mut self.w)
    }

    fn finish(self) -> Result<(), Error> {
        self.w.out.extend_from_slice(self.close);
        Ok(())
    }
}

/// Arrays: tuples of every kind are arrays too.
macro_rules! arrays {
    ($($trait:ident::$method:ident),+ $(,)?) => {
        $(
            impl ser::$trait for Compound<'_> {
                type Ok = ();
                type Error = Error;
                fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                    self.element(value)
                }
                fn end(self) -> Result<(), Error> {
                    self.finish()
                }
            }
        )+
    };
}

arrays! {
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.comma();
        key.serialize(KeyWriter(&mut self.w))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.w.out.push(b':');
        value.serialize(&mut self.w)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// Objects with named fields: structs and struct variants.
macro_rules! structs {
    ($($trait:ident),+ $(,)?) => {
        $(
            impl ser::$trait for Compound<'_> {
                type Ok = ();
                type Error = Error;
                fn serialize_field<T: Serialize + ?Sized>(
                    &mut self,
                    key: &'static str,
                    value: &T,
                ) -> Result<(), Error> {
                    self.field(key, value)
                }
                fn end(self) -> Result<(), Error> {
                    self.finish()
                }
            }
        )+
    };
}

structs!(SerializeStruct, SerializeStructVariant);

/// Object keys as serde_json writes them: strings, and scalars as quoted
/// text; anything else is its error.
struct KeyWriter<'b, 'w>(&'b mut GoWriter<'w>);

impl KeyWriter<'_, '_> {
    fn quoted(
        self,
        write: impl FnOnce(&mut CompactFormatter, &mut Vec<u8>) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        self.0.out.push(b'"');
        number(self.0.out, write)?;
        self.0.out.push(b'"');
        Ok(())
    }
}

fn key_must_be_a_string() -> Error {
    Error::custom("key must be a string")
}

fn float_key_must_be_finite() -> Error {
    Error::custom("float key must be finite (got NaN or +/-inf)")
}

macro_rules! quoted_numbers {
    ($($method:ident($ty:ty) => $write:ident),+ $(,)?) => {
        $(
            fn $method(self, v: $ty) -> Result<(), Error> {
                self.quoted(|f, w| f.$write(w, v))
            }
        )+
    };
}

macro_rules! not_a_key {
    ($($method:ident($($arg:ty),*) -> $ret:ty),+ $(,)?) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<$ret, Error> {
                Err(key_must_be_a_string())
            }
        )+
    };
}

impl ser::Serializer for KeyWriter<'_, '_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    quoted_numbers! {
        serialize_bool(bool) => write_bool,
        serialize_i8(i8) => write_i8,
        serialize_i16(i16) => write_i16,
        serialize_i32(i32) => write_i32,
        serialize_i64(i64) => write_i64,
        serialize_i128(i128) => write_i128,
        serialize_u8(u8) => write_u8,
        serialize_u16(u16) => write_u16,
        serialize_u32(u32) => write_u32,
        serialize_u64(u64) => write_u64,
        serialize_u128(u128) => write_u128,
    }

    not_a_key! {
        serialize_bytes(&[u8]) -> (),
        serialize_none() -> (),
        serialize_unit() -> (),
        serialize_unit_struct(&'static str) -> (),
        serialize_seq(Option<usize>) -> Impossible<(), Error>,
        serialize_tuple(usize) -> Impossible<(), Error>,
        serialize_tuple_struct(&'static str, usize) -> Impossible<(), Error>,
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Impossible<(), Error>,
        serialize_map(Option<usize>) -> Impossible<(), Error>,
        serialize_struct(&'static str, usize) -> Impossible<(), Error>,
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Impossible<(), Error>,
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(float_key_must_be_finite());
        }
        self.quoted(|f, w| f.write_f32(w, v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(float_key_must_be_finite());
        }
        self.quoted(|f, w| f.write_f64(w, v))
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.0.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.0.out, v);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        write_str(self.0.out, variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn go(value: &(impl Serialize + ?Sized)) -> String {
        let mut out = Vec::new();
        write_value(&mut out, value).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// serde_json's compact output, then Go's escapes: what the encoder
    /// writes for every serde shape whose strings hold no backspace or
    /// form feed and whose floats serde_json and Go write alike. The
    /// replaced characters can only occur inside strings there, so
    /// replacing them after the fact is exact.
    fn model(value: &(impl Serialize + ?Sized)) -> String {
        serde_json::to_string(value)
            .unwrap()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    }

    /// Go 1.19's encoder for a JSON value, written the plain way: a
    /// character at a time, floats by Go's `'f'`/`'e'` rule.
    fn go_model(value: &serde_json::Value) -> String {
        use serde_json::Value as V;
        fn quote(s: &str, out: &mut String) {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                        out.push_str(&format!("\\u{:04x}", u32::from(c)));
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        fn write(v: &V, out: &mut String) {
            match v {
                V::String(s) => quote(s, out),
                V::Number(n) if n.is_f64() => {
                    let f = n.as_f64().unwrap();
                    if f != 0.0 && !(1e-6..1e21).contains(&f.abs()) {
                        let e = format!("{f:e}");
                        out.push_str(&if e.contains("e-") {
                            e
                        } else {
                            e.replace('e', "e+")
                        });
                    } else {
                        out.push_str(&f.to_string());
                    }
                }
                V::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write(item, out);
                    }
                    out.push(']');
                }
                V::Object(members) => {
                    out.push('{');
                    for (i, (k, item)) in members.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        quote(k, out);
                        out.push(':');
                        write(item, out);
                    }
                    out.push('}');
                }
                other => out.push_str(&other.to_string()),
            }
        }
        let mut out = String::new();
        write(value, &mut out);
        out
    }

    fn go_string(s: &str) -> String {
        go_model(&serde_json::Value::String(s.to_owned()))
    }

    #[test]
    fn floats_are_what_go_writes() {
        // Go 1.19's json.Encoder for the same float64 values.
        let cases: [(f64, &str); 14] = [
            (1.0, "1"),
            (1e15, "1000000000000000"),
            (1e16, "10000000000000000"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (0.000001234, "0.000001234"),
            (-0.0, "-0"),
            (123456789012345680.0, "123456789012345680"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (1.5e-10, "1.5e-10"),
            (2.5e100, "2.5e+100"),
        ];
        for (f, text) in cases {
            assert_eq!(go(&f), text, "{f:?}");
        }
        // And for float32 values, with float32's shortest digits.
        for (f, text) in [(1e21_f32, "1e+21"), (1.1, "1.1"), (3.4e-7, "3.4e-7")] {
            assert_eq!(go(&f), text, "{f:?}");
        }
    }

    #[test]
    fn non_finite_floats_are_gos_error_not_null() {
        for (f, text) in [(f64::NAN, "NaN"), (f64::NEG_INFINITY, "-Inf")] {
            let err = write_value(&mut Vec::new(), &[f]).unwrap_err();
            assert_eq!(err.to_string(), format!("json: unsupported value: {text}"));
        }
        let err = write_value(&mut Vec::new(), &f32::INFINITY).unwrap_err();
        assert_eq!(err.to_string(), "json: unsupported value: +Inf");
    }

    #[test]
    fn strings_are_what_go_writes() {
        // Go 1.19's json.Encoder for the same key and value (checklist 21).
        let value = BTreeMap::from([(
            "k<>&\u{2028}",
            "a<b>&c\u{2028}\u{2029}\0\x1f\"\\\n\r\t\x7f é\u{2027}\u{202a}€",
        )]);
        assert_eq!(
            go(&value),
            "{\"k\\u003c\\u003e\\u0026\\u2028\":\"a\\u003cb\\u003e\\u0026c\\u2028\\u2029\\u0000\\u001f\\\"\\\\\\n\\r\\t\u{7f} é\u{2027}\u{202a}€\"}"
        );
        // Go 1.22 and serde_json write `\b` and `\f`; Go 1.19, Docker's
        // reference build, `\u0008` and `\u000c`.
        assert_eq!(go("\u{8}\u{c}"), "\"\\u0008\\u000c\"");
    }

    #[test]
    fn escapes_at_block_boundaries_and_in_dense_runs() {
        // A clean run, then each escape placed across the 32-byte block
        // edges, U+2028 split over two blocks, and runs of escapes.
        for special in [
            "<", "\"", "\n", "\u{2028}", "\u{2029}", "€", "\u{1}", "\u{8}", "é",
        ] {
            for at in 0..70 {
                let s = format!("{}{special}{}", "v".repeat(at), "w".repeat(70 - at));
                assert_eq!(go(&s), go_string(&s), "{special:?} at {at}");
            }
            let dense = special.repeat(100);
            assert_eq!(go(&dense), go_string(&dense));
        }
        let big = "v".repeat(65_536);
        assert_eq!(go(&big), format!("\"{big}\""));
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(&'static str),
        Tuple(i8, f32),
        Struct { a: Option<u8>, b: () },
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Everything {
        t: (bool, char, i128, u128, f64, f64),
        bytes: &'static serde_bytes_like::Bytes,
        shapes: Vec<Shape>,
        unit: Unit,
        newtype: Wrapper,
        keys: BTreeMap<i32, &'static str>,
        bool_keys: BTreeMap<bool, u8>,
        char_keys: BTreeMap<char, u8>,
        float_keys: Vec<(f64, u8)>,
        empty: Vec<u8>,
        none: Option<u8>,
    }

    #[derive(Serialize)]
    struct Wrapper(&'static str);

    mod serde_bytes_like {
        /// Serialized with `serialize_bytes`.
        pub(super) struct Bytes(pub(super) [u8; 3]);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    /// A map whose keys are floats, which serde_json writes quoted.
    fn float_map<S: serde::Serializer>(entries: &[(f64, u8)], s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }

    #[test]
    fn every_serde_shape_matches_serde_json() {
        static BYTES: serde_bytes_like::Bytes = serde_bytes_like::Bytes([0, 7, 255]);
        let value = Everything {
            t: (true, '<', -(1 << 100), u128::MAX, 0.1, -2.5),
            bytes: &BYTES,
            shapes: vec![
                Shape::Unit,
                Shape::Newtype("x&y"),
                Shape::Tuple(-3, 1.5),
                Shape::Struct { a: Some(9), b: () },
            ],
            unit: Unit,
            newtype: Wrapper(">"),
            keys: BTreeMap::from([(-1, "a"), (2, "b")]),
            bool_keys: BTreeMap::from([(false, 1), (true, 2)]),
            char_keys: BTreeMap::from([('<', 1)]),
            float_keys: vec![(1.5, 1), (1e21, 2)],
            empty: Vec::new(),
            none: None,
        };
        assert_eq!(go(&value), model(&value));
        let mut floats = Vec::new();
        float_map(
            &value.float_keys,
            &mut serde_json::Serializer::new(&mut floats),
        )
        .unwrap();
        let mut ours = Vec::new();
        float_map(&value.float_keys, &mut GoWriter { out: &mut ours }).unwrap();
        assert_eq!(ours, floats);
    }

    #[test]
    fn errors_are_serde_jsons() {
        let seq_key = BTreeMap::from([(vec![1], 1)]);
        assert_eq!(
            write_value(&mut Vec::new(), &seq_key)
                .unwrap_err()
                .to_string(),
            serde_json::to_vec(&seq_key).unwrap_err().to_string()
        );
        let mut ours = Vec::new();
        let nan_key = float_map(&[(f64::NAN, 1)], &mut GoWriter { out: &mut ours });
        let theirs = float_map(
            &[(f64::NAN, 1)],
            &mut serde_json::Serializer::new(Vec::new()),
        );
        assert_eq!(
            nan_key.unwrap_err().to_string(),
            theirs.unwrap_err().to_string()
        );
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let text = "[a-z<>&\"\\\\\u{0}-\u{1f}\u{7f}é€\u{2027}-\u{2029}]{0,80}";
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(text, inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_value_is_written_as_go_writes_it(value in json_value()) {
            prop_assert_eq!(go(&value), go_model(&value));
        }

        #[test]
        fn any_string_is_written_as_go_writes_it(s in "(v{0,40}[<>&\"\\\\\n\u{1}\u{8}\u{c}é€\u{2028}\u{2029}]){0,12}v{0,40}") {
            prop_assert_eq!(go(&s), go_string(&s));
        }
    }
}

//! Go's `strconv.Quote`, used wherever Docker's error texts print a value
//! with `%q`, so our texts match byte for byte.

/// Quotes `s` the way Go's `%q` verb does.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    push_escaped(&mut out, s);
    out.push('"');
    out
}

/// Quotes bytes the way Go's `%q` verb quotes a string holding them: valid
/// UTF-8 as [`quote`] does, each byte of an invalid sequence as `\xNN`
/// (Go's escape errors quote three bytes, which may cut a character).
pub(crate) fn quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        push_escaped(&mut out, chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
}

/// An approximation of Go's `unicode.IsPrint` that is exact for the
/// characters that occur in paths, addresses and plugin names: controls,
/// line and paragraph separators and the common format characters are not
/// printable.
fn is_print(c: char) -> bool {
    !(c.is_control()
        || matches!(
            c,
            '\u{ad}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{200b}'..='\u{200f}'
        ))
}

#[cfg(test)]
mod tests {
    use super::{quote, quote_bytes};

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny\t\u{0}"), r#""x\ny\t\x00""#);
        assert_eq!(quote("é\u{2028}"), "\"é\\u2028\"");
    }

    #[test]
    fn bytes_that_cut_a_character_are_quoted_like_go() {
        // Go: strconv.Quote("%z\xc3") is "%z\\xc3".
        assert_eq!(quote_bytes(b"%z\xc3"), r#""%z\xc3""#);
        assert_eq!(quote_bytes("a\"é".as_bytes()), r#""a\"é""#);
    }
}

//! Output helpers: aligned tables, JSON documents, order-preserving JSON
//! reformatting, and the small formatting rules shared by the commands.

use std::io::{self, Write};
use std::time::Duration;

use plugin_registry::proto::go_quote;

/// Writes `rows` under `headers` in columns separated by two spaces. The
/// last column is not padded, so lines carry no trailing blanks.
pub(crate) fn table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths.get(i).copied().unwrap_or(0);
                line.push_str(&format!("{cell:<pad$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Writes one JSON document and a newline: indented on a terminal, compact
/// otherwise.
pub(crate) fn json_document(
    out: &mut dyn Write,
    value: &impl serde::Serialize,
    pretty: bool,
) -> io::Result<()> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(io::Error::other)?;
    writeln!(out, "{text}")
}

/// Re-lays out valid JSON text without reordering anything: indented by
/// two spaces when `pretty`, with all insignificant whitespace removed
/// otherwise. The caller checks validity first.
pub(crate) fn reformat_json(text: &str, pretty: bool) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    if pretty {
                        newline(&mut out, depth);
                    }
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if pretty {
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                if pretty {
                    newline(&mut out, depth);
                }
            }
            ':' => out.push_str(if pretty { ": " } else { ":" }),
            _ => out.push(c),
        }
    }
    out
}

/// A plugin name as shown in tables: quoted Go-style when it is empty or
/// holds blanks or control characters, so that it stays visible.
pub(crate) fn show_name(name: &str) -> String {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        go_quote(name)
    } else {
        name.to_owned()
    }
}

/// `0.4ms`, `12.3ms`, `1.25s`.
pub(crate) fn show_latency(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

/// Milliseconds with microsecond precision, for JSON.
pub(crate) fn latency_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// `-` for an absent cell.
pub(crate) fn or_dash(value: Option<impl Into<String>>) -> String {
    value.map_or_else(|| "-".to_owned(), Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_trim_the_last() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["memvol".to_owned(), "ok".to_owned(), "x".to_owned()],
            vec!["a".to_owned(), "refused".to_owned(), String::new()],
        ];
        table(&mut out, &["NAME", "STATE", "NOTE"], &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME    STATE    NOTE\nmemvol  ok       x\na       refused\n"
        );
    }

    #[test]
    fn json_is_reformatted_in_order() {
        let text = " {\"b\": [1, {}, []],\"a\" :\"x, {y}: \\\"z\\\"\", \"c\":{ } }\n";
        assert_eq!(
            reformat_json(text, false),
            r#"{"b":[1,{},[]],"a":"x, {y}: \"z\"","c":{}}"#
        );
        assert_eq!(
            reformat_json(text, true),
            "{\n  \"b\": [\n    1,\n    {},\n    []\n  ],\n  \"a\": \"x, {y}: \\\"z\\\"\",\n  \"c\": {}\n}"
        );
    }

    #[test]
    fn latencies() {
        assert_eq!(show_latency(Duration::from_micros(420)), "0.4ms");
        assert_eq!(show_latency(Duration::from_millis(1250)), "1.25s");
        assert_eq!(latency_ms(Duration::from_nanos(1_234_567)), 1.235);
        assert_eq!(show_name(""), "\"\"");
        assert_eq!(show_name("memvol"), "memvol");
    }
}

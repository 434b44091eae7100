//! `plugctl call NAME METHOD [JSON | -]`.

use std::io;

use bytes::Bytes;
use plugin_registry::client::Client;
use plugin_registry::proto::{RetryPolicy, retry::go_duration, validate_method};

use crate::output::reformat_json;
use crate::probe::Ctx;
use crate::{Exit, Io};

/// Runs `call`: the reply body on stdout (JSON re-laid out: indented on a
/// terminal, compact otherwise or with `--json`; anything else verbatim);
/// errors on stderr with exit 1 (a status error reads `<Method>:
/// <message>`, Docker's text); a bad method or JSON body is a usage error.
pub(crate) async fn run(
    ctx: &Ctx,
    io: &mut Io<'_>,
    name: &str,
    method: &str,
    body: Option<&str>,
) -> io::Result<Exit> {
    if let Err(e) = validate_method(method) {
        writeln!(io.stderr, "{e}")?;
        return Ok(Exit::Usage);
    }
    let text = match body {
        None => String::new(),
        Some("-") => {
            let mut text = String::new();
            if let Err(e) = io.stdin.read_to_string(&mut text) {
                writeln!(io.stderr, "reading the request body from stdin: {e}")?;
                return Ok(Exit::Problem);
            }
            text
        }
        Some(text) => text.to_owned(),
    };
    let text = text.trim();
    // Docker's nil arguments are an empty body; a value is one JSON
    // document followed by a newline, as Go's json.Encoder writes it.
    let body = if text.is_empty() {
        Bytes::new()
    } else if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        writeln!(io.stderr, "the request body is not JSON: {e}")?;
        return Ok(Exit::Usage);
    } else {
        Bytes::from(format!("{text}\n"))
    };

    let spec = match ctx.local.plugin(name) {
        Ok(spec) => spec,
        Err(e) => {
            writeln!(io.stderr, "{e}")?;
            return Ok(Exit::Problem);
        }
    };
    let client = match Client::builder()
        .retry(RetryPolicy::with_budget(ctx.timeout))
        .build(spec.address(), spec.tls())
    {
        Ok(client) => client,
        Err(e) => {
            writeln!(io.stderr, "{e}")?;
            return Ok(Exit::Problem);
        }
    };
    let call = client
        .call(method)
        .body(body)
        .timeout(ctx.timeout)
        .retry_connection_refused(false);
    let reply = match tokio::time::timeout(ctx.timeout, call).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => {
            writeln!(io.stderr, "{e}")?;
            return Ok(Exit::Problem);
        }
        Err(_) => {
            writeln!(
                io.stderr,
                "{method}: no answer within {}",
                go_duration(ctx.timeout)
            )?;
            return Ok(Exit::Problem);
        }
    };
    print_reply(io, &reply, io_pretty(ctx, io))?;
    Ok(Exit::Ok)
}

fn io_pretty(ctx: &Ctx, io: &Io<'_>) -> bool {
    io.stdout_terminal && !ctx.json
}

fn print_reply(io: &mut Io<'_>, reply: &[u8], pretty: bool) -> io::Result<()> {
    if reply.is_empty() {
        return Ok(());
    }
    match std::str::from_utf8(reply) {
        Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
            writeln!(io.stdout, "{}", reformat_json(text, pretty))
        }
        _ => io.stdout.write_all(reply),
    }
}

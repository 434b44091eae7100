//! Which retries the client made, per request: a `tracing` layer that
//! counts the client's `Unable to connect to plugin: <host>/<method>: …,
//! retrying in …` warnings inside each soak operation's span.
//!
//! The client resends a request (with its whole body, D7) only after an
//! attempt failed with a connection or transport error; each resend is
//! logged with that warning first. So a plugin may see `(method, token)`
//! at most once plus the number of warnings logged for that method in the
//! operation that carried the token: more is a duplicate the design does
//! not allow.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The span every soak operation carrying a token runs in.
pub(crate) const SPAN: &str = "soak_op";

const RETRY_PREFIX: &str = "Unable to connect to plugin: ";

/// Retries seen, by `(method, token)`.
#[derive(Clone, Default)]
pub(crate) struct Retries(Arc<Mutex<HashMap<(String, String), u64>>>);

impl Retries {
    pub(crate) fn get(&self, method: &str, token: &str) -> u64 {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(method.to_owned(), token.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn total(&self) -> u64 {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.values().sum()
    }
}

/// The token of an operation's span, kept in the span's extensions.
struct Token(String);

#[derive(Default)]
struct Text {
    token: Option<String>,
    message: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "token" {
            self.token = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "token" => self.token = Some(format!("{value:?}").trim_matches('"').to_owned()),
            _ => {}
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Retries {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != SPAN {
            return;
        }
        let mut text = Text::default();
        attrs.record(&mut text);
        if let (Some(token), Some(span)) = (text.token, ctx.span(id)) {
            span.extensions_mut().insert(Token(token));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != tracing::Level::WARN {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let Some(method) = retried_method(&text.message).map(str::to_owned) else {
            return;
        };
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            if let Some(Token(token)) = span.extensions().get::<Token>() {
                let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
                *map.entry((method, token.clone())).or_default() += 1;
                return;
            }
        }
    }
}

/// The method a client retry warning is about: `Unable to connect to
/// plugin: <host>/<method>: <error>, retrying in <d>`, where the host
/// (`plugin.moby.localhost` or `ip:port`) holds no `/`.
fn retried_method(message: &str) -> Option<&str> {
    let rest = message.strip_prefix(RETRY_PREFIX)?;
    let (_, after_host) = rest.split_once('/')?;
    Some(after_host.split_once(':')?.0)
}

#[cfg(test)]
mod tests {
    use super::retried_method;

    #[test]
    fn the_method_is_read_from_unix_and_tcp_retry_warnings() {
        let unix = "Unable to connect to plugin: plugin.moby.localhost/VolumeDriver.Create: \
                    dial unix /run/x.sock: connect: no such file or directory, retrying in 1s";
        assert_eq!(retried_method(unix), Some("VolumeDriver.Create"));
        let tcp = "Unable to connect to plugin: 127.0.0.1:4000/IpamDriver.RequestPool: \
                   dial tcp 127.0.0.1:4000: connect: connection refused, retrying in 2s";
        assert_eq!(retried_method(tcp), Some("IpamDriver.RequestPool"));
        assert_eq!(
            retried_method("Unable to locate plugin: x, retrying in 1s"),
            None
        );
    }
}

//! Capturing `tracing` events in a test, to check Docker's log texts
//! (`Unable to connect to plugin: …, retrying in 1s`) exactly, and the
//! spans opened meanwhile with their fields' last values.
//!
//! The capture is the current thread's default subscriber, so use it from
//! a current-thread runtime (`#[tokio::test]`'s default): every task the
//! test spawns then logs into it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::Level;
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as captured: its name and its fields (values as `Debug` prints
/// them, strings unquoted), each field's last recorded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRecord {
    /// The span's name.
    pub name: String,
    /// Field name to value.
    pub fields: BTreeMap<String, String>,
}

/// The events captured so far: each one's level and message; and the
/// spans, in the order they were opened.
#[derive(Clone, Default)]
struct Events {
    events: Arc<Mutex<Vec<(Level, String)>>>,
    spans: Arc<Mutex<Vec<SpanRecord>>>,
}

/// Where a live span's record is in [`Events::spans`].
struct SpanIndex(usize);

/// Collects fields as text.
struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Keeps the capture installed; dropping it restores the previous
/// subscriber.
pub struct LogCapture {
    events: Events,
    _guard: tracing::subscriber::DefaultGuard,
}

/// Installs a capture of every event, at every level, for this thread.
pub fn capture() -> LogCapture {
    let events = Events::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    // A callsite another test's thread registered while this capture was
    // being installed may have cached "nobody listens"; ask again.
    tracing::callsite::rebuild_interest_cache();
    LogCapture {
        events,
        _guard: guard,
    }
}

impl LogCapture {
    /// The messages logged at `level`, in order, exactly as written.
    pub fn at(&self, level: Level) -> Vec<String> {
        let events = self.events.events.lock().unwrap();
        events
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// The messages at `level` that contain `text`.
    pub fn find(&self, level: Level, text: &str) -> Vec<String> {
        self.at(level)
            .into_iter()
            .filter(|m| m.contains(text))
            .collect()
    }

    /// The spans named `name` opened so far, in order.
    pub fn spans(&self, name: &str) -> Vec<SpanRecord> {
        let spans = self.events.spans.lock().unwrap();
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }

    /// Every event as `LEVEL message`, for assertion failure messages.
    pub fn lines(&self) -> Vec<String> {
        let events = self.events.events.lock().unwrap();
        events.iter().map(|(l, m)| format!("{l} {m}")).collect()
    }
}

impl<S: tracing::Subscriber + for<'l> LookupSpan<'l>> tracing_subscriber::Layer<S> for Events {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.spans.lock().unwrap();
        spans.push(SpanRecord {
            name: attrs.metadata().name().to_owned(),
            fields,
        });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanIndex(spans.len() - 1));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let extensions = span.extensions();
        let Some(SpanIndex(i)) = extensions.get::<SpanIndex>() else {
            return;
        };
        if let Some(record) = self.spans.lock().unwrap().get_mut(*i) {
            values.record(&mut Fields(&mut record.fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.events
            .lock()
            .unwrap()
            .push((*event.metadata().level(), message.0));
    }
}

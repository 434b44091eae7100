//! Capturing `tracing` events in a test, to check Docker's log texts
//! (`Unable to connect to plugin: …, retrying in 1s`) exactly.
//!
//! The capture is the current thread's default subscriber, so use it from
//! a current-thread runtime (`#[tokio::test]`'s default): every task the
//! test spawns then logs into it.

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::Level;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The events captured so far: each one's level and message.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<(Level, String)>>>);

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
    LogCapture {
        events,
        _guard: tracing::subscriber::set_default(subscriber),
    }
}

impl LogCapture {
    /// The messages logged at `level`, in order, exactly as written.
    pub fn at(&self, level: Level) -> Vec<String> {
        let events = self.events.0.lock().unwrap();
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

    /// Every event as `LEVEL message`, for assertion failure messages.
    pub fn lines(&self) -> Vec<String> {
        let events = self.events.0.lock().unwrap();
        events.iter().map(|(l, m)| format!("{l} {m}")).collect()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
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
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), message.0));
    }
}

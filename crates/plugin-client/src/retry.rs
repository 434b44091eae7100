//! The retry driver: Docker's one retry loop, shared by every retry of the
//! engine side. The client runs each call through it (`callWithRetry`:
//! `Unable to connect to plugin: …`) and `plugin-registry` runs its lookup
//! wait through it (`loadWithRetry`: `Unable to locate plugin: …`).
//!
//! The schedule itself is `plugin_proto::retry` (a pure function of time);
//! this module owns the clock: it measures, logs Docker's warning, sleeps.
//!
//! **What it must never do:** decide what is retryable (the attempt says so)
//! or retry past the policy's budget or the caller's deadline.

use std::fmt;
use std::future::Future;

use plugin_proto::RetryPolicy;
use plugin_proto::retry::go_duration;
use tokio::time::Instant;

/// How one attempt failed: for good, or in a way Docker retries (each with
/// the warning Docker logs before the retry).
#[derive(Debug)]
#[non_exhaustive]
pub enum Failed<E> {
    /// Not retried: returned as is.
    Final(E),
    /// The plugin could not be reached. Retried with Docker's warning
    /// `Unable to connect to plugin: <target>: <error>, retrying in <d>`,
    /// where `target` is the call's `<host>/<method>`.
    Connect {
        /// The attempt's error (returned if no retry is left).
        error: E,
        /// `<host>/<method>`, as Docker prints the request URL.
        target: String,
    },
    /// The plugin's name did not resolve. Retried with Docker's warning
    /// `Unable to locate plugin: <name>, retrying in <d>`.
    Locate {
        /// The attempt's error (returned if no retry is left).
        error: E,
        /// The plugin's name.
        name: String,
    },
}

impl<E> Failed<E> {
    fn into_error(self) -> E {
        match self {
            Failed::Final(error) | Failed::Connect { error, .. } | Failed::Locate { error, .. } => {
                error
            }
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good ([`Failed::Final`]), or
/// `policy` gives up; before each retry it logs Docker's warning at `WARN`
/// and sleeps the policy's backoff (1 s, 2 s, 4 s, … within the budget,
/// counted from the first attempt). The last error is returned.
///
/// ```
/// # async fn f() {
/// use std::time::Duration;
/// use plugin_client::retry::{Failed, run};
/// use plugin_proto::RetryPolicy;
///
/// let mut tries = 0;
/// let found: Result<&str, &str> = run(RetryPolicy::with_budget(Duration::from_secs(2)), || {
///     tries += 1;
///     let now = tries;
///     async move {
///         if now < 2 {
///             Err(Failed::Locate { error: "not found", name: "memvol".into() })
///         } else {
///             Ok("found")
///         }
///     }
/// })
/// .await;
/// assert_eq!(found, Ok("found"));
/// # }
/// ```
pub async fn run<T, E, F, Fut>(policy: RetryPolicy, attempt: F) -> Result<T, E>
where
    E: fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failed<E>>>,
{
    run_until(policy, None, attempt)
        .await
        .map_err(|stop| match stop {
            Stopped::Failed(e) | Stopped::Deadline(e) => e,
        })
}

/// Why [`run_until`] returned no value.
pub(crate) enum Stopped<E> {
    /// An attempt failed for good, or the policy's budget ran out.
    Failed(E),
    /// A retry was due, but its wait would reach the deadline.
    Deadline(E),
}

/// [`run`] that also gives up, before sleeping, when the next attempt
/// would start at or after `until` (the rule Docker's `abort` applies to
/// the budget, applied to the caller's deadline).
pub(crate) async fn run_until<T, E, F, Fut>(
    policy: RetryPolicy,
    until: Option<Instant>,
    mut attempt: F,
) -> Result<T, Stopped<E>>
where
    E: fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failed<E>>>,
{
    let start = Instant::now();
    let mut retries = 0u32;
    loop {
        let failed = match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failed::Final(error)) => return Err(Stopped::Failed(error)),
            Err(failed) => failed,
        };
        let Some(delay) = policy.next_delay(retries, start.elapsed()) else {
            return Err(Stopped::Failed(failed.into_error()));
        };
        if until.is_some_and(|until| Instant::now() + delay >= until) {
            return Err(Stopped::Deadline(failed.into_error()));
        }
        retries += 1;
        let d = go_duration(delay);
        match &failed {
            Failed::Connect { error, target } => {
                tracing::warn!("Unable to connect to plugin: {target}: {error}, retrying in {d}");
            }
            Failed::Locate { name, .. } => {
                tracing::warn!("Unable to locate plugin: {name}, retrying in {d}");
            }
            Failed::Final(_) => {}
        }
        tokio::time::sleep(delay).await;
    }
}

//! Docker's retry schedule as pure functions of durations (spec §3.5;
//! checklist 24). The caller owns the clock: it passes the time elapsed
//! since the first attempt and sleeps for what comes back.

use std::time::Duration;

/// Docker's retry budget (`defaultTimeOut`).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The delay before retry number `retries + 1`: one second, doubling, capped
/// at 30 s (1, 2, 4, 8, 16, 30, 30, …).
pub fn backoff(retries: u32) -> Duration {
    let mut delay = Duration::from_secs(1);
    let mut n = retries;
    while delay < MAX_BACKOFF && n > 0 {
        delay *= 2;
        n -= 1;
    }
    delay.min(MAX_BACKOFF)
}

/// Docker's `abort`: give up when waiting `next` more would reach the
/// budget, counting the time already spent.
pub fn should_abort(elapsed: Duration, next: Duration, budget: Duration) -> bool {
    elapsed.saturating_add(next) >= budget
}

/// How many times, and for how long, to retry a failed connection.
///
/// Status errors are never retried, whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    budget: Option<Duration>,
}

impl Default for RetryPolicy {
    /// Docker's: backoff within a 30 s budget.
    fn default() -> Self {
        RetryPolicy::docker()
    }
}

impl RetryPolicy {
    /// Docker's schedule: attempts at about 0, 1, 3, 7 and 15 s for a target
    /// that fails at once, then the last error.
    pub const fn docker() -> RetryPolicy {
        RetryPolicy {
            budget: Some(DEFAULT_BUDGET),
        }
    }

    /// One attempt, no retry.
    pub const fn none() -> RetryPolicy {
        RetryPolicy { budget: None }
    }

    /// Docker's backoff with a different budget (Docker's tests use 2 s).
    pub const fn with_budget(budget: Duration) -> RetryPolicy {
        RetryPolicy {
            budget: Some(budget),
        }
    }

    /// The budget, or `None` when retrying is off.
    pub fn budget(&self) -> Option<Duration> {
        self.budget
    }

    /// After `retries` retries and `elapsed` since the first attempt, how
    /// long to wait before the next attempt; `None` means give up.
    pub fn next_delay(&self, retries: u32, elapsed: Duration) -> Option<Duration> {
        let budget = self.budget?;
        let delay = backoff(retries);
        (!should_abort(elapsed, delay, budget)).then_some(delay)
    }
}

/// Formats a duration as Go's `time.Duration.String` does (`1s`, `500ms`,
/// `1m30s`, `1.5µs`), for Docker's log texts.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    if ns < 1_000_000_000 {
        let (unit, scale, digits) = if ns < 1_000 {
            ("ns", 1, 0)
        } else if ns < 1_000_000 {
            ("µs", 1_000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        return format!("{}{}{unit}", ns / scale, fraction(ns % scale, digits));
    }
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}{}s", fraction(ns % 1_000_000_000, 9)));
    out
}

fn fraction(rest: u128, digits: usize) -> String {
    if rest == 0 || digits == 0 {
        return String::new();
    }
    let text = format!("{rest:0digits$}");
    format!(".{}", text.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn backoff_matches_dockers_test() {
        // checklist 24 (moby TestBackoff)
        for (n, want) in [
            (0, 1),
            (1, 2),
            (2, 4),
            (3, 8),
            (4, 16),
            (5, 30),
            (6, 30),
            (10, 30),
            (u32::MAX, 30),
        ] {
            assert_eq!(backoff(n), S(want), "backoff({n})");
        }
    }

    #[test]
    fn abort_matches_dockers_test() {
        // checklist 24 (moby TestAbortRetry, start = now)
        for (d, want) in [(1, false), (2, false), (10, false), (30, true), (40, true)] {
            assert_eq!(
                should_abort(Duration::ZERO, S(d), DEFAULT_BUDGET),
                want,
                "{d}s"
            );
        }
    }

    #[test]
    fn instant_failures_are_tried_five_times_over_fifteen_seconds() {
        // checklist 24: attempts at 0, 1, 3, 7, 15 s, then the last error.
        let policy = RetryPolicy::docker();
        let (mut elapsed, mut attempts, mut retries) = (Duration::ZERO, vec![Duration::ZERO], 0);
        while let Some(delay) = policy.next_delay(retries, elapsed) {
            elapsed += delay;
            retries += 1;
            attempts.push(elapsed);
        }
        assert_eq!(attempts, [0, 1, 3, 7, 15].map(S));
    }

    #[test]
    fn slow_failures_use_the_same_rule() {
        // spec §3.5: a 10 s dial timeout gives attempts at 0, ~11, ~23 s.
        let policy = RetryPolicy::docker();
        let dial = S(10);
        let (mut t, mut attempts, mut retries) = (Duration::ZERO, vec![], 0);
        loop {
            attempts.push(t);
            t += dial;
            match policy.next_delay(retries, t) {
                Some(d) => {
                    t += d;
                    retries += 1;
                }
                None => break,
            }
        }
        assert_eq!(attempts, [0, 11, 23].map(S));
        assert_eq!(t, S(33));
    }

    #[test]
    fn none_never_retries_and_budgets_bound_the_schedule() {
        assert_eq!(RetryPolicy::none().next_delay(0, Duration::ZERO), None);
        assert_eq!(
            RetryPolicy::with_budget(Duration::from_millis(500)).next_delay(0, Duration::ZERO),
            None
        );
        assert_eq!(
            RetryPolicy::with_budget(S(2)).next_delay(0, Duration::ZERO),
            Some(S(1))
        );
        assert_eq!(RetryPolicy::default(), RetryPolicy::docker());
    }

    #[test]
    fn durations_print_like_go() {
        // checklist 25, 37: "retrying in 1s"
        let cases = [
            (Duration::ZERO, "0s"),
            (S(1), "1s"),
            (S(30), "30s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (S(90), "1m30s"),
            (S(3600), "1h0m0s"),
            (Duration::from_nanos(1500), "1.5µs"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::from_micros(2_250), "2.25ms"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want);
        }
    }

    proptest::proptest! {
        #[test]
        fn backoff_is_monotone_and_capped(n in 0u32..1000) {
            proptest::prop_assert!(backoff(n) <= backoff(n + 1));
            proptest::prop_assert!(backoff(n) <= S(30));
            proptest::prop_assert!(backoff(n) >= S(1));
        }

        #[test]
        fn abort_is_monotone_in_elapsed(a in 0u64..100_000, b in 0u64..100_000, next in 0u64..40) {
            let (lo, hi) = (a.min(b), a.max(b));
            let ms = Duration::from_millis;
            if should_abort(ms(lo), S(next), DEFAULT_BUDGET) {
                proptest::prop_assert!(should_abort(ms(hi), S(next), DEFAULT_BUDGET));
            }
        }
    }
}

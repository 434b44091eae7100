//! Go's `time.Time` as it travels in JSON (RFC 3339 with nanoseconds),
//! with the calendar arithmetic behind it.
//!
//! The arithmetic is our own (proleptic Gregorian, H. Hinnant's day
//! algorithms) rather than the `time` or `jiff` crate's: a `GoTime` holds
//! any `i64` of seconds and displays years beyond 9999 and before 0 as Go
//! does (`time.Unix(1<<40, 0)`), while both crates stop at year ±9999, and
//! parsing follows Go's `time.Time.UnmarshalJSON` quirks (digits beyond
//! nine in the fraction dropped, not rounded). Neither needs a clock here.
//!
//! **What it must never do:** read a clock, or panic on any input.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// A Go `time.Time` as it travels in JSON: RFC 3339 with nanoseconds
/// (`2006-01-02T15:04:05.999999999Z07:00`), trailing zeros of the
/// fraction dropped, `Z` for a zero offset.
///
/// The default is Go's zero time, `0001-01-01T00:00:00Z`, which Docker
/// sends for unset times. Equality compares the instant and the offset, as
/// Go's `==` does; compare [`unix_nanos`](GoTime::unix_nanos) for instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GoTime {
    secs: i64,
    nanos: u32,
    offset: i32,
}

/// Why a time text is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parsing time {text:?} as \"2006-01-02T15:04:05Z07:00\": not RFC 3339")]
pub struct GoTimeError {
    text: String,
}

const SECS_PER_DAY: i64 = 86_400;
const NANOS_PER_SEC: i128 = 1_000_000_000;

impl GoTime {
    /// Go's zero time, `0001-01-01T00:00:00Z`.
    pub const ZERO: GoTime = GoTime {
        secs: -62_135_596_800,
        nanos: 0,
        offset: 0,
    };

    /// A UTC time `secs` seconds and `nanos` nanoseconds after the Unix
    /// epoch (`nanos` beyond a second carries into `secs`).
    pub fn from_unix(secs: i64, nanos: u32) -> GoTime {
        GoTime {
            secs: secs.saturating_add(i64::from(nanos / 1_000_000_000)),
            nanos: nanos % 1_000_000_000,
            offset: 0,
        }
    }

    /// A UTC time from nanoseconds since the Unix epoch, as Go's
    /// `time.Unix(0, n)` (the log entries' `time_nano`).
    pub fn from_unix_nanos(nanos: i64) -> GoTime {
        let n = i128::from(nanos);
        // Both parts fit: |n / 1e9| < 2^34 and the remainder is in [0, 1e9).
        GoTime {
            secs: n.div_euclid(NANOS_PER_SEC) as i64,
            nanos: n.rem_euclid(NANOS_PER_SEC) as u32,
            offset: 0,
        }
    }

    /// Nanoseconds since the Unix epoch (wide enough for any time).
    pub fn unix_nanos(&self) -> i128 {
        i128::from(self.secs) * NANOS_PER_SEC + i128::from(self.nanos)
    }

    /// Whole seconds since the Unix epoch.
    pub fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// The nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// The zone offset, in seconds east of UTC.
    pub fn offset_secs(&self) -> i32 {
        self.offset
    }

    /// The same instant shown at another zone offset (seconds east of UTC);
    /// `None` when the offset is a day or more, which RFC 3339 cannot show.
    pub fn with_offset(self, offset_secs: i32) -> Option<GoTime> {
        (offset_secs.unsigned_abs() < 86_400).then_some(GoTime {
            offset: offset_secs,
            ..self
        })
    }

    /// Go's `IsZero`: the instant is the zero time, whatever the offset.
    pub fn is_zero(&self) -> bool {
        self.secs == GoTime::ZERO.secs && self.nanos == 0
    }

    /// Parses RFC 3339 as Go's `time.Time.UnmarshalJSON` does: four-digit
    /// year, upper-case `T` and `Z`, an optional fraction (digits beyond
    /// nine are dropped) and a `Z` or `±hh:mm` zone.
    pub fn parse(text: &str) -> Result<GoTime, GoTimeError> {
        parse_rfc3339(text.as_bytes()).ok_or_else(|| GoTimeError {
            text: text.to_owned(),
        })
    }

    fn local_secs(&self) -> i64 {
        self.secs.saturating_add(i64::from(self.offset))
    }

    /// The calendar year at the time's own offset.
    pub fn year(&self) -> i64 {
        civil_from_days(self.local_secs().div_euclid(SECS_PER_DAY)).0
    }
}

impl Default for GoTime {
    fn default() -> Self {
        GoTime::ZERO
    }
}

impl fmt::Display for GoTime {
    /// Go's `Format(time.RFC3339Nano)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.local_secs();
        let (year, month, day) = civil_from_days(local.div_euclid(SECS_PER_DAY));
        let sod = local.rem_euclid(SECS_PER_DAY);
        if (0..=9999).contains(&year) {
            write!(f, "{year:04}")?;
        } else if year < 0 {
            write!(f, "-{:04}", year.unsigned_abs())?;
        } else {
            write!(f, "{year}")?;
        }
        write!(
            f,
            "-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )?;
        if self.nanos > 0 {
            let digits = format!("{:09}", self.nanos);
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        if self.offset == 0 {
            f.write_str("Z")
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let minutes = self.offset.unsigned_abs() / 60;
            write!(f, "{sign}{:02}:{:02}", minutes / 60, minutes % 60)
        }
    }
}

impl Serialize for GoTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !(0..=9999).contains(&self.year()) {
            return Err(serde::ser::Error::custom(
                "Time.MarshalJSON: year outside of range [0,9999]",
            ));
        }
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Go: `null` leaves the time unchanged, that is zero for a new value.
        match Option::<Cow<'de, str>>::deserialize(deserializer)? {
            None => Ok(GoTime::ZERO),
            Some(text) => GoTime::parse(&text).map_err(de::Error::custom),
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number from [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small: day in 1..=31, month in 1..=12.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse_rfc3339(s: &[u8]) -> Option<GoTime> {
    let num = |from: usize, to: usize, min: u32, max: u32| -> Option<u32> {
        let digits = s.get(from..to)?;
        let mut n = 0u32;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(d - b'0');
        }
        (min..=max).contains(&n).then_some(n)
    };
    let at = |i: usize, c: u8| s.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let year = i64::from(num(0, 4, 0, 9999)?);
    let month = num(5, 7, 1, 12)?;
    let day = num(8, 10, 1, days_in_month(year, month))?;
    let hour = i64::from(num(11, 13, 0, 23)?);
    let min = i64::from(num(14, 16, 0, 59)?);
    let sec = i64::from(num(17, 19, 0, 59)?);
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if rest.len() >= 2 && rest[0] == b'.' && rest[1].is_ascii_digit() {
        let n = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        let mut scale = 100_000_000u32;
        for &d in rest[1..].iter().take(n.min(9)) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
        }
        rest = &rest[1 + n..];
    }
    let offset = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<i32> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i32::from(a - b'0') * 10 + i32::from(b - b'0'))
            };
            let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = (h * 60 + m) * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let local = days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + min * 60 + sec;
    Some(GoTime {
        secs: local - i64::from(offset),
        nanos,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_zero_and_epoch() {
        // no checklist item: Go time.Time JSON, carried by the log driver's Info and ReadConfig
        assert_eq!(GoTime::default().to_string(), "0001-01-01T00:00:00Z");
        assert!(GoTime::default().is_zero());
        assert_eq!(GoTime::parse("0001-01-01T00:00:00Z").unwrap(), GoTime::ZERO);
        assert_eq!(GoTime::from_unix(0, 0).to_string(), "1970-01-01T00:00:00Z");
        assert!(!GoTime::from_unix(0, 0).is_zero());
    }

    #[test]
    fn go_time_known_values() {
        // Values checked with GNU date: `date -u -d @1483319045`.
        let t = GoTime::parse("2017-01-02T03:04:05.123456789+02:00").unwrap();
        assert_eq!(t.unix_secs(), 1_483_319_045);
        assert_eq!(t.subsec_nanos(), 123_456_789);
        assert_eq!(t.offset_secs(), 7200);
        assert_eq!(t.to_string(), "2017-01-02T03:04:05.123456789+02:00");
        assert_eq!(
            t.with_offset(0).unwrap().to_string(),
            "2017-01-02T01:04:05.123456789Z"
        );
        let t = GoTime::parse("2000-02-29T23:59:59.5-05:30").unwrap();
        assert_eq!(t.unix_secs(), 951_888_599);
        assert_eq!(t.to_string(), "2000-02-29T23:59:59.5-05:30");
        // Trailing zeros go; digits beyond nine are dropped (Go).
        let t = GoTime::parse("2024-03-01T00:00:00.1200000001Z").unwrap();
        assert_eq!(t.subsec_nanos(), 120_000_000);
        assert_eq!(t.to_string(), "2024-03-01T00:00:00.12Z");
        assert_eq!(
            GoTime::from_unix_nanos(1_700_000_000_000_000_001).to_string(),
            "2023-11-14T22:13:20.000000001Z"
        );
        assert_eq!(
            GoTime::from_unix_nanos(-1).to_string(),
            "1969-12-31T23:59:59.999999999Z"
        );
        assert_eq!(GoTime::from_unix_nanos(-1).unix_nanos(), -1);
    }

    #[test]
    fn go_time_rejects_what_go_rejects() {
        // no checklist item: Go's strict RFC 3339 parse (time.Time.UnmarshalJSON)
        for bad in [
            "",
            "2017-01-02",
            "2017-01-02 03:04:05Z",
            "2017-01-02t03:04:05Z",
            "2017-01-02T03:04:05z",
            "2017-01-02T03:04:05",
            "2017-13-02T03:04:05Z",
            "2017-02-29T03:04:05Z",
            "2017-01-02T24:04:05Z",
            "2017-01-02T03:04:60Z",
            "2017-01-02T03:04:05.Z",
            "2017-01-02T03:04:05+2:00",
            "2017-01-02T03:04:05+24:00",
            "17-01-02T03:04:05Z",
            "2017-01-02T03:04:05Zjunk",
            "२०१७-01-02T03:04:05Z",
        ] {
            assert!(GoTime::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn go_time_json() {
        // no checklist item: Go's time.Time MarshalJSON / UnmarshalJSON
        let t: GoTime = serde_json::from_str(r#""2017-01-02T03:04:05Z""#).unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#""2017-01-02T03:04:05Z""#
        );
        assert_eq!(
            serde_json::from_str::<GoTime>("null").unwrap(),
            GoTime::ZERO
        );
        assert!(serde_json::from_str::<GoTime>("5").is_err());
        assert!(serde_json::to_string(&GoTime::from_unix(i64::MAX / 2, 0)).is_err());
        assert!(serde_json::to_string(&GoTime::from_unix(i64::MIN, 0)).is_err());
        assert_eq!(GoTime::from_unix(0, 0).with_offset(86_400), None);
    }

    #[test]
    fn civil_round_trip_over_a_wide_range() {
        // no checklist item: calendar arithmetic behind GoTime
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    proptest::proptest! {
        #[test]
        fn go_time_text_round_trips(secs in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000, off in -1439i32..1440) {
            // no checklist item: GoTime text round trip
            let t = GoTime::from_unix(secs, nanos).with_offset(off * 60).unwrap();
            if (0..=9999).contains(&t.year()) {
                let back = GoTime::parse(&t.to_string()).unwrap();
                proptest::prop_assert_eq!(back, t);
            }
        }

        #[test]
        fn go_time_parse_never_panics(s in "\\PC{0,40}") {
            // crate invariant: parsers never panic
            let _ = GoTime::parse(&s);
        }
    }
}

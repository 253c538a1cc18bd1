//! Time as the providers write it.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub const DAY_MS: i64 = 86_400_000;

/// The time a sandbox's rate limits count by: the real time plus an offset the control API sets
/// (`PUT /_sandbox/clock`), so that a test can reach the next day without waiting for it.
#[derive(Debug, Default)]
pub struct Clock(std::sync::atomic::AtomicI64);

impl Clock {
    pub fn now(&self) -> i64 {
        now_ms() + self.offset()
    }

    pub fn offset(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_offset(&self, offset_ms: i64) {
        self.0.store(offset_ms, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The day `unix_ms` falls in, counted from 1970-01-01 in a zone `utc_offset_ms` from UTC: the
/// daily budgets start again when it changes.
pub fn day_number(unix_ms: i64, utc_offset_ms: i64) -> i64 {
    (unix_ms + utc_offset_ms).div_euclid(DAY_MS)
}

/// `2019-10-30T03:30:17.883Z`, as HubSpot writes timestamps.
pub fn iso_ms(unix_ms: i64) -> String {
    let mut buf = [0u8; 24];
    match crate::json::format_iso(unix_ms, true, &mut buf) {
        Some(text) => text.to_string(),
        None => iso_ms_slow(unix_ms),
    }
}

/// [`iso_ms`] through the `time` crate, for any year.
pub(crate) fn iso_ms_slow(unix_ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `2021-01-01T00:00:00Z`, as Pipedrive's API v2 writes timestamps.
pub fn iso_seconds(unix_ms: i64) -> String {
    let mut buf = [0u8; 24];
    match crate::json::format_iso(unix_ms, false, &mut buf) {
        Some(text) => text.to_string(),
        None => iso_seconds_slow(unix_ms),
    }
}

/// [`iso_seconds`] through the `time` crate, for any year.
pub(crate) fn iso_seconds_slow(unix_ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// Parses an RFC 3339 timestamp into Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339).ok().map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// A HubSpot date or datetime value: epoch milliseconds or ISO 8601.
pub fn parse_hubspot_time(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().or_else(|| parse_rfc3339(s)).or_else(|| parse_rfc3339(&format!("{s}T00:00:00Z")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(iso_ms(1_572_406_217_883), "2019-10-30T03:30:17.883Z");
        assert_eq!(iso_seconds(1_609_459_200_000), "2021-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("2021-01-01T00:00:00Z"), Some(1_609_459_200_000));
        assert_eq!(parse_hubspot_time("1572406217883"), Some(1_572_406_217_883));
        assert_eq!(parse_hubspot_time("2021-01-01"), Some(1_609_459_200_000));
    }

    #[test]
    fn days_turn_at_midnight_in_the_zone() {
        let midnight_utc = 1_609_459_200_000; // 2021-01-01T00:00:00Z
        assert_eq!(day_number(midnight_utc - 1, 0) + 1, day_number(midnight_utc, 0));
        // At UTC-5 that instant is still 2020-12-31, 19:00; its midnight comes five hours later.
        let eastern = -5 * 3_600_000;
        assert_eq!(day_number(midnight_utc, eastern), day_number(midnight_utc - 1, 0));
        assert_eq!(day_number(midnight_utc + 5 * 3_600_000, eastern), day_number(midnight_utc, 0));
        assert_eq!(day_number(midnight_utc + 5 * 3_600_000 - 1, eastern), day_number(midnight_utc - 1, 0));
    }
}

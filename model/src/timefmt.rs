//! Dates for the console, computed without a time-zone database (UTC), so the server and the
//! browser print the same text and hydration matches.

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// (year, month 1-12, day) of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// "Nov 29, 2026" for Unix milliseconds.
pub fn date(unix_ms: i64) -> String {
    let (y, m, d) = civil_from_days(unix_ms.div_euclid(86_400_000));
    format!("{} {}, {}", MONTHS[(m - 1) as usize], d, y)
}

/// "Nov 29, 2026 14:05 UTC" for Unix milliseconds.
pub fn date_time(unix_ms: i64) -> String {
    let secs_of_day = unix_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{} {:02}:{:02} UTC", date(unix_ms), secs_of_day / 3600, (secs_of_day % 3600) / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(date(0), "Jan 1, 1970");
        assert_eq!(date(951_782_400_000), "Feb 29, 2000");
        assert_eq!(date_time(1_795_917_900_000), "Nov 29, 2026 02:05 UTC");
        assert_eq!(date(-86_400_000), "Dec 31, 1969");
    }
}

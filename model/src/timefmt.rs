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

/// "2026-11-29" for Unix milliseconds: the ISO date providers exchange.
pub fn iso_date(unix_ms: i64) -> String {
    let (y, m, d) = civil_from_days(unix_ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Unix milliseconds of midnight UTC starting an ISO date `YYYY-MM-DD`.
pub fn iso_date_ms(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

/// Unix milliseconds of an ISO 8601 / RFC 3339 date-time (`2026-11-29T14:05:00.123Z`,
/// `+01:00` offsets, or a space for the `T`), or of a bare date (midnight UTC).
pub fn parse_iso_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let day = iso_date_ms(text.get(..10)?)?;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(day);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let num = |s: &str| s.parse::<i64>().ok();
    let (h, m, sec) = (num(rest.get(0..2)?)?, num(rest.get(3..5)?)?, num(rest.get(6..8)?)?);
    let mut tail = &rest[8..];
    let mut millis = 0;
    if let Some(frac) = tail.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        tail = &frac[digits.len()..];
        millis = num(&format!("{:0<3}", &digits[..digits.len().min(3)]))?;
    }
    let offset_ms = match tail {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if tail.starts_with('-') { -1 } else { 1 };
            let (oh, om) = (num(tail.get(1..3)?)?, num(tail.get(4..6)?)?);
            sign * (oh * 3600 + om * 60) * 1000
        }
    };
    Some(day + ((h * 60 + m) * 60 + sec) * 1000 + millis - offset_ms)
}

/// `2026-11-29T14:05:00Z` (whole seconds, rounded down) for Unix milliseconds.
pub fn iso_seconds(unix_ms: i64) -> String {
    let secs_of_day = unix_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{}T{:02}:{:02}:{:02}Z", iso_date(unix_ms), secs_of_day / 3600, (secs_of_day % 3600) / 60, secs_of_day % 60)
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
        assert_eq!(iso_date(951_782_400_000), "2000-02-29");
        assert_eq!(iso_date_ms("2000-02-29"), Some(951_782_400_000));
        assert_eq!(iso_date_ms("2000-13-01"), None);
        assert_eq!(parse_iso_ms("2019-10-30T03:30:17.883Z"), Some(1_572_406_217_883));
        assert_eq!(parse_iso_ms("2021-01-01T01:00:00+01:00"), Some(1_609_459_200_000));
        assert_eq!(parse_iso_ms("2021-01-01 00:00:00"), Some(1_609_459_200_000));
        assert_eq!(iso_seconds(1_609_459_200_999), "2021-01-01T00:00:00Z");
        assert_eq!(date(951_782_400_000), "Feb 29, 2000");
        assert_eq!(date_time(1_795_917_900_000), "Nov 29, 2026 02:05 UTC");
        assert_eq!(date(-86_400_000), "Dec 31, 1969");
    }
}

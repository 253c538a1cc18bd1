//! Writing API answers straight from the stored records: timestamps formatted without allocating,
//! and JSON responses from bytes (no intermediate `serde_json::Value`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Serialize, Serializer};

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
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

fn two(out: &mut [u8], at: usize, v: u32) {
    out[at] = b'0' + (v / 10) as u8;
    out[at + 1] = b'0' + (v % 10) as u8;
}

/// `2019-10-30T03:30:17.883Z` (with `millis`) or `2019-10-30T03:30:17Z` into `buf`; `None` for
/// years outside 0..=9999 (the callers then fall back to the general formatter).
pub fn format_iso(unix_ms: i64, millis: bool, buf: &mut [u8; 24]) -> Option<&str> {
    let len = format_iso_bytes(unix_ms, millis, buf)?;
    std::str::from_utf8(&buf[..len]).ok()
}

/// [`format_iso`] as ASCII bytes, answering their length.
fn format_iso_bytes(unix_ms: i64, millis: bool, buf: &mut [u8; 24]) -> Option<usize> {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000) as u32;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        return None;
    }
    let sod = secs.rem_euclid(86_400) as u32;
    let year = year as u32;
    two(buf, 0, year / 100);
    two(buf, 2, year % 100);
    buf[4] = b'-';
    two(buf, 5, month);
    buf[7] = b'-';
    two(buf, 8, day);
    buf[10] = b'T';
    two(buf, 11, sod / 3600);
    buf[13] = b':';
    two(buf, 14, sod / 60 % 60);
    buf[16] = b':';
    two(buf, 17, sod % 60);
    let len = if millis {
        buf[19] = b'.';
        buf[20] = b'0' + (ms / 100) as u8;
        two(buf, 21, ms % 100);
        buf[23] = b'Z';
        24
    } else {
        buf[19] = b'Z';
        20
    };
    Some(len)
}

/// A Unix-ms time serialized as HubSpot writes it (`2019-10-30T03:30:17.883Z`).
#[derive(Clone, Copy)]
pub struct IsoMs(pub i64);

impl Serialize for IsoMs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 24];
        match format_iso(self.0, true, &mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&crate::time::iso_ms(self.0)),
        }
    }
}

/// A JSON object written field by field straight into a buffer: keys are the caller's plain ASCII
/// literals, written as they are; strings are escaped only when they hold a character that needs
/// it; numbers and other values go through serde_json. For long pages of records, where escaping
/// every key and string byte by byte is most of the time serde_json spends.
/// An [`Object`] key: `key!("id")` is `,"id":` (the name must need no escaping).
#[macro_export]
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}

pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn begin(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, first: true }
    }

    /// Writes `key` (made by [`key!`]: `,"name":`), without its comma when it is the first.
    #[inline(always)]
    fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(key.starts_with(",\"") && key.ends_with("\":"), "{key} is made by key!");
        let key = if self.first { &key[1..] } else { key };
        self.first = false;
        self.out.extend_from_slice(key.as_bytes());
        self.out
    }

    /// A number, boolean, list or any other value, as serde_json writes it.
    #[inline]
    pub fn value<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> &mut Self {
        let out = self.key(key);
        if serde_json::to_writer(&mut *out, value).is_err() {
            out.extend_from_slice(b"null");
        }
        self
    }

    #[inline]
    pub fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        write_str(self.key(key), value);
        self
    }

    /// A string, or `null`.
    #[inline]
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        match value {
            Some(s) => self.str(key, s),
            None => self.value(key, &()),
        }
    }

    /// A Unix-ms time as Pipedrive's API v2 writes it (`2021-01-01T00:00:00Z`), or `null`.
    #[inline]
    pub fn time(&mut self, key: &'static str, value: Option<i64>) -> &mut Self {
        let out = self.key(key);
        let mut buf = [0u8; 24];
        match value.map(|t| (t, format_iso_bytes(t, false, &mut buf))) {
            Some((_, Some(len))) => {
                out.push(b'"');
                out.extend_from_slice(&buf[..len]);
                out.push(b'"');
            }
            Some((t, None)) => write_str(out, &crate::time::iso_seconds(t)),
            None => out.extend_from_slice(b"null"),
        }
        self
    }

    /// An object of string keys and JSON values.
    pub fn map(&mut self, key: &'static str, value: &std::collections::BTreeMap<String, serde_json::Value>) -> &mut Self {
        let out = self.key(key);
        out.push(b'{');
        for (i, (k, v)) in value.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            if serde_json::to_writer(&mut *out, v).is_err() {
                out.extend_from_slice(b"null");
            }
        }
        out.push(b'}');
        self
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// `s` as a JSON string: copied as it is when nothing in it needs escaping.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// JSON already written, as a 200 `application/json` answer.
pub fn ok_written(bytes: Vec<u8>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
}

/// `body` serialized as an `application/json` answer with `status`.
pub fn respond<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not serialize an answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `body` as a 200 `application/json` answer.
pub fn ok<T: Serialize + ?Sized>(body: &T) -> Response {
    respond(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_general_formatter() {
        let mut t = -86_400_000_i64 * 800;
        while t < 4_102_444_800_000 {
            let mut buf = [0u8; 24];
            assert_eq!(format_iso(t, true, &mut buf).unwrap(), crate::time::iso_ms_slow(t), "{t}");
            let mut buf = [0u8; 24];
            assert_eq!(format_iso(t, false, &mut buf).unwrap(), crate::time::iso_seconds_slow(t), "{t}");
            t += 7_777_777_777;
        }
        for t in [0, 1, 999, 1000, -1, -999, -1000, -1001, 951_782_400_000, 1_572_406_217_883, 253_402_300_799_999] {
            let mut buf = [0u8; 24];
            assert_eq!(format_iso(t, true, &mut buf).unwrap(), crate::time::iso_ms_slow(t), "{t}");
            let mut buf = [0u8; 24];
            assert_eq!(format_iso(t, false, &mut buf).unwrap(), crate::time::iso_seconds_slow(t), "{t}");
        }
    }
}

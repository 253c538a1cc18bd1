//! The answer of a batch write (`{"data": [...]}`: a `code`, `details`, `message` and `status`
//! per record) written straight into bytes. A record written is answered from its id, times and
//! users; a record refused by the error it was refused with. The users are rendered while the
//! data is locked ([`Users::of`]) and the bytes written after the lock is given back, so that
//! one call's answer does not hold up the next call's writes. The bytes are those the
//! `serde_json::Value` rendering gave (keys sorted; the tests compare them).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::data::{Record, ZohoData};
use super::render::{quoted_number, write_time};
use super::values::user_ref;
use crate::json::write_str;

/// A record's answer in a batch write.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Created or updated: `SUCCESS` with the record's system fields as `details`.
    Written { record: Written, message: &'static str, upsert: Option<Upserted> },
    /// Moved to the recycle bin: `SUCCESS` with the record's id.
    Deleted(u64),
    /// Refused: the record's error (`{code, details, message, status: "error"}`).
    Failed(Value),
}

/// The system fields of a record written, as its answer gives them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Written {
    pub id: u64,
    pub created_time: i64,
    pub modified_time: i64,
    pub created_by: u64,
    pub modified_by: u64,
}

impl Written {
    pub fn of(record: &Record) -> Written {
        Written {
            id: record.id,
            created_time: record.created_time,
            modified_time: record.modified_time,
            created_by: record.created_by,
            modified_by: record.modified_by,
        }
    }
}

/// What an upsert did: `insert` or `update`, and the field that found the record it updated.
#[derive(Clone, Debug, PartialEq)]
pub struct Upserted {
    pub action: &'static str,
    pub duplicate_field: Option<String>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        !matches!(self, Answer::Failed(_))
    }

    /// The id of the record written or deleted.
    pub fn id(&self) -> Option<u64> {
        match self {
            Answer::Written { record, .. } => Some(record.id),
            Answer::Deleted(id) => Some(*id),
            Answer::Failed(_) => None,
        }
    }
}

/// The users the answers name, each as `{"id", "name"}` (or `null` when there is no such user).
#[derive(Default)]
pub struct Users(Vec<(u64, Vec<u8>)>);

impl Users {
    /// Renders every user `answers` name, from `data`.
    pub fn of(data: &ZohoData, answers: &[Answer]) -> Users {
        let mut users = Users::default();
        for answer in answers {
            if let Answer::Written { record, .. } = answer {
                users.add(data, record.created_by);
                users.add(data, record.modified_by);
            }
        }
        users
    }

    fn add(&mut self, data: &ZohoData, id: u64) {
        if !self.0.iter().any(|(u, _)| *u == id) {
            let bytes = serde_json::to_vec(&user_ref(data, id, false)).unwrap_or_else(|_| b"null".to_vec());
            self.0.push((id, bytes));
        }
    }

    fn write(&self, out: &mut Vec<u8>, id: u64) {
        match self.0.iter().find(|(u, _)| *u == id) {
            Some((_, bytes)) => out.extend_from_slice(bytes),
            None => out.extend_from_slice(b"null"),
        }
    }
}

/// `answer` as a JSON object onto `out`.
fn write_answer(out: &mut Vec<u8>, users: &Users, answer: &Answer) {
    match answer {
        Answer::Written { record, message, upsert } => {
            out.push(b'{');
            if let Some(u) = upsert {
                out.extend_from_slice(b"\"action\":");
                write_str(out, u.action);
                out.push(b',');
            }
            out.extend_from_slice(b"\"code\":\"SUCCESS\",\"details\":{\"$approval_state\":\"approved\",\"Created_By\":");
            users.write(out, record.created_by);
            out.extend_from_slice(b",\"Created_Time\":");
            write_time(out, record.created_time);
            out.extend_from_slice(b",\"Modified_By\":");
            users.write(out, record.modified_by);
            out.extend_from_slice(b",\"Modified_Time\":");
            write_time(out, record.modified_time);
            out.extend_from_slice(b",\"id\":");
            quoted_number(out, record.id);
            out.push(b'}');
            if let Some(u) = upsert {
                out.extend_from_slice(b",\"duplicate_field\":");
                match &u.duplicate_field {
                    Some(f) => write_str(out, f),
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.extend_from_slice(b",\"message\":");
            write_str(out, message);
            out.extend_from_slice(b",\"status\":\"success\"}");
        }
        Answer::Deleted(id) => {
            out.extend_from_slice(b"{\"code\":\"SUCCESS\",\"details\":{\"id\":");
            quoted_number(out, *id);
            out.extend_from_slice(b"},\"message\":\"record deleted\",\"status\":\"success\"}");
        }
        Answer::Failed(error) => {
            if serde_json::to_writer(&mut *out, error).is_err() {
                out.extend_from_slice(b"null");
            }
        }
    }
}

/// The body of a batch's answer: `{"data": [answers]}`.
pub fn batch_body(answers: &[Answer], users: &Users) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + answers.len() * 320);
    out.extend_from_slice(b"{\"data\":[");
    for (i, answer) in answers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_answer(&mut out, users, answer);
    }
    out.extend_from_slice(b"]}");
    out
}

/// The answer of a batch: every record succeeded (`all_ok`, 201 for creations, 200 otherwise),
/// none did (400), or some did (207, multi-status).
pub fn batch_answer(answers: &[Answer], users: &Users, all_ok: StatusCode) -> Response {
    let ok = answers.iter().filter(|a| a.is_success()).count();
    let status = if ok == answers.len() {
        all_ok
    } else if ok == 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::MULTI_STATUS
    };
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], batch_body(answers, users)).into_response()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::zoho::values::record_error;
    use crate::zoho::zoho_time;

    /// The rendering the writer replaced: through `serde_json::Value`.
    fn value(data: &ZohoData, answer: &Answer) -> Value {
        match answer {
            Answer::Written { record, message, upsert } => {
                let mut v = json!({
                    "code": "SUCCESS",
                    "details": {
                        "Modified_Time": zoho_time(record.modified_time),
                        "Modified_By": user_ref(data, record.modified_by, false),
                        "Created_Time": zoho_time(record.created_time),
                        "id": record.id.to_string(),
                        "Created_By": user_ref(data, record.created_by, false),
                        "$approval_state": "approved",
                    },
                    "message": message,
                    "status": "success",
                });
                if let Some(u) = upsert {
                    v["action"] = json!(u.action);
                    v["duplicate_field"] = u.duplicate_field.as_ref().map(|f| json!(f)).unwrap_or(Value::Null);
                }
                v
            }
            Answer::Deleted(id) => {
                json!({"code": "SUCCESS", "details": {"id": id.to_string()}, "message": "record deleted", "status": "success"})
            }
            Answer::Failed(e) => e.clone(),
        }
    }

    #[test]
    fn the_writer_gives_the_bytes_of_the_value_rendering() {
        let data = crate::zoho::seed::fresh(5_725_767);
        let (u1, u2) = (data.users[0].id, data.users[1].id);
        let written =
            |id, by| Written { id, created_time: 1_765_000_000_000, modified_time: 1_765_000_042_000, created_by: u1, modified_by: by };
        let answers = vec![
            Answer::Written { record: written(1, u1), message: "record added", upsert: None },
            Answer::Written { record: written(2, u2), message: "record updated", upsert: None },
            Answer::Written { record: written(3, 7), message: "record updated", upsert: None },
            Answer::Written {
                record: written(4, u2),
                message: "record updated",
                upsert: Some(Upserted { action: "update", duplicate_field: Some("Email".into()) }),
            },
            Answer::Written {
                record: written(5, u1),
                message: "record added",
                upsert: Some(Upserted { action: "insert", duplicate_field: None }),
            },
            Answer::Deleted(u64::MAX),
            Answer::Failed(record_error(
                "INVALID_DATA",
                "invalid \"data\"",
                json!({"api_name": "Amount", "json_path": "$.data[0].Amount"}),
            )),
        ];
        let users = Users::of(&data, &answers);
        let expected = json!({"data": answers.iter().map(|a| value(&data, a)).collect::<Vec<_>>()});
        assert_eq!(String::from_utf8(batch_body(&answers, &users)).unwrap(), serde_json::to_string(&expected).unwrap());
    }
}

//! Search Records (`GET /crm/v8/{module}/search`: `criteria` such as
//! `((Email:equals:a@b.example)and(Last_Name:starts_with:K))`, or `email`, `phone`, `word`; 204
//! when nothing matches, at most 2,000 records through `page`) and Record Count
//! (`GET /{module}/actions/count`, with the same filters).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::data::{Module, Record, ZohoData};
use super::listing::field_list;
use super::matching::{check_fields, matching};
use super::paging::{Paging, PAGE_LIMIT};
use super::render::data_answer;
use super::{error, module_for, param_missing, params_ambiguous, Zoho};
use crate::oauth::AccessToken;
use crate::query::{query_one, query_pairs};

/// A parsed `criteria`.
#[derive(Debug, PartialEq)]
pub enum Criteria {
    /// `field:operator:value`; `in` and `not_in` take several values (split on unescaped commas).
    Condition {
        field: String,
        operator: String,
        values: Vec<String>,
    },
    And(Box<Criteria>, Box<Criteria>),
    Or(Box<Criteria>, Box<Criteria>),
}

const OPERATORS: [&str; 9] =
    ["equals", "not_equal", "starts_with", "in", "not_in", "greater_than", "greater_equal", "less_than", "less_equal"];

/// Conditions one `criteria` may hold (Zoho's cap).
pub const MAX_CONDITIONS: usize = 10;
/// Parentheses nested in one `criteria`, at most.
pub const MAX_DEPTH: usize = 10;

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    depth: usize,
    conditions: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at {}", c as char, self.at))
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    fn expr(&mut self) -> Result<Criteria, String> {
        let mut left = self.term()?;
        loop {
            self.skip_spaces();
            let rest = &self.s[self.at..];
            let (and, len) = if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"and") {
                (true, 3)
            } else if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"or") {
                (false, 2)
            } else {
                return Ok(left);
            };
            self.at += len;
            self.skip_spaces();
            let right = self.term()?;
            left = if and { Criteria::And(Box::new(left), Box::new(right)) } else { Criteria::Or(Box::new(left), Box::new(right)) };
        }
    }

    fn term(&mut self) -> Result<Criteria, String> {
        self.skip_spaces();
        self.expect(b'(')?;
        self.skip_spaces();
        if self.peek() == Some(b'(') {
            // Refused before going deeper: the parser's recursion is bounded.
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(format!("criteria nested deeper than {MAX_DEPTH}"));
            }
            let inner = self.expr()?;
            self.depth -= 1;
            self.skip_spaces();
            self.expect(b')')?;
            return Ok(inner);
        }
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(format!("more than {MAX_CONDITIONS} criteria"));
        }
        // A condition runs to the first unescaped ')'; its escapes are kept for the split.
        let from = self.at;
        loop {
            match self.peek() {
                None => return Err("a condition is not closed".into()),
                Some(b'\\') if self.at + 1 < self.s.len() => self.at += 2,
                Some(b'\\') => return Err("a dangling escape".into()),
                Some(b')') => break,
                Some(_) => self.at += 1,
            }
        }
        let raw = std::str::from_utf8(&self.s[from..self.at]).map_err(|_| "not UTF-8".to_string())?;
        self.at += 1;
        let mut parts = raw.splitn(3, ':');
        let (Some(field), Some(operator), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("{raw:?} is not field:operator:value"));
        };
        let (field, operator) = (unescape(field), unescape(operator));
        if !OPERATORS.contains(&operator.as_str()) {
            return Err(format!("the operator {operator:?} is not supported"));
        }
        let values = if matches!(operator.as_str(), "in" | "not_in") {
            split_unescaped(value, ',').iter().map(|v| unescape(v).trim().to_string()).collect()
        } else {
            vec![unescape(value)]
        };
        Ok(Criteria::Condition { field: field.trim().to_string(), operator, values })
    }
}

/// `s` without its escapes (`\,` is `,`, `\(` is `(`, `\\` is `\`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// `s` split on the `separator`s no backslash escapes, escapes kept.
fn split_unescaped(s: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut from, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == separator => {
                parts.push(&s[from..i]);
                from = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[from..]);
    parts
}

pub fn parse(criteria: &str) -> Result<Criteria, String> {
    let mut p = Parser { s: criteria.trim().as_bytes(), at: 0, depth: 0, conditions: 0 };
    let c = p.expr()?;
    p.skip_spaces();
    if p.at != p.s.len() {
        return Err(format!("unexpected text at {}", p.at));
    }
    Ok(c)
}

/// The filter of a search or count call: `criteria`, `email`, `phone` or `word`.
enum Filter {
    Criteria(Criteria),
    Email(String),
    Phone(String),
    Word(String),
    All,
}

fn invalid_query(reason: String) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_QUERY", "invalid query formed", json!({"reason": reason}))
}

/// The one filter of a call; several are ambiguous (400 `AMBIGUITY_DURING_PROCESSING`).
fn filter(pairs: &[(String, String)]) -> Result<Filter, Response> {
    let given: Vec<&str> = ["criteria", "email", "phone", "word"].into_iter().filter(|p| query_one(pairs, p).is_some()).collect();
    if given.len() > 1 {
        return Err(params_ambiguous(&given));
    }
    if let Some(c) = query_one(pairs, "criteria") {
        return parse(c).map(Filter::Criteria).map_err(invalid_query);
    }
    if let Some(e) = query_one(pairs, "email") {
        return Ok(Filter::Email(e.trim().to_lowercase()));
    }
    if let Some(p) = query_one(pairs, "phone") {
        return Ok(Filter::Phone(p.chars().filter(char::is_ascii_digit).collect()));
    }
    if let Some(w) = query_one(pairs, "word") {
        return Ok(Filter::Word(w.trim().to_lowercase()));
    }
    Ok(Filter::All)
}

/// The records of `module` that `f` keeps, by id (the first `limit` of them for a criteria).
fn found<'a>(data: &'a ZohoData, module: Module, f: &Filter, limit: usize) -> Result<Vec<&'a Record>, Response> {
    let table = data.table(module);
    let of_type = |r: &Record, types: &[&str], test: &dyn Fn(&str) -> bool| {
        data.fields_of(module).iter().filter(|d| types.contains(&d.data_type.as_str())).any(|d| r.text(&d.api_name).is_some_and(test))
    };
    Ok(match f {
        Filter::Email(e) if module == Module::Contacts => {
            table.with_key(&format!("email:{e}")).iter().filter_map(|id| table.get(id)).collect()
        }
        Filter::Email(e) => table.values().filter(|r| of_type(r, &["email"], &|v| v.trim().eq_ignore_ascii_case(e))).collect(),
        Filter::Phone(p) => table
            .values()
            .filter(|r| !p.is_empty() && of_type(r, &["phone"], &|v| v.chars().filter(char::is_ascii_digit).collect::<String>() == *p))
            .collect(),
        Filter::Word(w) => table
            .values()
            .filter(|r| of_type(r, &["text", "email", "textarea", "website", "phone"], &|v| v.to_lowercase().contains(w)))
            .collect(),
        Filter::All => table.values().collect(),
        Filter::Criteria(c) => {
            check_fields(data, module, c).map_err(invalid_query)?;
            matching(data, module, c, limit)
        }
    })
}

/// GET /crm/v8/{module}/search (Search Records)
pub async fn search(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let module = match module_for(&raw, &token, "READ") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let pairs = query_pairs(query.as_deref());
    let f = match filter(&pairs) {
        Ok(Filter::All) => return param_missing("criteria"),
        Ok(f) => f,
        Err(r) => return r,
    };
    let paging = match Paging::parse(&pairs, "LIMIT_REACHED") {
        Ok(p) => p,
        Err(r) => return r,
    };
    let fields = field_list(&pairs);
    let data = zoho.read();
    // Search reaches the first 2,000 records; a page needs those up to its end and one more
    // (to tell whether more follow).
    let limit = (PAGE_LIMIT as usize).min(paging.skip().saturating_add(paging.take()).saturating_add(1));
    let mut all = match found(&data, module, &f, limit) {
        Ok(a) => a,
        Err(r) => return r,
    };
    // Search reaches the first 2,000 records.
    all.truncate(PAGE_LIMIT as usize);
    let (page, more) = paging.slice(&all);
    if page.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    data_answer(&data, module, fields.as_deref(), page.iter().copied(), Some(&paging.info(page.len(), more)))
}

/// GET /crm/v8/{module}/actions/count (Record Count): `{"count": N}`.
pub async fn count(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let module = match module_for(&raw, &token, "READ") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let pairs = query_pairs(query.as_deref());
    let f = match filter(&pairs) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let data = zoho.read();
    let n = match f {
        Filter::All => data.table(module).len(),
        f => match found(&data, module, &f, usize::MAX) {
            Ok(a) => a.len(),
            Err(r) => return r,
        },
    };
    Json(json!({"count": n})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: &str, operator: &str, value: &str) -> Criteria {
        Criteria::Condition { field: field.into(), operator: operator.into(), values: vec![value.into()] }
    }

    #[test]
    fn parses_nested_criteria_with_escapes() {
        assert_eq!(parse("(Email:equals:a@b.example)").unwrap(), cond("Email", "equals", "a@b.example"));
        assert_eq!(
            parse("((Last_Name:starts_with:K)and((Stage:equals:Closed Won)or(Deal_Name:equals:A\\(1\\)\\,b)))").unwrap(),
            Criteria::And(
                Box::new(cond("Last_Name", "starts_with", "K")),
                Box::new(Criteria::Or(Box::new(cond("Stage", "equals", "Closed Won")), Box::new(cond("Deal_Name", "equals", "A(1),b"))))
            )
        );
        assert_eq!(
            parse("(A:equals:1)or(B:equals:2)").unwrap(),
            Criteria::Or(Box::new(cond("A", "equals", "1")), Box::new(cond("B", "equals", "2")))
        );
        assert!(parse("(Email:like:x)").is_err());
        assert!(parse("(Email:equals:x").is_err());
        assert!(parse("Email:equals:x").is_err());
        assert!(parse("(Email:equals:x)xor(A:equals:1)").is_err());
    }

    #[test]
    fn in_splits_on_unescaped_commas_only() {
        assert_eq!(
            parse(r"(Deal_Name:in:A\,B,C\(1\), D)").unwrap(),
            Criteria::Condition { field: "Deal_Name".into(), operator: "in".into(), values: vec!["A,B".into(), "C(1)".into(), "D".into()] }
        );
    }

    #[test]
    fn criteria_past_zohos_caps_are_refused_without_recursing() {
        let ten = (0..10).map(|i| format!("(A:equals:{i})")).collect::<Vec<_>>().join("and");
        assert!(parse(&ten).is_ok());
        let eleven = (0..11).map(|i| format!("(A:equals:{i})")).collect::<Vec<_>>().join("and");
        assert!(parse(&eleven).unwrap_err().contains("more than 10"));
        let nested = |depth: usize| format!("{}(A:equals:1){}", "(".repeat(depth), ")".repeat(depth));
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        assert!(parse(&nested(MAX_DEPTH + 1)).is_err());
        // Deep enough to overflow the stack of a recursive parser without a cap.
        assert!(parse(&nested(1_000_000)).unwrap_err().contains("deeper"));
    }
}

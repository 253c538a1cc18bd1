//! Whether records meet a search's `criteria`: the criteria resolved once a call (each field's
//! definition, how it compares, the values parsed), then tested against each record without
//! allocating in the common cases (numbers, times, ASCII text). `equals` on `Email` reads the
//! records the table's email index names instead of every record.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::data::{Module, Record, ZohoData};
use super::search::Criteria;

/// How a field's values compare.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Time,
    Text,
}

/// How `field` compares, or why the criteria cannot name it.
fn kind_of(data: &ZohoData, module: Module, field: &str) -> Result<Kind, String> {
    Ok(match field {
        "id" => Kind::Number,
        "Owner" => Kind::Text,
        "Created_Time" | "Modified_Time" => Kind::Time,
        _ => {
            let def = data.field(module, field).ok_or_else(|| format!("the field {field} is not available in {}", module.api_name()))?;
            match def.data_type.as_str() {
                "currency" | "double" | "integer" | "bigint" => Kind::Number,
                "datetime" => Kind::Time,
                _ => Kind::Text,
            }
        }
    })
}

/// Every field the criteria names is one the module has (checked before any record is read:
/// an empty module refuses a bad criteria as a full one does).
pub fn check_fields(data: &ZohoData, module: Module, c: &Criteria) -> Result<(), String> {
    match c {
        Criteria::And(a, b) | Criteria::Or(a, b) => {
            check_fields(data, module, a)?;
            check_fields(data, module, b)
        }
        Criteria::Condition { field, .. } => kind_of(data, module, field).map(|_| ()),
    }
}

/// The records of `module` that meet `c` (whose fields [`check_fields`] has checked), by id, at
/// most `limit` of them.
pub fn matching<'a>(data: &'a ZohoData, module: Module, c: &Criteria, limit: usize) -> Vec<&'a Record> {
    let plan = Plan::new(data, module, c);
    let table = data.table(module);
    match candidates(data, module, c) {
        Some(mut ids) => {
            ids.sort_unstable();
            ids.dedup();
            ids.iter().filter_map(|id| table.get(id)).filter(|r| plan.test(data, r)).take(limit).collect()
        }
        None => table.values().filter(|r| plan.test(data, r)).take(limit).collect(),
    }
}

/// The ids of the only records that can meet `c`, when an index names them: `Email` equals a
/// value (the table files records by their email, trimmed and in lower case).
fn candidates(data: &ZohoData, module: Module, c: &Criteria) -> Option<Vec<u64>> {
    match c {
        Criteria::And(a, b) => candidates(data, module, a).or_else(|| candidates(data, module, b)),
        Criteria::Or(..) => None,
        Criteria::Condition { field, operator, values } => {
            let def = data.field(module, field).filter(|d| d.api_name == "Email" && d.data_type != "lookup")?;
            (operator == "equals" && kind_of(data, module, &def.api_name).ok()? == Kind::Text).then_some(())?;
            let want = values.first().map(String::as_str).unwrap_or_default();
            Some(data.table(module).with_key(&format!("email:{}", want.to_lowercase().trim())).to_vec())
        }
    }
}

/// A criteria resolved against the module's fields.
enum Plan<'a> {
    And(Box<Plan<'a>>, Box<Plan<'a>>),
    Or(Box<Plan<'a>>, Box<Plan<'a>>),
    Test(Test<'a>),
    /// A field the module lacks (refused before any record is read).
    Never,
}

/// One condition, resolved.
struct Test<'a> {
    source: Source<'a>,
    kind: Kind,
    operator: Operator,
    wants: Vec<Want>,
    /// The module a lookup field names (compared by the id or the name of the record).
    lookup: Option<Module>,
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Id,
    Owner,
    CreatedTime,
    ModifiedTime,
    Field(&'a str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equals,
    NotEqual,
    StartsWith,
    In,
    NotIn,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
}

/// A value of a condition, parsed as each kind compares it.
struct Want {
    raw: String,
    lower: String,
    number: Option<f64>,
    time: Option<i64>,
}

impl Want {
    fn new(raw: &str) -> Want {
        Want {
            raw: raw.to_string(),
            lower: raw.to_lowercase(),
            number: raw.parse::<f64>().ok(),
            time: raw.parse::<i64>().ok().or_else(|| crate::time::parse_rfc3339(raw)),
        }
    }
}

/// What a record holds for a condition.
enum Have<'r> {
    Text(&'r str),
    /// A whole number: an id, an owner, or a time as Unix ms.
    Int(i64),
    Unsigned(u64),
    Number(&'r Number),
    Other(&'r Value),
}

impl Have<'_> {
    /// As the text the condition compares.
    fn text(&self) -> Cow<'_, str> {
        match self {
            Have::Text(s) => Cow::Borrowed(s),
            Have::Int(n) => Cow::Owned(n.to_string()),
            Have::Unsigned(n) => Cow::Owned(n.to_string()),
            Have::Number(n) => Cow::Owned(n.to_string()),
            Have::Other(v) => Cow::Owned(v.to_string()),
        }
    }

    /// As the text parsed as a number (what `"5.0".parse()` gives for a stored `5.0`).
    fn number(&self) -> Option<f64> {
        match self {
            Have::Text(s) => s.parse().ok(),
            Have::Int(n) => Some(*n as f64),
            Have::Unsigned(n) => Some(*n as f64),
            Have::Number(n) => n.as_f64(),
            Have::Other(_) => None,
        }
    }

    /// As the text parsed as Unix ms.
    fn time(&self) -> Option<i64> {
        match self {
            Have::Text(s) => s.parse().ok(),
            Have::Int(n) => Some(*n),
            Have::Unsigned(n) => i64::try_from(*n).ok(),
            Have::Number(n) => n.as_i64(),
            Have::Other(_) => None,
        }
    }
}

/// `have` in lower case against `want_lower`, allocating only for non-ASCII text.
fn cmp_lower(have: &str, want_lower: &str) -> Ordering {
    if have.is_ascii() {
        have.bytes().map(|b| b.to_ascii_lowercase()).cmp(want_lower.bytes())
    } else {
        have.to_lowercase().as_str().cmp(want_lower)
    }
}

fn starts_with_lower(have: &str, want_lower: &str) -> bool {
    if have.is_ascii() {
        have.len() >= want_lower.len() && have.bytes().zip(want_lower.bytes()).all(|(h, w)| h.to_ascii_lowercase() == w)
    } else {
        have.to_lowercase().starts_with(want_lower)
    }
}

impl<'a> Plan<'a> {
    fn new(data: &'a ZohoData, module: Module, c: &Criteria) -> Plan<'a> {
        match c {
            Criteria::And(a, b) => Plan::And(Box::new(Plan::new(data, module, a)), Box::new(Plan::new(data, module, b))),
            Criteria::Or(a, b) => Plan::Or(Box::new(Plan::new(data, module, a)), Box::new(Plan::new(data, module, b))),
            Criteria::Condition { field, operator, values } => {
                let Ok(kind) = kind_of(data, module, field) else { return Plan::Never };
                let (source, lookup) = match field.as_str() {
                    "id" => (Source::Id, None),
                    "Owner" => (Source::Owner, None),
                    "Created_Time" => (Source::CreatedTime, None),
                    "Modified_Time" => (Source::ModifiedTime, None),
                    _ => match data.field(module, field) {
                        Some(def) => (Source::Field(&def.api_name), def.lookup.filter(|_| def.data_type == "lookup")),
                        None => return Plan::Never,
                    },
                };
                let operator = match operator.as_str() {
                    "equals" => Operator::Equals,
                    "not_equal" => Operator::NotEqual,
                    "starts_with" => Operator::StartsWith,
                    "in" => Operator::In,
                    "not_in" => Operator::NotIn,
                    "greater_than" => Operator::Greater,
                    "greater_equal" => Operator::GreaterEqual,
                    "less_than" => Operator::Less,
                    "less_equal" => Operator::LessEqual,
                    _ => return Plan::Never,
                };
                let wants = if values.is_empty() { vec![Want::new("")] } else { values.iter().map(|v| Want::new(v)).collect() };
                Plan::Test(Test { source, kind, operator, wants, lookup })
            }
        }
    }

    fn test(&self, data: &ZohoData, record: &Record) -> bool {
        match self {
            Plan::And(a, b) => a.test(data, record) && b.test(data, record),
            Plan::Or(a, b) => a.test(data, record) || b.test(data, record),
            Plan::Test(t) => t.test(data, record),
            Plan::Never => false,
        }
    }
}

impl Test<'_> {
    /// What `record` holds for the condition; `None` when it holds nothing comparable.
    fn have<'r>(&self, record: &'r Record) -> Option<Have<'r>> {
        Some(match self.source {
            Source::Id => Have::Unsigned(record.id),
            Source::Owner => Have::Unsigned(record.owner),
            Source::CreatedTime => Have::Int(record.created_time),
            Source::ModifiedTime => Have::Int(record.modified_time),
            Source::Field(api_name) => match (self.kind, record.fields.get(api_name)?) {
                // A datetime is stored as Zoho writes it (RFC 3339).
                (Kind::Time, Value::String(s)) => Have::Int(crate::time::parse_rfc3339(s)?),
                (_, Value::String(s)) => Have::Text(s),
                (_, Value::Number(n)) => Have::Number(n),
                (_, other) => Have::Other(other),
            },
        })
    }

    fn compare(&self, have: &Have, want: &Want) -> Option<Ordering> {
        match self.kind {
            Kind::Number => have.number()?.partial_cmp(&want.number?),
            Kind::Time => Some(have.time()?.cmp(&want.time?)),
            Kind::Text => Some(cmp_lower(&have.text(), &want.lower)),
        }
    }

    fn test(&self, data: &ZohoData, record: &Record) -> bool {
        use Ordering::*;
        let Some(have) = self.have(record) else {
            return matches!(self.operator, Operator::NotEqual | Operator::NotIn);
        };
        let lookup_name = || {
            let target = self.lookup?;
            let id = have.text().parse::<u64>().ok()?;
            data.table(target).get(&id).map(|r| data.display_name(target, r))
        };
        let eq = |want: &Want| self.compare(&have, want) == Some(Equal) || lookup_name().is_some_and(|n| n.eq_ignore_ascii_case(&want.raw));
        let want = &self.wants[0];
        match self.operator {
            Operator::Equals => eq(want),
            Operator::NotEqual => !eq(want),
            Operator::StartsWith => starts_with_lower(&have.text(), &want.lower),
            Operator::In => self.wants.iter().any(eq),
            Operator::NotIn => !self.wants.iter().any(eq),
            Operator::Greater => self.compare(&have, want) == Some(Greater),
            Operator::GreaterEqual => matches!(self.compare(&have, want), Some(Greater | Equal)),
            Operator::Less => self.compare(&have, want) == Some(Less),
            Operator::LessEqual => matches!(self.compare(&have, want), Some(Less | Equal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::zoho::search::parse;

    /// The value a condition compares, as text (a time as Unix ms).
    fn value_of(data: &ZohoData, module: Module, record: &Record, field: &str, kind: Kind) -> Option<String> {
        match field {
            "id" => Some(record.id.to_string()),
            "Owner" => Some(record.owner.to_string()),
            "Created_Time" => Some(record.created_time.to_string()),
            "Modified_Time" => Some(record.modified_time.to_string()),
            _ => {
                let def = data.field(module, field)?;
                let value = record.fields.get(def.api_name.as_str())?;
                match (kind, value) {
                    // A datetime is stored as Zoho writes it (RFC 3339).
                    (Kind::Time, Value::String(s)) => crate::time::parse_rfc3339(s).map(|t| t.to_string()),
                    (_, Value::String(s)) => Some(s.clone()),
                    (_, other) => Some(other.to_string()),
                }
            }
        }
    }

    fn compare(kind: Kind, have: &str, want: &str) -> Option<std::cmp::Ordering> {
        match kind {
            Kind::Number => have.parse::<f64>().ok()?.partial_cmp(&want.parse::<f64>().ok()?),
            Kind::Time => {
                let want = want.parse::<i64>().ok().or_else(|| crate::time::parse_rfc3339(want))?;
                Some(have.parse::<i64>().ok()?.cmp(&want))
            }
            Kind::Text => Some(have.to_lowercase().cmp(&want.to_lowercase())),
        }
    }

    /// Whether `record` meets `c` (whose fields [`check_fields`] has checked).
    fn matches(data: &ZohoData, module: Module, record: &Record, c: &Criteria) -> bool {
        use std::cmp::Ordering::*;
        match c {
            Criteria::And(a, b) => matches(data, module, record, a) && matches(data, module, record, b),
            Criteria::Or(a, b) => matches(data, module, record, a) || matches(data, module, record, b),
            Criteria::Condition { field, operator, values } => {
                let Ok(kind) = kind_of(data, module, field) else { return false };
                let Some(have) = value_of(data, module, record, field, kind) else {
                    return operator == "not_equal" || operator == "not_in";
                };
                // A lookup compares by the id or the name of the record it names.
                let lookup_name = data.field(module, field).filter(|f| f.data_type == "lookup").and_then(|f| {
                    let id = have.parse::<u64>().ok()?;
                    let target = f.lookup?;
                    data.table(target).get(&id).map(|r| data.display_name(target, r))
                });
                let eq = |want: &str| {
                    compare(kind, &have, want) == Some(Equal) || lookup_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(want))
                };
                let value = values.first().map(String::as_str).unwrap_or_default();
                match operator.as_str() {
                    "equals" => eq(value),
                    "not_equal" => !eq(value),
                    "starts_with" => have.to_lowercase().starts_with(&value.to_lowercase()),
                    "in" => values.iter().any(|v| eq(v)),
                    "not_in" => !values.iter().any(|v| eq(v)),
                    "greater_than" => compare(kind, &have, value) == Some(Greater),
                    "greater_equal" => matches!(compare(kind, &have, value), Some(Greater | Equal)),
                    "less_than" => compare(kind, &have, value) == Some(Less),
                    "less_equal" => matches!(compare(kind, &have, value), Some(Less | Equal)),
                    _ => false,
                }
            }
        }
    }

    #[test]
    fn the_plan_keeps_what_the_record_by_record_test_keeps() {
        let mut data = crate::zoho::seed::fresh(5_725_767);
        crate::zoho::seed::generate(&mut data, 300, 200, 20, 3, 1_765_000_000_000);
        // Odd values: numbers as text, text as numbers, unicode, missing values, bad times.
        let ids: Vec<u64> = data.deals.keys().take(6).copied().collect();
        let odd = [
            ("Deal_Name", json!("ÉCOLE Straße ΣΑΣ")),
            ("Amount", json!("40500")),
            ("Probability", json!(true)),
            ("Next_Step", json!(12)),
            ("Closing_Date", Value::Null),
            ("Description", json!("40,000 (x)")),
        ];
        for (id, (k, v)) in ids.iter().zip(odd) {
            data.deals.get_mut(id).unwrap().fields.insert(crate::zoho::data::field_name(k), v);
        }
        let some_deal = data.deals.values().nth(50).unwrap().clone();
        let some_contact = data.contacts.values().nth(7).unwrap().clone();
        let account = some_deal.lookup("Account_Name").unwrap();
        let account_name = data.display_name(Module::Accounts, data.accounts.get(&account).unwrap());
        let email = some_contact.text("Email").unwrap().to_uppercase();
        let deals = [
            "(Amount:greater_than:40000)".to_string(),
            "(Amount:less_equal:40500.0)".into(),
            "(Amount:equals:40500)".into(),
            "(Amount:not_equal:40500)".into(),
            "(Probability:greater_equal:50)".into(),
            "(Probability:equals:true)".into(),
            "(Deal_Name:starts_with:école)".into(),
            "(Deal_Name:equals:école straße σας)".into(),
            format!("(Deal_Name:starts_with:{})", &some_deal.text("Deal_Name").unwrap()[..3].to_lowercase()),
            "(Deal_Name:greater_than:M)".into(),
            "(Next_Step:equals:12)".into(),
            "(Closing_Date:not_in:2026-01-01,2027-01-01)".into(),
            "(Closing_Date:less_than:2026-06-01)".into(),
            format!("(Account_Name:equals:{account})"),
            format!("(Account_Name:equals:{})", account_name.to_uppercase()),
            format!("(Account_Name:in:x,{account_name})"),
            format!("(id:equals:{})", some_deal.id),
            format!("(id:greater_than:{})", some_deal.id),
            format!("(Owner:equals:{})", some_deal.owner),
            "(Owner:starts_with:57)".into(),
            "(Created_Time:greater_equal:2025-12-06T00:00:00+00:00)".into(),
            "(Modified_Time:less_than:1765000000001)".into(),
            "(Modified_Time:starts_with:1765)".into(),
            "(Stage:equals:Closed Won)or((Amount:less_than:1000)and(Pipeline:equals:Renewals))".into(),
            "(Stage:in:Qualification,Negotiation/Review)and(Amount:greater_than:abc)".into(),
        ];
        let contacts = [
            format!("(Email:equals:{email})"),
            format!("(email:equals:{email})and(Last_Name:starts_with:{})", &some_contact.text("Last_Name").unwrap()[..1]),
            format!("(Email:equals: {email})"),
            "(Email:equals:nobody@nowhere.example)".into(),
            "(Email:not_equal:nobody@nowhere.example)".into(),
            format!("(Email:in:{email})"),
            "(Full_Name:starts_with:a)or(Mailing_City:equals:Berlin)".into(),
        ];
        for (module, list) in [(Module::Deals, &deals[..]), (Module::Contacts, &contacts[..])] {
            for text in list {
                let c = parse(text).unwrap();
                check_fields(&data, module, &c).unwrap();
                let expected: Vec<u64> = data.table(module).values().filter(|r| matches(&data, module, r, &c)).map(|r| r.id).collect();
                let got: Vec<u64> = matching(&data, module, &c, usize::MAX).iter().map(|r| r.id).collect();
                assert_eq!(got, expected, "{text}");
            }
        }
    }
}

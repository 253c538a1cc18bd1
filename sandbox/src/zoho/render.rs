//! Records written straight from the store into an answer's bytes: the columns a call asks for
//! are resolved once (in the order `serde_json`'s sorted maps give them), then each record is
//! written key by key (keys and strings copied unless they need escaping; users rendered once a
//! call). The bytes are those the `serde_json::Value` rendering gave (the tests compare them).

use serde_json::Value;

use super::data::{Module, Record, ZohoData};
use super::values::user_ref;
use super::zoho_time;
use crate::json::write_str;

/// What a column of the answer holds.
#[derive(Clone, Copy)]
enum Column<'a> {
    Id,
    Owner,
    CreatedBy,
    ModifiedBy,
    CreatedTime,
    ModifiedTime,
    /// A stored value by its field's API name.
    Plain(&'a str),
    /// A lookup: `{"id", "name"}` of the record of `Module` it names, `null` when it is gone.
    Lookup(&'a str, Module),
}

/// Writes the records of one module with the columns one call asks for.
pub struct RecordWriter<'a> {
    data: &'a ZohoData,
    columns: Vec<(&'a str, Column<'a>)>,
    /// Users as `{"email", "id", "name"}`, rendered once a call.
    users: Vec<(u64, Vec<u8>)>,
    /// A contact's name being put together.
    name: String,
}

impl<'a> RecordWriter<'a> {
    /// `id`, the system fields, and every field of the module, or only `fields` (and `id`) when
    /// the call names them (names of any case).
    pub fn new(data: &'a ZohoData, module: Module, fields: Option<&[String]>) -> RecordWriter<'a> {
        let wants = |name: &str| fields.is_none_or(|f| f.iter().any(|x| x.eq_ignore_ascii_case(name)));
        let mut columns: Vec<(&'a str, Column<'a>)> = vec![("id", Column::Id)];
        let system = [
            ("Owner", Column::Owner),
            ("Created_By", Column::CreatedBy),
            ("Modified_By", Column::ModifiedBy),
            ("Created_Time", Column::CreatedTime),
            ("Modified_Time", Column::ModifiedTime),
        ];
        columns.extend(system.into_iter().filter(|(name, _)| wants(name)));
        for field in data.fields_of(module) {
            let name = field.api_name.as_str();
            if field.data_type == "ownerlookup" || columns.iter().any(|(n, _)| *n == name) || !wants(name) {
                continue;
            }
            let column = match field.data_type.as_str() {
                "lookup" => Column::Lookup(name, field.lookup.unwrap_or(module)),
                _ => Column::Plain(name),
            };
            columns.push((name, column));
        }
        // serde_json's maps (without `preserve_order`) hold their keys sorted.
        columns.sort_by(|a, b| a.0.cmp(b.0));
        RecordWriter { data, columns, users: Vec::new(), name: String::new() }
    }

    /// `record` as a JSON object onto `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, record: &Record) {
        // The stored values are read alongside the columns: both are sorted by name.
        let mut stored = record.fields.iter().peekable();
        let mut value_of = |name: &str| {
            while stored.next_if(|(k, _)| &***k < name).is_some() {}
            stored.next_if(|(k, _)| &***k == name).map(|(_, v)| v)
        };
        out.push(b'{');
        for i in 0..self.columns.len() {
            let (name, column) = self.columns[i];
            if i > 0 {
                out.push(b',');
            }
            write_str(out, name);
            out.push(b':');
            match column {
                Column::Id => quoted_number(out, record.id),
                Column::Owner => self.user(out, record.owner),
                Column::CreatedBy => self.user(out, record.created_by),
                Column::ModifiedBy => self.user(out, record.modified_by),
                Column::CreatedTime => write_time(out, record.created_time),
                Column::ModifiedTime => write_time(out, record.modified_time),
                Column::Plain(api_name) => match value_of(api_name) {
                    None => out.extend_from_slice(b"null"),
                    Some(value) => write_value(out, value),
                },
                Column::Lookup(api_name, target) => self.lookup(out, value_of(api_name), target),
            }
        }
        out.push(b'}');
    }

    /// A user as `{"email", "id", "name"}`, or `null`.
    fn user(&mut self, out: &mut Vec<u8>, id: u64) {
        if let Some((_, bytes)) = self.users.iter().find(|(u, _)| *u == id) {
            out.extend_from_slice(bytes);
            return;
        }
        let bytes = serde_json::to_vec(&user_ref(self.data, id, true)).unwrap_or_else(|_| b"null".to_vec());
        out.extend_from_slice(&bytes);
        self.users.push((id, bytes));
    }

    fn lookup(&mut self, out: &mut Vec<u8>, value: Option<&Value>, target: Module) {
        let found = value.and_then(Value::as_str).and_then(|s| s.parse::<u64>().ok()).and_then(|id| self.data.table(target).get(&id));
        let Some(named) = found else {
            out.extend_from_slice(b"null");
            return;
        };
        out.extend_from_slice(b"{\"id\":");
        quoted_number(out, named.id);
        out.extend_from_slice(b",\"name\":");
        match target {
            // As `ZohoData::display_name` puts it together.
            Module::Contacts => {
                self.name.clear();
                self.name.push_str(named.text("First_Name").unwrap_or_default());
                self.name.push(' ');
                self.name.push_str(named.text("Last_Name").unwrap_or_default());
                write_str(out, self.name.trim());
            }
            _ => write_str(out, named.text(target.name_field()).unwrap_or_default()),
        }
        out.push(b'}');
    }
}

/// `"123"`.
pub(super) fn quoted_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push(b'"');
    out.extend_from_slice(&digits[at..]);
    out.push(b'"');
}

/// A stored value as serde_json writes it (strings without escapes copied).
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => write_str(out, s),
        Value::Null => out.extend_from_slice(b"null"),
        other => {
            if serde_json::to_writer(&mut *out, other).is_err() {
                out.extend_from_slice(b"null");
            }
        }
    }
}

/// A time as [`zoho_time`] writes it (`2026-12-06T10:15:30+00:00`), quoted.
pub(super) fn write_time(out: &mut Vec<u8>, unix_ms: i64) {
    let mut buf = [0u8; 24];
    match crate::json::format_iso(unix_ms, false, &mut buf).and_then(|s| s.strip_suffix('Z')) {
        Some(head) => {
            out.push(b'"');
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(b"+00:00\"");
        }
        None => write_str(out, &zoho_time(unix_ms)),
    }
}

/// `{"data": [records], "info": info}` (the keys in serde_json's order) as a 200 answer.
pub fn data_answer<'r>(
    data: &ZohoData,
    module: Module,
    fields: Option<&[String]>,
    records: impl ExactSizeIterator<Item = &'r Record>,
    info: Option<&Value>,
) -> axum::response::Response {
    let mut writer = RecordWriter::new(data, module, fields);
    let mut out = Vec::with_capacity(64 + records.len() * 64 * writer.columns.len());
    out.extend_from_slice(b"{\"data\":[");
    for (i, record) in records.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        writer.write(&mut out, record);
    }
    out.push(b']');
    if let Some(info) = info {
        out.extend_from_slice(b",\"info\":");
        if serde_json::to_writer(&mut out, info).is_err() {
            out.extend_from_slice(b"null");
        }
    }
    out.push(b'}');
    crate::json::ok_written(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;
    use crate::zoho::data::FieldDef;

    /// The rendering the writer replaced: through `serde_json::Value`.
    fn render(data: &ZohoData, module: Module, record: &Record, fields: Option<&[String]>) -> Value {
        let wants = |name: &str| fields.is_none_or(|f| f.iter().any(|x| x.eq_ignore_ascii_case(name)));
        let mut out = Map::new();
        out.insert("id".into(), Value::String(record.id.to_string()));
        if wants("Owner") {
            out.insert("Owner".into(), user_ref(data, record.owner, true));
        }
        if wants("Created_By") {
            out.insert("Created_By".into(), user_ref(data, record.created_by, true));
        }
        if wants("Modified_By") {
            out.insert("Modified_By".into(), user_ref(data, record.modified_by, true));
        }
        if wants("Created_Time") {
            out.insert("Created_Time".into(), Value::String(zoho_time(record.created_time)));
        }
        if wants("Modified_Time") {
            out.insert("Modified_Time".into(), Value::String(zoho_time(record.modified_time)));
        }
        for field in data.fields_of(module) {
            if matches!(field.data_type.as_str(), "ownerlookup") || out.contains_key(&field.api_name) || !wants(&field.api_name) {
                continue;
            }
            let value = match (field.data_type.as_str(), record.fields.get(field.api_name.as_str())) {
                (_, None) => Value::Null,
                ("lookup", Some(v)) => {
                    let target = field.lookup.unwrap_or(module);
                    match v.as_str().and_then(|s| s.parse::<u64>().ok()).and_then(|id| data.table(target).get(&id)) {
                        Some(r) => json!({"name": data.display_name(target, r), "id": r.id.to_string()}),
                        None => Value::Null,
                    }
                }
                (_, Some(v)) => v.clone(),
            };
            out.insert(field.api_name.clone(), value);
        }
        Value::Object(out)
    }

    fn custom(id: u64, api_name: &str, data_type: &str, lookup: Option<Module>) -> FieldDef {
        FieldDef {
            id,
            api_name: api_name.into(),
            field_label: api_name.into(),
            data_type: data_type.into(),
            custom_field: true,
            system_mandatory: false,
            read_only: false,
            length: 255,
            pick_list_values: vec![],
            lookup,
            unique: false,
        }
    }

    #[test]
    fn the_writer_gives_the_bytes_of_the_value_rendering() {
        let mut data = crate::zoho::seed::fresh(5_725_767);
        let at = 1_765_000_000_000;
        crate::zoho::seed::generate(&mut data, 20, 10, 3, 7, at);
        // Custom fields of every kind, names needing escapes, and a second `Created_Time`.
        let deals = data.fields.entry(Module::Deals).or_default();
        deals.push(custom(1, "Score__c", "double", None));
        deals.push(custom(2, "Seats__c", "bigint", None));
        deals.push(custom(3, "Won_Flag__c", "boolean", None));
        deals.push(custom(4, "Signed_At__c", "datetime", None));
        deals.push(custom(5, "Web__c", "website", None));
        deals.push(custom(6, "Referrer__c", "lookup", Some(Module::Contacts)));
        deals.push(custom(7, "Self__c", "lookup", None));
        deals.push(custom(8, "Quote\"d\\Name\u{1}", "text", None));
        deals.push(custom(9, "Émoji_Ω", "text", None));
        deals.push(custom(10, "Created_Time", "datetime", None));
        deals.push(custom(11, "Backup_Owner", "ownerlookup", None));
        let contact = data.contacts.values().next().map(|c| c.id).unwrap();
        let first_deal = data.deals.values().next().map(|d| d.id).unwrap();
        let odd = [
            ("Deal_Name", json!("Quote \"q\" back\\slash\nnew\tline \u{7} \u{1f} del\u{7f} é 漢字 😀 </script>")),
            ("Amount", json!(12_345.678)),
            ("Probability", json!(-3)),
            ("Score__c", json!(1e300)),
            ("Seats__c", json!(u64::MAX)),
            ("Won_Flag__c", json!(false)),
            ("Signed_At__c", json!("2026-12-06T10:15:30+00:00")),
            ("Web__c", Value::Null),
            ("Referrer__c", json!(contact.to_string())),
            ("Self__c", json!(first_deal.to_string())),
            ("Account_Name", json!("999")),
            ("Contact_Name", json!("not a number")),
            ("Quote\"d\\Name\u{1}", json!("x")),
            ("Émoji_Ω", json!("Ω")),
            ("Created_Time", json!("stored, but the system time is given")),
            ("Description", json!(["a", {"b": null}])),
        ];
        let mut record = data.deals.values().nth(1).cloned().unwrap();
        record.fields.extend(odd.iter().map(|(k, v)| (crate::zoho::data::field_name(k), v.clone())));
        record.owner = 42; // no such user: null
        record.created_time = -62_198_755_200_000; // year -1: the general formatter
        let mut bare = record.clone();
        bare.fields.clear();
        let mut records: Vec<(Module, Record)> = vec![(Module::Deals, record), (Module::Deals, bare)];
        for module in Module::ALL {
            records.extend(data.table(module).values().take(5).cloned().map(|r| (module, r)));
        }
        let lists: Vec<Option<Vec<String>>> = vec![
            None,
            Some(vec!["deal_name".into(), "Owner".into(), "Referrer__c".into(), "nothing".into()]),
            Some(vec!["id".into()]),
            Some(vec!["MODIFIED_TIME".into(), "Created_Time".into(), "Émoji_Ω".into(), "Quote\"d\\Name\u{1}".into()]),
            Some(vec!["Email".into(), "Account_Name".into(), "Full_Name".into(), "Backup_Owner".into()]),
        ];
        for (module, record) in &records {
            for fields in &lists {
                let mut out = Vec::new();
                RecordWriter::new(&data, *module, fields.as_deref()).write(&mut out, record);
                let expected = serde_json::to_vec(&render(&data, *module, record, fields.as_deref())).unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(expected).unwrap(), "{module:?} {fields:?}");
            }
        }
    }
}

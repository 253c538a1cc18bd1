//! How a field's value reads on the other side: canonical forms for numbers, dates and yes/no
//! values (so "1500.00" and 1500 are the same amount), dropdown values through the pairs the
//! admin chose (else through options with the same label), owners through users with the same
//! email, and deal stages through the stage grid.

use crate::merge::Translate;
use crate::sync::{FieldInfo, FieldKind, FieldMapping, PipelineMapping};

/// A number without trailing zeros (`1500`, `1500.5`); `None` for text that is not a number.
pub fn canonical_number(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let n: f64 = raw.parse().ok().filter(|n: &f64| n.is_finite())?;
    if n.fract() == 0.0 && n.abs() < 1e15 {
        return Some(format!("{}", n as i64));
    }
    Some(n.to_string())
}

/// A calendar date `YYYY-MM-DD` from a date, an RFC 3339 date-time, or Unix milliseconds.
pub fn canonical_date(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.len() >= 10 && raw.as_bytes().get(4) == Some(&b'-') && raw.as_bytes().get(7) == Some(&b'-') {
        let date = &raw[..10];
        return date
            .chars()
            .enumerate()
            .all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() })
            .then(|| date.to_string());
    }
    raw.parse::<i64>().ok().map(crate::timefmt::iso_date)
}

/// The canonical text of a value of `kind` as read from a provider: blanks are absent, numbers,
/// dates and yes/no values in one spelling; anything unreadable stays as it is.
pub fn canonical(kind: FieldKind, raw: Option<&str>) -> Option<String> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    let value = match kind {
        FieldKind::Number => canonical_number(raw),
        FieldKind::Date => canonical_date(raw),
        FieldKind::Bool => match raw.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some("true".to_string()),
            "false" | "no" | "0" => Some("false".to_string()),
            _ => None,
        },
        _ => None,
    };
    Some(value.unwrap_or_else(|| raw.to_string()))
}

/// Owners matched by email: (HubSpot owner id, app user id).
#[derive(Clone, Debug, Default)]
pub struct OwnerPairs(pub Vec<(String, String)>);

/// One field mapping's translation.
pub struct FieldTranslate<'a> {
    pub mapping: &'a FieldMapping,
    pub hub: &'a FieldInfo,
    pub app: &'a FieldInfo,
    pub owners: &'a OwnerPairs,
}

impl FieldTranslate<'_> {
    fn convert(&self, value: Option<&str>, from: &FieldInfo, to: &FieldInfo, to_app: bool) -> Result<Option<String>, String> {
        let Some(value) = value else { return Ok(None) };
        match (from.kind, to.kind) {
            (FieldKind::Enum, FieldKind::Enum) => {
                let paired = self.mapping.values.iter().find_map(|p| {
                    if to_app {
                        (p.hubspot == value).then(|| p.app.clone())
                    } else {
                        (p.app == value).then(|| p.hubspot.clone())
                    }
                });
                if let Some(v) = paired {
                    return Ok(Some(v));
                }
                let label = from.options.iter().find(|o| o.value == value).map(|o| o.label.as_str()).unwrap_or(value);
                to.options
                    .iter()
                    .find(|o| o.label.trim().eq_ignore_ascii_case(label.trim()))
                    .map(|o| Some(o.value.clone()))
                    .ok_or_else(|| format!("{} has no value matching “{label}” of {}", to.label, from.label))
            }
            (FieldKind::Enum, FieldKind::Text) => {
                Ok(Some(from.options.iter().find(|o| o.value == value).map(|o| o.label.clone()).unwrap_or_else(|| value.to_string())))
            }
            (FieldKind::Owner, FieldKind::Owner) => {
                let found =
                    self.owners
                        .0
                        .iter()
                        .find_map(|(h, a)| if to_app { (h == value).then(|| a.clone()) } else { (a == value).then(|| h.clone()) });
                found.map(Some).ok_or_else(|| {
                    format!("the owner {value} has no user with the same email on the other side, so {} cannot be set", to.label)
                })
            }
            (_, kind) => Ok(canonical(kind, Some(value))),
        }
    }
}

impl Translate for FieldTranslate<'_> {
    fn to_app(&self, hub: Option<&str>) -> Result<Option<String>, String> {
        self.convert(hub, self.hub, self.app, true)
    }

    fn to_hub(&self, app: Option<&str>) -> Result<Option<String>, String> {
        self.convert(app, self.app, self.hub, false)
    }
}

/// A deal's place as one value, `pipeline/stage`, translated through the stage grid.
pub struct StageTranslate<'a> {
    mappings: &'a [PipelineMapping],
}

impl<'a> StageTranslate<'a> {
    pub fn new(mappings: &'a [PipelineMapping]) -> StageTranslate<'a> {
        StageTranslate { mappings }
    }

    pub fn value(pipeline: &str, stage: &str) -> String {
        format!("{pipeline}/{stage}")
    }

    pub fn split(value: &str) -> Option<(&str, &str)> {
        value.split_once('/')
    }

    /// Whether a HubSpot deal at `value` sits in a mapped stage.
    pub fn hub_mapped(&self, value: &str) -> bool {
        self.to_app(Some(value)).is_ok()
    }

    pub fn app_mapped(&self, value: &str) -> bool {
        self.to_hub(Some(value)).is_ok()
    }
}

impl Translate for StageTranslate<'_> {
    fn to_app(&self, hub: Option<&str>) -> Result<Option<String>, String> {
        let (pipeline, stage) = hub.and_then(Self::split).ok_or("the deal has no stage")?;
        self.mappings
            .iter()
            .filter(|m| m.hubspot_pipeline == pipeline)
            .find_map(|m| m.app_stage_for(stage).map(|p| Some(Self::value(&m.app_pipeline, &p.app_stage))))
            .ok_or_else(|| "unmapped stage".to_string())
    }

    fn to_hub(&self, app: Option<&str>) -> Result<Option<String>, String> {
        let (pipeline, stage) = app.and_then(Self::split).ok_or("the deal has no stage")?;
        self.mappings
            .iter()
            .filter(|m| m.app_pipeline == pipeline)
            .find_map(|m| m.stages.iter().find(|p| p.app_stage == stage).map(|p| Some(Self::value(&m.hubspot_pipeline, &p.hubspot_stage))))
            .ok_or_else(|| "unmapped stage".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_dates_and_flags_have_one_spelling() {
        assert_eq!(canonical_number("1500.00"), Some("1500".into()));
        assert_eq!(canonical_number(" 1500.5 "), Some("1500.5".into()));
        assert_eq!(canonical_number("abc"), None);
        assert_eq!(canonical_date("2025-01-31T00:00:00Z"), Some("2025-01-31".into()));
        assert_eq!(canonical_date("2025-01-31"), Some("2025-01-31".into()));
        assert_eq!(canonical_date("1738281600000"), Some("2025-01-31".into()));
        assert_eq!(canonical(FieldKind::Bool, Some("YES")), Some("true".into()));
        assert_eq!(canonical(FieldKind::Text, Some("  ")), None);
    }
}

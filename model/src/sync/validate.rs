//! A sync's settings checked against both sides' schemas: every problem keyed to the control it
//! belongs to, so the setup screens can show it where the admin fixes it.

use std::collections::HashSet;

use super::{ConflictRule, FieldInfo, FieldKind, Schemas, SyncSettings};
use crate::apps::{ObjectKind, SyncDirection};
use crate::FieldError;

/// Whether values flow from HubSpot to the app (`to_app`) and from the app to HubSpot.
fn flows(direction: SyncDirection) -> (bool, bool) {
    match direction {
        SyncDirection::TwoWay => (true, true),
        SyncDirection::ToHubSpot => (false, true),
        SyncDirection::ToApp => (true, false),
    }
}

impl SyncSettings {
    /// The rule that applies: a one-way sync always follows its source.
    pub fn effective_conflict_rule(&self) -> ConflictRule {
        match self.direction {
            SyncDirection::TwoWay => self.conflict_rule,
            SyncDirection::ToHubSpot => ConflictRule::DefaultToApp,
            SyncDirection::ToApp => ConflictRule::DefaultToHubSpot,
        }
    }

    /// Every problem, each keyed to the control it belongs to (`pipelines.0.hubspot_pipeline`,
    /// `pipelines.0.stages.2`, `filters.1.value`, `fields.3.app_field`, …).
    pub fn validate(&self, schemas: &Schemas) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.object == ObjectKind::Deal {
            self.validate_pipelines(schemas, &mut errors);
        }
        self.validate_filters(schemas, &mut errors);
        self.validate_fields(schemas, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn validate_pipelines(&self, schemas: &Schemas, errors: &mut Vec<FieldError>) {
        let app = &schemas.app_name;
        if self.pipelines.is_empty() {
            errors.push(FieldError::new(
                "pipelines",
                "Map at least one HubSpot pipeline to one of the app's pipelines: only deals in mapped stages sync.",
            ));
        }
        let mut hub_pipelines = HashSet::new();
        let mut app_pipelines = HashSet::new();
        for (i, mapping) in self.pipelines.iter().enumerate() {
            let problems_before = errors.len();
            let hub = schemas.hubspot.pipeline(&mapping.hubspot_pipeline);
            let other = schemas.app.pipeline(&mapping.app_pipeline);
            match hub {
                None => {
                    errors.push(FieldError::new(format!("pipelines.{i}.hubspot_pipeline"), "Select a HubSpot pipeline that still exists."))
                }
                Some(p) if !hub_pipelines.insert(p.id.clone()) => errors.push(FieldError::new(
                    format!("pipelines.{i}.hubspot_pipeline"),
                    format!("The HubSpot pipeline {} is already mapped above.", p.name),
                )),
                Some(_) => {}
            }
            match other {
                None => errors
                    .push(FieldError::new(format!("pipelines.{i}.app_pipeline"), format!("Select a {app} pipeline that still exists."))),
                Some(p) if !app_pipelines.insert(p.id.clone()) => errors.push(FieldError::new(
                    format!("pipelines.{i}.app_pipeline"),
                    format!("The {app} pipeline {} is already mapped above.", p.name),
                )),
                Some(p) if p.stages.is_empty() => errors.push(FieldError::new(
                    format!("pipelines.{i}.app_pipeline"),
                    format!("The {app} pipeline {} has no stages, so its deals cannot sync.", p.name),
                )),
                Some(_) => {}
            }
            let (Some(hub), Some(other)) = (hub, other) else { continue };
            if errors.len() > problems_before {
                continue;
            }
            let mut seen_hub = HashSet::new();
            let mut seen_app = HashSet::new();
            for (j, pair) in mapping.stages.iter().enumerate() {
                let field = format!("pipelines.{i}.stages.{j}");
                let hub_stage = hub.stages.iter().find(|s| s.id == pair.hubspot_stage);
                let app_stage = other.stages.iter().find(|s| s.id == pair.app_stage);
                match (hub_stage, app_stage) {
                    (None, _) => {
                        errors.push(FieldError::new(field, format!("This HubSpot stage is not in the pipeline {} (any more).", hub.name)))
                    }
                    (_, None) => {
                        errors.push(FieldError::new(field, format!("This {app} stage is not in the pipeline {} (any more).", other.name)))
                    }
                    (Some(h), Some(a)) => {
                        if !seen_hub.insert(h.id.clone()) {
                            errors.push(FieldError::new(field, format!("The HubSpot stage {} is mapped twice.", h.name)));
                        } else if !seen_app.insert(a.id.clone()) {
                            errors.push(FieldError::new(
                                field,
                                format!("The {app} stage {} is already mapped to another HubSpot stage; each stage maps to one.", a.name),
                            ));
                        }
                    }
                }
            }
            if mapping.stages.is_empty() {
                errors.push(FieldError::new(
                    format!("pipelines.{i}.stages"),
                    "Map at least one stage: deals in unmapped stages do not sync.",
                ));
            }
        }
    }

    fn validate_filters(&self, schemas: &Schemas, errors: &mut Vec<FieldError>) {
        for (i, filter) in self.filters.iter().enumerate() {
            let Some(field) = schemas.app.field(&filter.field) else {
                errors
                    .push(FieldError::new(format!("filters.{i}.field"), format!("Choose a {} field that still exists.", schemas.app_name)));
                continue;
            };
            if !filter.op.fits(field.kind) {
                errors.push(FieldError::new(
                    format!("filters.{i}.op"),
                    format!("“{}” does not apply to {}, a {} field.", filter.op.label(), field.label, field.kind.label()),
                ));
                continue;
            }
            if !filter.op.needs_value() {
                continue;
            }
            let value = filter.value.trim();
            let problem = if value.is_empty() {
                Some("Enter a value.".to_string())
            } else {
                match field.kind {
                    FieldKind::Number if value.parse::<f64>().is_err() => Some("Enter a number, like 1000 or 99.5.".into()),
                    FieldKind::Date if !is_date(value) => Some("Enter a date as YYYY-MM-DD.".into()),
                    FieldKind::Enum if !field.options.iter().any(|o| o.value == value) => {
                        Some(format!("Choose one of {}'s values.", field.label))
                    }
                    FieldKind::Bool if !matches!(value, "true" | "false") => Some("Choose yes or no.".into()),
                    _ => None,
                }
            };
            if let Some(message) = problem {
                errors.push(FieldError::new(format!("filters.{i}.value"), message));
            }
        }
    }

    fn validate_fields(&self, schemas: &Schemas, errors: &mut Vec<FieldError>) {
        let app = &schemas.app_name;
        let (sync_to_app, sync_to_hub) = flows(self.direction);
        let mut written_hub = HashSet::new();
        let mut written_app = HashSet::new();
        for (i, mapping) in self.fields.iter().enumerate() {
            let hub = schemas.hubspot.field(&mapping.hubspot_property);
            let other = schemas.app.field(&mapping.app_field);
            if hub.is_none() {
                errors.push(FieldError::new(format!("fields.{i}.hubspot_property"), "Choose a HubSpot property that still exists."));
            }
            if other.is_none() {
                errors.push(FieldError::new(format!("fields.{i}.app_field"), format!("Choose a {app} field that still exists.")));
            }
            let (Some(hub), Some(other)) = (hub, other) else { continue };
            let (to_app, to_hub) = flows(mapping.direction);
            if (to_app && !sync_to_app) || (to_hub && !sync_to_hub) {
                errors.push(FieldError::new(
                    format!("fields.{i}.direction"),
                    format!("This sync runs {}; a field cannot flow the other way.", self.direction.label(app).to_lowercase()),
                ));
                continue;
            }
            if to_hub {
                if hub.read_only {
                    errors.push(FieldError::new(
                        format!("fields.{i}.hubspot_property"),
                        format!("HubSpot does not let apps write {}.", hub.label),
                    ));
                } else if !other.kind.flows_into(hub.kind) {
                    errors.push(incompatible(i, other, hub, app, "HubSpot"));
                } else if !written_hub.insert(hub.key.clone()) {
                    errors.push(FieldError::new(
                        format!("fields.{i}.hubspot_property"),
                        format!("Another mapping already writes HubSpot's {}.", hub.label),
                    ));
                }
            }
            if to_app {
                if other.read_only {
                    errors
                        .push(FieldError::new(format!("fields.{i}.app_field"), format!("{app} does not let apps write {}.", other.label)));
                } else if !hub.kind.flows_into(other.kind) {
                    errors.push(incompatible(i, hub, other, "HubSpot", app));
                } else if !written_app.insert(other.key.clone()) {
                    errors.push(FieldError::new(
                        format!("fields.{i}.app_field"),
                        format!("Another mapping already writes {app}'s {}.", other.label),
                    ));
                }
            }
            for (j, pair) in mapping.values.iter().enumerate() {
                let known_hub = hub.options.is_empty() || hub.options.iter().any(|o| o.value == pair.hubspot);
                let known_app = other.options.is_empty() || other.options.iter().any(|o| o.value == pair.app);
                if !known_hub || !known_app {
                    errors.push(FieldError::new(format!("fields.{i}.values.{j}"), "Choose values that exist on both sides."));
                }
            }
        }
    }
}

fn incompatible(i: usize, from: &FieldInfo, to: &FieldInfo, from_side: &str, to_side: &str) -> FieldError {
    FieldError::new(
        format!("fields.{i}.direction"),
        format!(
            "{from_side}'s {} is a {} field and cannot fill {to_side}'s {}, a {} field.",
            from.label,
            from.kind.label(),
            to.label,
            to.kind.label()
        ),
    )
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            let (Ok(_), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else { return false };
            (1..=12).contains(&m) && (1..=31).contains(&d)
        }
        _ => false,
    }
}

//! The sync engine's decision, as a pure function: given one linked record's mapped fields on both
//! sides, the values both sides last agreed on and when each side last changed, what flows where.
//!
//! Values are compared in each side's own representation (the engine normalises numbers, dates
//! and the like on reading). A field changed on one side flows to the other, if its direction
//! lets it. A field changed on both sides is a conflict when the two changes were made within
//! [`CONFLICT_WINDOW_MS`] of each other (the sync's rule decides), else the later change wins.
//! Writing a value the target already holds is never planned, so a sync's own writes do not echo.

use serde::{Deserialize, Serialize};

use crate::apps::SyncDirection;
use crate::sync::ConflictRule;

/// Two changes of the same field closer together than this are a conflict.
pub const CONFLICT_WINDOW_MS: i64 = 5 * 60 * 1000;

/// A side of a sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    HubSpot,
    App,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::HubSpot => Side::App,
            Side::App => Side::HubSpot,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::HubSpot => "hubspot",
            Side::App => "app",
        }
    }

    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "hubspot" => Some(Side::HubSpot),
            "app" => Some(Side::App),
            _ => None,
        }
    }
}

/// How the store decodes a side it kept as `as_str` gave it.
impl TryFrom<String> for Side {
    type Error = crate::states::UnknownWord;
    fn try_from(word: String) -> Result<Side, Self::Error> {
        Side::parse(&word).ok_or(crate::states::UnknownWord { kind: "side", word })
    }
}

/// Which ways a field's values may flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub to_app: bool,
    pub to_hub: bool,
}

impl Flow {
    /// A field's own direction, inside its sync's direction.
    pub fn of(sync: SyncDirection, field: SyncDirection) -> Flow {
        let allows = |d: SyncDirection| match d {
            SyncDirection::TwoWay => (true, true),
            SyncDirection::ToApp => (true, false),
            SyncDirection::ToHubSpot => (false, true),
        };
        let (a1, h1) = allows(sync);
        let (a2, h2) = allows(field);
        Flow { to_app: a1 && a2, to_hub: h1 && h2 }
    }

    pub fn allows(self, to: Side) -> bool {
        match to {
            Side::App => self.to_app,
            Side::HubSpot => self.to_hub,
        }
    }
}

/// Translates one field's value between the two sides' representations. `None` from a
/// translation means the value has no counterpart (an unpaired dropdown option, an owner with no
/// user of the same email): it cannot flow.
pub trait Translate {
    fn to_app(&self, hub: Option<&str>) -> Result<Option<String>, String>;
    fn to_hub(&self, app: Option<&str>) -> Result<Option<String>, String>;
}

/// What both sides held when they last agreed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreed {
    pub hub: Option<String>,
    pub app: Option<String>,
}

/// One mapped field of one linked record.
#[derive(Clone, Debug)]
pub struct FieldState {
    pub hub: Option<String>,
    pub app: Option<String>,
    /// `None` when the field was never synced for this record (a mapping added later).
    pub agreed: Option<Agreed>,
    /// When each side last changed the field (per-property time where the provider keeps one,
    /// else the record's modification time), Unix ms.
    pub hub_at: i64,
    pub app_at: i64,
    pub flow: Flow,
}

/// Why a value flowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// Only one side changed.
    Changed,
    /// Both changed more than five minutes apart: the later one won.
    LaterWins,
    /// Both changed within five minutes: the conflict rule decided.
    Conflict(ConflictRule),
    /// The field was never synced for this record: the side changed last won.
    FirstSync,
}

/// The decision for one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to write; remember `agreed` as the values both sides now hold (or keep the old one
    /// when `None`: the sides differ and may not flow).
    Keep { agreed: Option<Agreed> },
    /// Write `value` to side `to`.
    Write { to: Side, value: Option<String>, reason: Reason, agreed: Agreed },
    /// The winner's value cannot be written to the other side.
    Untranslatable { from: Side, message: String },
}

/// A conflict as the history records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictNote {
    pub hub: Option<String>,
    pub app: Option<String>,
    pub winner: Side,
    pub rule: ConflictRule,
}

fn changed(now: &Option<String>, then: Option<&Option<String>>) -> bool {
    match then {
        None => true,
        Some(then) => now != then,
    }
}

/// Decides one field. `rule` is the sync's effective conflict rule.
pub fn decide(field: &FieldState, rule: ConflictRule, t: &dyn Translate) -> Decision {
    let hub_changed = changed(&field.hub, field.agreed.as_ref().map(|a| &a.hub));
    let app_changed = changed(&field.app, field.agreed.as_ref().map(|a| &a.app));
    // The sides already agree: nothing to write, whatever changed.
    if let Ok(translated) = t.to_app(field.hub.as_deref()) {
        if translated == field.app {
            return Decision::Keep { agreed: Some(Agreed { hub: field.hub.clone(), app: field.app.clone() }) };
        }
    }
    let (winner, reason) = match (field.agreed.is_some(), hub_changed, app_changed) {
        (_, false, false) => return Decision::Keep { agreed: None },
        (true, true, false) => (Side::HubSpot, Reason::Changed),
        (true, false, true) => (Side::App, Reason::Changed),
        (has_agreed, _, _) => {
            if has_agreed && (field.hub_at - field.app_at).abs() <= CONFLICT_WINDOW_MS {
                let winner = match rule {
                    ConflictRule::DefaultToHubSpot => Side::HubSpot,
                    ConflictRule::DefaultToApp => Side::App,
                };
                (winner, Reason::Conflict(rule))
            } else {
                let winner = if field.app_at > field.hub_at { Side::App } else { Side::HubSpot };
                (winner, if has_agreed { Reason::LaterWins } else { Reason::FirstSync })
            }
        }
    };
    // A one-way field: the source's change flows; the target's own change stays where it is.
    let winner = if field.flow.allows(winner.other()) {
        winner
    } else if field.flow.allows(winner) && (if winner == Side::HubSpot { app_changed } else { hub_changed }) {
        winner.other()
    } else {
        return Decision::Keep { agreed: None };
    };
    let to = winner.other();
    let translated = match winner {
        Side::HubSpot => t.to_app(field.hub.as_deref()),
        Side::App => t.to_hub(field.app.as_deref()),
    };
    match translated {
        Err(message) => Decision::Untranslatable { from: winner, message },
        Ok(value) => {
            let agreed = match to {
                Side::App => Agreed { hub: field.hub.clone(), app: value.clone() },
                Side::HubSpot => Agreed { hub: value.clone(), app: field.app.clone() },
            };
            let reason = match reason {
                // The rule named the other side, but that side may not be written: say so.
                Reason::Conflict(_) if winner == Side::HubSpot => Reason::Conflict(ConflictRule::DefaultToHubSpot),
                Reason::Conflict(_) => Reason::Conflict(ConflictRule::DefaultToApp),
                other => other,
            };
            Decision::Write { to, value, reason, agreed }
        }
    }
}

/// The conflict a decision settled, if it settled one.
pub fn conflict_note(field: &FieldState, decision: &Decision) -> Option<ConflictNote> {
    match decision {
        Decision::Write { to, reason: Reason::Conflict(rule), .. } => {
            Some(ConflictNote { hub: field.hub.clone(), app: field.app.clone(), winner: to.other(), rule: *rule })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// App values are HubSpot values with an `a:` prefix; `x` has no counterpart.
    struct Prefix;
    impl Translate for Prefix {
        fn to_app(&self, hub: Option<&str>) -> Result<Option<String>, String> {
            match hub {
                Some("x") => Err("x has no counterpart".into()),
                other => Ok(other.map(|v| format!("a:{v}"))),
            }
        }
        fn to_hub(&self, app: Option<&str>) -> Result<Option<String>, String> {
            match app {
                None => Ok(None),
                Some(v) => v.strip_prefix("a:").map(|s| Some(s.to_string())).ok_or_else(|| format!("{v} has no counterpart")),
            }
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    const TWO_WAY: Flow = Flow { to_app: true, to_hub: true };
    const MIN: i64 = 60_000;

    fn field(hub: &str, app: &str, agreed: (&str, &str), hub_at: i64, app_at: i64, flow: Flow) -> FieldState {
        FieldState { hub: s(hub), app: s(app), agreed: Some(Agreed { hub: s(agreed.0), app: s(agreed.1) }), hub_at, app_at, flow }
    }

    #[test]
    fn a_change_on_one_side_flows_to_the_other() {
        let f = field("2", "a:1", ("1", "a:1"), 10 * MIN, 0, TWO_WAY);
        let d = decide(&f, ConflictRule::DefaultToApp, &Prefix);
        assert_eq!(
            d,
            Decision::Write { to: Side::App, value: s("a:2"), reason: Reason::Changed, agreed: Agreed { hub: s("2"), app: s("a:2") } }
        );
        let f = field("1", "a:3", ("1", "a:1"), 10 * MIN, 0, TWO_WAY);
        assert!(
            matches!(decide(&f, ConflictRule::DefaultToHubSpot, &Prefix), Decision::Write { to: Side::HubSpot, value, .. } if value == s("3"))
        );
    }

    #[test]
    fn changes_within_five_minutes_follow_the_rule_and_are_noted() {
        let f = field("2", "a:3", ("1", "a:1"), 10 * MIN, 10 * MIN + 4 * MIN, TWO_WAY);
        let d = decide(&f, ConflictRule::DefaultToHubSpot, &Prefix);
        assert!(
            matches!(&d, Decision::Write { to: Side::App, value, reason: Reason::Conflict(ConflictRule::DefaultToHubSpot), .. } if *value == s("a:2"))
        );
        assert_eq!(
            conflict_note(&f, &d),
            Some(ConflictNote { hub: s("2"), app: s("a:3"), winner: Side::HubSpot, rule: ConflictRule::DefaultToHubSpot })
        );
        let d = decide(&f, ConflictRule::DefaultToApp, &Prefix);
        assert!(matches!(d, Decision::Write { to: Side::HubSpot, ref value, .. } if *value == s("3")));
    }

    #[test]
    fn changes_further_apart_go_to_the_later_one() {
        let f = field("2", "a:3", ("1", "a:1"), 10 * MIN, 16 * MIN, TWO_WAY);
        let d = decide(&f, ConflictRule::DefaultToHubSpot, &Prefix);
        assert!(matches!(d, Decision::Write { to: Side::HubSpot, reason: Reason::LaterWins, .. }));
        assert_eq!(conflict_note(&f, &d), None);
    }

    #[test]
    fn one_way_fields_never_flow_back() {
        let to_app = Flow { to_app: true, to_hub: false };
        // The app changed alone: it stays, HubSpot is untouched.
        let f = field("1", "a:3", ("1", "a:1"), 0, 10 * MIN, to_app);
        assert_eq!(decide(&f, ConflictRule::DefaultToApp, &Prefix), Decision::Keep { agreed: None });
        // Both changed, the app later: HubSpot's change still flows.
        let f = field("2", "a:3", ("1", "a:1"), 0, 10 * MIN, to_app);
        assert!(matches!(decide(&f, ConflictRule::DefaultToApp, &Prefix), Decision::Write { to: Side::App, .. }));
    }

    #[test]
    fn equal_values_and_untranslatable_ones_write_nothing() {
        let f = field("2", "a:2", ("1", "a:1"), 0, 0, TWO_WAY);
        assert_eq!(decide(&f, ConflictRule::DefaultToApp, &Prefix), Decision::Keep { agreed: Some(Agreed { hub: s("2"), app: s("a:2") }) });
        let f = field("x", "a:1", ("1", "a:1"), 0, 0, TWO_WAY);
        assert!(matches!(decide(&f, ConflictRule::DefaultToApp, &Prefix), Decision::Untranslatable { from: Side::HubSpot, .. }));
    }

    #[test]
    fn a_field_never_synced_takes_the_later_side() {
        let f = FieldState { hub: s("1"), app: s("a:2"), agreed: None, hub_at: 0, app_at: 1, flow: TWO_WAY };
        assert!(matches!(
            decide(&f, ConflictRule::DefaultToHubSpot, &Prefix),
            Decision::Write { to: Side::HubSpot, reason: Reason::FirstSync, .. }
        ));
    }

    #[test]
    fn the_sync_direction_bounds_the_field_direction() {
        assert_eq!(Flow::of(SyncDirection::ToApp, SyncDirection::TwoWay), Flow { to_app: true, to_hub: false });
        assert_eq!(Flow::of(SyncDirection::TwoWay, SyncDirection::ToHubSpot), Flow { to_app: false, to_hub: true });
        assert_eq!(Flow::of(SyncDirection::ToApp, SyncDirection::ToHubSpot), Flow { to_app: false, to_hub: false });
    }
}

//! Property tests of the sync decision over random two-sided edits, timestamps and settings:
//! repeated syncs converge, nothing flows against a field's direction, both-sided edits follow
//! the five-minute rule, and unmapped stages never flow.

use model::apps::SyncDirection;
use model::merge::{decide, Agreed, Decision, FieldState, Flow, Reason, Side, Translate, CONFLICT_WINDOW_MS};
use model::sync::{ConflictRule, PipelineMapping, StagePair};
use proptest::prelude::*;

/// App values are HubSpot values with an `a:` prefix (a bijection, as a paired dropdown is).
struct Prefix;
impl Translate for Prefix {
    fn to_app(&self, hub: Option<&str>) -> Result<Option<String>, String> {
        Ok(hub.map(|v| format!("a:{v}")))
    }
    fn to_hub(&self, app: Option<&str>) -> Result<Option<String>, String> {
        Ok(app.map(|v| v.strip_prefix("a:").unwrap_or(v).to_string()))
    }
}

/// One field of one record on both sides, as the engine keeps it.
#[derive(Clone, Debug)]
struct World {
    hub: Option<String>,
    app: Option<String>,
    agreed: Option<Agreed>,
    hub_at: i64,
    app_at: i64,
    hub_writes: usize,
    app_writes: usize,
}

#[derive(Clone, Debug)]
enum Edit {
    Hub(Option<String>, i64),
    App(Option<String>, i64),
    Sync,
}

fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![1 => Just(None), 6 => "[a-d]{1,2}".prop_map(Some)]
}

fn edit() -> impl Strategy<Value = Edit> {
    // Gaps of up to 12 minutes between edits, so both sides of the five-minute line are common.
    prop_oneof![
        3 => (value(), 0..12 * 60_000i64).prop_map(|(v, gap)| Edit::Hub(v, gap)),
        3 => (value(), 0..12 * 60_000i64).prop_map(|(v, gap)| Edit::App(v, gap)),
        2 => Just(Edit::Sync),
    ]
}

fn direction() -> impl Strategy<Value = SyncDirection> {
    prop_oneof![Just(SyncDirection::TwoWay), Just(SyncDirection::ToApp), Just(SyncDirection::ToHubSpot)]
}

fn rule() -> impl Strategy<Value = ConflictRule> {
    prop_oneof![Just(ConflictRule::DefaultToHubSpot), Just(ConflictRule::DefaultToApp)]
}

impl World {
    fn state(&self, flow: Flow) -> FieldState {
        FieldState {
            hub: self.hub.clone(),
            app: self.app.clone(),
            agreed: self.agreed.clone(),
            hub_at: self.hub_at,
            app_at: self.app_at,
            flow,
        }
    }

    /// One sync: decide and apply, as the engine does.
    fn sync(&mut self, flow: Flow, rule: ConflictRule, now: i64) -> Decision {
        let decision = decide(&self.state(flow), rule, &Prefix);
        match &decision {
            Decision::Keep { agreed: Some(a) } => self.agreed = Some(a.clone()),
            Decision::Keep { agreed: None } | Decision::Untranslatable { .. } => {}
            Decision::Write { to, value, agreed, .. } => {
                match to {
                    Side::HubSpot => (self.hub, self.hub_at, self.hub_writes) = (value.clone(), now, self.hub_writes + 1),
                    Side::App => (self.app, self.app_at, self.app_writes) = (value.clone(), now, self.app_writes + 1),
                }
                self.agreed = Some(agreed.clone());
            }
        }
        decision
    }

    fn agree(&self) -> bool {
        Prefix.to_app(self.hub.as_deref()).unwrap() == self.app
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// After any history of edits, a sync leaves two-way fields equal on both sides and a second
    /// sync writes nothing; one-way fields are only ever written on their target side.
    #[test]
    fn syncing_converges_and_respects_directions(
        edits in prop::collection::vec(edit(), 1..30),
        sync_direction in direction(),
        field_direction in direction(),
        rule in rule(),
    ) {
        let flow = Flow::of(sync_direction, field_direction);
        let mut world = World { hub: Some("a".into()), app: Some("a:a".into()), agreed: None, hub_at: 0, app_at: 0, hub_writes: 0, app_writes: 0 };
        let mut now = 0;
        for edit in edits {
            match edit {
                Edit::Hub(v, gap) => { now += gap; world.hub = v; world.hub_at = now; }
                Edit::App(v, gap) => { now += gap; world.app = v.map(|v| format!("a:{v}")); world.app_at = now; }
                Edit::Sync => { world.sync(flow, rule, now); }
            }
        }
        let (hub_writes, app_writes) = (world.hub_writes, world.app_writes);
        world.sync(flow, rule, now);
        if flow.to_app && flow.to_hub {
            prop_assert!(world.agree(), "two-way field differs after a sync: {world:?}");
        }
        let second = world.sync(flow, rule, now + 1);
        prop_assert!(!matches!(second, Decision::Write { .. }), "a second sync wrote again: {second:?}");
        if !flow.to_hub { prop_assert_eq!(world.hub_writes, 0, "HubSpot was written against the direction"); }
        if !flow.to_app { prop_assert_eq!(world.app_writes, 0, "the app was written against the direction"); }
        prop_assert!(world.hub_writes >= hub_writes && world.app_writes >= app_writes);
    }

    /// An edit on one side alone is never lost: after the sync the other side holds it.
    #[test]
    fn a_one_sided_edit_always_arrives(
        start in "[a-d]{1,2}", new in value(), edit_hub in any::<bool>(), rule in rule(), at in 0..10 * CONFLICT_WINDOW_MS,
    ) {
        let agreed = Agreed { hub: Some(start.clone()), app: Some(format!("a:{start}")) };
        let mut world = World { hub: agreed.hub.clone(), app: agreed.app.clone(), agreed: Some(agreed), hub_at: 0, app_at: 0, hub_writes: 0, app_writes: 0 };
        if edit_hub { (world.hub, world.hub_at) = (new.clone(), at) } else { (world.app, world.app_at) = (new.as_ref().map(|v| format!("a:{v}")), at) }
        world.sync(Flow { to_app: true, to_hub: true }, rule, at + 1);
        prop_assert_eq!(world.hub, new.clone());
        prop_assert_eq!(world.app, new.map(|v| format!("a:{v}")));
    }

    /// Edits on both sides: within five minutes the rule decides, further apart the later wins.
    #[test]
    fn both_sided_edits_follow_the_five_minute_rule(
        hub_new in "[e-h]{1,2}", app_new in "[i-l]{1,2}", hub_at in 0..20 * 60_000i64, app_at in 0..20 * 60_000i64, rule in rule(),
    ) {
        let state = FieldState {
            hub: Some(hub_new.clone()), app: Some(format!("a:{app_new}")),
            agreed: Some(Agreed { hub: Some("a".into()), app: Some("a:a".into()) }),
            hub_at, app_at, flow: Flow { to_app: true, to_hub: true },
        };
        let decision = decide(&state, rule, &Prefix);
        let Decision::Write { to, reason, .. } = decision else { panic!("no write: {decision:?}") };
        let winner = to.other();
        if (hub_at - app_at).abs() <= CONFLICT_WINDOW_MS {
            prop_assert_eq!(reason, Reason::Conflict(rule));
            prop_assert_eq!(winner, if rule == ConflictRule::DefaultToHubSpot { Side::HubSpot } else { Side::App });
        } else {
            prop_assert_eq!(reason, Reason::LaterWins);
            prop_assert_eq!(winner, if app_at > hub_at { Side::App } else { Side::HubSpot });
        }
    }

    /// A stage flows only through the stage grid: a deal in an unmapped stage never moves the
    /// other side, and a mapped stage always arrives as its pair.
    #[test]
    fn stages_flow_only_through_the_mapping(
        pairs in prop::collection::btree_map(0..6u8, 0..6u8, 0..6),
        hub_stage in 0..6u8, app_stage in 0..6u8, old_hub in 0..6u8, old_app in 0..6u8,
    ) {
        let mapping = PipelineMapping {
            hubspot_pipeline: "hp".into(), app_pipeline: "ap".into(),
            stages: pairs.iter().map(|(h, a)| StagePair { hubspot_stage: format!("h{h}"), app_stage: format!("a{a}"), auto: false }).collect(),
        };
        let mappings = [mapping];
        let stages = model::translate::StageTranslate::new(&mappings);
        let state = FieldState {
            hub: Some(format!("hp/h{hub_stage}")), app: Some(format!("ap/a{app_stage}")),
            agreed: Some(Agreed { hub: Some(format!("hp/h{old_hub}")), app: Some(format!("ap/a{old_app}")) }),
            hub_at: 1, app_at: 0, flow: Flow { to_app: true, to_hub: true },
        };
        match decide(&state, ConflictRule::DefaultToHubSpot, &stages) {
            Decision::Write { to: Side::App, value, .. } => {
                prop_assert_eq!(value, pairs.get(&hub_stage).map(|a| format!("ap/a{a}")));
            }
            Decision::Write { to: Side::HubSpot, value, .. } => {
                let back = pairs.iter().find(|(_, a)| **a == app_stage).map(|(h, _)| format!("hp/h{h}"));
                prop_assert!(back.is_some());
                prop_assert_eq!(value, back);
            }
            Decision::Untranslatable { .. } | Decision::Keep { .. } => {}
        }
    }
}

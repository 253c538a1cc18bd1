//! Snapshots are written in chunks under short read locks; what they hold must load back as the
//! same state.

use sandbox::hubspot::data::HubData;
use sandbox::persist::Snapshots;
use sandbox::pipedrive::data::PdData;
use sandbox::{HubSpot, HubSpotConfig, Pipedrive, PipedriveConfig};

#[test]
fn hubspot_snapshot_loads_back_as_the_same_state() {
    let hubspot = HubSpot::new(HubSpotConfig::new(Vec::new()), None);
    sandbox::hubspot::seed::generate(&mut hubspot.write(), 9_000, 5_000, 100, 7, 1_700_000_000_000);
    let mut out = Vec::new();
    hubspot.write_snapshot(&mut out).unwrap();
    let loaded: HubData = serde_json::from_slice(&out).unwrap();
    let mut expected = serde_json::to_value(&*hubspot.read()).unwrap();
    expected["oauth"] = serde_json::to_value(hubspot.oauth.snapshot()).unwrap();
    assert_eq!(serde_json::to_value(&loaded).unwrap(), expected);
}

#[test]
fn pipedrive_snapshot_loads_back_as_the_same_state() {
    let pipedrive = Pipedrive::new(PipedriveConfig::new(Vec::new()), None);
    sandbox::pipedrive::seed::generate_contacts(&mut pipedrive.write(), 50, 5_000, 3, 1_700_000_000_000);
    sandbox::pipedrive::seed::generate(&mut pipedrive.write(), 9_000, 3, 1_700_000_000_000);
    let mut out = Vec::new();
    pipedrive.write_snapshot(&mut out).unwrap();
    let loaded: PdData = serde_json::from_slice(&out).unwrap();
    let mut expected = serde_json::to_value(&*pipedrive.read()).unwrap();
    expected["oauth"] = serde_json::to_value(pipedrive.oauth.snapshot()).unwrap();
    assert_eq!(serde_json::to_value(&loaded).unwrap(), expected);
}

//! The command line's own checks.

use super::*;
use clap::CommandFactory;

/// Every run flag is a field of the run configuration (merged by name in `run::resolve`):
/// a misnamed one would be refused as an unknown field.
#[test]
fn every_run_setting_is_a_run_config_field() {
    let cmd = RunSettings::augment_args(clap::Command::new("run"));
    let ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    assert!(ids.len() >= 20, "{ids:?}");
    for id in ids {
        let e = serde_json::from_value::<harness::run::RunConfig>(serde_json::json!({ &id: null }))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!e.contains("unknown field"), "--{id}: {e}");
    }
    // And the command line still parses into them.
    Cli::command().debug_assert();
}

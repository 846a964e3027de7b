//! Test support: every event the worker publishes in the unit tests is checked against
//! the published JSON Schema (`schema/event.schema.json`).

use std::sync::OnceLock;

use serde_json::Value;

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(include_str!("../../../../schema/event.schema.json")).unwrap();
        jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
    })
}

/// What is wrong with `event` (empty when it is valid).
pub fn errors(event: &Value) -> Vec<String> {
    validator().iter_errors(event).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// Panics with the schema's complaints unless `json` is a valid event.
pub fn assert_valid_event(json: &str) {
    let event: Value = serde_json::from_str(json).unwrap();
    let errors = errors(&event);
    assert!(errors.is_empty(), "published event does not match schema/event.schema.json: {errors:?}\n{json}");
}

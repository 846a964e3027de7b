//! Every event the suite sees published is checked against the published JSON Schema
//! (`schema/event.schema.json`): the helpers that read the outbox call [`check_event`].

use std::sync::OnceLock;

use serde_json::Value;

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(include_str!("../../schema/event.schema.json")).unwrap();
        jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
    })
}

/// Panics with the schema's complaints unless `event` is a valid outbox event.
pub fn check_event(event: &Value) {
    let errors: Vec<String> = validator().iter_errors(event).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "published event does not match schema/event.schema.json: {errors:?}\n{event}");
}

/// Parses an outbox message body and checks it.
pub fn parse_event(body: &str) -> Value {
    let event: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("outbox body is not JSON ({e}): {body}"));
    check_event(&event);
    event
}

//! Each upstream's own callback payload, read tolerantly: the task id and the status
//! word are required; anything else (unknown fields, unknown states) is carried, never
//! rejected. An unknown state counts as still running.
//!
//! | upstream | task id | status field | terminal |
//! |---|---|---|---|
//! | Kling | `task_id` | `task_status` | `succeed` / `failed` |
//! | Doubao (Ark) | `id` | `status` | `succeeded` / `failed`, `expired`, `cancelled` |
//! | MiniMax | `task_id` (string or number) | `status`, any case | `success` / `fail`, `failed` |
//! | Vidu | `id`, else `task_id` | `state`, else `status` | `success` / `failed` |
//!
//! Kling's body may also come wrapped as its API answers, `{code, message, request_id,
//! data: {task_id, task_status, …}}`: the fields are then read from `data`. MiniMax
//! first posts `{"challenge": ...}` and wants it echoed within 3 s: a body that carries
//! `challenge` is echoed, whatever else it carries, as MiniMax's own sample does.

use serde_json::Value;

use super::PROVIDER;
use super::upstream::Upstream;
use crate::domain::job::JobState;
use crate::toolkit::telemetry::{Origin, unknown_status};

/// A parsed callback.
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    /// MiniMax's handshake: echo this value back.
    Challenge(Value),
    /// A task update.
    Update(TaskUpdate),
}

/// One task update from an upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskUpdate {
    /// The upstream's own task id (not APIMP's).
    pub upstream_task_id: String,
    /// The status word as sent, lowercased.
    pub status: String,
    /// What the status means.
    pub state: JobState,
    /// The whole body.
    pub body: Value,
}

/// Why a callback body is refused (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// Not a JSON object.
    #[error("body must be a JSON object")]
    NotObject,
    /// The upstream's task id field is missing.
    #[error("`{0}` (the task id) is missing")]
    MissingTaskId(&'static str),
    /// The upstream's status field is missing.
    #[error("`{0}` (the status) is missing")]
    MissingStatus(&'static str),
}

/// Maps an upstream's status word (any case) to a [`JobState`]; a word the upstream does
/// not document is counted ([`unknown_status`]) and read as still running.
pub fn task_state(upstream: Upstream, status: &str) -> JobState {
    let s = status.trim().to_ascii_lowercase();
    let (ok, failed, running): (&[&str], &[&str], &[&str]) = match upstream {
        Upstream::Kling => (&["succeed", "succeeded"], &["failed"], &["submitted", "processing"]),
        Upstream::Doubao => (&["succeeded"], &["failed", "expired", "cancelled"], &["queued", "running"]),
        Upstream::Minimax => {
            (&["success", "succeeded"], &["fail", "failed", "cancelled"], &["preparing", "queueing", "processing"])
        }
        Upstream::Vidu => (&["success"], &["failed"], &["created", "queueing", "processing"]),
    };
    if ok.contains(&s.as_str()) {
        JobState::Succeeded
    } else if failed.contains(&s.as_str()) {
        // `expired` and `cancelled` say more than "failed".
        JobState::terminal_word(&s).filter(|st| st.is_unsuccessful()).unwrap_or(JobState::Failed)
    } else {
        if !running.contains(&s.as_str()) {
            unknown_status(Origin { provider: PROVIDER, upstream: Some(upstream.as_str()) }, &s);
        }
        JobState::Pending
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a callback body from `upstream`.
pub fn parse(upstream: Upstream, raw: &[u8]) -> Result<Callback, CallbackError> {
    let body: Value = serde_json::from_slice(raw).map_err(|_| CallbackError::NotObject)?;
    let obj = body.as_object().ok_or(CallbackError::NotObject)?;
    // The task id field and a fallback, the status field and a fallback.
    type Fields = (&'static str, Option<&'static str>, &'static str, Option<&'static str>);
    let (id_field, id_fallback, status_field, fallback): Fields = match upstream {
        Upstream::Kling => ("task_id", None, "task_status", None),
        Upstream::Doubao => ("id", None, "status", None),
        Upstream::Minimax => ("task_id", None, "status", None),
        Upstream::Vidu => ("id", Some("task_id"), "state", Some("status")),
    };
    if upstream == Upstream::Minimax
        && let Some(challenge) = obj.get("challenge")
    {
        return Ok(Callback::Challenge(challenge.clone()));
    }
    // Kling's API envelope: the task is in `data`.
    let obj = match obj.get("data").and_then(Value::as_object) {
        Some(data) if upstream == Upstream::Kling && !obj.contains_key(id_field) => data,
        _ => obj,
    };
    let upstream_task_id = text(obj.get(id_field))
        .or_else(|| text(obj.get(id_fallback?)))
        .ok_or(CallbackError::MissingTaskId(id_field))?;
    let status = text(obj.get(status_field))
        .or_else(|| text(obj.get(fallback?)))
        .ok_or(CallbackError::MissingStatus(status_field))?
        .to_ascii_lowercase();
    let state = task_state(upstream, &status);
    Ok(Callback::Update(TaskUpdate { upstream_task_id, status, state, body }))
}

/// Maps APIMP's own status word (`not_started`, `running`, `finished`, `failed`; any
/// case) to a [`JobState`]; unknown words are counted and count as running.
pub fn platform_state(status: &str) -> JobState {
    match status.trim().to_ascii_lowercase().as_str() {
        "finished" | "succeeded" | "success" | "completed" => JobState::Succeeded,
        "failed" | "error" => JobState::Failed,
        "cancelled" | "canceled" => JobState::Canceled,
        "expired" => JobState::Expired,
        "not_started" | "running" | "queued" | "pending" | "processing" => JobState::Pending,
        other => {
            unknown_status(Origin::provider(PROVIDER), other);
            JobState::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(upstream: Upstream, body: &str) -> TaskUpdate {
        match parse(upstream, body.as_bytes()).unwrap() {
            Callback::Update(u) => u,
            other => panic!("expected an update, got {other:?}"),
        }
    }

    #[test]
    fn kling_documented_shape() {
        let u = update(
            Upstream::Kling,
            r#"{"task_id":"kt_1","task_status":"succeed","task_status_msg":"","created_at":1722769557708,"updated_at":1722769557708,
                "task_info":{"external_task_id":"ext"},"task_result":{"videos":[{"id":"v","url":"https://k/v.mp4","duration":"5"}]}}"#,
        );
        assert_eq!((u.upstream_task_id.as_str(), u.status.as_str(), u.state), ("kt_1", "succeed", JobState::Succeeded));
        assert_eq!(update(Upstream::Kling, r#"{"task_id":"k","task_status":"processing"}"#).state, JobState::Pending);
        assert_eq!(update(Upstream::Kling, r#"{"task_id":"k","task_status":"submitted"}"#).state, JobState::Pending);
        assert_eq!(update(Upstream::Kling, r#"{"task_id":"k","task_status":"failed"}"#).state, JobState::Failed);
    }

    #[test]
    fn doubao_ark_shape_and_states() {
        let u = update(
            Upstream::Doubao,
            r#"{"id":"cgt-2025-abc","model":"doubao-seedance-1-0-pro-250528","status":"succeeded","content":{"video_url":"https://ark/v.mp4"},"created_at":1743414619,"updated_at":1743414673}"#,
        );
        assert_eq!((u.upstream_task_id.as_str(), u.state), ("cgt-2025-abc", JobState::Succeeded));
        for (s, state) in [
            ("queued", JobState::Pending),
            ("running", JobState::Pending),
            ("failed", JobState::Failed),
            ("expired", JobState::Expired),
            ("cancelled", JobState::Canceled),
        ] {
            assert_eq!(task_state(Upstream::Doubao, s), state, "{s}");
        }
    }

    #[test]
    fn minimax_any_case_numeric_ids_and_the_challenge() {
        let u = update(
            Upstream::Minimax,
            r#"{"task_id":"115334141465231360","status":"success","file_id":"205258526306433","base_resp":{"status_code":0,"status_msg":"success"}}"#,
        );
        assert_eq!((u.upstream_task_id.as_str(), u.state), ("115334141465231360", JobState::Succeeded));
        assert_eq!(update(Upstream::Minimax, r#"{"task_id":42,"status":"Success"}"#).upstream_task_id, "42");
        assert_eq!(update(Upstream::Minimax, r#"{"task_id":"1","status":"Fail"}"#).state, JobState::Failed);
        assert_eq!(update(Upstream::Minimax, r#"{"task_id":"1","status":"Queueing"}"#).state, JobState::Pending);
        assert_eq!(
            parse(Upstream::Minimax, br#"{"challenge":"abc-123"}"#).unwrap(),
            Callback::Challenge(Value::String("abc-123".into()))
        );
        // Only MiniMax has the handshake.
        assert!(parse(Upstream::Kling, br#"{"challenge":"x"}"#).is_err());
        // A verification POST that also carries a task is answered as one (it was 400).
        assert_eq!(
            parse(Upstream::Minimax, br#"{"challenge":"c-1","task_id":"1"}"#).unwrap(),
            Callback::Challenge(Value::String("c-1".into()))
        );
    }

    #[test]
    fn kling_in_its_api_envelope() {
        let u = update(
            Upstream::Kling,
            r#"{"code":0,"message":"SUCCEED","request_id":"r-1","data":{"task_id":"kt_9","task_status":"succeed","task_result":{"videos":[]}}}"#,
        );
        assert_eq!((u.upstream_task_id.as_str(), u.state), ("kt_9", JobState::Succeeded));
        assert_eq!(u.body["request_id"], "r-1", "the whole body is carried");
        // A flat body with a `data` field of its own is read flat.
        let flat = update(Upstream::Kling, r#"{"task_id":"k","task_status":"failed","data":{"task_id":"other"}}"#);
        assert_eq!(flat.upstream_task_id, "k");
    }

    #[test]
    fn vidu_state_with_status_fallback() {
        let u = update(
            Upstream::Vidu,
            r#"{"id":"vidu_1","state":"success","err_code":"","credits":4,"payload":"","creations":[{"id":"c","url":"https://v/c.mp4"}]}"#,
        );
        assert_eq!((u.upstream_task_id.as_str(), u.state), ("vidu_1", JobState::Succeeded));
        assert_eq!(update(Upstream::Vidu, r#"{"id":"v","status":"failed"}"#).state, JobState::Failed);
        assert_eq!(update(Upstream::Vidu, r#"{"id":"v","state":"queueing"}"#).state, JobState::Pending);
        assert_eq!(update(Upstream::Vidu, r#"{"task_id":"vt","state":"success"}"#).upstream_task_id, "vt");
        assert_eq!(update(Upstream::Vidu, r#"{"id":"v","task_id":"vt","state":"success"}"#).upstream_task_id, "v");
    }

    #[test]
    fn unknown_states_are_carried_and_bad_bodies_named() {
        let u = update(Upstream::Kling, r#"{"task_id":"k","task_status":"Teleporting","extra":{"a":1}}"#);
        assert_eq!(
            (u.status.as_str(), u.state, &u.body["extra"]["a"]),
            ("teleporting", JobState::Pending, &Value::from(1))
        );
        assert_eq!(parse(Upstream::Kling, b"[1]"), Err(CallbackError::NotObject));
        assert_eq!(parse(Upstream::Kling, b"nope"), Err(CallbackError::NotObject));
        assert_eq!(parse(Upstream::Doubao, br#"{"status":"queued"}"#), Err(CallbackError::MissingTaskId("id")));
        assert_eq!(parse(Upstream::Vidu, br#"{"id":"v"}"#), Err(CallbackError::MissingStatus("state")));
    }

    #[test]
    fn unknown_words_are_counted_and_documented_ones_never() {
        let counts = crate::domain::testing::metrics::Counts::default();
        counts.record(|| {
            assert_eq!(task_state(Upstream::Kling, "processing"), JobState::Pending);
            assert_eq!(task_state(Upstream::Kling, "Teleporting"), JobState::Pending);
            assert_eq!(task_state(Upstream::Vidu, "queueing"), JobState::Pending);
            assert_eq!(platform_state("not_started"), JobState::Pending);
            assert_eq!(platform_state("warming_up"), JobState::Pending);
        });
        assert_eq!(counts.get("status_unknown", &[("provider", "apimp"), ("upstream", "kling")]), 1);
        assert_eq!(counts.get("status_unknown", &[("upstream", "vidu")]), 0);
        assert_eq!(counts.get("status_unknown", &[("provider", "apimp")]), 2, "APIMP's own word too");
    }

    #[test]
    fn platform_states() {
        assert_eq!(platform_state("not_started"), JobState::Pending);
        assert_eq!(platform_state("RUNNING"), JobState::Pending);
        assert_eq!(platform_state("finished"), JobState::Succeeded);
        assert_eq!(platform_state("failed"), JobState::Failed);
    }
}

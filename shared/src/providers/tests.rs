use proptest::prelude::*;
use serde_json::{Value, json};

use crate::domain::inbox::{Envelope, MAX_POLLS};
use crate::domain::testing::{cases, deeply_nested, json, text};
use crate::domain::watch::Watch;
use crate::providers::apimp::message::{ApimpMessage, ApimpWatchMessage};
use crate::providers::apimp::upstream::Upstream;
use crate::providers::katalo::message::{KataloMessage, KataloWatchMessage, KataloWebhookMessage};

/// One provider's inbox message.
#[derive(Debug, Clone, PartialEq)]
enum InboxMessage {
    Katalo(KataloMessage),
    Apimp(ApimpMessage),
}

impl InboxMessage {
    fn to_json(&self) -> String {
        match self {
            Self::Katalo(m) => m.to_json(),
            Self::Apimp(m) => m.to_json(),
        }
    }

    /// Parses a message as the worker does: the envelope, then the provider's type.
    fn parse(s: &str) -> Result<Self, serde_json::Error> {
        match Envelope::parse(s)?.provider() {
            "katalo" => serde_json::from_str(s).map(Self::Katalo),
            _ => serde_json::from_str(s).map(Self::Apimp),
        }
    }
}

/// JSON without floats (whose text form does not always round-trip bit for bit).
fn exact_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String)
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn message() -> impl Strategy<Value = InboxMessage> {
    prop_oneof![
        (any::<String>(), any::<String>(), any::<String>(), exact_json(), 0..=MAX_POLLS, any::<Option<i64>>())
            .prop_map(|(k, j, e, payload, polls, horizon_at)| {
                InboxMessage::Katalo(KataloMessage::Webhook(KataloWebhookMessage {
                    dedupe_key: k,
                    job_id: j,
                    event_type: e,
                    received_at: "2026-11-23T12:00:00Z".into(),
                    payload,
                    thin: None,
                    polls,
                    horizon_at,
                }))
            }),
        (any::<String>(), any::<i64>(), 0..=MAX_POLLS).prop_map(|(job_id, horizon_at, polls)| {
            InboxMessage::Katalo(KataloMessage::Watch(KataloWatchMessage {
                dedupe_key: format!("katalo#{job_id}#job"),
                job_id,
                registered_at: "2026-11-23T12:00:00Z".into(),
                horizon_at,
                polls,
            }))
        }),
        (
            any::<String>(),
            any::<String>(),
            prop::option::of(prop::sample::select(Upstream::ALL.to_vec())),
            any::<i64>(),
            0..=MAX_POLLS
        )
            .prop_map(|(reference, task_id, upstream, horizon_at, polls)| {
                InboxMessage::Apimp(ApimpMessage::Watch(ApimpWatchMessage {
                    dedupe_key: format!("apimp#{task_id}#task"),
                    watch: Watch {
                        reference,
                        task_id,
                        upstream: upstream.map(|u| u.as_str().to_string()),
                        registered_at: "r".into(),
                        horizon_at,
                    },
                    polls,
                }))
            }),
    ]
}

/// Objects shaped like inbox messages, with adversarial values in every field.
fn message_like() -> impl Strategy<Value = Value> {
    let ty = prop::sample::select(vec!["katalo.webhook", "apimp.callback", "apimp.watch", "nope"]);
    let field = prop::sample::select(vec![
        "dedupe_key",
        "job_id",
        "event_type",
        "received_at",
        "payload",
        "upstream",
        "reference",
        "upstream_task_id",
        "status",
        "state",
        "watch",
        "polls",
    ]);
    let value = prop_oneof![json(), text().prop_map(Value::String), (0u64..=u64::MAX).prop_map(Value::from)];
    (ty, prop::collection::vec((field, value), 0..8)).prop_map(|(ty, kv)| {
        let mut o: serde_json::Map<String, Value> = kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        o.insert("type".into(), json!(ty));
        Value::Object(o)
    })
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn messages_round_trip(m in message()) {
        let back = InboxMessage::parse(&m.to_json()).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn any_text_is_a_message_or_an_error(s in prop_oneof![text(), message_like().prop_map(|v| v.to_string())]) {
        if let Ok(InboxMessage::Apimp(ApimpMessage::Watch(w))) = InboxMessage::parse(&s) {
            // What the worker does with it cannot overflow.
            prop_assert!(w.polls <= MAX_POLLS && w.polls.checked_add(2).is_some());
        }
    }
}

#[test]
fn deep_messages_are_errors() {
    for raw in deeply_nested(50_000) {
        assert!(InboxMessage::parse(&raw).is_err());
    }
}

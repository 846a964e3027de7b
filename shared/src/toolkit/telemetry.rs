//! The metrics genhook records: their names, units and dimensions, in one place.
//!
//! The engine and the provider API clients record through the `metrics` facade (as they
//! log through `tracing`); without a recorder every call is a no-op. Which recorder
//! exports them is the composition root's choice: the Lambda functions install the
//! CloudWatch Embedded Metric Format one (`config::emf`), which prints one JSON document
//! per dimension set after each invocation.
//!
//! Dimensions are few and bounded: `provider` (a registered provider's name, or
//! `unknown`), `upstream` (an APIMP upstream, when known), `reason` and `status_class`
//! (fixed words), `function` (the Lambda). Never a job id, a key, a URL or a secret.

use std::time::Duration;

use metrics::{Label, Unit};

/// Metric names.
pub mod name {
    /// Receiver: deliveries accepted and queued (2xx, new).
    pub const DELIVERIES_ACCEPTED: &str = "deliveries_accepted";
    /// Receiver: deliveries acknowledged as duplicates (2xx, already queued or published).
    pub const DELIVERIES_DUPLICATE: &str = "deliveries_duplicate";
    /// Receiver: deliveries refused with a 4xx, by `reason`.
    pub const DELIVERIES_REJECTED: &str = "deliveries_rejected";
    /// Receiver: deliveries answered 5xx (the provider retries), by `reason`.
    pub const DELIVERIES_5XX: &str = "deliveries_5xx";
    /// Receiver: deliveries accepted with a thin message (the body too large to carry).
    pub const DELIVERIES_THINNED: &str = "deliveries_thinned";
    /// Worker: jobs given up on (a `generation.abandoned` published), by `reason`.
    pub const JOBS_ABANDONED: &str = "jobs_abandoned";
    /// Worker: events sent to the outbox (every type).
    pub const EVENTS_PUBLISHED: &str = "events_published";
    /// Worker: `generation.urls_refreshed` events sent to the outbox.
    pub const URLS_REFRESHED: &str = "urls_refreshed";
    /// Worker: records hidden for a backoff delay and reported as batch item failures.
    pub const RECORDS_RETRIED: &str = "records_retried";
    /// Worker: records moved to the inbox DLQ.
    pub const RECORDS_DEAD_LETTERED: &str = "records_dead_lettered";
    /// Worker: next polls of jobs still running, scheduled on the inbox.
    pub const POLLS_SCHEDULED: &str = "polls_scheduled";
    /// Worker: from the event's `received_at` to its publication (ms).
    pub const EVENT_LAG_MS: &str = "event_lag_ms";
    /// Worker and links: provider API calls, by `status_class`.
    pub const PROVIDER_API_CALLS: &str = "provider_api_calls";
    /// Worker and links: a provider API call's duration, body read included (ms).
    pub const PROVIDER_API_LATENCY_MS: &str = "provider_api_latency_ms";
    /// Links: links answered with a redirect.
    pub const LINKS_FOLLOWED: &str = "links_followed";
    /// Links: links answered otherwise, by `reason`.
    pub const LINKS_REFUSED: &str = "links_refused";
    /// Links: jobs read from the provider because the cache had no live URL.
    pub const LINKS_PROVIDER_READS: &str = "links_provider_reads";
    /// Every function: cold starts, by `function`.
    pub const COLD_STARTS: &str = "cold_starts";
    /// Receiver and worker: status words a provider sent that genhook does not know
    /// (treated as still running; the word itself is logged, never a dimension).
    pub const STATUS_UNKNOWN: &str = "status_unknown";
    /// Jobs not published because an output URL is not an `https` URL on a host the
    /// provider serves files from (worker).
    pub const OUTPUTS_REFUSED: &str = "outputs_refused";
}

/// The `provider` of what no registered provider claims (a path no route serves, a
/// message of an unknown type).
pub const UNKNOWN_PROVIDER: &str = "unknown";

/// Declares the units (counts, and milliseconds for the two timings). Call it once the
/// recorder is installed.
pub fn describe() {
    use name::*;
    for counter in [
        DELIVERIES_ACCEPTED,
        DELIVERIES_DUPLICATE,
        DELIVERIES_REJECTED,
        DELIVERIES_5XX,
        DELIVERIES_THINNED,
        EVENTS_PUBLISHED,
        JOBS_ABANDONED,
        URLS_REFRESHED,
        RECORDS_RETRIED,
        RECORDS_DEAD_LETTERED,
        POLLS_SCHEDULED,
        PROVIDER_API_CALLS,
        LINKS_FOLLOWED,
        LINKS_REFUSED,
        LINKS_PROVIDER_READS,
        COLD_STARTS,
        STATUS_UNKNOWN,
    ] {
        metrics::describe_counter!(counter, Unit::Count, "");
    }
    for timing in [EVENT_LAG_MS, PROVIDER_API_LATENCY_MS] {
        metrics::describe_histogram!(timing, Unit::Milliseconds, "");
    }
}

/// Where a measurement comes from: a provider, and the upstream for an aggregator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// A registered provider's name, or [`UNKNOWN_PROVIDER`].
    pub provider: &'static str,
    /// The APIMP upstream, when known.
    pub upstream: Option<&'static str>,
}

impl Origin {
    /// Nothing known about the sender.
    pub const UNKNOWN: Self = Self { provider: UNKNOWN_PROVIDER, upstream: None };

    /// A provider's, with no upstream.
    pub const fn provider(provider: &'static str) -> Self {
        Self { provider, upstream: None }
    }

    /// Adds one to the counter `name`, with `extra` dimensions after the origin's.
    pub fn count(self, name: &'static str, extra: &[(&'static str, &'static str)]) {
        metrics::counter!(name, self.labels(extra)).increment(1);
    }

    /// Records a duration in milliseconds.
    pub fn record_ms(self, name: &'static str, elapsed: Duration) {
        metrics::histogram!(name, self.labels(&[])).record(elapsed.as_secs_f64() * 1000.0);
    }

    fn labels(self, extra: &[(&'static str, &'static str)]) -> Vec<Label> {
        let mut labels = Vec::with_capacity(2 + extra.len());
        labels.push(Label::from_static_parts("provider", self.provider));
        if let Some(upstream) = self.upstream {
            labels.push(Label::from_static_parts("upstream", upstream));
        }
        labels.extend(extra.iter().map(|&(k, v)| Label::from_static_parts(k, v)));
        labels
    }
}

/// The `status_class` of a provider API answer: `2xx`, `3xx`, `4xx`, `429` (rate
/// limited, apart from the other 4xx), `5xx`, or `network` when no answer came (a
/// timeout, a refused connection).
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        None => "network",
        Some(429) => "429",
        Some(s) if s >= 500 => "5xx",
        Some(s) if s >= 400 => "4xx",
        Some(s) if s >= 300 => "3xx",
        Some(_) => "2xx",
    }
}

/// A status word `origin`'s mapping does not know: logged with the word (cut short, as
/// the provider may send anything) and counted, so a vocabulary change shows on the
/// dashboard; the caller treats the job as still running, and its watch or its next
/// delivery decides.
pub fn unknown_status(origin: Origin, word: &str) {
    let word = crate::domain::text::clip(word, 64);
    tracing::warn!(provider = origin.provider, upstream = origin.upstream, status = %word, "unknown status word: treated as still running");
    origin.count(name::STATUS_UNKNOWN, &[]);
}

/// Counts one provider API call of `provider` and records how long it took.
pub fn provider_api_call(provider: &'static str, status: Option<u16>, elapsed: Duration) {
    let origin = Origin::provider(provider);
    origin.count(name::PROVIDER_API_CALLS, &[("status_class", status_class(status))]);
    origin.record_ms(name::PROVIDER_API_LATENCY_MS, elapsed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        let classes: Vec<_> = [None, Some(200), Some(204), Some(302), Some(404), Some(429), Some(503), Some(99)]
            .into_iter()
            .map(status_class)
            .collect();
        assert_eq!(classes, ["network", "2xx", "2xx", "3xx", "4xx", "429", "5xx", "2xx"]);
    }

    #[test]
    fn labels_keep_the_origin_first() {
        let o = Origin { provider: "apimp", upstream: Some("kling") };
        let labels = o.labels(&[("reason", "bad_token")]);
        let pairs: Vec<_> = labels.iter().map(|l| (l.key(), l.value())).collect();
        assert_eq!(pairs, [("provider", "apimp"), ("upstream", "kling"), ("reason", "bad_token")]);
    }
}

//! A metrics recorder for tests: counts what the code under test records, on the test's
//! own thread (the `metrics` facade's local recorder), so tests running in parallel never
//! see each other's counts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// A counter's name and labels.
type CounterKey = (String, Vec<(String, String)>);

/// Totals by counter.
type Totals = Arc<Mutex<BTreeMap<CounterKey, u64>>>;

/// Counter totals by name and labels.
#[derive(Debug, Default, Clone)]
pub struct Counts(Totals);

impl Counts {
    /// Runs `f` with this recorder installed on the current thread.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self, f)
    }

    /// The total of the counter `name` over every label set that includes `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let counts = self.0.lock().unwrap();
        counts
            .iter()
            .filter(|((n, have), _)| {
                n == name && labels.iter().all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
            })
            .map(|(_, total)| *total)
            .sum()
    }
}

struct Handle {
    key: CounterKey,
    counts: Totals,
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self.counts.lock().unwrap().entry(self.key.clone()).or_default() += value;
    }

    fn absolute(&self, value: u64) {
        self.counts.lock().unwrap().insert(self.key.clone(), value);
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels = key.labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
        Counter::from_arc(Arc::new(Handle { key: (key.name().to_string(), labels), counts: self.0.clone() }))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

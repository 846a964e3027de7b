//! The Lambda functions' metrics: the `metrics` facade's recorder that writes CloudWatch
//! Embedded Metric Format (EMF) documents, one JSON line per dimension set, to standard
//! output after each invocation. Lambda sends standard output to the function's log
//! group, where CloudWatch extracts the metrics from those lines.
//!
//! The format is the `metrics_cloudwatch_embedded` crate's. Its Lambda layer is not used
//! (it pulls `lambda_http`'s default features into every function, and its flush panics
//! when standard output fails); [`Metrics::flushed`] wraps each invocation instead, and
//! a failed flush is only logged.

use std::future::Future;
use std::io::Write;

use metrics_cloudwatch_embedded::{Builder, Collector};
use tracing::warn;

use super::{ConfigError, Env};
use crate::toolkit::telemetry::{self, name};

/// The variable naming the CloudWatch namespace.
pub const NAMESPACE_VARIABLE: &str = "GENHOOK_METRICS_NAMESPACE";

/// The namespace when [`NAMESPACE_VARIABLE`] is unset.
pub const DEFAULT_NAMESPACE: &str = "genhook";

/// The installed recorder (or none: then nothing is written).
#[derive(Clone, Copy)]
pub struct Metrics {
    collector: Option<&'static Collector>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("installed", &self.collector.is_some()).finish()
    }
}

impl Metrics {
    /// Installs the process's recorder, in the namespace [`NAMESPACE_VARIABLE`] names
    /// (default [`DEFAULT_NAMESPACE`]), and counts a cold start of `function`. A second
    /// install in one process records nothing more (it is logged).
    pub fn install(env: &Env, function: &'static str) -> Result<Self, ConfigError> {
        let namespace = env.optional(NAMESPACE_VARIABLE).unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        check_namespace(&namespace)?;
        let collector = match Builder::new().cloudwatch_namespace(namespace).init() {
            Ok(collector) => collector,
            Err(e) => {
                warn!(error = %e, "metrics recorder not installed; no metrics are written");
                return Ok(Self { collector: None });
            }
        };
        telemetry::describe();
        metrics::counter!(name::COLD_STARTS, "function" => function).increment(1);
        Ok(Self { collector: Some(collector) })
    }

    /// Runs one invocation, then writes what it recorded (and the cold start, after the
    /// first) to standard output.
    pub async fn flushed<F: Future>(self, invocation: F) -> F::Output {
        let output = invocation.await;
        self.flush();
        output
    }

    /// Writes the documents recorded since the last flush to standard output, each one
    /// line written at once; a failure is logged, never raised.
    pub fn flush(self) {
        let mut documents = Vec::new();
        if let Err(e) = self.flush_to(&mut documents) {
            warn!(error = %e, "could not write the metrics");
            return;
        }
        if documents.is_empty() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout.write_all(&documents).and_then(|()| stdout.flush()) {
            warn!(error = %e, "could not write the metrics");
        }
    }

    /// Writes the documents recorded since the last flush to `out` and resets the
    /// counters (what the tests read).
    pub fn flush_to(self, out: &mut impl Write) -> std::io::Result<()> {
        match self.collector {
            Some(collector) => collector.flush(out),
            None => Ok(()),
        }
    }
}

/// CloudWatch's rule for a custom namespace: 1 to 255 of `A-Z a-z 0-9 . - _ / # :` and
/// spaces, not starting with `AWS/`.
fn check_namespace(namespace: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " .-_/#:".contains(c);
    let reason = if namespace.len() > 255 {
        "longer than 255 characters"
    } else if !namespace.chars().all(allowed) {
        "only letters, digits, spaces and . - _ / # : are allowed"
    } else if namespace.starts_with("AWS/") {
        "AWS/ namespaces are reserved"
    } else {
        return Ok(());
    };
    Err(ConfigError::Invalid { name: NAMESPACE_VARIABLE, reason: reason.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        for good in ["genhook", "genhook/prod-stack", "a b.c_d#e:f"] {
            assert!(check_namespace(good).is_ok(), "{good}");
        }
        for bad in ["AWS/Lambda", "gen\"hook", "ns\n", &"n".repeat(256)] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
    }
}

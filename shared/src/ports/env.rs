//! Configuration as the outside world gives it: environment variables (the product's
//! public interface), read through a lookup so tests and `genhook dev` can supply their
//! own. Each provider reads its own variables with these helpers.

use std::collections::HashMap;
use std::sync::Arc;

/// A configuration problem, found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable is set but unusable.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong (never the value itself: it may be a secret).
        reason: String,
    },
    /// No provider is configured for this function.
    #[error("no provider is configured ({0})")]
    NoProvider(String),
}

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Reads variables through a lookup function, so tests need not touch the process env.
#[derive(Clone)]
pub struct Env(Arc<Lookup>);

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets.
        f.write_str("Env(..)")
    }
}

impl Env {
    /// Variables from `lookup`.
    pub fn new(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(lookup))
    }

    /// The process environment.
    pub fn process() -> Self {
        Self::new(|k| std::env::var(k).ok())
    }

    /// Exactly these variables.
    pub fn from_pairs<K: ToString, V: ToString>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let map: HashMap<String, String> = pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::new(move |k| map.get(k).cloned())
    }

    /// These variables where set, else this environment's (`genhook dev`'s local
    /// defaults and simulators).
    pub fn overlaid<K: ToString, V: ToString>(self, over: impl IntoIterator<Item = (K, V)>) -> Self {
        let map: HashMap<String, String> = over.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let base = self.0;
        Self::new(move |k| map.get(k).cloned().or_else(|| base(k)))
    }

    /// This environment's variables where set, else these (local defaults).
    pub fn or_defaults<K: ToString, V: ToString>(self, defaults: impl IntoIterator<Item = (K, V)>) -> Self {
        let map: HashMap<String, String> = defaults.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let base = self.0;
        Self::new(move |k| base(k).filter(|v| !v.trim().is_empty()).or_else(|| map.get(k).cloned()))
    }

    /// A set, non-empty variable.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// A required variable.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// A positive integer with a default.
    pub fn number(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(ConfigError::Invalid { name, reason: format!("expected a positive whole number, got {v:?}") }),
            },
        }
    }

    /// A whole number, zero included (where 0 means "off" or "never"), with a default.
    pub fn whole_number(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| ConfigError::Invalid { name, reason: format!("expected a whole number, got {v:?}") }),
        }
    }

    /// A positive integer that fits a `u32` (requests per second and the like).
    pub fn small_number(&self, name: &'static str, default: u32) -> Result<u32, ConfigError> {
        Ok(u32::try_from(self.number(name, default.into())?).unwrap_or(u32::MAX))
    }

    /// A whole number (0 allowed) that fits in a `u32`, `default` when unset.
    pub fn whole_small_number(&self, name: &'static str, default: u32) -> Result<u32, ConfigError> {
        let n = self.whole_number(name, default.into())?;
        u32::try_from(n)
            .map_err(|_| ConfigError::Invalid { name, reason: format!("expected at most {}, got {n}", u32::MAX) })
    }

    /// A switch: `true`/`1`/`on`/`yes` or `false`/`0`/`off`/`no` (any case), `default`
    /// when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.optional(name) else { return Ok(default) };
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "on" | "yes" => Ok(true),
            "false" | "0" | "off" | "no" => Ok(false),
            _ => Err(ConfigError::Invalid { name, reason: format!("expected true or false, got {v:?}") }),
        }
    }

    /// An http(s) URL, `default` when unset.
    pub fn http_url(&self, name: &'static str, default: Option<&str>) -> Result<String, ConfigError> {
        let value = match (self.optional(name), default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_string(),
            (None, None) => return Err(ConfigError::Missing(name)),
        };
        match url::Url::parse(&value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(value),
            _ => Err(ConfigError::Invalid { name, reason: "expected an http(s) URL".into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlays_defaults_and_checks() {
        let env = Env::from_pairs([("A", "1"), ("U", "ftp://x"), ("E", " ")])
            .or_defaults([("A", "9"), ("E", "e")])
            .overlaid([("B", "2"), ("A", "3")]);
        assert_eq!(
            (env.optional("A"), env.optional("B"), env.optional("E")),
            (Some("3".into()), Some("2".into()), Some("e".into()))
        );
        assert!(matches!(env.number("U", 1), Err(ConfigError::Invalid { name: "U", .. })));
        assert!(matches!(env.http_url("U", None), Err(ConfigError::Invalid { name: "U", .. })));
        assert!(matches!(env.http_url("NOPE", None), Err(ConfigError::Missing("NOPE"))));
        assert_eq!(env.http_url("NOPE", Some("https://d")).unwrap(), "https://d");
        assert_eq!(env.small_number("NOPE", 8).unwrap(), 8);
    }
}

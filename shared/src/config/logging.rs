//! The Lambda functions' logs: `tracing` events to standard output, as `lambda_runtime`'s
//! default subscriber writes them (no time stamp or target; JSON lines when Lambda's
//! `AWS_LAMBDA_LOG_FORMAT` is `JSON`), filtered without a regular-expression engine.
//!
//! The level is `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`'s default level, else `INFO`;
//! `RUST_LOG`'s `target=level` directives (e.g. `warn,genhook=debug`) apply on top.
//! Unlike `EnvFilter`, span and field directives are not supported: such a `RUST_LOG` is
//! ignored (the level stays the default).

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::Env;

/// Installs the process's subscriber, configured from `env`; a second call does nothing.
pub fn init(env: &Env) {
    let fmt = tracing_subscriber::fmt::layer().with_target(false).without_time().with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter(env));
    let json = env.optional("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    // `try_init` fails only when a subscriber is already installed.
    let _ = if json { registry.with(fmt.json()).try_init() } else { registry.with(fmt).try_init() };
}

/// The filter `env` asks for (see the module's documentation).
pub fn filter(env: &Env) -> Targets {
    let directives = env.optional("RUST_LOG").and_then(|r| Targets::from_str(r.trim()).ok());
    let level = env
        .optional("AWS_LAMBDA_LOG_LEVEL")
        .and_then(|l| LevelFilter::from_str(l.trim()).ok())
        .or_else(|| directives.as_ref().and_then(Targets::default_level))
        .unwrap_or(LevelFilter::INFO);
    let targets = Targets::new().with_default(level);
    match directives {
        Some(directives) => targets.with_targets(directives.iter()),
        None => targets,
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn levels_and_directives() {
        assert_eq!(filter(&env(&[])).default_level(), Some(LevelFilter::INFO));
        assert_eq!(filter(&env(&[("RUST_LOG", "debug")])).default_level(), Some(LevelFilter::DEBUG));
        let both = env(&[("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("RUST_LOG", "debug")]);
        assert_eq!(filter(&both).default_level(), Some(LevelFilter::WARN));
        let targeted = filter(&env(&[("RUST_LOG", "warn,genhook=debug")]));
        assert_eq!(targeted.default_level(), Some(LevelFilter::WARN));
        assert!(targeted.would_enable("genhook::engine::worker", &Level::DEBUG));
        assert!(!targeted.would_enable("aws_smithy_runtime", &Level::DEBUG));
        let odd = filter(&env(&[("RUST_LOG", "[span{field=1}]=trace")]));
        assert_eq!(odd.default_level(), Some(LevelFilter::INFO));
    }
}

use std::time::Duration;

use proptest::prelude::*;
use url::Url;

use super::{cases, instants, text};
use crate::link::{LinkError, LinkRequest, LinkSigner, MAX_INDEX};

fn signer(lifetime: Option<Duration>) -> LinkSigner {
    LinkSigner::new(b"proptest-link-secret", lifetime).unwrap()
}

fn provider() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,32}"
}

/// Job ids as providers might (or should never) send them.
fn job_id() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9./%?#&=+; \\\\\t\n-]{0,12}",
        prop::collection::vec(any::<char>(), 1..300).prop_map(String::from_iter),
        prop::sample::select(vec![".", "..", "...", "%2e", "%2E%2e", "a/../b", "\u{0}", "\u{FEFF}", "é"])
            .prop_map(str::to_string),
    ]
}

fn base() -> impl Strategy<Value = Url> {
    prop::sample::select(vec!["https://api.example.com", "https://api.example.com/", "http://127.0.0.1:3000/?q=1"])
        .prop_map(|b| Url::parse(b).unwrap())
}

fn lifetime() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![Just(None), (1u64..=u64::MAX).prop_map(|s| Some(Duration::from_secs(s)))]
}

/// The request a client following `link` makes.
fn follow(link: &str) -> Result<LinkRequest, LinkError> {
    let url = Url::parse(link).unwrap();
    LinkRequest::parse(url.path(), url.query())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn links_round_trip_and_every_change_is_refused(
        base in base(),
        provider in provider(),
        job in job_id(),
        index in 0..MAX_INDEX,
        lifetime in lifetime(),
        now in instants(),
        flip in 0..64usize,
    ) {
        let s = signer(lifetime);
        let linkable = !job.is_empty()
            && job.len() <= 256
            && job != "."
            && job != ".."
            && !job.contains(['\t', '\n', '\r']);
        let Some(link) = s.link(&base, &provider, &job, index, now) else {
            prop_assert!(!linkable, "no link for {job:?}");
            return Ok(());
        };
        prop_assert!(linkable, "a link for {job:?}");
        let req = follow(&link).map_err(|e| TestCaseError::fail(format!("{link}: {e}")))?;
        prop_assert_eq!((&req.provider, &req.job_id, req.index), (&provider, &job, index));
        prop_assert_eq!(req.expires.is_some(), lifetime.is_some());
        prop_assert_eq!(s.verify_request(&req, now), Ok(()));

        let forged = |r: LinkRequest| s.verify_request(&r, now);
        let mut other = provider.clone();
        if other.len() < 32 { other.push('x') } else { other.pop(); }
        prop_assert_eq!(forged(LinkRequest { provider: other, ..req.clone() }), Err(LinkError::Forged));
        let mut other = job.clone();
        if other.len() < 256 { other.push('x') } else { other.pop(); other.push('y'); }
        if other != job && other != "." && other != ".." {
            prop_assert_eq!(forged(LinkRequest { job_id: other, ..req.clone() }), Err(LinkError::Forged));
        }
        // Bytes shifted from the provider name into the job id.
        if let Some((cut, last)) = provider.char_indices().last().filter(|(cut, _)| *cut > 0) {
            let shifted = LinkRequest {
                provider: provider[..cut].to_string(),
                job_id: format!("{last}{job}"),
                ..req.clone()
            };
            if shifted.job_id.len() <= 256 {
                prop_assert_eq!(forged(shifted), Err(LinkError::Forged));
            }
        }
        prop_assert_eq!(forged(LinkRequest { index: (index + 1) % MAX_INDEX, ..req.clone() }), Err(LinkError::Forged));
        let mut token: Vec<char> = req.token.chars().collect();
        token[flip] = if token[flip] == '0' { '1' } else { '0' };
        prop_assert_eq!(forged(LinkRequest { token: token.into_iter().collect(), ..req.clone() }), Err(LinkError::Forged));
        let moved = match req.expires {
            None => Some(i64::MAX),
            Some(e) => Some(e.wrapping_add(1)),
        };
        prop_assert_eq!(forged(LinkRequest { expires: moved, ..req.clone() }), Err(LinkError::Forged));
        if req.expires.is_some() {
            prop_assert_eq!(forged(LinkRequest { expires: None, ..req.clone() }), Err(LinkError::Forged));
        }
        let other_secret = LinkSigner::new(b"another-secret", lifetime).unwrap();
        prop_assert_eq!(other_secret.verify_request(&req, now), Err(LinkError::Forged));
    }

    #[test]
    fn any_request_parses_or_is_refused_without_panicking(
        path in prop_oneof![text(), "/outputs/[a-z%0-9/.]{0,40}", any::<String>()],
        query in prop::option::of(prop_oneof![text(), "(token|expires|x)=[0-9a-f%+-]{0,70}(&(token|expires)=[0-9-]{0,20})?", any::<String>()]),
    ) {
        if let Ok(req) = LinkRequest::parse(&path, query.as_deref()) {
            prop_assert!(req.index < MAX_INDEX && req.job_id.len() <= 256 && req.provider.len() <= 32);
            prop_assert!(signer(None).verify_request(&req, instants_now()).is_err());
        }
    }
}

fn instants_now() -> time::OffsetDateTime {
    time::macros::datetime!(2030-01-01 00:00:00 UTC)
}

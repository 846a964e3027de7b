use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use time::macros::datetime;
use url::Url;

use super::*;

const NOW: OffsetDateTime = datetime!(2030-01-01 00:00:00 UTC);
const NOW_S: i64 = 1_893_456_000;

fn signer(lifetime: Option<Duration>) -> LinkSigner {
    LinkSigner::new(b"link-secret", lifetime).unwrap()
}

fn base(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// The link, parsed back as a request would be.
fn request(link: &str) -> LinkRequest {
    let url = Url::parse(link).unwrap();
    LinkRequest::parse(url.path(), url.query()).unwrap()
}

fn token_of(link: &str) -> String {
    let url = Url::parse(link).unwrap();
    url.query_pairs().find(|(k, _)| k == "token").unwrap().1.into_owned()
}

#[test]
fn an_empty_secret_is_refused() {
    assert_eq!(LinkSigner::new(b"", None).err(), Some(LinkSignerError::EmptySecret));
    assert!(LinkSigner::new(b"k", None).is_ok());
}

/// A rotation: links minted under the previous key keep working while it is accepted,
/// new links are minted under the current key, and without the previous key the old
/// links are revoked.
#[test]
fn links_minted_under_the_previous_key_work_while_it_is_accepted() {
    let b = base("https://hooks.example.com");
    let old = signer(None).link(&b, "katalo", "job_1", 0, NOW).unwrap();
    let current = LinkSigner::new(b"link-secret-2", None).unwrap();
    let rotating = current.clone().accepting([b"link-secret".to_vec(), Vec::new()]);
    assert_eq!(rotating.verify_request(&request(&old), NOW), Ok(()));
    let new = rotating.link(&b, "katalo", "job_1", 0, NOW).unwrap();
    assert_eq!(current.verify_request(&request(&new), NOW), Ok(()), "minted under the current key");
    assert_eq!(signer(None).verify_request(&request(&new), NOW), Err(LinkError::Forged));
    assert_eq!(current.verify_request(&request(&old), NOW), Err(LinkError::Forged), "revoked once not accepted");
    assert_eq!(current.clone().accepting([]).verify_request(&request(&old), NOW), Err(LinkError::Forged));
}

#[test]
fn links_keep_the_base_path_and_drop_its_query() {
    let s = signer(None);
    for b in ["https://api.example.com/prod", "https://api.example.com/prod/", "https://api.example.com/prod?x=1#f"] {
        let link = s.link(&base(b), "replicate", "job-1", 2, NOW).unwrap();
        let token = token_of(&link);
        assert_eq!(link, format!("https://api.example.com/prod/outputs/replicate/job-1/2?token={token}"));
    }
    let link = s.link(&base("http://127.0.0.1:8080"), "katalo", "j", 0, NOW).unwrap();
    assert!(link.starts_with("http://127.0.0.1:8080/outputs/katalo/j/0?token="), "{link}");
}

#[test]
fn the_token_is_the_documented_hmac() {
    let link = signer(Some(Duration::from_secs(60))).link(&base("https://x"), "p", "job", 7, NOW).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"link-secret").unwrap();
    mac.update(b"genhook-link-v1\0");
    mac.update(&1u64.to_be_bytes());
    mac.update(b"p");
    mac.update(&3u64.to_be_bytes());
    mac.update(b"job");
    mac.update(&7u64.to_be_bytes());
    mac.update(&[1]);
    mac.update(&(NOW_S + 60).to_be_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(link, format!("https://x/outputs/p/job/7?token={expected}&expires={}", NOW_S + 60));
}

#[test]
fn job_ids_travel_as_one_segment() {
    let s = signer(None);
    for job in ["a/b", "a?b#c", "100%", "%2e", "sp ace", "ü+é", "a\\b", "...", ".a", "\u{0}x", "a;b=c&d"] {
        let link = s.link(&base("https://x"), "p", job, 1, NOW).unwrap();
        let req = request(&link);
        assert_eq!((req.provider.as_str(), req.job_id.as_str(), req.index), ("p", job, 1), "{link}");
        assert_eq!(s.verify_request(&req, NOW), Ok(()));
    }
}

#[test]
fn what_cannot_be_a_link_is_not_minted() {
    let s = signer(None);
    let b = base("https://x");
    for job in ["", ".", "..", "a\tb", "a\nb", "a\rb"] {
        assert_eq!(s.link(&b, "p", job, 0, NOW), None, "{job:?}");
    }
    assert_eq!(s.link(&b, "p", &"j".repeat(257), 0, NOW), None);
    assert!(s.link(&b, "p", &"j".repeat(256), 0, NOW).is_some());
    for provider in ["", "Replicate", "a#b", "a/b", &"p".repeat(33)] {
        assert_eq!(s.link(&b, provider, "j", 0, NOW), None, "{provider:?}");
    }
    assert_eq!(s.link(&b, "p", "j", MAX_INDEX, NOW), None);
    assert!(s.link(&b, "p", "j", MAX_INDEX - 1, NOW).is_some());
    for bad in ["mailto:a@b.c", "data:text/plain,x", "ftp://x/"] {
        assert_eq!(s.link(&base(bad), "p", "j", 0, NOW), None, "{bad}");
    }
}

#[test]
fn every_field_is_bound() {
    let s = signer(None);
    let t = token_of(&s.link(&base("https://x"), "ab", "c", 1, NOW).unwrap());
    assert_eq!(s.verify("ab", "c", 1, &t, None, NOW), Ok(()));
    assert_eq!(s.verify("a", "bc", 1, &t, None, NOW), Err(LinkError::Forged), "bytes shifted between fields");
    assert_eq!(s.verify("ab", "c", 2, &t, None, NOW), Err(LinkError::Forged));
    assert_eq!(s.verify("ab", "d", 1, &t, None, NOW), Err(LinkError::Forged));
    assert_eq!(s.verify("ab", "c", 1, &t, Some(i64::MAX), NOW), Err(LinkError::Forged), "expiry appended");
    let other = LinkSigner::new(b"other-secret", None).unwrap();
    assert_eq!(other.verify("ab", "c", 1, &t, None, NOW), Err(LinkError::Forged));
    assert_eq!(s.verify("ab", "c", 1, &t.to_uppercase(), None, NOW), Ok(()), "hex in either case");
    let mut flipped = t.clone();
    flipped.replace_range(0..1, if t.starts_with('0') { "1" } else { "0" });
    assert_eq!(s.verify("ab", "c", 1, &flipped, None, NOW), Err(LinkError::Forged));
}

#[test]
fn expiring_links_expire_and_cannot_lose_their_expiry() {
    let s = signer(Some(Duration::from_secs(3600)));
    let req = request(&s.link(&base("https://x"), "p", "j", 0, NOW).unwrap());
    assert_eq!(req.expires, Some(NOW_S + 3600));
    assert_eq!(s.verify_request(&req, NOW + time::Duration::seconds(3599)), Ok(()));
    assert_eq!(s.verify_request(&req, NOW + time::Duration::seconds(3600)), Err(LinkError::Expired));
    assert_eq!(s.verify("p", "j", 0, &req.token, None, NOW), Err(LinkError::Forged), "expiry removed");
    assert_eq!(s.verify("p", "j", 0, &req.token, Some(NOW_S + 7200), NOW), Err(LinkError::Forged), "expiry moved");
    // A forged link is never reported as merely expired.
    assert_eq!(s.verify("p", "j", 1, &req.token, req.expires, NOW + time::Duration::days(1)), Err(LinkError::Forged));
}

#[test]
fn lifetimes_round_up_and_saturate() {
    let half = request(&signer(Some(Duration::from_millis(500))).link(&base("https://x"), "p", "j", 0, NOW).unwrap());
    assert_eq!(half.expires, Some(NOW_S + 1));
    let s = signer(Some(Duration::MAX));
    let far = request(&s.link(&base("https://x"), "p", "j", 0, NOW).unwrap());
    assert_eq!(far.expires, Some(i64::MAX));
    assert_eq!(s.verify_request(&far, NOW), Ok(()));
    let zero = signer(Some(Duration::ZERO));
    let now = request(&zero.link(&base("https://x"), "p", "j", 0, NOW).unwrap());
    assert_eq!(zero.verify_request(&now, NOW), Err(LinkError::Expired));
}

#[test]
fn verify_refuses_what_link_would_not_mint() {
    let s = signer(None);
    let t = token_of(&s.link(&base("https://x"), "p", "j", 0, NOW).unwrap());
    assert_eq!(s.verify("P", "j", 0, &t, None, NOW), Err(LinkError::Malformed));
    assert_eq!(s.verify("p", "", 0, &t, None, NOW), Err(LinkError::Malformed));
    assert_eq!(s.verify("p", "j", MAX_INDEX, &t, None, NOW), Err(LinkError::Malformed));
    assert_eq!(s.verify("p", "j", 0, &t[1..], None, NOW), Err(LinkError::Malformed));
    assert_eq!(s.verify("p", "j", 0, &format!("{t}0"), None, NOW), Err(LinkError::Malformed));
    assert_eq!(s.verify("p", "j", 0, &"g".repeat(TOKEN_LEN), None, NOW), Err(LinkError::Malformed));
    assert_eq!(s.verify("p", "j", 0, &"é".repeat(TOKEN_LEN / 2), None, NOW), Err(LinkError::Malformed));
}

#[test]
fn requests_parse_strictly() {
    let t = "ab".repeat(32);
    let q = format!("token={t}");
    let ok = LinkRequest::parse("/outputs/p/j%2Fk/12", Some(&q)).unwrap();
    assert_eq!((ok.provider.as_str(), ok.job_id.as_str(), ok.index, ok.expires), ("p", "j/k", 12, None));
    let with = LinkRequest::parse("/outputs/p/j/0", Some(&format!("a=1&{q}&expires=-5&b"))).unwrap();
    assert_eq!(with.expires, Some(-5), "unknown parameters are ignored");

    let malformed = |path: &str, query: &str| {
        assert_eq!(LinkRequest::parse(path, Some(query)), Err(LinkError::Malformed), "{path}?{query}");
    };
    for path in [
        "",
        "/",
        "/outputs",
        "/outputs/",
        "outputs/p/j/0",
        "/outputsx/p/j/0",
        "/prod/outputs/p/j/0",
        "/outputs/p/j",
        "/outputs/p/j/0/",
        "/outputs/p/j/0/x",
        "/outputs//j/0",
        "/outputs/p//0",
        "/outputs/p/j/",
        "/outputs/P/j/0",
        "/outputs/p%23q/j/0",
        "/outputs/p/./0",
        "/outputs/p/%2e%2E/0",
        "/outputs/p/a%09b/0",
        "/outputs/p/j%zz/0",
        "/outputs/p/j%4/0",
        "/outputs/p/j%/0",
        "/outputs/p/%ff/0",
        "/outputs/p/j/1000",
        "/outputs/p/j/01",
        "/outputs/p/j/-1",
        "/outputs/p/j/+1",
        "/outputs/p/j/1.0",
        "/outputs/p/j/99999999999999999999999",
    ] {
        malformed(path, &q);
    }
    malformed(&format!("/outputs/p/{}/0", "j".repeat(257)), &q);
    malformed(&format!("/outputs/{}/j/0", "p".repeat(33)), &q);
    malformed(&format!("/outputs/p/{}/0", "%41".repeat(400)), &q);
    assert!(LinkRequest::parse(&format!("/outputs/p/{}/0", "%41".repeat(256)), Some(&q)).is_ok());
    assert_eq!(LinkRequest::parse("/outputs/%70/j/%31", Some(&q)).map(|r| (r.provider, r.index)), Ok(("p".into(), 1)));

    for query in [
        String::new(),
        "tok=1".into(),
        format!("{q}&{q}"),
        format!("{q}&token={}", "cd".repeat(32)),
        format!("{q}&expires=1&expires=1"),
        format!("{q}&expires="),
        format!("{q}&expires=1e9"),
        format!("{q}&expires=+5"),
        format!("{q}&expires=9223372036854775808"),
        format!("{q}&expires=00000000000000000001"),
        format!("token={}", "ab".repeat(33)),
        format!("token={}", "zz".repeat(32)),
        format!("{q}&pad={}", "x".repeat(2000)),
    ] {
        malformed("/outputs/p/j/0", &query);
    }
    assert_eq!(LinkRequest::parse("/outputs/p/j/0", None), Err(LinkError::Malformed));
    malformed(&format!("/outputs/p/j/0{}", "/".repeat(2000)), &q);
}

#[test]
fn debug_never_shows_the_secret_or_the_token() {
    let s = signer(None);
    let link = s.link(&base("https://x"), "p", "j", 0, NOW).unwrap();
    let req = request(&link);
    let shown = format!("{s:?} {req:?}");
    assert!(!shown.contains("link-secret") && !shown.contains(&req.token), "{shown}");
}

mod props {
    use std::time::Duration;

    use proptest::prelude::*;
    use url::Url;

    use crate::domain::testing::{cases, instants, text};
    use crate::toolkit::auth::link_token::{LinkError, LinkRequest, LinkSigner, MAX_INDEX};

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
}

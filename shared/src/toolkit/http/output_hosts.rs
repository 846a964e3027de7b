//! Where a provider may send a user: the hosts it serves its output files from.
//!
//! genhook publishes output URLs and redirects links to them, under the operator's own
//! domain. A URL the provider's API hands back is not trusted to be a file the provider
//! serves: a Replicate text model can answer `https://evil.example/login`. Only `https`
//! URLs without credentials, on hosts in the provider's list, are published or
//! redirected to.

use url::{Host, Url};

/// One entry of a host list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `*`: any domain name (never an IP address).
    AnyDomain,
    /// `example.com`: that host only.
    Exact(String),
    /// `*.example.com`: any host under `example.com` (not `example.com` itself).
    Under(String),
    /// `http://127.0.0.1:9000`: that origin exactly (scheme, host and port), the one way
    /// to allow plain `http` or an address (a local simulator, a private object store).
    Origin(url::Origin, String),
}

/// The hosts a provider serves its output files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputHosts {
    patterns: Vec<Pattern>,
}

/// A host list that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{entry:?} is not a host name, `*.` and a domain, `*`, or an origin (`http://host:port`)")]
pub struct BadHostList {
    /// The entry that is none of those.
    pub entry: String,
}

/// Why a URL is not one genhook publishes or redirects to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ForeignUrl {
    /// Not a URL at all.
    #[error("not a URL")]
    Unreadable,
    /// Not `https`.
    #[error("its scheme is {0:?}, not https")]
    NotHttps(String),
    /// With a user name or password.
    #[error("it carries credentials")]
    Credentials,
    /// On a host not in the list.
    #[error("its host {0:?} is not one the provider serves files from")]
    Host(String),
}

impl OutputHosts {
    /// Reads a comma-separated list of `host`, `*.domain`, `*` or origin entries.
    pub fn parse(list: &str) -> Result<Self, BadHostList> {
        let patterns = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| {
                let bad = || BadHostList { entry: entry.to_string() };
                if entry == "*" {
                    return Ok(Pattern::AnyDomain);
                }
                if entry.contains("://") {
                    let url = Url::parse(entry).map_err(|_| bad())?;
                    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
                    let plain = url.username().is_empty() && url.password().is_none() && url.host().is_some();
                    if !(bare && plain && matches!(url.scheme(), "http" | "https")) {
                        return Err(bad());
                    }
                    return Ok(Pattern::Origin(url.origin(), url.origin().ascii_serialization()));
                }
                let (under, name) = entry.strip_prefix("*.").map_or((false, entry), |rest| (true, rest));
                let name = name.to_ascii_lowercase();
                // A domain name with at least two labels, as a URL host reads it.
                match Host::parse(&name) {
                    Ok(Host::Domain(d)) if d == name && d.contains('.') && !d.contains('*') => {}
                    _ => return Err(bad()),
                }
                Ok(if under { Pattern::Under(name) } else { Pattern::Exact(name) })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { patterns })
    }

    /// A list from entries known to be valid (the providers' defaults).
    pub fn of(entries: &[&str]) -> Result<Self, BadHostList> {
        Self::parse(&entries.join(","))
    }

    /// Whether `url` is an `https` URL without credentials on one of the hosts.
    pub fn check(&self, url: &str) -> Result<(), ForeignUrl> {
        let parsed = Url::parse(url.trim()).map_err(|_| ForeignUrl::Unreadable)?;
        let credentials = !parsed.username().is_empty() || parsed.password().is_some();
        let origin = parsed.origin();
        if !credentials && self.patterns.iter().any(|p| matches!(p, Pattern::Origin(o, _) if *o == origin)) {
            return Ok(());
        }
        if parsed.scheme() != "https" {
            return Err(ForeignUrl::NotHttps(parsed.scheme().to_string()));
        }
        if credentials {
            return Err(ForeignUrl::Credentials);
        }
        let host = match parsed.host() {
            Some(Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
            Some(other) => return Err(ForeignUrl::Host(other.to_string())),
            None => return Err(ForeignUrl::Unreadable),
        };
        let allowed = self.patterns.iter().any(|p| match p {
            Pattern::AnyDomain => true,
            Pattern::Origin(..) => false,
            Pattern::Exact(name) => host == *name,
            Pattern::Under(domain) => {
                host.strip_suffix(domain.as_str()).is_some_and(|head| head.len() > 1 && head.ends_with('.'))
            }
        });
        if allowed { Ok(()) } else { Err(ForeignUrl::Host(host)) }
    }

    /// The list as it is written (for logs, errors and docs).
    pub fn describe(&self) -> String {
        let entries: Vec<String> = self
            .patterns
            .iter()
            .map(|p| match p {
                Pattern::AnyDomain => "*".to_string(),
                Pattern::Exact(n) => n.clone(),
                Pattern::Under(d) => format!("*.{d}"),
                Pattern::Origin(_, text) => text.clone(),
            })
            .collect();
        entries.join(",")
    }
}

/// A provider's output hosts and the variable that sets them (named in refusals, so the
/// operator knows what to change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRule {
    /// The provider.
    pub provider: &'static str,
    /// `<NAME>_OUTPUT_HOSTS`.
    pub variable: &'static str,
    /// The hosts.
    pub hosts: OutputHosts,
}

impl OutputRule {
    /// Why `url` is refused, and what to do about it; `None` when it passes.
    pub fn refusal(&self, url: &str) -> Option<String> {
        self.hosts.check(url).err().map(|why| {
            format!(
                "{why} ({} is {:?}: add the host if {} serves files from it)",
                self.variable,
                self.hosts.describe(),
                self.provider
            )
        })
    }

    /// The rule of `provider` among `rules`.
    pub fn of<'r>(rules: &'r [OutputRule], provider: &str) -> Option<&'r OutputRule> {
        rules.iter().find(|r| r.provider == provider)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hosts(list: &str) -> OutputHosts {
        OutputHosts::parse(list).unwrap()
    }

    #[test]
    fn only_https_urls_on_listed_hosts_pass() {
        let h = hosts("replicate.delivery, *.replicate.delivery");
        assert_eq!(h.check("https://replicate.delivery/a/out.png"), Ok(()));
        assert_eq!(h.check("https://pbxt.replicate.delivery/a/out.png?x=1"), Ok(()));
        assert_eq!(h.check("https://PBXT.Replicate.Delivery./a.png"), Ok(()), "case and a root dot");
        for (url, why) in [
            ("https://evil.example/login", ForeignUrl::Host("evil.example".into())),
            ("https://replicate.delivery.evil.example/x", ForeignUrl::Host("replicate.delivery.evil.example".into())),
            ("https://evilreplicate.delivery/x", ForeignUrl::Host("evilreplicate.delivery".into())),
            ("http://replicate.delivery/x", ForeignUrl::NotHttps("http".into())),
            ("javascript:alert(1)", ForeignUrl::NotHttps("javascript".into())),
            ("data:text/html,hi", ForeignUrl::NotHttps("data".into())),
            ("https://user:pw@replicate.delivery/x", ForeignUrl::Credentials),
            ("https://1.2.3.4/x", ForeignUrl::Host("1.2.3.4".into())),
            ("/relative", ForeignUrl::Unreadable),
        ] {
            assert_eq!(h.check(url), Err(why), "{url}");
        }
    }

    #[test]
    fn an_origin_entry_allows_exactly_that_origin_even_over_http() {
        let h = hosts("http://127.0.0.1:4000, https://files.example:8443/");
        assert_eq!(h.check("http://127.0.0.1:4000/files/j/0.png?sig=1"), Ok(()));
        assert_eq!(h.check("https://files.example:8443/o.png"), Ok(()));
        assert_eq!(h.check("http://127.0.0.1:4001/x"), Err(ForeignUrl::NotHttps("http".into())));
        assert_eq!(h.check("https://127.0.0.1:4000/x"), Err(ForeignUrl::Host("127.0.0.1".into())));
        assert_eq!(h.check("https://files.example/o.png"), Err(ForeignUrl::Host("files.example".into())));
        assert_eq!(h.check("http://u:p@127.0.0.1:4000/x"), Err(ForeignUrl::NotHttps("http".into())));
        assert_eq!(h.describe(), "http://127.0.0.1:4000,https://files.example:8443");
    }

    #[test]
    fn a_star_allows_any_domain_but_never_an_address_or_plain_http() {
        let h = hosts("*");
        assert_eq!(h.check("https://anything.example/x"), Ok(()));
        assert_eq!(h.check("https://[::1]/x"), Err(ForeignUrl::Host("[::1]".into())));
        assert_eq!(h.check("http://anything.example/x"), Err(ForeignUrl::NotHttps("http".into())));
        assert_eq!(hosts("").check("https://a.example/x"), Err(ForeignUrl::Host("a.example".into())), "empty: none");
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        for bad in [
            "https://x.example/path",
            "https://u:p@x.example",
            "ftp://x.example",
            "x.example/path",
            "*x.example",
            "a.*.example",
            "localhost",
            "1.2.3.4",
            "*.",
        ] {
            assert_eq!(OutputHosts::parse(bad), Err(BadHostList { entry: bad.into() }), "{bad}");
        }
        assert_eq!(hosts(" A.example ,*.b.example,*").describe(), "a.example,*.b.example,*");
    }

    proptest! {
        /// Whatever a provider hands back, the check answers without panicking, and what
        /// passes is an https URL on a listed host.
        #[test]
        fn any_text_is_checked_safely(url in "\\PC{0,80}", tail in "[a-z0-9./?=&-]{0,30}") {
            let h = hosts("*.cdn.example");
            let _ = h.check(&url);
            let candidate = format!("https://{url}{tail}");
            if h.check(&candidate).is_ok() {
                let parsed = Url::parse(candidate.trim()).unwrap();
                prop_assert_eq!(parsed.scheme(), "https");
                prop_assert!(parsed.host_str().unwrap().trim_end_matches('.').ends_with(".cdn.example"));
            }
        }
    }
}

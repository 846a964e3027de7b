//! API Gateway stages in request paths. A REST API's stage (`/Prod`) and an HTTP API's
//! named stage (`/live`) arrive as the path's first segment; the `$default` stage, Lambda
//! Function URLs and ALBs add none. The receiver and the output links both cut it by this
//! one rule before they route, so their routes match behind every front end.

/// The path a request was sent to, before its stage was cut (a request extension the
/// front end's adapter sets when it cuts one): what a signature over the URL's path
/// covers, since a callback URL is minted under the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPath(pub String);

/// `path` without its first segment when that segment is the front end's `stage` (exact,
/// case-sensitive, the whole segment; `$default` is never in a path); `path` as it is
/// otherwise. The stage alone is the root, `/`.
pub fn without_stage<'a>(path: &'a str, stage: Option<&str>) -> &'a str {
    let Some(stage) = stage.filter(|s| !s.is_empty() && *s != "$default") else { return path };
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::without_stage;

    #[test]
    fn cuts_only_a_whole_leading_stage_segment() {
        let cut = |path, stage| without_stage(path, Some(stage));
        assert_eq!(cut("/Prod/webhooks/katalo", "Prod"), "/webhooks/katalo");
        assert_eq!(cut("/Prod/outputs/katalo/j/0", "Prod"), "/outputs/katalo/j/0");
        assert_eq!(cut("/Prod", "Prod"), "/");
        assert_eq!(cut("/Prod/", "Prod"), "/");
        assert_eq!(cut("/webhooks/katalo", "Prod"), "/webhooks/katalo");
        assert_eq!(cut("/Production/webhooks/katalo", "Prod"), "/Production/webhooks/katalo");
        assert_eq!(cut("/prod/webhooks/katalo", "Prod"), "/prod/webhooks/katalo", "stages are case-sensitive");
        assert_eq!(cut("/$default/webhooks/katalo", "$default"), "/$default/webhooks/katalo");
        assert_eq!(cut("/webhooks/katalo", ""), "/webhooks/katalo");
        assert_eq!(cut("", "Prod"), "");
        assert_eq!(cut("Prod/webhooks", "Prod"), "Prod/webhooks");
        assert_eq!(cut("/Prod/Prod/outputs", "Prod"), "/Prod/outputs", "one stage at most");
        assert_eq!(without_stage("/Prod/webhooks/katalo", None), "/Prod/webhooks/katalo");
    }
}

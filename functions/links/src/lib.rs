//! The output links Lambda's handler: HTTP events in (API Gateway HTTP API and REST API,
//! Function URLs, ALB), redirects out.
//! All logic lives in [`genhook::engine::links`].

use genhook::config::lambda::without_stage;
use genhook::engine::links::Links;
use lambda_http::{Body, Error, Request, Response};

/// Answers one link request, its API Gateway stage cut from the path first (links are
/// minted under `GENHOOK_PUBLIC_URL`, stage included).
pub async fn function_handler(service: &Links, event: Request) -> Result<Response<Body>, Error> {
    let event = without_stage(event);
    Ok(service.handle(event.method(), event.uri()).await.map(Body::from))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use genhook::adapters::memory::MemoryStore;
    use genhook::domain::clock::{Clock, SystemClock};
    use genhook::domain::link_cache::{CachedOutputs, CachedUrl};
    use genhook::ports::env::Env;
    use genhook::ports::link_cache::LinkCache;

    use super::*;

    // A link to output 0 of job_fixture_1 under `link_fixture_secret_0001` (no expiry),
    // as API Gateway's HTTP API delivers a GET of it.
    const FIXTURE: &str = include_str!("../fixtures/http-api-link.json");
    // The same link through a REST API's `Prod` stage (lambda_http puts the stage in the path).
    const REST_API: &str = include_str!("../fixtures/rest-api-link.json");

    fn service(store: Arc<MemoryStore>) -> Links {
        let env = Env::from_pairs([
            ("GENHOOK_LINK_SECRET", "link_fixture_secret_0001"),
            ("KATALO_API_KEY", "k"),
            // Nothing listens here: the answers below come from the cache or the token.
            ("KATALO_API_BASE_URL", "http://127.0.0.1:9"),
        ]);
        Links::new(genhook::config::link_service(&env, store.clone(), store, Arc::new(SystemClock)).unwrap(), None)
    }

    async fn cached(store: &MemoryStore) {
        let expires = SystemClock.now().unix_timestamp() + 3600;
        let outputs = CachedOutputs {
            outputs: vec![CachedUrl { url: "https://files.katalo.ai/0.png?sig=abc".into(), expires_at: Some(expires) }],
            fetched_at: SystemClock.now().unix_timestamp(),
        };
        store.put_outputs("katalo", "job_fixture_1", &outputs, expires).await.unwrap();
    }

    #[tokio::test]
    async fn redirects_the_api_gateway_fixture_from_the_cache() {
        let store = Arc::new(MemoryStore::default());
        cached(&store).await;
        let response =
            function_handler(&service(store), lambda_http::request::from_str(FIXTURE).unwrap()).await.unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(response.headers()["location"], "https://files.katalo.ai/0.png?sig=abc");
    }

    #[tokio::test]
    async fn redirects_the_rest_api_fixture_under_its_stage() {
        let store = Arc::new(MemoryStore::default());
        cached(&store).await;
        let request = lambda_http::request::from_str(REST_API).unwrap();
        assert_eq!(request.uri().path(), "/Prod/outputs/katalo/job_fixture_1/0");
        let response = function_handler(&service(store), request).await.unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(response.headers()["location"], "https://files.katalo.ai/0.png?sig=abc");
    }

    #[tokio::test]
    async fn refuses_a_forged_fixture() {
        let forged = FIXTURE.replace("job_fixture_1", "job_fixture_2");
        let service = service(Arc::new(MemoryStore::default()));
        let response = function_handler(&service, lambda_http::request::from_str(&forged).unwrap()).await.unwrap();
        assert_eq!(response.status(), 403);
    }
}

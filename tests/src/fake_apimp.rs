//! A fake APIMP status API on loopback: `GET /api/generate/status/{task_id}` answers
//! from a per-task script (the last answer repeats) and counts calls.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The API key the fake expects.
pub const API_KEY: &str = "sk-test-apimp";

#[derive(Default)]
struct Script {
    answers: VecDeque<Value>,
    calls: u32,
}

type Tasks = Arc<Mutex<HashMap<String, Script>>>;

/// The running fake.
pub struct FakeApimp {
    /// Base URL to configure as `APIMP_API_BASE_URL`.
    pub base_url: String,
    tasks: Tasks,
}

/// A status answer in APIMP's documented shape.
pub fn status(task_id: &str, status: &str, progress: u8) -> Value {
    let files = if status == "finished" {
        let expires = time::OffsetDateTime::now_utc()
            .format(&time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"));
        json!([{"file_url": format!("https://apimp-outputs.s3.amazonaws.com/{task_id}/out.mp4?X-Amz-Date={}&X-Amz-Expires=3600&X-Amz-Signature=ab", expires.unwrap()), "file_type": "image"}])
    } else {
        json!([])
    };
    json!({"code": 200, "data": {"task_id": task_id, "status": status, "progress": progress,
        "created_time": "2026-11-23T12:00:00", "error_message": null, "files": files}})
}

impl FakeApimp {
    /// Starts the fake on an ephemeral loopback port.
    pub async fn start() -> Self {
        let tasks: Tasks = Arc::default();
        let app = Router::new().route("/api/generate/status/{task_id}", get(read)).with_state(tasks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("fake APIMP serves") });
        Self { base_url, tasks }
    }

    /// Sets the answers for `task_id`.
    pub fn script(&self, task_id: &str, answers: Vec<Value>) {
        self.tasks.lock().unwrap().insert(task_id.into(), Script { answers: answers.into(), calls: 0 });
    }

    /// How many times `task_id` was read.
    pub fn calls(&self, task_id: &str) -> u32 {
        self.tasks.lock().unwrap().get(task_id).map_or(0, |s| s.calls)
    }
}

async fn read(State(tasks): State<Tasks>, Path(task_id): Path<String>, headers: HeaderMap) -> Response {
    if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {API_KEY}")) {
        let body = json!({"code": 401, "error": {"message": "invalid api key", "type": "unauthorized"}});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let mut tasks = tasks.lock().unwrap();
    let Some(script) = tasks.get_mut(&task_id) else {
        let body = json!({"code": 404, "error": {"message": "task not found", "type": "not_found"}});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    script.calls += 1;
    let answer = if script.answers.len() > 1 { script.answers.pop_front() } else { script.answers.front().cloned() };
    axum::Json(answer.unwrap_or(Value::Null)).into_response()
}

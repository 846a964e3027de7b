//! Following one delivery end to end: the front end's request id and the X-Ray trace
//! header, carried from the receiver through the inbox message (the SQS system attribute
//! `AWSTraceHeader`, the message attribute `genhook_request_id`) to the worker, into the
//! published event's `trace` and onto the outbox message's own `AWSTraceHeader`.

use serde::{Deserialize, Serialize};

/// The message attribute carrying the X-Ray trace header (SQS sends it as the system
/// attribute of that name; other queues keep it as an ordinary attribute).
pub const TRACE_HEADER_ATTRIBUTE: &str = "AWSTraceHeader";
/// The message attribute carrying the front end's request id.
pub const REQUEST_ID_ATTRIBUTE: &str = "genhook_request_id";
/// The longest value kept (X-Ray headers are about 100 bytes, request ids under 64).
const MAX_LEN: usize = 256;

/// Where a delivery came from. Either part may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The front end's request id (API Gateway's `requestId`, a Function URL's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The X-Ray trace header (`Root=…;Parent=…;Sampled=…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xray_trace_header: Option<String>,
}

impl Trace {
    /// A trace of the given parts, each kept only if it is 1-256 printable ASCII
    /// characters (they travel as message attributes and event fields).
    pub fn new(request_id: Option<&str>, xray_trace_header: Option<&str>) -> Self {
        Self { request_id: clean(request_id), xray_trace_header: clean(xray_trace_header) }
    }

    /// Whether neither part is known.
    pub fn is_empty(&self) -> bool {
        self.request_id.is_none() && self.xray_trace_header.is_none()
    }

    /// The trace carried by a message's attributes.
    pub fn from_attributes(attributes: &[(String, String)]) -> Self {
        let get = |name: &str| attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        Self::new(get(REQUEST_ID_ATTRIBUTE), get(TRACE_HEADER_ATTRIBUTE))
    }

    /// The attributes that carry this trace on a message.
    pub fn attributes(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(id) = &self.request_id {
            out.push((REQUEST_ID_ATTRIBUTE.to_string(), id.clone()));
        }
        if let Some(h) = &self.xray_trace_header {
            out.push((TRACE_HEADER_ATTRIBUTE.to_string(), h.clone()));
        }
        out
    }
}

fn clean(value: Option<&str>) -> Option<String> {
    let v = value?.trim();
    let ok = !v.is_empty() && v.len() <= MAX_LEN && v.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_round_trips_through_attributes_and_drops_what_cannot_travel() {
        let t = Trace::new(Some("req-1"), Some("Root=1-6b04f040-161b13bf8aacb4e0ccf300fa;Sampled=1"));
        assert_eq!(Trace::from_attributes(&t.attributes()), t);
        assert!(Trace::from_attributes(&[]).is_empty());
        assert_eq!(Trace::new(Some("bad id\n"), Some(&"x".repeat(MAX_LEN + 1))), Trace::default());
        assert_eq!(Trace::new(Some(""), None), Trace::default());
        assert_eq!(serde_json::to_string(&Trace::new(Some("r"), None)).unwrap(), r#"{"request_id":"r"}"#);
    }
}

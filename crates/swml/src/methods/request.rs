//! `request` (swml.md §6.24): an HTTP request whose response becomes variables.

use serde_json::{Map, Value};

use super::{as_bool, as_f64, set_var};
use crate::run::{Completion, Effect, Flow, HttpRequest, Run, Waiting};

/// Saved response body limit (swml.md §2.12).
pub const MAX_SAVED_BODY: usize = 64 * 1024;
const MAX_SAVED_HEADERS: usize = 64;
const TIMEOUT_CAP_MS: u64 = 30_000;
const CONNECT_TIMEOUT_CAP_MS: u64 = 10_000;

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let p = run.expand(params);
    let Some(url) = p.get("url").and_then(Value::as_str).map(str::to_string) else {
        run.warn(
            "relay_script_method_parameter_missing",
            "request needs `url`",
        );
        return Flow::Next;
    };
    let method = p
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE") {
        run.warn(
            "relay_script_method_parameter_invalid_value",
            format!("request method `{method}` is not GET, POST, PUT or DELETE"),
        );
        set_var(run, "request_result", "failed");
        return Flow::Next;
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(h) = p.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            let lower = k.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "accept" | "authorization" | "content-type" | "range"
            ) || lower.starts_with("x-")
            {
                headers.push((k.clone(), crate::expr::stringify(v)));
            } else {
                run.warn(
                    "relay_script_method_parameter_invalid_value",
                    format!("request header `{k}` is not allowed; dropped"),
                );
            }
        }
    }
    let body = match p.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    if let Some(b) = &body {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            let ct = match b.trim_start().chars().next() {
                Some('{') | Some('[') => "application/json",
                Some('<') => "application/xml",
                _ => "text/plain",
            };
            headers.push(("Content-Type".into(), ct.into()));
        }
    }
    let ms = |key: &str, cap: u64| {
        p.get(key)
            .and_then(as_f64)
            .filter(|s| *s > 0.0)
            .map(|s| ((s * 1000.0) as u64).min(cap))
            .unwrap_or(cap)
    };
    let save_variables = p.get("save_variables").and_then(as_bool).unwrap_or(false);
    let req = HttpRequest {
        url: url.clone(),
        method,
        headers,
        body,
        timeout_ms: ms("timeout", TIMEOUT_CAP_MS),
        connect_timeout_ms: ms("connect_timeout", CONNECT_TIMEOUT_CAP_MS),
        save_variables,
        filler: None,
    };
    Flow::Wait(
        Waiting::Request {
            url,
            save_variables,
        },
        Some(Box::new(Effect::Request(req))),
    )
}

pub(crate) fn on_response(run: &mut Run, url: String, save_variables: bool, c: Completion) {
    let vars = &mut run.scope.vars;
    vars.insert("request_url".into(), Value::String(url));
    for k in [
        "request_response",
        "request_response_headers",
        "request_response_body",
        "request_response_code",
    ] {
        vars.remove(k);
    }
    match c {
        Completion::Http(Ok(resp)) => {
            vars.insert("request_result".into(), Value::String("success".into()));
            vars.insert("return_value".into(), Value::String("success".into()));
            vars.insert("request_response_code".into(), Value::from(resp.code));
            let headers: Map<String, Value> = resp
                .headers
                .iter()
                .take(MAX_SAVED_HEADERS)
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), Value::String(v.clone())))
                .collect();
            vars.insert("request_response_headers".into(), Value::Object(headers));
            let mut body = resp.body;
            if body.len() > MAX_SAVED_BODY {
                let mut cut = MAX_SAVED_BODY;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
            }
            if save_variables {
                if let Ok(v @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(&body)
                {
                    vars.insert("request_response".into(), v);
                }
            }
            vars.insert("request_response_body".into(), Value::String(body));
        }
        Completion::Http(Err(e)) => {
            vars.insert("request_result".into(), Value::String("failed".into()));
            vars.insert("return_value".into(), Value::String("failed".into()));
            run.warn(
                "relay_script_method_execute_failed",
                format!("request failed: {e}"),
            );
        }
        _ => run.warn(
            "relay_script_internal_error",
            "request completed with the wrong kind of result",
        ),
    }
}

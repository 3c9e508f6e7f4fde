//! SWAIG `data_map` functions (swml.md §6.1) and the AI's template language (§5.7): a function
//! the engine answers itself, without a round trip to the user — `expressions` (a templated
//! string searched with a pattern), then `webhooks` (each a request whose JSON answer feeds
//! its own `foreach`, `expressions` and `output`), then the top-level `output`; the first that
//! yields an answer wins.
//!
//! Templates: `${path}` into the function's data (`args`, `global_data`, `meta_data`, `call_id`,
//! …), field names matched case-insensitively, negative indexes from the end; the prefixes
//! `lc:` and `enc:` (also spelled `enc:url:`), applied in that order whatever the written order;
//! one level of nesting inside-out (`${meta_data.x.${lc:args.y}}`); a non-string value inserted
//! into text is its JSON, a non-integer number prints with six decimals; a path that leads
//! nowhere is empty. The `@{…}` functions are in [`super::template_fns`]; an unknown one stays
//! as written. `${fmt_ph:path}` writes a phone number in the national style.

use regex::RegexBuilder;
use serde_json::{Map, Value};

use super::template_fns::{self, PhoneStyle, TemplateEnv};
use crate::run::HttpRequest;

/// Longest template result, and longest pattern, in bytes.
const MAX_EXPANDED: usize = 64 * 1024;
const MAX_PATTERN: usize = 1024;
/// Compiled pattern size limit (the regex crate runs in linear time; this bounds its memory).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Where a `data_map` function's evaluation stands.
#[derive(Debug)]
pub(crate) enum DataMapStep {
    /// The function's answer (`None`: nothing matched and there is no `output`), and how long
    /// its `@{sleep}` templates ask the agent to wait before it goes on (ms).
    Done(Option<Value>, u64),
    /// A webhook to call; its answer goes to [`DataMapRun::on_response`].
    Fetch(Box<HttpRequest>, DataMapRun),
}

/// A `data_map` waiting on one of its webhooks.
#[derive(Debug, Clone)]
pub(crate) struct DataMapRun {
    map: Value,
    data: Value,
    /// The webhook after the one being called.
    next: usize,
    env: TemplateEnv,
}

/// Starts a `data_map` function: its `expressions`, then its first webhook that can run.
pub(crate) fn start(data_map: &Value, data: Value, now_ms: u64) -> DataMapStep {
    let env = TemplateEnv::at(now_ms);
    if let Some(out) = expressions(data_map, &data, &env) {
        return DataMapStep::Done(Some(out), env.slept_ms());
    }
    DataMapRun {
        map: data_map.clone(),
        data,
        next: 0,
        env,
    }
    .next_webhook()
}

impl DataMapRun {
    fn webhooks(&self) -> &[Value] {
        self.map
            .get("webhooks")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn next_webhook(mut self) -> DataMapStep {
        while let Some(request) = self
            .webhooks()
            .get(self.next)
            .map(|hook| webhook_request(hook, &self.data, &self.env))
        {
            self.next += 1;
            if let Some(request) = request {
                return DataMapStep::Fetch(Box::new(request), self);
            }
        }
        let output = self
            .map
            .get("output")
            .map(|o| expand_value(o, &self.data, &self.env));
        DataMapStep::Done(output, self.env.slept_ms())
    }

    /// The webhook's answer (`None`: it could not be reached): its output, or the next
    /// webhook, or the top-level `output`.
    pub(crate) fn on_response(self, code: Option<u16>, body: &str) -> DataMapStep {
        let answer = self
            .next
            .checked_sub(1)
            .and_then(|i| self.webhooks().get(i))
            .and_then(|hook| webhook_answer(hook, code, body, &self.data, &self.env));
        match answer {
            Some(out) => DataMapStep::Done(Some(out), self.env.slept_ms()),
            None => self.next_webhook(),
        }
    }
}

/// The first expression whose templated `string` matches its `pattern`, as its `output`.
fn expressions(map: &Value, data: &Value, env: &TemplateEnv) -> Option<Value> {
    for e in map.get("expressions").and_then(Value::as_array)? {
        let (Some(string), Some(pattern)) = (
            e.get("string").and_then(Value::as_str),
            e.get("pattern").and_then(Value::as_str),
        ) else {
            continue;
        };
        let subject = expand_str(string, data, env);
        if matches(pattern, &subject) {
            if let Some(output) = e.get("output") {
                return Some(expand_value(output, data, env));
            }
        }
    }
    None
}

/// The function's answer, for a `data_map` without webhooks (tests and callers that need no
/// round trip).
#[cfg(test)]
pub(crate) fn evaluate(data_map: &Value, data: &Value) -> Option<Value> {
    match start(data_map, data.clone(), 0) {
        DataMapStep::Done(out, _) => out,
        DataMapStep::Fetch(..) => None,
    }
}

/// Longest answer read from a webhook, and most `foreach` items appended.
const MAX_WEBHOOK_BODY: usize = 1 << 20;
const MAX_FOREACH: usize = 100;
const WEBHOOK_TIMEOUT_MS: u64 = 10_000;

/// A webhook's request (swml.md §6.1): `url` and `params` templated, `headers` as written,
/// the body the params as JSON when there are params or the method is POST. `None` when the
/// webhook cannot run: no usable URL or method, or an argument in `require_args` missing.
fn webhook_request(hook: &Value, data: &Value, env: &TemplateEnv) -> Option<HttpRequest> {
    let url = expand_str(hook.get("url")?.as_str()?, data, env);
    let method = hook
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE") {
        return None;
    }
    let args = data.get("args");
    let required = match hook.get("require_args") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(names)) => names.iter().map(text_of).collect(),
        _ => Vec::new(),
    };
    let present = |name: &str| {
        args.and_then(|a| a.get(name))
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
    };
    if !required.iter().all(|n| present(n)) {
        return None;
    }
    let mut params = hook.get("params").map(|p| expand_value(p, data, env));
    if hook.get("input_args_as_params").and_then(super::as_bool) == Some(true) {
        let mut merged = match params.take() {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (k, v) in args.and_then(Value::as_object).into_iter().flatten() {
            merged.entry(k.clone()).or_insert_with(|| v.clone());
        }
        params = Some(Value::Object(merged));
    }
    let body = match params {
        Some(p) => Some(p.to_string()),
        None if method == "POST" => Some("{}".to_string()),
        None => None,
    };
    let mut headers = super::string_pairs(hook.get("headers"));
    if body.is_some()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    Some(HttpRequest {
        url,
        method,
        headers,
        body,
        timeout_ms: WEBHOOK_TIMEOUT_MS,
        connect_timeout_ms: WEBHOOK_TIMEOUT_MS,
        save_variables: false,
        filler: None,
    })
}

/// A webhook's output from its answer: the response's fields (an array response under
/// `array`) beside `input` (the call's data), `global_data` and `prompt_vars`; `foreach`
/// first, then its `expressions`, then its `output`. `None`: failed (not 2xx, not JSON, one
/// of its `error_keys` present) or nothing matched.
fn webhook_answer(
    hook: &Value,
    code: Option<u16>,
    body: &str,
    data: &Value,
    env: &TemplateEnv,
) -> Option<Value> {
    if !(200..300).contains(&code?) || body.len() > MAX_WEBHOOK_BODY {
        return None;
    }
    let response: Value = serde_json::from_str(body).ok()?;
    let mut ctx = match response {
        Value::Object(m) => m,
        Value::Array(a) => Map::from_iter([("array".to_string(), Value::Array(a))]),
        _ => return None,
    };
    let error_keys = match hook.get("error_keys") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(keys)) => keys.iter().map(text_of).collect(),
        _ => Vec::new(),
    };
    if error_keys.iter().any(|k| ctx.contains_key(k)) {
        return None;
    }
    ctx.insert("input".into(), data.clone());
    for key in ["global_data", "prompt_vars"] {
        if let Some(v) = data.get(key) {
            ctx.entry(key.to_string()).or_insert_with(|| v.clone());
        }
    }
    let mut ctx = Value::Object(ctx);
    if let Some(each) = hook.get("foreach").filter(|f| f.is_object()) {
        foreach(each, &mut ctx, env);
    }
    if let Some(out) = expressions(hook, &ctx, env) {
        return Some(out);
    }
    hook.get("output").map(|o| expand_value(o, &ctx, env))
}

/// `foreach {input_key, output_key, max, append}`: `append` expanded once per item of the
/// list at `input_key` (the item as `this`), the texts joined under `output_key`.
fn foreach(each: &Value, ctx: &mut Value, env: &TemplateEnv) {
    let (Some(input), Some(output)) = (
        each.get("input_key").and_then(Value::as_str),
        each.get("output_key").and_then(Value::as_str),
    ) else {
        return;
    };
    let append = each.get("append").and_then(Value::as_str).unwrap_or("");
    let max = each
        .get("max")
        .and_then(super::as_f64)
        .filter(|m| *m >= 1.0)
        .map_or(MAX_FOREACH, |m| (m as usize).min(MAX_FOREACH));
    let items: Vec<Value> = value_at(ctx, input)
        .and_then(Value::as_array)
        .map(|a| a.iter().take(max).cloned().collect())
        .unwrap_or_default();
    let mut text = String::new();
    for item in items {
        if let Some(m) = ctx.as_object_mut() {
            m.insert("this".into(), item);
        }
        text.push_str(&expand_str(append, ctx, env));
        if text.len() > MAX_EXPANDED {
            break;
        }
    }
    if let Some(m) = ctx.as_object_mut() {
        m.remove("this");
        m.insert(output.to_string(), Value::String(text));
    }
}

fn matches(pattern: &str, subject: &str) -> bool {
    if pattern.len() > MAX_PATTERN {
        return false;
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(|re| re.is_match(subject))
        .unwrap_or(false)
}

/// Every string in `v` expanded (keys stay as written).
pub(crate) fn expand_value(v: &Value, data: &Value, env: &TemplateEnv) -> Value {
    match v {
        Value::String(s) => Value::String(expand_str(s, data, env)),
        Value::Array(a) => Value::Array(a.iter().map(|x| expand_value(x, data, env)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), expand_value(x, data, env)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// `text` with its `${…}` and `@{…}` templates expanded.
pub(crate) fn expand_str(text: &str, data: &Value, env: &TemplateEnv) -> String {
    expand_nested(text, data, env, true)
}

/// `nest`: a `${…}` inside a `${…}` or `@{…}` is expanded first (one level only, so a deeply nested
/// template costs no deeper recursion).
fn expand_nested(text: &str, data: &Value, env: &TemplateEnv, nest: bool) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(['$', '@']) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        if !(from.starts_with("${") || from.starts_with("@{")) {
            out.push_str(&from[..1]);
            rest = &from[1..];
            continue;
        }
        let Some(end) = closing_brace(from) else {
            out.push_str(from);
            rest = "";
            break;
        };
        let inner = &from[2..end];
        let inner = if nest && inner.contains("${") {
            expand_nested(inner, data, env, false)
        } else {
            inner.to_string()
        };
        if from.starts_with("${") {
            out.push_str(&lookup(&inner, data));
        } else {
            let (name, args) = inner.trim().split_once(' ').unwrap_or((inner.trim(), ""));
            match template_fns::call(name, args, env) {
                Some(text) => out.push_str(&text),
                None => out.push_str(&from[..=end]),
            }
        }
        rest = &from[end + 1..];
        if out.len() > MAX_EXPANDED {
            rest = "";
            break;
        }
    }
    out.push_str(rest);
    if out.len() > MAX_EXPANDED {
        let mut cut = MAX_EXPANDED;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Where the `}` closing the `${` / `@{` at the start of `s` is (nested braces counted).
fn closing_brace(s: &str) -> Option<usize> {
    if !(s.starts_with("${") || s.starts_with("@{")) {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `fmt_ph:lc:enc:path` → the value at `path`, written as a phone number, lower-cased, then
/// URL-encoded when asked (in that order, whatever the written order).
fn lookup(spec: &str, data: &Value) -> String {
    let mut path = spec.trim();
    let (mut phone, mut lower, mut encode) = (false, false, false);
    loop {
        if let Some(p) = path.strip_prefix("fmt_ph:") {
            phone = true;
            path = p;
        } else if let Some(p) = path.strip_prefix("lc:") {
            lower = true;
            path = p;
        } else if let Some(p) = path.strip_prefix("enc:url:") {
            encode = true;
            path = p;
        } else if let Some(p) = path.strip_prefix("enc:") {
            encode = true;
            path = p;
        } else {
            break;
        }
    }
    let mut text = value_at(data, path).map(text_of).unwrap_or_default();
    if phone {
        if let Some(written) = template_fns::format_phone(&text, PhoneStyle::National, None) {
            text = written;
        }
    }
    if lower {
        text = text.to_lowercase();
    }
    if encode {
        text = crate::url::percent_encode(&text);
    }
    text
}

fn value_at<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = data;
    for part in path.split('.') {
        v = match v {
            Value::Object(m) => m.get(part).or_else(|| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(part))
                    .map(|(_, x)| x)
            })?,
            Value::Array(a) => {
                let i: i64 = part.parse().ok()?;
                let len = i64::try_from(a.len()).ok()?;
                let idx = if i < 0 { len + i } else { i };
                a.get(usize::try_from(idx).ok()?)?
            }
            _ => return None,
        };
    }
    Some(v)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => format!("{:.6}", n.as_f64().unwrap_or(0.0)),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // 2026-12-06 19:00:00 UTC
    const NOW: u64 = 1_796_583_600_000;

    fn ex(text: &str, data: &Value) -> String {
        expand_str(text, data, &TemplateEnv::at(NOW))
    }

    fn data() -> Value {
        json!({"args": {"day": "Saturday", "City": "New York", "n": 2, "x": 72.5, "list": ["a", "b", "c"]},
               "global_data": {"clinic": "Example Dental"},
               "meta_data": {"contacts": {"sales": "+1555"}},
               "call_id": "c-1"})
    }

    #[test]
    fn templates_expand_paths_prefixes_and_nesting() {
        let d = data();
        assert_eq!(ex("${lc:args.day}", &d), "saturday");
        assert_eq!(ex("${enc:args.city}", &d), "New%20York");
        assert_eq!(ex("${lc:enc:url:args.City}", &d), "new%20york");
        assert_eq!(ex("${enc:lc:args.City}", &d), "new%20york", "lc before enc");
        assert_eq!(ex("${args.n} ${args.x}", &d), "2 72.500000");
        assert_eq!(ex("${args.list.-1}${args.list.0}", &d), "ca");
        assert_eq!(ex("${args.list}", &d), r#"["a","b","c"]"#);
        assert_eq!(
            ex(
                "${meta_data.contacts.${lc:args.dept}}",
                &json!({"args": {"dept": "SALES"}, "meta_data": {"contacts": {"sales": "+1555"}}})
            ),
            "+1555"
        );
        assert_eq!(ex("${args.nothing} and ${nope.x}", &d), " and ");
        assert_eq!(ex("@{echo hi there} @{separate 123}", &d), "hi there 1 2 3");
        assert_eq!(ex("@{strftime_tz UTC %H:%M}", &d), "19:00");
        assert_eq!(ex("@{expr 2 * (3 + ${args.n})}", &d), "10");
        assert_eq!(
            ex(
                "${fmt_ph:args.phone} / @{fmt_ph e164 ${args.phone}}",
                &json!({"args": {"phone": "+1 555 123 4567"}})
            ),
            "(555) 123-4567 / +15551234567"
        );
        assert_eq!(ex("@{nope x} @{expr 1/0}", &d), "@{nope x} @{expr 1/0}");
        assert_eq!(ex("cost $5, ${unclosed", &d), "cost $5, ${unclosed");
        assert_eq!(ex("a@b.c", &d), "a@b.c");
    }

    #[test]
    fn expressions_then_output() {
        let map = json!({
            "expressions": [{"string": "${lc:args.day}", "pattern": "saturday|sunday",
                             "output": {"response": "${global_data.clinic} is closed on weekends."}}],
            "output": {"response": "${global_data.clinic} is open 8 to 5 on ${args.day}."}});
        assert_eq!(
            evaluate(&map, &data()),
            Some(json!({"response": "Example Dental is closed on weekends."}))
        );
        let monday = json!({"args": {"day": "Monday"}, "global_data": {"clinic": "X"}});
        assert_eq!(
            evaluate(&map, &monday),
            Some(json!({"response": "X is open 8 to 5 on Monday."}))
        );
        assert_eq!(evaluate(&json!({"expressions": []}), &monday), None);
    }

    /// `@{sleep}` is counted for the agent to wait out once the function has answered.
    #[test]
    fn sleeps_come_back_with_the_answer() {
        let map = json!({"output": {"response": "@{sleep 1.5}Done.@{sleep 0.5}"}});
        match start(&map, data(), NOW) {
            DataMapStep::Done(out, sleep_ms) => {
                assert_eq!(out, Some(json!({"response": "Done."})));
                assert_eq!(sleep_ms, 2000);
            }
            DataMapStep::Fetch(..) => panic!("no webhook here"),
        }
    }

    fn fetch(step: DataMapStep) -> (HttpRequest, DataMapRun) {
        match step {
            DataMapStep::Fetch(req, run) => (*req, run),
            DataMapStep::Done(out, _) => panic!("expected a webhook, got {out:?}"),
        }
    }

    fn done(step: DataMapStep) -> Option<Value> {
        match step {
            DataMapStep::Done(out, _) => out,
            DataMapStep::Fetch(req, _) => {
                panic!("expected an answer, got a request to {}", req.url)
            }
        }
    }

    /// Webhooks in order: one that needs an argument not given is skipped, one that fails
    /// (its error key) gives way to the next, whose list `foreach` turns into text.
    #[test]
    fn webhooks_foreach_expressions_and_fallbacks() {
        let map = json!({"webhooks": [
            {"url": "https://api.test/needs?x=${args.missing}", "require_args": ["missing"]},
            {"url": "https://api.test/first/${enc:args.city}", "method": "post",
             "headers": {"X-Key": "${not.expanded}"}, "params": {"q": "${args.city}"},
             "error_keys": "error", "output": {"response": "first"}},
            {"url": "https://api.test/list", "input_args_as_params": true,
             "foreach": {"input_key": "items", "output_key": "names", "max": 2, "append": "${this.name}, "},
             "expressions": [{"string": "${count}", "pattern": "^0$", "output": {"response": "none"}}],
             "output": {"response": "Found ${names}in ${input.args.city} (${global_data.clinic})."}}
        ], "output": {"response": "fallback"}});
        let (req, run) = fetch(start(&map, data(), NOW));
        assert_eq!(req.url, "https://api.test/first/New%20York");
        assert_eq!(req.method, "POST");
        assert_eq!(req.body.as_deref(), Some(r#"{"q":"New York"}"#));
        assert!(req
            .headers
            .contains(&("X-Key".into(), "${not.expanded}".into())));
        let (req, run) = fetch(run.on_response(Some(200), r#"{"error": "no such city"}"#));
        assert_eq!(
            (req.url.as_str(), req.method.as_str()),
            ("https://api.test/list", "GET")
        );
        let params: Value = serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        assert_eq!(params["day"], "Saturday", "the arguments as params");
        let answer = done(run.clone().on_response(
            Some(200),
            r#"{"count": 3, "items": [{"name": "Ann"}, {"name": "Bo"}, {"name": "Cy"}]}"#,
        ));
        assert_eq!(
            answer,
            Some(json!({"response": "Found Ann, Bo, in New York (Example Dental)."}))
        );
        assert_eq!(
            done(
                run.clone()
                    .on_response(Some(200), r#"{"count": 0, "items": []}"#)
            ),
            Some(json!({"response": "none"}))
        );
        // Down, garbage, an error status: the top-level output.
        for (code, body) in [(None, ""), (Some(200), "<html>"), (Some(500), "{}")] {
            assert_eq!(
                done(run.clone().on_response(code, body)),
                Some(json!({"response": "fallback"}))
            );
        }
        // An array answer is under `array`.
        let map = json!({"webhooks": [{"url": "https://api.test/a", "output": {"response": "${array.1}"}}]});
        let (_, run) = fetch(start(&map, data(), NOW));
        assert_eq!(
            done(run.on_response(Some(200), r#"["x", "y"]"#)),
            Some(json!({"response": "y"}))
        );
        // Nothing matched and no output at all.
        let map = json!({"webhooks": [{"url": "https://api.test/a", "method": "PATCH"}]});
        assert_eq!(done(start(&map, data(), NOW)), None);
    }

    #[test]
    fn hostile_patterns_and_templates_are_bounded() {
        let d = data();
        // A pattern the regex crate refuses, an enormous one, a catastrophic-backtracking classic.
        for p in ["(?<=x)y", &"a".repeat(5000), "(a+)+$"] {
            let map = json!({"expressions": [{"string": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "pattern": p, "output": {"response": "m"}}]});
            let _ = evaluate(&map, &d);
        }
        let big = "${args.list}".repeat(20_000);
        assert!(ex(&big, &d).len() <= MAX_EXPANDED);
        let deep = "${".repeat(10_000);
        assert_eq!(ex(&deep, &d), deep);
        let nested = format!("{}args.day{}", "${".repeat(10_000), "}".repeat(10_000));
        assert!(ex(&nested, &d).len() <= nested.len());
    }
}

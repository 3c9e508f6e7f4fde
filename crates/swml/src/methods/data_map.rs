//! SWAIG `data_map` functions (swml.md §6.1) and the AI's template language (§5.7): a function
//! the engine answers itself, without a round trip to the user — `expressions` (a templated
//! string searched with a pattern), then the top-level `output`. Webhooks inside a `data_map`
//! are not built: they are skipped (docs/ai.md).
//!
//! Templates: `${path}` into the function's data (`args`, `global_data`, `meta_data`, `call_id`,
//! …), field names matched case-insensitively, negative indexes from the end; the prefixes
//! `lc:` and `enc:` (also spelled `enc:url:`), applied in that order whatever the written order;
//! one level of nesting inside-out (`${meta_data.x.${lc:args.y}}`); a non-string value inserted
//! into text is its JSON, a non-integer number prints with six decimals; a path that leads
//! nowhere is empty. `@{echo …}` and `@{separate …}`; other `@{…}` functions stay as written.

use regex::RegexBuilder;
use serde_json::{Map, Value};

/// Longest template result, and longest pattern, in bytes.
const MAX_EXPANDED: usize = 64 * 1024;
const MAX_PATTERN: usize = 1024;
/// Compiled pattern size limit (the regex crate runs in linear time; this bounds its memory).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The function's answer when `data_map` yields one (`None`: nothing matched and no `output`).
pub(crate) fn evaluate(data_map: &Value, data: &Value) -> Option<Value> {
    if let Some(expressions) = data_map.get("expressions").and_then(Value::as_array) {
        for e in expressions {
            let (Some(string), Some(pattern)) = (
                e.get("string").and_then(Value::as_str),
                e.get("pattern").and_then(Value::as_str),
            ) else {
                continue;
            };
            let subject = expand_str(string, data);
            if matches(pattern, &subject) {
                if let Some(output) = e.get("output") {
                    return Some(expand_value(output, data));
                }
            }
        }
    }
    data_map.get("output").map(|o| expand_value(o, data))
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
pub(crate) fn expand_value(v: &Value, data: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(expand_str(s, data)),
        Value::Array(a) => Value::Array(a.iter().map(|x| expand_value(x, data)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), expand_value(x, data)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// `text` with its `${…}` and `@{…}` templates expanded.
pub(crate) fn expand_str(text: &str, data: &Value) -> String {
    expand_nested(text, data, true)
}

/// `nest`: a `${…}` inside a `${…}` is expanded first (one level only, so a deeply nested
/// template costs no deeper recursion).
fn expand_nested(text: &str, data: &Value, nest: bool) -> String {
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
        if from.starts_with("${") {
            let inner = if nest && inner.contains("${") {
                expand_nested(inner, data, false)
            } else {
                inner.to_string()
            };
            out.push_str(&lookup(&inner, data));
        } else {
            out.push_str(&function(inner, &from[..=end]));
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

/// `@{name args}`: `echo` and `separate`; anything else as written.
fn function(inner: &str, written: &str) -> String {
    let (name, args) = inner.trim().split_once(' ').unwrap_or((inner.trim(), ""));
    match name {
        "echo" => args.to_string(),
        "separate" => args
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(String::from)
            .collect::<Vec<_>>()
            .join(" "),
        _ => written.to_string(),
    }
}

/// `lc:enc:path` → the value at `path`, lower-cased then URL-encoded when asked.
fn lookup(spec: &str, data: &Value) -> String {
    let mut path = spec.trim();
    let (mut lower, mut encode) = (false, false);
    loop {
        if let Some(p) = path.strip_prefix("lc:") {
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
    if lower {
        text = text.to_lowercase();
    }
    if encode {
        text = url_encode(&text);
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

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        json!({"args": {"day": "Saturday", "City": "New York", "n": 2, "x": 72.5, "list": ["a", "b", "c"]},
               "global_data": {"clinic": "Example Dental"},
               "meta_data": {"contacts": {"sales": "+1555"}},
               "call_id": "c-1"})
    }

    #[test]
    fn templates_expand_paths_prefixes_and_nesting() {
        let d = data();
        assert_eq!(expand_str("${lc:args.day}", &d), "saturday");
        assert_eq!(expand_str("${enc:args.city}", &d), "New%20York");
        assert_eq!(expand_str("${lc:enc:url:args.City}", &d), "new%20york");
        assert_eq!(
            expand_str("${enc:lc:args.City}", &d),
            "new%20york",
            "lc before enc"
        );
        assert_eq!(expand_str("${args.n} ${args.x}", &d), "2 72.500000");
        assert_eq!(expand_str("${args.list.-1}${args.list.0}", &d), "ca");
        assert_eq!(expand_str("${args.list}", &d), r#"["a","b","c"]"#);
        assert_eq!(
            expand_str(
                "${meta_data.contacts.${lc:args.dept}}",
                &json!({"args": {"dept": "SALES"}, "meta_data": {"contacts": {"sales": "+1555"}}})
            ),
            "+1555"
        );
        assert_eq!(expand_str("${args.nothing} and ${nope.x}", &d), " and ");
        assert_eq!(
            expand_str("@{echo hi there} @{separate 123}", &d),
            "hi there 1 2 3"
        );
        assert_eq!(
            expand_str("@{strftime_tz UTC %H}", &d),
            "@{strftime_tz UTC %H}"
        );
        assert_eq!(expand_str("cost $5, ${unclosed", &d), "cost $5, ${unclosed");
        assert_eq!(expand_str("a@b.c", &d), "a@b.c");
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

    #[test]
    fn hostile_patterns_and_templates_are_bounded() {
        let d = data();
        // A pattern the regex crate refuses, an enormous one, a catastrophic-backtracking classic.
        for p in ["(?<=x)y", &"a".repeat(5000), "(a+)+$"] {
            let map = json!({"expressions": [{"string": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "pattern": p, "output": {"response": "m"}}]});
            let _ = evaluate(&map, &d);
        }
        let big = "${args.list}".repeat(20_000);
        assert!(expand_str(&big, &d).len() <= MAX_EXPANDED);
        let deep = "${".repeat(10_000);
        assert_eq!(expand_str(&deep, &d), deep);
        let nested = format!("{}args.day{}", "${".repeat(10_000), "}".repeat(10_000));
        assert!(expand_str(&nested, &d).len() <= nested.len());
    }
}

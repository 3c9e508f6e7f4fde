//! Semantic checks beyond the schema, for `dialtone swml validate`: goto labels that do not
//! exist in their section, execute/transfer to sections that do not exist, duplicate labels, and
//! expressions that do not parse.

use serde_json::Value;

use crate::expr;

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// JSON pointer-ish location, e.g. `/sections/main/3/goto`.
    pub path: String,
    pub message: String,
}

/// Everything wrong with a (schema-valid) document that can be known before running it.
pub fn lint(doc: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(sections) = doc.get("sections").and_then(Value::as_object) else {
        return out;
    };
    for (name, steps) in sections {
        let Some(steps) = steps.as_array() else {
            continue;
        };
        let labels: Vec<&str> = steps
            .iter()
            .filter_map(|s| s.get("label").and_then(Value::as_str))
            .collect();
        for (i, l) in labels.iter().enumerate() {
            if labels[..i].contains(l) {
                out.push(Finding {
                    path: format!("/sections/{name}"),
                    message: format!("label `{l}` is defined more than once (the first wins)"),
                });
            }
        }
        walk_steps(
            steps,
            &format!("/sections/{name}"),
            &labels,
            sections,
            &mut out,
        );
    }
    out
}

fn walk_steps(
    steps: &[Value],
    path: &str,
    labels: &[&str],
    sections: &serde_json::Map<String, Value>,
    out: &mut Vec<Finding>,
) {
    for (i, step) in steps.iter().enumerate() {
        let Some((method, params)) = step.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let here = format!("{path}/{i}/{method}");
        match method.as_str() {
            "goto" => {
                let label = match params {
                    Value::String(s) => Some(s.as_str()),
                    other => other.get("label").and_then(Value::as_str),
                };
                if let Some(l) = label {
                    if !labels.contains(&l) {
                        out.push(Finding {
                            path: here.clone(),
                            message: format!(
                                "goto label `{l}` is not a top-level label of this section"
                            ),
                        });
                    }
                }
                if let Some(w) = params.get("when").and_then(Value::as_str) {
                    check_js(w, &format!("{here}/when"), out);
                }
            }
            "execute" | "transfer" => {
                if let Some(dest) = params.get("dest").and_then(Value::as_str) {
                    let literal_section = !dest.contains("${")
                        && !dest.contains("%{")
                        && !dest.trim_start().starts_with('{')
                        && !dest.contains("://")
                        && !dest.starts_with("relay:");
                    if literal_section && !sections.contains_key(dest) {
                        out.push(Finding {
                            path: format!("{here}/dest"),
                            message: format!("section `{dest}` does not exist"),
                        });
                    }
                }
            }
            "cond" => {
                if let Some(entries) = params.as_array() {
                    for (j, e) in entries.iter().enumerate() {
                        if let Some(w) = e.get("when").and_then(Value::as_str) {
                            check_js(w, &format!("{here}/{j}/when"), out);
                        }
                    }
                }
            }
            _ => {}
        }
        // AI/SWAIG parameters use their own template functions (swml.md §5.7), not JavaScript.
        if !matches!(method.as_str(), "ai" | "ai_sidecar" | "amazon_bedrock") {
            check_placeholders(params, &here, out);
        }
        // Blocks see the same section labels (goto in a block jumps among top-level steps).
        for_each_block(method, params, |block, sub| {
            walk_steps(block, &format!("{here}/{sub}"), labels, sections, out)
        });
    }
}

fn for_each_block(method: &str, params: &Value, mut f: impl FnMut(&[Value], String)) {
    match method {
        "cond" => {
            if let Some(entries) = params.as_array() {
                for (j, e) in entries.iter().enumerate() {
                    for key in ["then", "else"] {
                        if let Some(b) = e.get(key).and_then(Value::as_array) {
                            f(b, format!("{j}/{key}"));
                        }
                    }
                }
            }
        }
        "switch" => {
            if let Some(cases) = params.get("case").and_then(Value::as_object) {
                for (k, b) in cases {
                    if let Some(b) = b.as_array() {
                        f(b, format!("case/{k}"));
                    }
                }
            }
            if let Some(b) = params.get("default").and_then(Value::as_array) {
                f(b, "default".into());
            }
        }
        "execute" => {
            if let Some(b) = params.get("on_return").and_then(Value::as_array) {
                f(b, "on_return".into());
            }
        }
        _ => {}
    }
}

/// Checks the JavaScript inside `${…}` of every string (blocks are walked separately).
fn check_placeholders(v: &Value, path: &str, out: &mut Vec<Finding>) {
    match v {
        Value::String(s) => {
            for body in expr::placeholder_bodies(s) {
                if !expr::is_plain_path(body) {
                    check_js(body, path, out);
                }
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                if matches!(
                    k.as_str(),
                    "then" | "else" | "case" | "default" | "on_return" | "when"
                ) {
                    continue;
                }
                check_placeholders(x, path, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                if x.get("then").is_none() && x.get("else").is_none() {
                    check_placeholders(x, path, out);
                }
            }
        }
        _ => {}
    }
}

fn check_js(source: &str, path: &str, out: &mut Vec<Finding>) {
    // `when` may hold placeholders that are pre-expanded as text; check what is left.
    let stripped = expr::blank_placeholders(source);
    if let Err(e) = expr::check_syntax(&stripped) {
        out.push(Finding {
            path: path.to_string(),
            message: format!("expression `{source}` does not parse: {e}"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_missing_labels_sections_and_bad_expressions() {
        let doc = json!({"sections": {
            "main": [
                {"label": "top"}, {"label": "top"},
                {"goto": {"label": "nowhere"}},
                {"goto": {"label": "top", "when": "x >"}},
                {"execute": {"dest": "missing"}},
                {"execute": {"dest": "https://x/y"}},
                {"transfer": {"dest": "${next}"}},
                {"play": {"url": "say:${1 +}"}},
                {"play": {"url": "say:${vars.ok} ${(items.length)}"}},
                {"cond": [{"when": "a ===", "then": [{"goto": {"label": "gone"}}]}]}
            ],
            "sub": [{"return": {}}]
        }});
        let msgs: Vec<String> = lint(&doc)
            .into_iter()
            .map(|f| format!("{} {}", f.path, f.message))
            .collect();
        let has = |s: &str| msgs.iter().any(|m| m.contains(s));
        assert!(has("label `top` is defined more than once"), "{msgs:#?}");
        assert!(has("goto label `nowhere`"));
        assert!(has("`x >` does not parse"));
        assert!(has("section `missing` does not exist"));
        assert!(has("`1 +` does not parse"));
        assert!(has("`a ===` does not parse"));
        assert!(has("/sections/main/9/cond/0/then/0/goto goto label `gone`"));
        assert_eq!(msgs.len(), 7, "{msgs:#?}");
    }

    #[test]
    fn ai_template_functions_are_not_javascript() {
        let doc = json!({"sections": {"main": [{"ai": {"SWAIG": {"functions": [
            {"function": "f", "data_map": {"expressions": [{"string": "${lc:args.day}", "pattern": "x"}]}}
        ]}}}]}});
        assert_eq!(lint(&doc), vec![]);
    }

    #[test]
    fn clean_document_has_no_findings() {
        let doc = json!({"sections": {"main": [
            {"label": "a"}, {"set": {"n": "${n + 1}"}}, {"goto": {"label": "a", "when": "n < 3"}},
            {"execute": {"dest": "sub"}}
        ], "sub": [{"return": "${prompt_value} == 1"}]}});
        assert_eq!(lint(&doc), vec![]);
    }
}

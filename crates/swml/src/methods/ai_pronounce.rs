//! The `ai` agent's `pronounce` rules (swml.md §6.1): `{replace, with, ignore_case = true}`,
//! applied to what the agent says before it is synthesised — the conversation keeps the
//! words as written.

use regex::{Regex, RegexBuilder};
use serde_json::Value;

/// Most rules read, and longest `replace` / `with`.
const MAX_RULES: usize = 100;
const MAX_RULE_CHARS: usize = 256;

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Pronounce {
    pattern: Regex,
    with: String,
    ignore_case: bool,
}

impl PartialEq for Pronounce {
    fn eq(&self, other: &Pronounce) -> bool {
        self.pattern.as_str() == other.pattern.as_str()
            && self.with == other.with
            && self.ignore_case == other.ignore_case
    }
}

/// The rules of `list` (unusable entries are skipped).
pub(crate) fn rules(list: Option<&Value>) -> Vec<Pronounce> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let replace = r.get("replace")?.as_str()?;
            let with = r.get("with")?.as_str()?;
            if replace.is_empty() || replace.len() > MAX_RULE_CHARS || with.len() > MAX_RULE_CHARS {
                return None;
            }
            let ignore_case = r.get("ignore_case").and_then(super::as_bool) != Some(false);
            let pattern = RegexBuilder::new(&regex::escape(replace))
                .case_insensitive(ignore_case)
                .build()
                .ok()?;
            Some(Pronounce {
                pattern,
                with: with.to_string(),
                ignore_case,
            })
        })
        .take(MAX_RULES)
        .collect()
}

/// `text` as it is to be spoken: every rule applied in order.
pub fn pronounced(rules: &[Pronounce], text: &str) -> String {
    let mut out = text.to_string();
    for rule in rules {
        if rule.pattern.is_match(&out) {
            out = rule
                .pattern
                .replace_all(&out, regex::NoExpand(&rule.with))
                .into_owned();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_replace_in_order_and_mind_case_when_asked() {
        let r = rules(Some(&json!([
            {"replace": "SQL", "with": "sequel"},
            {"replace": "Dr.", "with": "Doctor", "ignore_case": false},
            {"replace": "$1", "with": "$0 one"},
            {"replace": "", "with": "x"},
            {"with": "no replace"},
            "nonsense"
        ])));
        assert_eq!(r.len(), 3);
        assert_eq!(
            pronounced(&r, "Ask Dr. Sql about sql, not dr. Who; costs $1."),
            "Ask Doctor sequel about sequel, not dr. Who; costs $0 one."
        );
        assert_eq!(pronounced(&[], "as is"), "as is");
        assert!(rules(Some(&json!({"replace": "a"}))).is_empty());
    }
}

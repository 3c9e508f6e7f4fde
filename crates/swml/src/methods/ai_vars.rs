//! The prompt variables (the signalwire-sdk's `prompt_vars`, swml.md §5.7): what an agent's
//! prompts and its `data_map` templates read of the call, the time and the session's
//! `global_data`. The prompts are templates: `${caller_id_number}`, `${global_data.name}`,
//! `${time_of_day}`, a SWML variable `${my_var}` or `${call.to}`, `@{…}` functions.

use chrono::Timelike;
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use super::data_map::expand_str;
use super::template_fns::{utc, TemplateEnv};
use crate::expr::Scope;

/// What does not change while the agent runs: the script's variables, the call, its direction
/// (`params.direction` when it forces one) and caller, the agent's languages.
pub(crate) fn call_vars(
    scope: &Scope,
    languages: &[String],
    direction: Option<String>,
) -> Map<String, Value> {
    let c = &scope.call;
    let get = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    let mut vars = scope.vars.clone();
    vars.insert("call".into(), Value::Object(c.clone()));
    let direction = direction
        .filter(|d| d == "inbound" || d == "outbound")
        .map_or_else(|| get("direction"), Value::String);
    vars.insert("call_direction".into(), direction);
    vars.insert("caller_id_name".into(), get("from"));
    vars.insert("caller_id_number".into(), get("from"));
    let languages: Vec<String> = if languages.is_empty() {
        vec!["English".into()]
    } else {
        languages.to_vec()
    };
    vars.insert("supported_languages".into(), json!(languages.join(", ")));
    vars.insert("default_language".into(), json!(languages[0]));
    vars
}

/// The prompt variables at `now_ms` (Unix ms) in the zone `local_tz`: the call's, the local
/// date and time, and every key of `global_data` (which win).
pub(crate) fn prompt_vars(
    call_vars: &Map<String, Value>,
    now_ms: u64,
    local_tz: &str,
    global_data: &Map<String, Value>,
) -> Map<String, Value> {
    let zone: Tz = local_tz.trim().parse().unwrap_or(Tz::UTC);
    let local = utc(now_ms).with_timezone(&zone);
    let mut vars = call_vars.clone();
    vars.insert(
        "local_date".into(),
        json!(local.format("%A, %B %-d, %Y").to_string()),
    );
    vars.insert(
        "local_time".into(),
        json!(local.format("%H:%M:%S %Z").to_string()),
    );
    vars.insert("time_of_day".into(), json!(time_of_day(local.hour())));
    for (k, v) in global_data {
        vars.insert(k.clone(), v.clone());
    }
    vars
}

fn time_of_day(hour: u32) -> &'static str {
    match hour {
        0..=11 => "morning",
        12..=17 => "afternoon",
        _ => "evening",
    }
}

/// What a prompt's templates read: the prompt variables at the root, and under `prompt_vars`
/// and `global_data`.
pub(crate) fn prompt_data(vars: Map<String, Value>, global_data: &Map<String, Value>) -> Value {
    let mut root = vars.clone();
    root.insert("prompt_vars".into(), Value::Object(vars));
    root.insert("global_data".into(), Value::Object(global_data.clone()));
    Value::Object(root)
}

/// `text` has a `${…}` or `@{…}` template (else there is nothing to expand, nor data to build).
pub(crate) fn has_templates(text: &str) -> bool {
    text.contains("${") || text.contains("@{")
}

/// `text` with its templates expanded against `data` (at `now_ms`, for `@{…}` functions).
pub(crate) fn expand(text: &str, data: &Value, now_ms: u64) -> String {
    if !has_templates(text) {
        return text.to_string();
    }
    expand_str(text, data, &TemplateEnv::at(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        let object = |v: Value| v.as_object().cloned().unwrap_or_default();
        Scope {
            call: object(
                json!({"from": "+15551230000", "to": "+15559990000", "direction": "inbound"}),
            ),
            vars: object(json!({"plan": "gold"})),
            ..Scope::default()
        }
    }

    #[test]
    fn a_prompt_reads_the_call_the_script_the_time_and_global_data() {
        let call = call_vars(&scope(), &[], None);
        let global = json!({"name": "Ann", "plan": "silver"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        // 2026-12-07 15:30 UTC is 09:30 in Chicago.
        let now_ms = 1_796_657_400_000;
        let vars = prompt_vars(&call, now_ms, "America/Chicago", &global);
        let data = prompt_data(vars, &global);
        let text = "Hi ${name} (${caller_id_number}, ${call_direction}, ${call.to}), plan \
            ${plan} / ${global_data.plan}, ${prompt_vars.default_language}; good ${time_of_day}, \
            ${local_date}. ${missing}@{expr 2 + 3}";
        assert_eq!(
            expand(text, &data, now_ms),
            "Hi Ann (+15551230000, inbound, +15559990000), plan silver / silver, English; good \
             morning, Monday, December 7, 2026. 5"
        );
        assert_eq!(time_of_day(12), "afternoon");
        assert_eq!(time_of_day(23), "evening");
        assert_eq!(expand("no templates", &data, now_ms), "no templates");
        let forced = call_vars(&scope(), &[], Some("outbound".into()));
        assert_eq!(forced["call_direction"], "outbound");
    }
}

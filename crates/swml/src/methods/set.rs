//! `set` and `unset` (swml.md §6.29, §6.42). Keys are names, never expanded; values are expanded
//! in document order so later keys see earlier ones. Dotted keys address nested objects.

use serde_json::{Map, Value};

use crate::run::{Flow, Run};

/// Largest value one `set` may store (its JSON text).
pub const MAX_VARIABLE_BYTES: usize = 64 * 1024;
/// Largest all of a script's variables may be together (their JSON text).
pub const MAX_VARIABLES_BYTES: usize = 1024 * 1024;

fn json_len(v: &Value) -> usize {
    serde_json::to_string(v).map_or(usize::MAX, |s| s.len())
}

pub(crate) fn run_set(run: &mut Run, params: &Value) -> Flow {
    let Some(obj) = params.as_object() else {
        run.warn(
            "relay_script_element_wrong_type",
            "set takes an object of name: value",
        );
        return Flow::Next;
    };
    for (key, raw) in obj {
        let value = run.expand(raw);
        let size = json_len(&value);
        if size > MAX_VARIABLE_BYTES {
            run.warn(
                "relay_script_method_parameter_invalid_value",
                format!("set: `{key}` would hold {size} bytes, more than {MAX_VARIABLE_BYTES}"),
            );
            continue;
        }
        let before = run.scope.vars.clone();
        assign(&mut run.scope.vars, key, value);
        let total = serde_json::to_string(&run.scope.vars).map_or(usize::MAX, |s| s.len());
        if total > MAX_VARIABLES_BYTES {
            run.scope.vars = before;
            run.warn(
                "relay_script_method_parameter_invalid_value",
                format!(
                    "set: `{key}` would make the variables larger than {MAX_VARIABLES_BYTES} bytes"
                ),
            );
        }
    }
    Flow::Next
}

pub(crate) fn run_unset(run: &mut Run, params: &Value) -> Flow {
    let names: Vec<String> = match params {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => {
            run.warn(
                "relay_script_element_wrong_type",
                "unset takes a name or a list of names",
            );
            return Flow::Next;
        }
    };
    for n in names {
        remove(&mut run.scope.vars, &n);
    }
    Flow::Next
}

fn assign(vars: &mut Map<String, Value>, key: &str, value: Value) {
    let mut parts = key.split('.').peekable();
    let mut map = vars;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        let entry = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        map = next;
    }
}

fn remove(vars: &mut Map<String, Value>, key: &str) {
    match key.rsplit_once('.') {
        None => {
            vars.remove(key);
        }
        Some((parent, last)) => {
            let mut map = vars;
            for part in parent.split('.') {
                match map.get_mut(part) {
                    Some(Value::Object(next)) => map = next,
                    _ => return,
                }
            }
            map.remove(last);
        }
    }
}

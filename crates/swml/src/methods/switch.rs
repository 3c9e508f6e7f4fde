//! `switch` (swml.md §6.37, §5.6): exact string match of a variable against case keys.

use serde_json::{Map, Value};

use crate::run::{Flow, Run};

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let Some(obj) = params.as_object() else {
        run.warn("relay_script_element_wrong_type", "switch takes an object");
        return Flow::Next;
    };
    let Some(variable) = obj.get("variable").and_then(Value::as_str) else {
        run.warn(
            "relay_script_method_parameter_missing",
            "switch needs `variable`",
        );
        return Flow::Next;
    };
    let value = variable_text(run, variable);
    let empty = Map::new();
    let cases = obj.get("case").and_then(Value::as_object).unwrap_or(&empty);
    run_cases(run, &value, cases, obj.get("default"))
}

/// The text a switch compares: a name is looked up; a placeholder is expanded.
pub(crate) fn variable_text(run: &mut Run, variable: &str) -> String {
    if variable.contains("${") || variable.contains("%{") {
        return crate::expr::stringify(&run.expand(&Value::String(variable.to_string())));
    }
    run.scope
        .lookup(variable)
        .map(|v| crate::expr::stringify(&v))
        .unwrap_or_default()
}

pub(crate) fn run_cases(
    run: &mut Run,
    value: &str,
    cases: &Map<String, Value>,
    default: Option<&Value>,
) -> Flow {
    let block = cases.get(value).or(default);
    match block {
        Some(b) => super::enter_branch(run, b, "switch case"),
        None => {
            run.warn(
                "relay_script_method_no_matching_condition",
                format!("switch value `{value}` matched no case and there is no default"),
            );
            Flow::Next
        }
    }
}

//! `cond` (swml.md §6.5): the first truthy `when` runs its `then` block; else the `else` block.

use serde_json::Value;

use crate::run::{Flow, Run};

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let Some(entries) = params.as_array() else {
        run.warn(
            "relay_script_element_wrong_type",
            "cond takes a list of {when, then} entries",
        );
        return Flow::Next;
    };
    run_entries(run, entries)
}

/// Shared with the cond-shaped `result` hooks.
pub(crate) fn run_entries(run: &mut Run, entries: &[Value]) -> Flow {
    let last = entries.len().saturating_sub(1);
    for (i, entry) in entries.iter().enumerate() {
        let Some(obj) = entry.as_object() else {
            continue;
        };
        if let Some(when) = obj.get("when") {
            let Some(then) = obj.get("then") else {
                run.warn(
                    "relay_script_method_parameter_missing",
                    "cond entry has `when` but no `then`",
                );
                continue;
            };
            match run.scope.condition(when) {
                Ok(true) => return enter(run, then),
                Ok(false) => {}
                Err(e) => run.expr_error(e),
            }
        } else if let Some(else_block) = obj.get("else") {
            if i == last || !entries[i + 1..].iter().any(|e| e.get("when").is_some()) {
                return enter(run, else_block);
            }
        } else {
            run.warn(
                "relay_script_method_parameter_missing",
                "cond entry needs `when`/`then` or `else`",
            );
        }
    }
    Flow::Next
}

fn enter(run: &mut Run, block: &Value) -> Flow {
    super::enter_branch(run, block, "cond block")
}

//! `prompt.contexts` (swml.md §6.1): a conversation in named contexts of ordered steps. The
//! model is told the base prompt, the context's text and the current step's (with its
//! `step_criteria`), and is offered the engine's own tools to move on: `next_step` among the
//! step's `valid_steps` (the next step in order when it names none) and `change_context` among
//! its `valid_contexts`. A step's `functions` limits the SWAIG functions offered while it runs.
//! The signalwire-sdk's shapes are read too: a context's `prompt` (its text), `valid_steps`,
//! `initial_step`, `post_prompt` and entry parameters (`system_prompt`, `user_prompt`,
//! `consolidate`, `full_reset`), a step's `reset` (the same, when it leaves for a context).

use serde_json::{json, Map, Value};

use super::ai_gather;

/// The engine's tools for moving between steps and contexts.
pub(crate) const NEXT_STEP: &str = "next_step";
pub(crate) const CHANGE_CONTEXT: &str = "change_context";

/// Where a conversation with contexts stands.
#[derive(Debug, Clone)]
pub(crate) struct Contexts {
    all: Map<String, Value>,
    context: String,
    step: usize,
    /// The step's open `gather_info` question (ai_gather.rs), while it gathers.
    gather: Option<usize>,
}

/// What entering a context or step asks of the agent.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Entered {
    /// How the conversation changes (an `isolated` context drops it: `full_reset`).
    pub reset: Reset,
    /// Words to say on the way (`exit_fillers` of the context left, `enter_fillers` of the new).
    pub filler: Option<String>,
}

/// How the conversation changes on a switch: a context's entry parameters, the `reset` of the
/// step that leaves for it, a `context_switch` action.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Reset {
    /// Replaces the agent's prompt.
    pub system_prompt: Option<String>,
    /// Words added as the caller's.
    pub user_prompt: Option<String>,
    /// The model summarises the conversation so far, and the summary replaces it.
    pub consolidate: bool,
    /// The conversation so far is dropped (the prompt stays).
    pub full_reset: bool,
}

impl Reset {
    /// From an object with those keys (`system_pom` / `user_pom` rendered as a prompt's `pom`
    /// is), or a string: a new system prompt.
    pub(crate) fn from_value(v: Option<&Value>) -> Reset {
        let text = |key: &str, pom: &str| -> Option<String> {
            let v = v?;
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| super::ai::prompt_text(&json!({"pom": v.get(pom)?})))
                .filter(|t| !t.trim().is_empty())
        };
        let flag = |key: &str| v.and_then(|v| v.get(key)).and_then(super::as_bool) == Some(true);
        match v {
            Some(Value::String(system)) => Reset {
                system_prompt: Some(system.clone()).filter(|t| !t.trim().is_empty()),
                ..Reset::default()
            },
            _ => Reset {
                system_prompt: text("system_prompt", "system_pom"),
                user_prompt: text("user_prompt", "user_pom"),
                consolidate: flag("consolidate"),
                full_reset: flag("full_reset"),
            },
        }
    }

    /// `over`'s parameters win over these.
    fn overlaid(self, over: Reset) -> Reset {
        Reset {
            system_prompt: over.system_prompt.or(self.system_prompt),
            user_prompt: over.user_prompt.or(self.user_prompt),
            consolidate: over.consolidate || self.consolidate,
            full_reset: over.full_reset || self.full_reset,
        }
    }
}

fn steps_of(context: &Value) -> &[Value] {
    context
        .get("steps")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn names(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(one) => Some(vec![one.clone()]),
        Value::Array(list) => Some(
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    }
}

/// One phrase of a fillers object (`{"en-US": ["…", …], …}`, or a bare list): English first.
fn filler(fillers: Option<&Value>) -> Option<String> {
    let list = match fillers? {
        Value::Array(a) => a,
        Value::Object(m) => m
            .iter()
            .find(|(lang, _)| lang.starts_with("en"))
            .or_else(|| m.iter().next())
            .and_then(|(_, v)| v.as_array())?,
        _ => return None,
    };
    list.iter()
        .filter_map(Value::as_str)
        .find(|s| !s.trim().is_empty())
        .map(str::to_string)
}

impl Contexts {
    /// The prompt's contexts, `None` when it has none; an error names what is malformed.
    pub(crate) fn from_prompt(prompt: &Value) -> Result<Option<Contexts>, String> {
        let Some(all) = prompt.get("contexts") else {
            return Ok(None);
        };
        let Some(all) = all.as_object() else {
            return Err("`prompt.contexts` must be an object".into());
        };
        if !all.contains_key("default") {
            return Err("`prompt.contexts` needs a `default` context".into());
        }
        for (name, context) in all {
            let steps = context.get("steps").and_then(Value::as_array);
            let Some(steps) = steps.filter(|s| !s.is_empty()) else {
                return Err(format!("context `{name}` needs a list of `steps`"));
            };
            for step in steps {
                if step.get("name").and_then(Value::as_str).is_none() {
                    return Err(format!("every step of context `{name}` needs a `name`"));
                }
            }
        }
        let mut contexts = Contexts {
            all: all.clone(),
            context: "default".into(),
            step: 0,
            gather: None,
        };
        contexts.step = contexts.initial_step();
        contexts.enter_step();
        Ok(Some(contexts))
    }

    /// A step is entered: it starts gathering when it has questions.
    fn enter_step(&mut self) {
        self.gather = ai_gather::questions(self.current_step()).map(|_| 0);
    }

    /// A question of the step's `gather_info` is open.
    pub(crate) fn gathering(&self) -> bool {
        self.gather.is_some()
    }

    /// The model's `gather_submit`: the answer accepted (for `global_data`) and the next
    /// question opened — or, after the last, the step's `completion_action` taken; or why it
    /// is refused.
    pub(crate) fn submit(&mut self, args: &Value) -> Result<ai_gather::Answer, String> {
        let index = self.gather.ok_or("no question is open")?;
        let step = self.current_step().clone();
        let answer = ai_gather::submit(&step, index, args)?;
        let count = ai_gather::questions(&step).map_or(0, <[Value]>::len);
        if index + 1 < count {
            self.gather = Some(index + 1);
            return Ok(answer);
        }
        self.gather = None;
        let steps = steps_of(self.current_context());
        let target = match ai_gather::completion(&step) {
            Some("next_step") => Some(self.step + 1).filter(|i| *i < steps.len()),
            Some(name) => steps
                .iter()
                .position(|s| s.get("name").and_then(Value::as_str) == Some(name)),
            None => None,
        };
        if let Some(index) = target {
            self.step = index;
            self.enter_step();
        }
        Ok(answer)
    }

    /// Where the current context starts: its `initial_step`, else its first.
    fn initial_step(&self) -> usize {
        let context = self.current_context();
        let initial = context.get("initial_step").and_then(Value::as_str);
        steps_of(context)
            .iter()
            .position(|s| initial.is_some() && s.get("name").and_then(Value::as_str) == initial)
            .unwrap_or(0)
    }

    /// The current context's `post_prompt` (a string, or a prompt object), which stands in for
    /// the agent's while it is current.
    pub(crate) fn post_prompt(&self) -> Option<String> {
        match self.current_context().get("post_prompt")? {
            Value::String(text) => Some(text.clone()),
            other => super::ai::prompt_text(other),
        }
        .filter(|t| !t.trim().is_empty())
    }

    fn current_context(&self) -> &Value {
        self.all.get(&self.context).unwrap_or(&Value::Null)
    }

    fn current_step(&self) -> &Value {
        steps_of(self.current_context())
            .get(self.step)
            .unwrap_or(&Value::Null)
    }

    fn step_name(&self) -> &str {
        self.current_step()
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The step ends the conversation once the agent has answered in it.
    pub(crate) fn is_end(&self) -> bool {
        self.current_step().get("end").and_then(super::as_bool) == Some(true)
    }

    /// The agent goes on without waiting for the caller once it has spoken in this step.
    pub(crate) fn skips_user_turn(&self) -> bool {
        self.current_step()
            .get("skip_user_turn")
            .and_then(super::as_bool)
            == Some(true)
    }

    fn valid_steps(&self) -> Vec<String> {
        let steps = steps_of(self.current_context());
        let next = steps
            .get(self.step + 1)
            .and_then(|s| s.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let listed = names(self.current_step().get("valid_steps"))
            .or_else(|| names(self.current_context().get("valid_steps")));
        match listed {
            Some(list) => list
                .into_iter()
                .filter_map(|n| if n == "next" { next.clone() } else { Some(n) })
                .filter(|n| {
                    steps
                        .iter()
                        .any(|s| s.get("name").and_then(Value::as_str) == Some(n))
                })
                .collect(),
            None if self.is_end() => Vec::new(),
            None => next.into_iter().collect(),
        }
    }

    fn valid_contexts(&self) -> Vec<String> {
        names(self.current_step().get("valid_contexts"))
            .or_else(|| names(self.current_context().get("valid_contexts")))
            .unwrap_or_default()
            .into_iter()
            .filter(|c| self.all.contains_key(c))
            .collect()
    }

    /// The SWAIG function may be offered in this step (`functions`: a list of names, or
    /// `"none"`; all when absent).
    pub(crate) fn allows(&self, function: &str) -> bool {
        if let Some(index) = self.gather {
            return ai_gather::allows(self.current_step(), index, function);
        }
        match self.current_step().get("functions") {
            None => true,
            Some(Value::String(s)) => s != "none" && s == function,
            Some(Value::Array(list)) => list.iter().any(|n| n.as_str() == Some(function)),
            Some(_) => false,
        }
    }

    /// What the system prompt says about the current context and step.
    pub(crate) fn instructions(&self) -> String {
        let mut out = String::new();
        let context = self.current_context();
        // The signalwire-sdk writes a context's own text as `prompt`.
        let text = super::ai::prompt_text(context).or_else(|| {
            context
                .get("prompt")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        if let Some(text) = text {
            if !text.trim().is_empty() {
                out.push_str(text.trim());
                out.push_str("\n\n");
            }
        }
        let step = self.current_step();
        out.push_str(&format!("## Current step: {}\n\n", self.step_name()));
        if let Some(index) = self.gather {
            out.push_str(&ai_gather::instructions(step, index));
            return out;
        }
        if let Some(text) = super::ai::prompt_text(step) {
            out.push_str(text.trim());
            out.push_str("\n\n");
        }
        if let Some(criteria) = step.get("step_criteria").and_then(Value::as_str) {
            out.push_str(&format!("This step is complete when: {criteria}\n\n"));
        }
        let steps = self.valid_steps();
        if !steps.is_empty() {
            out.push_str(&format!(
                "When this step is complete, call `{NEXT_STEP}` with one of: {}.\n",
                steps.join(", ")
            ));
        }
        let contexts = self.valid_contexts();
        if !contexts.is_empty() {
            out.push_str(&format!(
                "To change the topic, call `{CHANGE_CONTEXT}` with one of: {}.\n",
                contexts.join(", ")
            ));
        }
        out.trim_end().to_string()
    }

    /// The engine's tools this step offers the model.
    pub(crate) fn tools(&self) -> Vec<Value> {
        if let Some(index) = self.gather {
            return ai_gather::tool(self.current_step(), index)
                .into_iter()
                .collect();
        }
        let mut out = Vec::new();
        let steps = self.valid_steps();
        if !steps.is_empty() {
            out.push(json!({"type": "function", "function": {
                "name": NEXT_STEP,
                "description": "Move the conversation to its next step once the current step is complete.",
                "parameters": {"type": "object", "properties": {
                    "step": {"type": "string", "enum": steps, "description": "The step to move to."}},
                    "required": ["step"]}}}));
        }
        let contexts = self.valid_contexts();
        if !contexts.is_empty() {
            out.push(json!({"type": "function", "function": {
                "name": CHANGE_CONTEXT,
                "description": "Change the conversation to another context.",
                "parameters": {"type": "object", "properties": {
                    "context": {"type": "string", "enum": contexts, "description": "The context to change to."}},
                    "required": ["context"]}}}));
        }
        out
    }

    /// The model's `next_step` (only to a valid step) or a `change_step` action (`checked`
    /// false: any step of the current context).
    pub(crate) fn go_step(&mut self, name: &str, checked: bool) -> Result<Entered, String> {
        if checked && !self.valid_steps().iter().any(|s| s == name) {
            return Err(format!(
                "`{name}` is not a step you can move to now; valid: {}",
                self.valid_steps().join(", ")
            ));
        }
        let index = steps_of(self.current_context())
            .iter()
            .position(|s| s.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| format!("there is no step `{name}`"))?;
        self.step = index;
        self.enter_step();
        Ok(Entered::default())
    }

    /// The model's `change_context` (only to a valid context) or a `change_context` action
    /// (`checked` false: any context).
    pub(crate) fn go_context(&mut self, name: &str, checked: bool) -> Result<Entered, String> {
        if checked && !self.valid_contexts().iter().any(|c| c == name) {
            return Err(format!(
                "`{name}` is not a context you can change to now; valid: {}",
                self.valid_contexts().join(", ")
            ));
        }
        let Some(next) = self.all.get(name) else {
            return Err(format!("there is no context `{name}`"));
        };
        let mut reset = Reset::from_value(Some(next))
            .overlaid(Reset::from_value(self.current_step().get("reset")));
        reset.full_reset |= next.get("isolated").and_then(super::as_bool) == Some(true);
        let filler = filler(self.current_context().get("exit_fillers"))
            .into_iter()
            .chain(filler(next.get("enter_fillers")))
            .collect::<Vec<_>>();
        self.context = name.to_string();
        self.step = self.initial_step();
        self.enter_step();
        Ok(Entered {
            reset,
            filler: (!filler.is_empty()).then(|| filler.join(" ")),
        })
    }

    #[cfg(test)]
    pub(crate) fn position(&self) -> (String, String) {
        (self.context.clone(), self.step_name().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt() -> Value {
        json!({"text": "You are a clinic's assistant.", "contexts": {
            "default": {"steps": [
                {"name": "greet", "text": "Greet the caller.", "step_criteria": "the caller said their name",
                 "functions": "none"},
                {"name": "ask", "text": "Ask what they need.", "functions": ["lookup"],
                 "valid_steps": ["next", "greet"], "valid_contexts": ["billing"]},
                {"name": "bye", "text": "Say goodbye.", "end": true}
            ]},
            "billing": {"text": "You handle bills.", "isolated": true,
                        "enter_fillers": {"en-US": ["One moment, billing here."]},
                        "steps": [{"name": "bill", "pom": [{"title": "Bills", "body": "Explain the bill."}],
                                   "skip_user_turn": true}]}}})
    }

    #[test]
    fn steps_move_in_order_and_limit_the_functions() {
        let mut c = Contexts::from_prompt(&prompt()).unwrap().unwrap();
        let text = c.instructions();
        assert!(text.contains("## Current step: greet"), "{text}");
        assert!(text.contains("complete when: the caller said their name"));
        assert!(text.contains("call `next_step` with one of: ask."));
        assert!(!c.allows("lookup"), "`none`");
        let tools = c.tools();
        assert_eq!(tools.len(), 1);
        assert_eq!(
            tools[0]["function"]["parameters"]["properties"]["step"]["enum"],
            json!(["ask"])
        );
        assert!(c.go_step("bye", true).is_err(), "not valid from greet");
        c.go_step("ask", true).unwrap();
        assert!(c.allows("lookup") && !c.allows("other"));
        assert_eq!(c.tools().len(), 2);
        assert!(c.instructions().contains("one of: bye, greet."));
        c.go_step("bye", true).unwrap();
        assert!(c.is_end() && c.tools().is_empty());
        // An action may go anywhere in the context.
        c.go_step("greet", false).unwrap();
        assert!(c.go_step("nowhere", false).is_err());
    }

    #[test]
    fn contexts_change_with_fillers_and_isolation() {
        let mut c = Contexts::from_prompt(&prompt()).unwrap().unwrap();
        assert!(
            c.go_context("billing", true).is_err(),
            "not valid from greet"
        );
        c.go_step("ask", true).unwrap();
        let entered = c.go_context("billing", true).unwrap();
        assert_eq!(
            entered,
            Entered {
                reset: Reset {
                    full_reset: true,
                    ..Reset::default()
                },
                filler: Some("One moment, billing here.".into())
            }
        );
        assert_eq!(c.position(), ("billing".into(), "bill".into()));
        assert!(c.skips_user_turn());
        let text = c.instructions();
        assert!(text.starts_with("You handle bills."), "{text}");
        assert!(text.contains("## Bills"), "{text}");
    }

    #[test]
    fn a_leaving_steps_reset_wins_over_the_contexts_entry_parameters() {
        let prompt = json!({"contexts": {
            "default": {"steps": [{"name": "a", "valid_contexts": ["b"],
                "reset": {"user_prompt": "from the step", "consolidate": true}}]},
            "b": {"system_prompt": "B", "user_prompt": "from the context", "isolated": true,
                  "initial_step": "two", "steps": [{"name": "one"}, {"name": "two"}]}}});
        let mut c = Contexts::from_prompt(&prompt).unwrap().unwrap();
        let entered = c.go_context("b", true).unwrap();
        assert_eq!(
            entered.reset,
            Reset {
                system_prompt: Some("B".into()),
                user_prompt: Some("from the step".into()),
                consolidate: true,
                full_reset: true,
            }
        );
        assert_eq!(c.position(), ("b".into(), "two".into()));
        assert_eq!(
            Reset::from_value(Some(&json!("just a prompt")))
                .system_prompt
                .as_deref(),
            Some("just a prompt")
        );
        assert_eq!(Reset::from_value(Some(&json!(42))), Reset::default());
    }

    #[test]
    fn malformed_contexts_are_refused() {
        for bad in [
            json!({"contexts": []}),
            json!({"contexts": {"other": {"steps": [{"name": "a"}]}}}),
            json!({"contexts": {"default": {"steps": []}}}),
            json!({"contexts": {"default": {"steps": [{"text": "no name"}]}}}),
        ] {
            assert!(Contexts::from_prompt(&bad).is_err(), "{bad}");
        }
        assert!(Contexts::from_prompt(&json!({"text": "x"}))
            .unwrap()
            .is_none());
    }
}

//! A step's `gather_info` (the signalwire-sdk's gather mode): the agent asks the step's
//! questions one at a time. While a question is open the system message asks it (and says how
//! to answer), the model is offered `gather_submit` and the question's own `functions` only,
//! and an accepted answer goes to `global_data` (under `output_key` when there is one) without
//! leaving the call or its result in the conversation.

use serde_json::{json, Value};

/// The engine's tool for an answer.
pub(crate) const GATHER_SUBMIT: &str = "gather_submit";

/// The step's questions, if it gathers (`gather_info.questions`, a non-empty list).
pub(crate) fn questions(step: &Value) -> Option<&[Value]> {
    step.get("gather_info")?
        .get("questions")?
        .as_array()
        .map(Vec::as_slice)
        .filter(|q| !q.is_empty())
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
}

fn kind(question: &Value) -> &str {
    match text(question, "type") {
        Some(t @ ("integer" | "number" | "boolean")) => t,
        _ => "string",
    }
}

fn confirms(question: &Value) -> bool {
    question.get("confirm").and_then(super::as_bool) == Some(true)
}

/// What the system message says while question `index` of `step` is open.
pub(crate) fn instructions(step: &Value, index: usize) -> String {
    let Some(question) = questions(step).and_then(|q| q.get(index)) else {
        return String::new();
    };
    let mut out = String::new();
    if let Some(preamble) = step.get("gather_info").and_then(|g| text(g, "prompt")) {
        out.push_str(preamble.trim());
        out.push_str("\n\n");
    }
    let asked = text(question, "question").unwrap_or("the next question");
    out.push_str(&format!("Ask the user: \"{asked}\"\n"));
    match kind(question) {
        "integer" => out.push_str("The answer is a whole number.\n"),
        "number" => out.push_str("The answer is a number.\n"),
        "boolean" => out.push_str("The answer is yes or no.\n"),
        _ => {}
    }
    if confirms(question) {
        out.push_str(
            "You MUST confirm the answer with the user before submitting: read it back and \
             wait for their yes.\n",
        );
    }
    if let Some(extra) = text(question, "prompt") {
        out.push_str(extra.trim());
        out.push('\n');
    }
    out.push_str(&format!(
        "When you have the answer, call the `{GATHER_SUBMIT}` function with it.\n\
         Do not ask the user any other questions."
    ));
    out
}

/// The `gather_submit` tool for question `index`: its `answer` typed as the question's `type`,
/// and `confirmed_by_user` when the question must be confirmed.
pub(crate) fn tool(step: &Value, index: usize) -> Option<Value> {
    let question = questions(step)?.get(index)?;
    let mut properties =
        json!({"answer": {"type": kind(question), "description": "The user's answer."}});
    let mut required = vec!["answer"];
    if confirms(question) {
        properties["confirmed_by_user"] = json!({"type": "string", "enum": ["true", "false"],
            "description": "\"true\" once the user has confirmed the answer read back to them."});
        required.push("confirmed_by_user");
    }
    Some(json!({"type": "function", "function": {
        "name": GATHER_SUBMIT,
        "description": "Submit the user's answer to the current question.",
        "parameters": {"type": "object", "properties": properties, "required": required}}}))
}

/// The SWAIG functions question `index` opens (`functions`: names).
pub(crate) fn allows(step: &Value, index: usize, function: &str) -> bool {
    questions(step)
        .and_then(|q| q.get(index))
        .and_then(|q| q.get("functions"))
        .and_then(Value::as_array)
        .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(function)))
}

/// An accepted answer: where it goes in `global_data`.
#[derive(Debug, PartialEq)]
pub(crate) struct Answer {
    pub output_key: Option<String>,
    pub key: String,
    pub value: Value,
}

/// The model's `gather_submit` for question `index`: the answer as the question's type, or
/// why it is refused (said to the model).
pub(crate) fn submit(step: &Value, index: usize, args: &Value) -> Result<Answer, String> {
    let question = questions(step)
        .and_then(|q| q.get(index))
        .ok_or("there is no open question")?;
    let key = text(question, "key").ok_or("the question has no key")?;
    let given = args
        .get("answer")
        .filter(|a| !a.is_null())
        .ok_or("`answer` is missing: ask the user and submit their answer")?;
    if confirms(question) {
        let confirmed = match args.get("confirmed_by_user") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        if !confirmed {
            return Err(
                "Read the answer back to the user and get their confirmation first, \
                        then call gather_submit again with confirmed_by_user \"true\"."
                    .into(),
            );
        }
    }
    let value = typed(kind(question), given).ok_or_else(|| match kind(question) {
        "integer" => "The answer must be a whole number.".to_string(),
        "number" => "The answer must be a number.".to_string(),
        _ => "The answer must be yes or no (true or false).".to_string(),
    })?;
    let output_key = step
        .get("gather_info")
        .and_then(|g| text(g, "output_key"))
        .map(str::to_string);
    Ok(Answer {
        output_key,
        key: key.to_string(),
        value,
    })
}

fn typed(kind: &str, given: &Value) -> Option<Value> {
    let as_text = crate::expr::stringify(given);
    let trimmed = as_text.trim();
    match kind {
        "integer" => given
            .as_i64()
            .or_else(|| {
                given
                    .as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64)
            })
            .or_else(|| trimmed.parse().ok())
            .map(Value::from),
        "number" => given
            .as_f64()
            .or_else(|| trimmed.parse::<f64>().ok())
            .filter(|f| f.is_finite())
            .map(Value::from),
        "boolean" => match given {
            Value::Bool(b) => Some(Value::Bool(*b)),
            _ => match trimmed.to_ascii_lowercase().as_str() {
                "true" | "yes" => Some(Value::Bool(true)),
                "false" | "no" => Some(Value::Bool(false)),
                _ => None,
            },
        },
        _ => Some(Value::String(as_text)),
    }
}

/// Where the step goes once its last question is answered: `Some(name)` of a step to move to
/// (`completion_action`: `"next_step"` is the next in order), `None` to stay in it.
pub(crate) fn completion(step: &Value) -> Option<&str> {
    step.get("gather_info")
        .and_then(|g| text(g, "completion_action"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> Value {
        json!({"name": "intake", "text": "Help them.", "gather_info": {
            "output_key": "profile", "prompt": "Introduce yourself first.",
            "completion_action": "next_step",
            "questions": [
                {"key": "name", "question": "What is your name?"},
                {"key": "age", "question": "How old are you?", "type": "integer", "confirm": true,
                 "prompt": "Check it with lookup_age.", "functions": ["lookup_age"]}]}})
    }

    #[test]
    fn each_question_is_asked_typed_and_confirmed() {
        let step = step();
        let first = instructions(&step, 0);
        assert!(
            first.starts_with("Introduce yourself first.\n\nAsk the user: \"What is your name?\""),
            "{first}"
        );
        assert!(!first.contains("confirm"));
        let tool0 = tool(&step, 0).unwrap();
        assert_eq!(
            tool0["function"]["parameters"]["required"],
            json!(["answer"])
        );
        assert_eq!(
            submit(&step, 0, &json!({"answer": "Ann"})),
            Ok(Answer {
                output_key: Some("profile".into()),
                key: "name".into(),
                value: json!("Ann")
            })
        );
        assert!(!allows(&step, 0, "lookup_age"));

        let second = instructions(&step, 1);
        assert!(
            second.contains("whole number") && second.contains("MUST confirm"),
            "{second}"
        );
        assert!(second.contains("Check it with lookup_age."));
        let tool1 = tool(&step, 1).unwrap();
        assert_eq!(
            tool1["function"]["parameters"]["properties"]["answer"]["type"],
            "integer"
        );
        assert_eq!(
            tool1["function"]["parameters"]["required"],
            json!(["answer", "confirmed_by_user"])
        );
        assert!(allows(&step, 1, "lookup_age"));
        // Not confirmed, not a whole number: refused, with why.
        assert!(submit(&step, 1, &json!({"answer": 42}))
            .unwrap_err()
            .contains("confirmation"));
        let not_a_number = json!({"answer": "forty", "confirmed_by_user": "true"});
        assert!(submit(&step, 1, &not_a_number)
            .unwrap_err()
            .contains("whole number"));
        let ok = submit(
            &step,
            1,
            &json!({"answer": "42", "confirmed_by_user": "true"}),
        )
        .unwrap();
        assert_eq!(ok.value, json!(42));
        assert_eq!(completion(&step), Some("next_step"));
        assert!(
            submit(&step, 2, &json!({"answer": 1})).is_err(),
            "no third question"
        );
    }

    #[test]
    fn answers_take_the_questions_types() {
        assert_eq!(typed("number", &json!("2.5")), Some(json!(2.5)));
        assert_eq!(typed("boolean", &json!("Yes")), Some(json!(true)));
        assert_eq!(typed("boolean", &json!("maybe")), None);
        assert_eq!(typed("integer", &json!(3.0)), Some(json!(3)));
        assert_eq!(typed("integer", &json!(3.5)), None);
        assert_eq!(typed("string", &json!(12)), Some(json!("12")));
        assert!(questions(&json!({"gather_info": {"questions": []}})).is_none());
    }
}

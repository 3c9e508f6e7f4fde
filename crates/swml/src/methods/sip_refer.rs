//! `sip_refer` (swml.md §6.30): blind transfer of the SIP call by REFER, blocking until the
//! outcome. The step becomes the same typed `calling.refer` params the REST command carries
//! ([`Effect::Refer`]); the runtime completes with [`Completion::Refer`], and the step sets
//! `sip_refer_to`, `sip_refer_result` (`success` | `failed`), `return_value` (the same word),
//! `sip_refer_response_code` (the answer to the REFER, `"202"`) and
//! `sip_refer_to_response_code` (the final status the NOTIFYs reported, `"200"`), the codes
//! as strings (swml.md §4.4), absent when none came.

use control::command::{ReferDevice, ReferDeviceKind, ReferParams, ReferTarget};
use serde_json::Value;

use super::set_var;
use crate::run::{Completion, Effect, Flow, ReferResult, Run, Waiting};

fn is_sip_uri(s: &str) -> bool {
    let lower = s.trim().to_ascii_lowercase();
    (lower.starts_with("sip:") || lower.starts_with("sips:")) && s.trim().len() > 4
}

fn failed(run: &mut Run, to: &str, code: &'static str, message: String) -> Flow {
    run.warn(code, format!("sip_refer: {message}"));
    set_var(run, "sip_refer_to", to);
    set_var(run, "sip_refer_result", "failed");
    set_var(run, "return_value", "failed");
    run.scope.vars.remove("sip_refer_response_code");
    run.scope.vars.remove("sip_refer_to_response_code");
    Flow::Next
}

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let p = run.expand(params);
    let text = |key: &str| {
        p.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let Some(to) = text("to_uri") else {
        return failed(
            run,
            "",
            "relay_script_method_parameter_missing",
            "`to_uri` is required".into(),
        );
    };
    if !is_sip_uri(&to) {
        return failed(
            run,
            &to,
            "relay_script_method_parameter_invalid_value",
            format!("`to_uri` {to:?} is not a sip: URI"),
        );
    }
    let refer = ReferParams {
        device: ReferDevice {
            kind: ReferDeviceKind::Sip,
            params: ReferTarget {
                to: to.clone(),
                from: None,
                username: text("username"),
                password: text("password"),
            },
        },
        status_url: text("status_url"),
    };
    Flow::Wait(Waiting::Refer { to }, Some(Box::new(Effect::Refer(refer))))
}

pub(crate) fn on_completion(run: &mut Run, to: String, completion: Completion) {
    let r = match completion {
        Completion::Refer(r) => r,
        Completion::Failed { message } => {
            run.warn(
                "relay_script_method_execute_failed",
                format!("sip_refer failed: {message}"),
            );
            ReferResult::default()
        }
        _ => {
            run.warn(
                "relay_script_internal_error",
                "sip_refer completed with the wrong kind of result",
            );
            ReferResult::default()
        }
    };
    let word = if r.success { "success" } else { "failed" };
    set_var(run, "sip_refer_to", &to);
    set_var(run, "sip_refer_result", word);
    set_var(run, "return_value", word);
    for (name, code) in [
        ("sip_refer_response_code", r.response_code),
        ("sip_refer_to_response_code", r.notify_code),
    ] {
        match code {
            Some(c) => set_var(run, name, &c.to_string()),
            None => {
                run.scope.vars.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::run::{Completion, Effect, ReferResult, Run};
    use serde_json::{json, Map, Value};

    fn start(step: Value) -> (Run, Option<Effect>) {
        let doc = json!({"version": "1.0.0", "sections": {"main": [step, {"hangup": {}}]}});
        let mut run = Run::new(doc, Map::new(), Map::new());
        run.start(0);
        let mut refer = None;
        while let Some(e) = run.poll_effect() {
            if matches!(e, Effect::Refer(_)) {
                refer = Some(e);
                break;
            }
        }
        (run, refer)
    }

    fn var(run: &Run, name: &str) -> Option<Value> {
        run.vars().get(name).cloned()
    }

    #[test]
    fn becomes_the_rest_refer_params_and_sets_the_result_variables() {
        let (mut run, effect) = start(json!({"sip_refer": {
            "to_uri": "sip:bob@pbx.example", "username": "u", "password": "p",
            "status_url": "https://hooks.example/refer"
        }}));
        let Some(Effect::Refer(p)) = effect else {
            panic!("no refer effect")
        };
        assert_eq!(p.device.params.to, "sip:bob@pbx.example");
        assert_eq!(p.device.params.username.as_deref(), Some("u"));
        assert_eq!(p.device.params.password.as_deref(), Some("p"));
        assert_eq!(p.status_url.as_deref(), Some("https://hooks.example/refer"));
        run.complete(
            5,
            Completion::Refer(ReferResult {
                success: true,
                response_code: Some(202),
                notify_code: Some(200),
            }),
        );
        assert_eq!(var(&run, "sip_refer_result"), Some(json!("success")));
        assert_eq!(var(&run, "return_value"), Some(json!("success")));
        assert_eq!(
            var(&run, "sip_refer_to"),
            Some(json!("sip:bob@pbx.example"))
        );
        assert_eq!(var(&run, "sip_refer_response_code"), Some(json!("202")));
        assert_eq!(var(&run, "sip_refer_to_response_code"), Some(json!("200")));
    }

    #[test]
    fn a_refused_refer_fails_without_a_notify_code() {
        let (mut run, _) = start(json!({"sip_refer": {"to_uri": "sip:bob@pbx"}}));
        run.complete(
            5,
            Completion::Refer(ReferResult {
                success: false,
                response_code: Some(603),
                notify_code: None,
            }),
        );
        assert_eq!(var(&run, "sip_refer_result"), Some(json!("failed")));
        assert_eq!(var(&run, "sip_refer_response_code"), Some(json!("603")));
        assert_eq!(var(&run, "sip_refer_to_response_code"), None);
    }

    #[test]
    fn a_refused_command_fails_the_step_and_the_script_goes_on() {
        let (mut run, _) = start(json!({"sip_refer": {"to_uri": "sip:bob@pbx"}}));
        run.complete(
            5,
            Completion::Failed {
                message: "not a SIP call".into(),
            },
        );
        assert_eq!(var(&run, "sip_refer_result"), Some(json!("failed")));
        assert!(matches!(run.poll_effect(), Some(Effect::Warning(_))));
    }

    #[test]
    fn a_target_that_is_no_sip_uri_fails_at_once() {
        let (run, effect) = start(json!({"sip_refer": {"to_uri": "+15551234567"}}));
        assert!(effect.is_none());
        assert_eq!(var(&run, "sip_refer_result"), Some(json!("failed")));
        assert_eq!(var(&run, "sip_refer_to"), Some(json!("+15551234567")));
    }
}

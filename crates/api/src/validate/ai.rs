//! AI agent controls: `calling.ai_hold`, `.ai_unhold`, `.ai_message`, `.ai.stop`
//! (calling-api.md §6.22–§6.25).

use serde_json::Value;

use super::codes::{INVALID_PARAMETER, MISSING_REQUIRED_PARAMETER};
use super::fields::{check_integer, Limits, Obj};

/// The older RPC document's maximum and default hold (A8).
const MAX_HOLD_SECS: i64 = 300;

/// `timeout` as the spec's numeric string or the SDK's number (A8), normalised to integer seconds.
pub fn hold(p: &mut Obj<'_>) {
    p.field("timeout", false, |v| {
        let secs = match v {
            Value::Number(_) => check_integer(v, Limits::ANY).ok().map(|(n, _)| n),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match secs {
            Some(secs) if (1..=MAX_HOLD_SECS).contains(&secs) => Ok(((), Value::from(secs))),
            _ => Err((
                INVALID_PARAMETER,
                format!("must be a whole number of seconds between 1 and {MAX_HOLD_SECS}"),
            )),
        }
    });
    p.opt_str("prompt");
}

/// The TypeSpec has no params; the SDK and RELAY send `prompt` (A24).
pub fn unhold(p: &mut Obj<'_>) {
    p.opt_str("prompt");
}

pub fn message(p: &mut Obj<'_>) {
    let text = p.opt_str("message_text");
    p.opt_object("reset", |r| {
        r.opt_bool("full_reset");
        r.opt_str("user_prompt");
        r.opt_str("system_prompt");
    });
    p.opt_any_object("global_data");
    if !p.present("message_text") && !p.present("reset") && !p.present("global_data") {
        p.fail(
            "message_text",
            MISSING_REQUIRED_PARAMETER,
            "is required unless reset or global_data is given",
        );
    }
    p.opt_enum("role", &["system", "user", "assistant"]);
    if text.is_some() {}
}

/// `control_id` is reserved and ignored, but kept when sent.
pub fn stop(p: &mut Obj<'_>) {
    p.opt_str("control_id");
}

//! Commands whose params are nothing, a `control_id`, or one free-form object.

use super::fields::Obj;

/// `calling.disconnect`, `calling.denoise(.stop)`, `calling.ai_sidecar.stop/.status`: `{}`.
pub fn no_params(_: &mut Obj<'_>) {}

/// The `.pause/.resume/.stop/.start_input_timers` family and the fax stops: the operation's
/// `control_id` is required.
pub fn control_id_only(p: &mut Obj<'_>) {
    required_control_id(p);
}

/// `calling.transcribe` (§6.19): `control_id` (generated when absent, A2) and `status_url`.
pub fn transcribe(p: &mut Obj<'_>) {
    control_id_or_generated(p);
    p.opt_http_url("status_url");
}

/// `calling.user_event` (§6.32): `event` is any JSON object.
pub fn user_event(p: &mut Obj<'_>) {
    p.req_any_object("event");
}

/// The handle of an operation already running.
pub fn required_control_id(p: &mut Obj<'_>) {
    p.req_str("control_id");
}

/// The handle of an operation being started: a fresh UUID when the caller sends none (A2).
pub fn control_id_or_generated(p: &mut Obj<'_>) {
    if p.present("control_id") {
        p.req_str("control_id");
    } else {
        p.put("control_id", uuid::Uuid::new_v4().to_string());
    }
}

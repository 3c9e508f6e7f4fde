//! `calling.collect` (calling-api.md §6.11): DTMF and/or speech.

use super::codes::INVALID_PARAMETER;
use super::fields::{Limits, Obj};
use super::formats;
use super::simple::control_id_or_generated;

const SPEECH_ENGINES: [&str; 3] = ["Google", "Google.V2", "Deepgram"];

pub fn collect(p: &mut Obj<'_>) {
    // Documented as a 400, not a 422 (§5, §6.11).
    if !p.present("digits") && !p.present("speech") {
        p.mark_bad_request();
        return;
    }
    control_id_or_generated(p);
    p.opt_num("initial_timeout", Limits::POSITIVE);
    p.opt_object("digits", digits);
    p.opt_object("speech", speech);
    p.opt_bool("continuous");
    p.opt_bool("partial_results");
    p.opt_bool("send_start_of_input");
    // A5: the REST default is false — timers wait for calling.collect.start_input_timers.
    p.opt_bool("start_input_timers");
    p.opt_http_url("status_url");
}

fn digits(d: &mut Obj<'_>) {
    d.req_int("max", Limits::between(1.0, f64::from(i32::MAX)));
    d.opt_str_where(
        "terminators",
        formats::is_dtmf,
        INVALID_PARAMETER,
        "may only contain 0-9, A-D, * and # (empty disables terminators)",
    );
    d.opt_num("digit_timeout", Limits::POSITIVE);
}

fn speech(s: &mut Obj<'_>) {
    s.opt_num("end_silence_timeout", Limits::POSITIVE);
    s.opt_num("speech_timeout", Limits::POSITIVE);
    s.opt_nonempty_str("language");
    s.opt_str_list("hints", 0);
    s.opt_str("model");
    s.opt_enum("engine", &SPEECH_ENGINES);
}

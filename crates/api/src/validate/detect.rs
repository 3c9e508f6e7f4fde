//! `calling.detect` (calling-api.md §6.13): answering machine, fax tone or DTMF detector.

use serde_json::Value;

use super::codes::{INVALID_PARAMETER, MUST_BE_OBJECT};
use super::fields::{empty_map, Limits, Obj};
use super::formats;
use super::simple::control_id_or_generated;

pub fn detect(p: &mut Obj<'_>) {
    control_id_or_generated(p);
    p.req_object("detect", detector);
    p.opt_num("timeout", Limits::NON_NEGATIVE);
    p.opt_http_url("status_url");
}

fn detector(d: &mut Obj<'_>) {
    let kind = d.req_enum("type", &["machine", "fax", "digit"]);
    let params = match d.get("params") {
        Some(Value::Object(map)) => map,
        Some(_) => {
            d.fail("params", MUST_BE_OBJECT, "must be an object");
            return;
        }
        None => empty_map(),
    };
    let mut params = d.nested(params, d.attr("params"));
    match kind {
        Some("machine") => machine(&mut params),
        Some("fax") => fax(&mut params),
        Some("digit") => {
            params.opt_str_where(
                "digits",
                formats::is_dtmf,
                INVALID_PARAMETER,
                "may only contain 0-9, A-D, * and # (empty means any digit)",
            );
        }
        _ => params.consult_all(),
    }
    let params = d.absorb(params);
    d.put("params", params);
}

fn machine(m: &mut Obj<'_>) {
    m.opt_num("initial_timeout", Limits::NON_NEGATIVE);
    m.opt_num("end_silence_timeout", Limits::NON_NEGATIVE);
    m.opt_num("machine_ready_timeout", Limits::NON_NEGATIVE);
    m.opt_num("machine_voice_threshold", Limits::NON_NEGATIVE);
    m.opt_int(
        "machine_words_threshold",
        Limits::between(0.0, f64::from(i32::MAX)),
    );
    m.opt_bool("detect_interruptions");
    m.opt_bool("detect_message_end");
}

/// `CNG` or `CED` in either case, normalised to upper case; absent means either tone.
fn fax(f: &mut Obj<'_>) {
    f.field("tone", false, |v| {
        let tone = v
            .as_str()
            .map(str::to_ascii_uppercase)
            .filter(|t| t == "CNG" || t == "CED")
            .ok_or((INVALID_PARAMETER, "must be CNG or CED".to_owned()))?;
        Ok(((), Value::String(tone)))
    });
}

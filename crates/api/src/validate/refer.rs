//! `calling.refer` (calling-api.md §6.31): SIP REFER to `device.params.to`.
//! Aliases (A24): `device.params.uri` for `to`, and the flat `device: {to, from?, ...}` form.

use serde_json::Value;

use super::codes::{
    INVALID_PARAMETER, INVALID_SIP_DESTINATION, MISSING_REQUIRED_PARAMETER, MUST_BE_OBJECT,
};
use super::fields::Obj;
use super::formats;

pub fn refer(p: &mut Obj<'_>) {
    p.opt_http_url("status_url");
    let Some(value) = p.get("device") else {
        p.fail("device", MISSING_REQUIRED_PARAMETER, "is required");
        return;
    };
    let Some(device) = value.as_object() else {
        p.fail(
            "device",
            MUST_BE_OBJECT,
            "must be an object {type: \"sip\", params: {to}}",
        );
        return;
    };
    let mut d = p.nested(device, p.attr("device"));
    d.opt_enum("type", &["sip"]);
    let mut params = match d.get("params") {
        Some(Value::Object(map)) => d.nested(map, d.attr("params")),
        Some(_) => {
            d.fail("params", MUST_BE_OBJECT, "must be an object");
            let normalised = p.absorb(d);
            p.put("device", normalised);
            return;
        }
        None => {
            // Flat form: the device object itself carries `to`, `from`, ...
            d.consult_all();
            let mut flat = d.nested(device, d.path().to_owned());
            flat.get("type");
            flat
        }
    };
    sip_target(&mut params);
    let params = d.absorb(params);
    d.put("params", params);
    let normalised = p.absorb(d);
    p.put("device", normalised);
}

/// `to` (or its `uri` alias) must be a SIP URI; `from` too when given.
fn sip_target(t: &mut Obj<'_>) {
    let key = if t.present("to") || !t.present("uri") {
        "to"
    } else {
        "uri"
    };
    let to = t.field(key, true, |v| match v.as_str() {
        Some(uri) if formats::is_sip_uri(uri) => Ok((uri, v.clone())),
        _ => Err((INVALID_SIP_DESTINATION, "must be a sip: URI".to_owned())),
    });
    if key == "uri" {
        t.remove("uri");
        if let Some(to) = to {
            t.put("to", to);
        }
    } else {
        t.get("uri");
    }
    t.opt_str_where(
        "from",
        formats::is_sip_uri,
        INVALID_PARAMETER,
        "must be a sip: URI",
    );
    t.opt_str("username");
    t.opt_str("password");
}

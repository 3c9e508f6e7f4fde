//! `calling.transfer` (calling-api.md §6.4): `dest` is a SIP URI, a phone number, a SWML URL or an
//! inline SWML object; a RELAY device object is mapped to its address (A24).

use serde_json::{Map, Value};

use super::codes::INVALID_PARAMETER;
use super::fields::{Obj, Problem};
use super::formats;

const DEST_FORMS: &str = "must be a sip: URI, an E.164 number, an http(s) SWML URL, a SWML \
                          object or a device object ({type: phone|sip, params})";

pub fn transfer(p: &mut Obj<'_>) {
    let egress = p.options().egress;
    p.field("dest", true, |v| {
        let dest = normalise_dest(v)?;
        if let Some(url) = dest.as_str().filter(|s| formats::is_http_url(s)) {
            super::fields::check_egress(&egress, url)?;
        }
        Ok(((), dest))
    });
}

fn normalise_dest(value: &Value) -> Result<Value, Problem> {
    match value {
        Value::String(s) if is_address(s) => Ok(value.clone()),
        Value::Object(map) if map.contains_key("sections") => Ok(value.clone()),
        Value::Object(map) => device_address(map).map(Value::from),
        _ => Err((INVALID_PARAMETER, DEST_FORMS.to_owned())),
    }
}

fn is_address(s: &str) -> bool {
    formats::is_sip_uri(s) || formats::is_e164(s) || formats::is_http_url(s)
}

/// `{type:"phone", params:{to_number}}` or `{type:"sip", params:{to}}`.
fn device_address(device: &Map<String, Value>) -> Result<String, Problem> {
    let params = device.get("params").and_then(Value::as_object);
    let field = |name: &str| params.and_then(|p| p.get(name)).and_then(Value::as_str);
    match device.get("type").and_then(Value::as_str) {
        Some("phone") => match field("to_number") {
            Some(number) if formats::is_e164(number) => Ok(number.to_owned()),
            _ => Err((
                INVALID_PARAMETER,
                "is a phone device whose params.to_number is not an E.164 number".to_owned(),
            )),
        },
        Some("sip") => match field("to") {
            Some(uri) if formats::is_sip_uri(uri) => Ok(uri.to_owned()),
            _ => Err((
                INVALID_PARAMETER,
                "is a sip device whose params.to is not a SIP URI".to_owned(),
            )),
        },
        _ => Err((INVALID_PARAMETER, DEST_FORMS.to_owned())),
    }
}

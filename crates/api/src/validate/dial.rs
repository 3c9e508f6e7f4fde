//! `dial` (calling-api.md §6.1) into a [`control::DialRequest`].

use std::collections::BTreeMap;

use control::{Codec, DialRequest, HttpMethod, MediaEncryption, StatusEvent};
use serde_json::{Map, Value};

use super::codes::*;
use super::fields::{Limits, Obj};
use super::formats;
use super::swml;

/// The kind of destination `to` names; decides which `from`/`caller_id` forms are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Pstn,
    Sip,
    WebRtc,
}

const MAX_CUSTOM_VARIABLES: usize = 20;
const MAX_CUSTOM_VARIABLE_BYTES: usize = 1024;
const RESERVED_VARIABLE_PREFIXES: [&str; 4] = ["signalwire_", "sw_", "rtc_", "internal_"];
const DEFAULT_RING_TIMEOUT_SECS: i64 = 60;

pub fn dial(p: &mut Obj<'_>) -> DialRequest {
    let (to, destination) = to(p);
    let to_script = p.field("to_script", false, |v| {
        swml::parse_document_or_url(v).map(|doc| (doc.clone(), doc))
    });
    // An invalid to_script is reported on its own; `to` is not "missing" then.
    if to.is_none() && !p.present("to_script") && !p.present("to") {
        p.fail(
            "to",
            MISSING_REQUIRED_PARAMETER,
            "is required unless to_script is given",
        );
    }
    let from = from(p, destination);
    let (url, swml) = url_or_swml(p);
    let caller_id = caller_id(p, destination);

    DialRequest {
        from: from.unwrap_or_default(),
        to,
        to_script,
        url,
        swml,
        fallback_url: p.opt_http_url("fallback_url").map(str::to_owned),
        url_method: url_method(p),
        username: p.opt_str("username").map(str::to_owned),
        password: p.opt_str("password").map(str::to_owned),
        caller_id,
        status_url: p.opt_http_url("status_url").map(str::to_owned),
        status_events: status_events(p),
        codecs: codecs(p),
        encryption: p
            .opt_enum("encryption", &MediaEncryption::NAMES)
            .and_then(MediaEncryption::parse),
        headers: Vec::new(),
        from_name: None,
        session_expires_secs: None,
        timeout_secs: ring_timeout(p),
        max_price_per_minute: p.opt_num("max_price_per_minute", Limits::NON_NEGATIVE),
        send_digits: send_digits(p),
        region: region(p),
        custom_variables: custom_variables(p),
    }
}

fn to(p: &mut Obj<'_>) -> (Option<String>, Option<Destination>) {
    let Some(value) = p.get("to") else {
        return (None, None);
    };
    let Some(to) = value.as_str() else {
        p.fail("to", INVALID_PARAMETER, "must be a string");
        return (None, None);
    };
    match classify_destination(to) {
        Ok(kind) => (Some(to.to_owned()), Some(kind)),
        Err((code, tail)) => {
            p.fail("to", code, tail);
            (None, None)
        }
    }
}

fn classify_destination(to: &str) -> Result<Destination, (&'static str, &'static str)> {
    if to.starts_with('+') || (!to.is_empty() && to.bytes().all(|b| b.is_ascii_digit())) {
        return if formats::is_e164(to) {
            Ok(Destination::Pstn)
        } else {
            Err((NOT_E164, "must be an E.164 number (+ and 2 to 15 digits)"))
        };
    }
    if formats::has_prefix_ignore_case(to, "sip:") || formats::has_prefix_ignore_case(to, "sips:") {
        return if formats::is_sip_uri(to) {
            Ok(Destination::Sip)
        } else {
            Err((INVALID_SIP_DESTINATION, "is not a valid SIP URI"))
        };
    }
    for scheme in ["verto:", "client:"] {
        if formats::has_prefix_ignore_case(to, scheme) {
            return if to.len() > scheme.len() && !to.contains(char::is_whitespace) {
                Ok(Destination::WebRtc)
            } else {
                Err((TO_DESTINATION_UNRESOLVABLE, "has an empty address"))
            };
        }
    }
    if to.starts_with('/') {
        // Fabric addresses need a subscriber model this server does not have (A27).
        return Err((
            URI_DOES_NOT_RESOLVE_TO_ADDRESS,
            "is a Fabric address, which this server cannot resolve",
        ));
    }
    if to.is_empty() {
        return Err((MISSING_REQUIRED_PARAMETER, "must not be blank"));
    }
    Err((
        TO_DESTINATION_UNRESOLVABLE,
        "must be an E.164 number, a sip:/sips: URI or a verto:/client: address",
    ))
}

fn from(p: &mut Obj<'_>, destination: Option<Destination>) -> Option<String> {
    let from = p.req_str("from")?;
    let acceptable = match destination {
        Some(Destination::Pstn) => {
            if !formats::is_e164(from) {
                p.fail(
                    "from",
                    NOT_E164,
                    "must be an E.164 number when calling a phone number",
                );
                return None;
            }
            true
        }
        _ => {
            formats::is_e164(from) || formats::is_sip_uri(from) || formats::is_caller_id_token(from)
        }
    };
    if !acceptable {
        p.fail(
            "from",
            INVALID_PARAMETER,
            "must be an E.164 number, a sip:/sips: URI or a caller-id token",
        );
        return None;
    }
    Some(from.to_owned())
}

fn caller_id(p: &mut Obj<'_>, destination: Option<Destination>) -> Option<String> {
    let value = p.field("caller_id", false, |v| {
        let s = v
            .as_str()
            .ok_or((NOT_VALID_FOR_CALLER_ID, "must be a string".to_owned()))?;
        Ok((s, v.clone()))
    })?;
    let valid = match destination {
        Some(Destination::Pstn) => formats::is_e164(value),
        _ => {
            formats::is_e164(value)
                || formats::is_sip_uri(value)
                || formats::is_caller_id_token(value)
        }
    };
    if !valid {
        let tail = if destination == Some(Destination::Pstn) {
            "must be an E.164 number when calling a phone number"
        } else {
            "must be an E.164 number, a sip:/sips: URI or a caller-id token"
        };
        p.fail("caller_id", NOT_VALID_FOR_CALLER_ID, tail);
        p.remove("caller_id");
        return None;
    }
    Some(value.to_owned())
}

/// Exactly one of `url` / `swml`.
fn url_or_swml(p: &mut Obj<'_>) -> (Option<String>, Option<Value>) {
    let url = p.opt_http_url("url").map(str::to_owned);
    let swml = p.field("swml", false, |v| {
        swml::parse_document(v).map(|doc| (doc.clone(), doc))
    });
    match (p.present("url"), p.present("swml")) {
        (false, false) => p.fail(
            "url",
            INLINE_SWML_OR_SWML_WEBHOOK_REQUIRED,
            "or swml is required: a SWML URL or an inline SWML document",
        ),
        (true, true) => p.fail(
            "swml",
            INCOMPATIBLE_PARAMETERS,
            "cannot be given together with url: send one of them",
        ),
        _ => {}
    }
    (url, swml)
}

fn url_method(p: &mut Obj<'_>) -> HttpMethod {
    p.opt_http_method("url_method");
    match p.get("url_method").and_then(Value::as_str) {
        Some(m) if m.eq_ignore_ascii_case("GET") => HttpMethod::Get,
        _ => HttpMethod::Post,
    }
}

/// The union of the spec's and the SDK's spellings (A21); an absent or empty list means the
/// default `["ended"]`.
fn status_events(p: &mut Obj<'_>) -> Vec<StatusEvent> {
    let mut events = Vec::new();
    if let Some(items) = p.opt_array("status_events") {
        for (index, item) in items.iter().enumerate() {
            match item.as_str().and_then(StatusEvent::parse) {
                Some(event) if !events.contains(&event) => events.push(event),
                Some(_) => {}
                None => p.fail(
                    &format!("status_events.{index}"),
                    INVALID_PARAMETER,
                    "must be one of: created, ringing, answered, ended (also queued, initiated, ending)",
                ),
            }
        }
    }
    if events.is_empty() {
        events.push(StatusEvent::Ended);
    }
    let names: Vec<Value> = events.iter().map(|e| Value::from(e.as_str())).collect();
    p.put("status_events", names);
    events
}

/// An array of codec names or one comma-separated string.
fn codecs(p: &mut Obj<'_>) -> Vec<Codec> {
    let Some(value) = p.get("codecs") else {
        return Vec::new();
    };
    let (names, indexed): (Vec<&str>, bool) = match value {
        Value::String(s) => (s.split(',').map(str::trim).collect(), false),
        Value::Array(items) => match items.iter().map(Value::as_str).collect::<Option<Vec<_>>>() {
            Some(names) => (names.into_iter().map(str::trim).collect(), true),
            None => {
                p.fail(
                    "codecs",
                    INVALID_CODECS_FORMAT,
                    "must be an array of codec names or a comma-separated string",
                );
                return Vec::new();
            }
        },
        _ => {
            p.fail(
                "codecs",
                INVALID_CODECS_FORMAT,
                "must be an array of codec names or a comma-separated string",
            );
            return Vec::new();
        }
    };
    // A lone empty string means "no preference"; an empty entry in a list is malformed.
    if (indexed || names.len() > 1) && names.iter().any(|n| n.is_empty()) {
        p.fail("codecs", INVALID_CODECS_FORMAT, "has an empty codec name");
        return Vec::new();
    }
    let mut codecs = Vec::new();
    let mut normalised = Vec::new();
    for (index, name) in names.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
        match Codec::parse(name) {
            Some(codec) => {
                codecs.push(codec);
                normalised.push(Value::from(name.to_ascii_uppercase()));
            }
            None => {
                let key = if indexed {
                    format!("codecs.{index}")
                } else {
                    "codecs".to_owned()
                };
                p.fail(
                    &key,
                    INVALID_PARAMETER,
                    format!("has an unknown codec '{name}' (OPUS, OPUS@<rate>H@20I, G722, PCMU, PCMA, G729, VP8, H264)"),
                );
            }
        }
    }
    p.put("codecs", normalised);
    codecs
}

fn ring_timeout(p: &mut Obj<'_>) -> u32 {
    let secs = p
        .opt_int("timeout", Limits::between(1.0, 600.0))
        .unwrap_or(DEFAULT_RING_TIMEOUT_SECS);
    u32::try_from(secs).unwrap_or(DEFAULT_RING_TIMEOUT_SECS as u32)
}

fn send_digits(p: &mut Obj<'_>) -> Option<String> {
    p.opt_str_where(
        "send_digits",
        formats::is_send_digits,
        INVALID_PARAMETER,
        "may only contain 0-9, A-D, *, #, w and ,",
    )
    .filter(|d| !d.is_empty())
    .map(str::to_owned)
}

/// One region name or a list of them, in priority order.
fn region(p: &mut Obj<'_>) -> Vec<String> {
    p.field("region", false, |v| {
        let regions: Option<Vec<String>> = match v {
            Value::String(s) if !s.is_empty() => Some(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
                .collect(),
            _ => None,
        };
        let regions = regions.ok_or((
            INVALID_PARAMETER,
            "must be a region name or an array of region names".to_owned(),
        ))?;
        let normalised = Value::from(regions.clone());
        Ok((regions, normalised))
    })
    .unwrap_or_default()
}

fn custom_variables(p: &mut Obj<'_>) -> BTreeMap<String, String> {
    let mut variables = BTreeMap::new();
    let Some(map) = p.opt_any_object("custom_variables") else {
        return variables;
    };
    if map.len() > MAX_CUSTOM_VARIABLES {
        p.fail(
            "custom_variables",
            TOO_MANY_CUSTOM_VARIABLES,
            format!("may hold at most {MAX_CUSTOM_VARIABLES} variables"),
        );
        return variables;
    }
    for (key, value) in map {
        let attribute = format!("custom_variables.{key}");
        if let Some((code, tail)) = custom_variable_problem(key, value) {
            p.fail(&attribute, code, tail);
        } else if let Some(text) = value.as_str() {
            variables.insert(key.clone(), text.to_owned());
        }
    }
    let normalised: Map<String, Value> = variables
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    p.put("custom_variables", normalised);
    variables
}

fn custom_variable_problem(key: &str, value: &Value) -> Option<(&'static str, &'static str)> {
    if !formats::is_variable_name(key) {
        return Some((
            INVALID_CUSTOM_VARIABLE_NAME,
            "is not a valid name (letters, digits and _, not starting with a digit)",
        ));
    }
    if RESERVED_VARIABLE_PREFIXES
        .iter()
        .any(|prefix| formats::has_prefix_ignore_case(key, prefix))
    {
        return Some((
            RESERVED_CUSTOM_VARIABLE_NAME,
            "uses a reserved prefix (signalwire_, sw_, rtc_, internal_)",
        ));
    }
    match value.as_str() {
        Some("") | None => Some((INVALID_CUSTOM_VARIABLE_VALUE, "must be a non-empty string")),
        Some(text) if text.len() > MAX_CUSTOM_VARIABLE_BYTES => {
            Some((CUSTOM_VARIABLE_VALUE_TOO_LONG, "must be at most 1024 bytes"))
        }
        Some(_) => None,
    }
}

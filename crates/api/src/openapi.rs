//! The OpenAPI 3.1 document of this API, served at `GET /api/openapi.json` (no credentials).
//!
//! Built in code from the same tables the API runs on, so it cannot drift from them silently:
//! one request schema per [`CommandName::ALL`] (`command` a `const`, `id` required exactly for
//! the commands whose validator requires it), the `required` params of each command found by
//! asking the validator what an empty `params` object lacks ([`validate_request`]), the Call
//! Leg's keys from [`control::CALL_LEG_KEYS`], and the error body of [`crate::ErrorItem`].
//! The params' property types come from [`properties`], a table checked by the unit tests
//! against the validators (a value of another type is refused on that attribute). Unknown
//! params are accepted and ignored (A31), so every params object allows other keys.

use control::command::CommandName;
use serde_json::{json, Map, Value};

use crate::validate::{codes, validate_request, Rejection, ValidationOptions};

const A_CALL_ID: &str = "00000000-0000-4000-8000-000000000000";

/// `status_events` values `dial` takes (each parses as a [`control::StatusEvent`]: tested).
const STATUS_EVENTS: [&str; 7] = [
    "queued",
    "initiated",
    "created",
    "ringing",
    "answered",
    "ending",
    "ended",
];

fn string() -> Value {
    json!({"type": "string"})
}
fn url() -> Value {
    json!({"type": "string", "format": "uri"})
}
fn integer() -> Value {
    json!({"type": "integer"})
}
fn number() -> Value {
    json!({"type": "number"})
}
fn boolean() -> Value {
    json!({"type": "boolean"})
}
fn object() -> Value {
    json!({"type": "object"})
}
fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}
fn string_or_strings() -> Value {
    json!({"type": ["string", "array"], "items": {"type": "string"}})
}
fn swml_document() -> Value {
    json!({"type": ["object", "string"]})
}

/// The params each command documents, with their JSON types (checked against the validators
/// in the tests). Commands not listed take their params as any object.
pub fn properties(command: CommandName) -> Vec<(&'static str, Value)> {
    use CommandName as C;
    let control_id = ("control_id", string());
    let status_url = ("status_url", url());
    match command {
        C::Dial => vec![
            ("from", string()),
            ("to", string()),
            ("caller_id", string()),
            ("url", url()),
            ("url_method", string()),
            ("fallback_url", url()),
            ("swml", swml_document()),
            ("to_script", swml_document()),
            status_url,
            (
                "status_events",
                json!({"type": "array", "items": {"enum": STATUS_EVENTS}}),
            ),
            ("timeout", integer()),
            ("codecs", string_or_strings()),
            (
                "encryption",
                json!({"enum": ["forbidden", "optional", "mandatory"]}),
            ),
            ("send_digits", string()),
            ("username", string()),
            ("password", string()),
            ("custom_variables", object()),
            ("region", string_or_strings()),
            ("max_price_per_minute", number()),
        ],
        C::Update => vec![
            ("id", uuid()),
            ("call_id", uuid()),
            ("status", json!({"enum": ["canceled", "completed"]})),
            ("url", url()),
            ("swml", swml_document()),
            ("fallback_url", url()),
            status_url,
        ],
        C::End => vec![("reason", string())],
        C::Transfer => vec![("dest", swml_document())],
        C::UserEvent => vec![("event", json!({}))],
        C::Play => vec![
            control_id,
            (
                "play",
                json!({"type": "array", "items": {"type": "object"}}),
            ),
            ("volume", number()),
            ("direction", json!({"enum": ["listen", "speak", "both"]})),
            ("loop", integer()),
            status_url,
        ],
        C::PlayVolume => vec![control_id, ("volume", number())],
        C::Record => vec![
            control_id,
            ("record", object()),
            ("audio", object()),
            status_url,
        ],
        C::Collect => vec![
            control_id,
            ("digits", object()),
            ("speech", object()),
            ("initial_timeout", number()),
            ("partial_results", boolean()),
            ("continuous", boolean()),
            ("send_start_of_input", boolean()),
            ("start_input_timers", boolean()),
            status_url,
        ],
        C::Detect => vec![
            control_id,
            ("detect", object()),
            ("timeout", number()),
            status_url,
        ],
        C::Tap => vec![
            control_id,
            ("tap", object()),
            ("device", object()),
            status_url,
        ],
        C::Stream => vec![
            control_id,
            ("url", string()),
            ("name", string()),
            ("codec", string()),
            ("track", string()),
            ("authorization_bearer_token", string()),
            ("custom_parameters", object()),
            status_url,
        ],
        C::Transcribe => vec![control_id, status_url],
        C::Refer => vec![("device", object()), status_url],
        C::LiveTranscribe => vec![("action", json!({"type": ["string", "object"]}))],
        C::LiveTranslate => vec![
            ("action", json!({"type": ["string", "object"]})),
            status_url,
        ],
        C::AiMessage => vec![
            ("role", string()),
            ("message_text", string()),
            ("reset", object()),
            ("global_data", object()),
        ],
        C::AiHold => vec![("prompt", string())],
        C::AiUnhold => vec![("prompt", string())],
        C::AiStop => vec![control_id],
        C::AiSidecarPoke | C::AiSidecarAsk => vec![("text", string())],
        C::PlayPause
        | C::PlayResume
        | C::PlayStop
        | C::RecordPause
        | C::RecordResume
        | C::RecordStop
        | C::CollectStop
        | C::CollectStartInputTimers
        | C::DetectStop
        | C::TapStop
        | C::StreamStop
        | C::TranscribeStop
        | C::SendFaxStop
        | C::ReceiveFaxStop => vec![control_id],
        C::Disconnect
        | C::Denoise
        | C::DenoiseStop
        | C::AiSidecar
        | C::AiSidecarStop
        | C::AiSidecarStatus => Vec::new(),
    }
}

/// The top-level params an empty `params` object is refused for (`missing_required_parameter`
/// on an attribute without a dot), and whether the envelope needs `id`: the validator's answer.
fn required_by_validator(command: CommandName) -> (Vec<String>, bool) {
    let body = json!({"command": command.as_str(), "id": A_CALL_ID, "params": {}});
    // Without params the envelope alone is checked (a params-level 400 cannot hide the id).
    let without_id = json!({"command": command.as_str()});
    let missing = |body: &Value| -> Vec<String> {
        match validate_request(body, ValidationOptions::default()) {
            Err(Rejection::Invalid(errors)) => errors
                .into_iter()
                .filter(|e| e.code == codes::MISSING_REQUIRED_PARAMETER)
                .filter_map(|e| e.attribute)
                .filter(|a| !a.contains('.'))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut required = missing(&body);
    required.sort();
    required.dedup();
    let needs_id = missing(&without_id).iter().any(|a| a == "id");
    (required, needs_id)
}

/// Params of which at least one is required (the validator takes any of them; tested).
const ALTERNATIVES: [(CommandName, &[&str]); 4] = [
    (CommandName::Dial, &["to", "to_script"]),
    (CommandName::Dial, &["url", "swml"]),
    (CommandName::Record, &["record", "audio"]),
    (CommandName::Collect, &["digits", "speech"]),
];

fn command_schema(command: CommandName) -> Value {
    let (mut required, needs_id) = required_by_validator(command);
    let mut props = Map::new();
    for (name, schema) in properties(command) {
        props.insert(name.to_owned(), schema);
    }
    let mut params = json!({
        "type": "object",
        "properties": props,
        "additionalProperties": true,
    });
    let mut all_of = Vec::new();
    for (c, names) in ALTERNATIVES {
        if c == command {
            required.retain(|r| !names.contains(&r.as_str()));
            let any: Vec<Value> = names.iter().map(|n| json!({"required": [n]})).collect();
            all_of.push(json!({"anyOf": any}));
        }
    }
    params["required"] = json!(required);
    if !all_of.is_empty() {
        params["allOf"] = json!(all_of);
    }
    let mut envelope = json!({
        "type": "object",
        "title": command.as_str(),
        "required": ["command", "params"],
        "properties": {
            "command": {"const": command.as_str()},
            "id": {"type": "string", "format": "uuid", "description": "The call to act on."},
            "params": params,
        },
    });
    if command == CommandName::Update {
        // The call's id in params.id, params.call_id or the top-level id (A24).
        envelope["anyOf"] = json!([
            {"required": ["id"]},
            {"properties": {"params": {"required": ["id"]}}},
            {"properties": {"params": {"required": ["call_id"]}}},
        ]);
    } else if needs_id {
        envelope["required"] = json!(["command", "params", "id"]);
    }
    envelope
}

fn schema_name(command: CommandName) -> String {
    format!(
        "Command_{}",
        command.as_str().replace("calling.", "").replace('.', "_")
    )
}

/// The Call Leg's operator extensions (not required: command responses never carry them).
fn operator_extensions() -> Map<String, Value> {
    let count = || json!({"type": "integer", "minimum": 0});
    let ms = |what: &str| json!({"type": ["number", "null"], "minimum": 0, "description": what});
    let ext = json!({
        "end_reason": {"type": "string", "description": "Operator extension: why the call ended"},
        "answered_at": {"type": "string", "description": "Operator extension: ISO 8601"},
        "ended_at": {"type": "string", "description": "Operator extension: ISO 8601"},
        "held": {"type": "boolean", "description": "Operator extension, while the call is up: \
            the far end holds it (its SDP takes no audio: sendonly, inactive or c=0.0.0.0)"},
        "media_stats": {
            "type": "object",
            "description": "Operator extension: RTP/RTCP statistics, once the call's media ran; \
                updated after RTCP reports sent or received (at most every 4 s) and final \
                at hang-up. Counts are RTP packets, times milliseconds; remote_* values are \
                what the far end's RTCP reports say about our stream.",
            "required": ["final", "updated_at", "packets_sent", "packets_received",
                "packets_lost", "jitter_ms", "rtcp_received", "rtcp_reports_sent",
                "rtcp_reports_received", "rtt_ms", "remote_packets_lost",
                "remote_fraction_lost", "remote_jitter_ms"],
            "properties": {
                "final": {"type": "boolean", "description": "true once the call ended"},
                "updated_at": {"type": "string", "description": "ISO 8601, ms"},
                "packets_sent": count(),
                "packets_received": count(),
                "packets_lost": {"type": "integer", "minimum": 0,
                    "description": "the far end's packets we never received (as we measured)"},
                "jitter_ms": {"type": "number", "minimum": 0,
                    "description": "interarrival jitter of the far end's stream (as we measured)"},
                "rtcp_received": {"type": "boolean",
                    "description": "whether the far end sent any RTCP report"},
                "rtcp_reports_sent": count(),
                "rtcp_reports_received": count(),
                "rtt_ms": {"type": ["integer", "null"], "minimum": 0,
                    "description": "round trip from the far end's LSR/DLSR about our SRs"},
                "remote_packets_lost": {"type": ["integer", "null"],
                    "description": "cumulative loss of our stream the far end reported"},
                "remote_fraction_lost": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                    "description": "the far end's loss of our stream since its previous report"},
                "remote_jitter_ms": ms("the far end's interarrival jitter of our stream"),
            },
        },
    });
    match ext {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The whole document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    let mut one_of = Vec::new();
    for command in CommandName::ALL {
        let name = schema_name(command);
        one_of.push(json!({"$ref": format!("#/components/schemas/{name}")}));
        schemas.insert(name, command_schema(command));
    }
    schemas.insert("CallRequest".into(), json!({"oneOf": one_of}));
    let mut leg: Map<String, Value> = control::CALL_LEG_KEYS
        .iter()
        .map(|k| ((*k).to_owned(), json!({})))
        .collect();
    // Operator extensions: on the operator GETs only, never on command responses.
    leg.extend(operator_extensions());
    schemas.insert(
        "CallLeg".into(),
        json!({"type": "object", "required": control::CALL_LEG_KEYS, "properties": leg}),
    );
    schemas.insert(
        "Errors".into(),
        json!({"type": "object", "required": ["errors"], "properties": {"errors": {
            "type": "array", "minItems": 1, "items": {"type": "object",
            "required": ["type", "code", "message", "attribute", "url"], "properties": {
                "type": string(), "code": string(), "message": string(),
                "attribute": {"type": ["string", "null"]}, "url": url()}}}}}),
    );
    schemas.insert(
        "Participant".into(),
        json!({"type": "object", "required": ["call_id", "muted", "coach"], "properties": {
            "call_id": uuid(), "muted": boolean(),
            "coach": {"type": ["string", "null"], "format": "uuid",
                      "description": "The call id of the participant it coaches"}}}),
    );
    schemas.insert(
        "Conference".into(),
        json!({"type": "object",
            "description": "Operator extension: a conference of this node (SWML join_conference)",
            "required": ["id", "name", "started", "recording_id", "participants"], "properties": {
            "id": uuid(), "name": string(), "started": boolean(),
            "recording_id": {"type": ["string", "null"], "format": "uuid",
                             "description": "While record-from-start records it"},
            "participants": {"type": "array", "items": {"$ref": "#/components/schemas/Participant"}}}}),
    );
    schemas.insert(
        "Unauthorized".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {"const": "Unauthorized"}}}),
    );
    let errors = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}});
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({"description": "The Call Leg (plus `control_id` and command-specific keys)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallLeg"}}}}),
    );
    responses.insert(
        "401".into(),
        json!({"description": "Missing or wrong credentials",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Unauthorized"}}}}),
    );
    for (code, why) in [
        ("400", "The body is not a JSON object, or names no mode"),
        ("404", "No such call"),
        ("409", "A second singleton operation"),
        ("413", "The body is too large"),
        ("422", "Validation failed: one item per problem"),
        ("500", "Internal error"),
        ("501", "The command is not built on this server yet"),
        (
            "503",
            "Retry later: max_calls_reached, no_rtp_port, draining (Retry-After)",
        ),
    ] {
        let mut r = errors.clone();
        r["description"] = json!(why);
        responses.insert(code.into(), r);
    }
    let open = json!([]);
    let probe = |what: &str| {
        json!({"get": {"summary": what, "security": open,
        "responses": {"200": {"description": "OK"}, "503": {"description": "Not ready"}}}})
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dialtone Calling API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "SignalWire's Calling API as dialtone implements it; generated from \
                            the server's command table and validators.",
        },
        "security": [{"basic": []}],
        "paths": {
            "/api/calling/calls": {
                "post": {
                    "operationId": "callCommand",
                    "requestBody": {"required": true, "content": {"application/json":
                        {"schema": {"$ref": "#/components/schemas/CallRequest"}}}},
                    "responses": responses,
                },
                "get": {
                    "operationId": "listCalls",
                    "summary": "Operator extension: calls, newest first",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": string()},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                        {"name": "cursor", "in": "query", "schema": string()},
                    ],
                    "responses": {"200": {"description": "A page of Call Legs"}},
                },
            },
            "/api/calling/calls/{id}": {"get": {
                "operationId": "getCall",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": uuid()}],
                "responses": {"200": {"description": "The Call Leg",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallLeg"}}}}},
            }},
            "/api/calling/conferences": {"get": {
                "operationId": "listConferences",
                "summary": "Operator extension: the node's conferences and their participants",
                "responses": {"200": {"description": "Conferences by name",
                    "content": {"application/json": {"schema": {"type": "object", "required": ["data"],
                        "properties": {"data": {"type": "array",
                            "items": {"$ref": "#/components/schemas/Conference"}}}}}}}},
            }},
            "/api/calling/conferences/{conference_id}/participants/{call_id}": {
                "parameters": [
                    {"name": "conference_id", "in": "path", "required": true, "schema": uuid()},
                    {"name": "call_id", "in": "path", "required": true, "schema": uuid()},
                ],
                "post": {
                    "operationId": "updateParticipant",
                    "summary": "Operator extension: mute or unmute a participant",
                    "requestBody": {"required": true, "content": {"application/json": {"schema":
                        {"type": "object", "required": ["muted"], "additionalProperties": false,
                         "properties": {"muted": boolean()}}}}},
                    "responses": {
                        "200": {"description": "The participant",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Participant"}}}},
                        "404": {"description": "No such conference, or the call is not in it"},
                        "422": {"description": "The body is not {\"muted\": true|false}"},
                    },
                },
                "delete": {
                    "operationId": "kickParticipant",
                    "summary": "Operator extension: take a participant out (its call stays up, \
                                its SWML goes on with join_conference_result = completed)",
                    "responses": {
                        "204": {"description": "Taken out"},
                        "404": {"description": "No such conference, or the call is not in it"},
                    },
                },
            },
            "/health": probe("Alive"),
            "/ready": probe("Store, SIP and media up; not draining"),
            "/metrics": probe("Prometheus text"),
        },
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic",
                "description": "Username: project id; password: API token"}},
            "schemas": schemas,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value of each JSON type, for probing the validators.
    fn samples() -> Vec<(&'static str, Value)> {
        vec![
            ("string", json!("x")),
            ("integer", json!(7)),
            ("number", json!(0.5)),
            ("boolean", json!(true)),
            ("object", json!({})),
            ("array", json!([])),
        ]
    }

    fn types_of(schema: &Value) -> Option<Vec<String>> {
        match &schema["type"] {
            Value::String(t) => Some(vec![t.clone()]),
            Value::Array(ts) => Some(
                ts.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect(),
            ),
            _ => None,
        }
    }

    fn allows(types: &[String], kind: &str) -> bool {
        types
            .iter()
            .any(|t| t == kind || (t == "number" && kind == "integer"))
    }

    /// Every typed property of the table: a value of a type the document does not allow is
    /// refused by the validator on that attribute (so the document is never looser than the
    /// server about types).
    #[test]
    fn property_types_agree_with_the_validators() {
        let mut checked = 0;
        let mut wrong = Vec::new();
        for command in CommandName::ALL {
            for (name, schema) in properties(command) {
                let Some(types) = types_of(&schema) else {
                    continue;
                };
                for (kind, value) in samples() {
                    if allows(&types, kind) {
                        continue;
                    }
                    let body = json!({"command": command.as_str(), "id": A_CALL_ID,
                        "params": {name: value}});
                    let refused_here = match validate_request(&body, ValidationOptions::default()) {
                        Err(Rejection::Invalid(errors)) => errors.iter().any(|e| {
                            e.attribute
                                .as_deref()
                                .is_some_and(|a| a == name || a.starts_with(&format!("{name}.")))
                        }),
                        Err(Rejection::BadRequest) => true,
                        Ok(_) => false,
                    };
                    if !refused_here {
                        wrong.push(format!(
                            "{} params.{name} = {kind} is accepted but the document says {types:?}",
                            command.as_str()
                        ));
                    }
                    checked += 1;
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        assert!(checked > 200, "{checked}");
    }

    /// Each alternative alone satisfies its group, and params without any of the group are
    /// refused.
    #[test]
    fn alternatives_each_satisfy_their_group() {
        for (command, names) in ALTERNATIVES {
            for name in names {
                let body =
                    json!({"command": command.as_str(), "id": A_CALL_ID, "params": {*name: {}}});
                if let Err(Rejection::Invalid(errors)) =
                    validate_request(&body, ValidationOptions::default())
                {
                    assert!(
                        !errors
                            .iter()
                            .any(|e| e.code == codes::MISSING_REQUIRED_PARAMETER
                                && e.attribute.as_deref().is_some_and(|a| names.contains(&a))),
                        "{} {name}: {errors:?}",
                        command.as_str()
                    );
                }
            }
            let empty = json!({"command": command.as_str(), "id": A_CALL_ID, "params": {}});
            assert!(validate_request(&empty, ValidationOptions::default()).is_err());
        }
    }

    #[test]
    fn status_events_are_the_ones_control_parses() {
        for e in STATUS_EVENTS {
            assert!(control::StatusEvent::parse(e).is_some(), "{e}");
        }
    }

    #[test]
    fn one_schema_per_command_with_the_validators_required_params() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let one_of = doc["components"]["schemas"]["CallRequest"]["oneOf"]
            .as_array()
            .unwrap();
        assert_eq!(one_of.len(), CommandName::ALL.len());
        let dial = &doc["components"]["schemas"]["Command_dial"];
        let required: Vec<&str> = dial["properties"]["params"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(required.contains(&"from"), "{required:?}");
        assert_eq!(dial["required"], json!(["command", "params"]));
        let end = &doc["components"]["schemas"]["Command_end"];
        assert_eq!(end["required"], json!(["command", "params", "id"]));
        let play = &doc["components"]["schemas"]["Command_play"]["properties"]["params"];
        assert_eq!(play["required"], json!(["play"]));
    }
}

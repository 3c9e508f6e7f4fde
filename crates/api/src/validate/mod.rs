//! Validation of a `POST /api/calling/calls` body into control types.
//!
//! [`validate_request`] checks the envelope (calling-api.md §2), dispatches on `command` to one
//! module per concern, and returns either the typed request or every problem found. It is pure:
//! no I/O, no call lookup (that comes after, so a 422 always wins over a 404, §2.1).

use control::command::CommandName;
use control::{CallCommand, DialRequest};
use serde_json::{Map, Value};
use uuid::Uuid;

mod ai;
pub mod codes;
mod collect;
mod detect;
mod dial;
mod end;
pub mod fields;
pub mod formats;
mod live;
mod play;
mod record;
mod refer;
mod sidecar;
mod simple;
mod stream;
mod swml;
mod tap;
mod transcription;
mod transfer;
mod update;

use codes::{
    INVALID_COMMAND_ATTEMPTED, INVALID_PARAMETER, MISSING_REQUIRED_PARAMETER, MUST_BE_OBJECT,
};
use fields::Obj;

/// One problem with the request, reported as one `errors[]` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub code: &'static str,
    pub message: String,
    /// Bare name for top-level params, dotted path for nested ones (`digits.max`).
    pub attribute: Option<String>,
}

impl FieldError {
    pub fn new(code: &'static str, attribute: &str, message: impl Into<String>) -> Self {
        FieldError {
            code,
            message: message.into(),
            attribute: Some(attribute.to_owned()),
        }
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 400 `{"error":"Bad Request"}`.
    BadRequest,
    /// 422 with every problem found.
    Invalid(Vec<FieldError>),
}

/// Deployment settings that change what validation accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Refuse private/reserved IPv4 tap targets (`url_is_unsafe`); ambiguity register A14.
    pub reject_private_tap_addresses: bool,
    /// The node's egress policy: an http(s) URL it refuses from the text alone (scheme, an
    /// address literal, a denied name) is a 422 `url_is_unsafe` (docs/security.md, "Egress").
    pub egress: std::sync::Arc<egress::EgressPolicy>,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        ValidationOptions {
            reject_private_tap_addresses: true,
            egress: std::sync::Arc::default(),
        }
    }
}

/// A request that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidatedRequest {
    Dial(Box<DialRequest>),
    /// Any command on an existing call. `control_id` is the (possibly generated) handle the
    /// response echoes (ambiguity register A1).
    Call {
        call_id: Uuid,
        command: Box<CallCommand>,
        control_id: Option<String>,
    },
}

impl ValidatedRequest {
    pub fn command_name(&self) -> &str {
        match self {
            ValidatedRequest::Dial(_) => "dial",
            ValidatedRequest::Call { command, .. } => command.name(),
        }
    }
}

/// Checks a command's params and normalises them (aliases resolved, spellings made canonical);
/// absent parameters stay absent and take their defaults from `control::command::defaults`.
type ParamsValidator = fn(&mut Obj<'_>);

/// The params validator of every `calling.*` command.
/// `None` for `dial` and `update`, which are validated on their own.
fn params_validator(command: CommandName) -> Option<ParamsValidator> {
    Some(match command {
        CommandName::End => end::end,
        CommandName::Transfer => transfer::transfer,
        CommandName::Disconnect
        | CommandName::Denoise
        | CommandName::DenoiseStop
        | CommandName::AiSidecarStop
        | CommandName::AiSidecarStatus => simple::no_params,
        CommandName::Play => play::play,
        CommandName::PlayVolume => play::volume,
        CommandName::Record => record::record,
        CommandName::RecordPause => record::pause,
        CommandName::Collect => collect::collect,
        CommandName::Detect => detect::detect,
        CommandName::Tap => tap::tap,
        CommandName::Stream => stream::stream,
        CommandName::Transcribe => simple::transcribe,
        CommandName::PlayPause
        | CommandName::PlayResume
        | CommandName::PlayStop
        | CommandName::RecordResume
        | CommandName::RecordStop
        | CommandName::CollectStop
        | CommandName::CollectStartInputTimers
        | CommandName::DetectStop
        | CommandName::TapStop
        | CommandName::StreamStop
        | CommandName::TranscribeStop
        | CommandName::SendFaxStop
        | CommandName::ReceiveFaxStop => simple::control_id_only,
        CommandName::AiHold => ai::hold,
        CommandName::AiUnhold => ai::unhold,
        CommandName::AiMessage => ai::message,
        CommandName::AiStop => ai::stop,
        CommandName::AiSidecar => sidecar::sidecar,
        CommandName::AiSidecarPoke | CommandName::AiSidecarAsk => sidecar::text,
        CommandName::LiveTranscribe => live::transcribe,
        CommandName::LiveTranslate => live::translate,
        CommandName::Refer => refer::refer,
        CommandName::UserEvent => simple::user_event,
        CommandName::Dial | CommandName::Update => return None,
    })
}

/// Validates a parsed request body.
pub fn validate_request(
    body: &Value,
    options: ValidationOptions,
) -> Result<ValidatedRequest, Rejection> {
    let envelope = body.as_object().ok_or(Rejection::BadRequest)?;
    let name = envelope.get("command").and_then(Value::as_str);
    let command = match name.and_then(CommandName::parse) {
        Some(command) => command,
        None => {
            let shown = name.map_or_else(|| "missing".to_owned(), |n| format!("'{n}'"));
            return Err(Rejection::Invalid(vec![FieldError::new(
                INVALID_COMMAND_ATTEMPTED,
                "command",
                format!("command {shown} is not a Calling API command"),
            )]));
        }
    };
    for key in envelope.keys() {
        if !matches!(key.as_str(), "command" | "id" | "params") {
            tracing::info!(attribute = %key, "ignoring unknown envelope key");
        }
    }

    let mut errors = Vec::new();
    let params = match envelope.get("params") {
        Some(Value::Object(map)) => Some(map),
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                MISSING_REQUIRED_PARAMETER,
                "params",
                "params is required ({} when the command takes none)",
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                MUST_BE_OBJECT,
                "params",
                "params must be an object",
            ));
            None
        }
    };

    let outcome = match command {
        CommandName::Dial => validate_dial(envelope, params, options, &mut errors),
        CommandName::Update => validate_update(envelope, params, options, &mut errors),
        _ => validate_call_command(command, envelope, params, options, &mut errors),
    }?;
    if errors.is_empty() {
        // Every path that pushes no error yields an outcome; never answer an empty 422.
        outcome.ok_or_else(|| {
            Rejection::Invalid(vec![FieldError::new(
                INVALID_PARAMETER,
                "params",
                "params could not be validated",
            )])
        })
    } else {
        Err(Rejection::Invalid(errors))
    }
}

/// Runs a params validator and hands back the normalised params (the errors go to `errors`).
/// A 400 verdict short-circuits everything.
fn run_params<'a, R>(
    params: &'a Map<String, Value>,
    options: ValidationOptions,
    errors: &mut Vec<FieldError>,
    validate: impl FnOnce(&mut Obj<'a>) -> R,
) -> Result<(Map<String, Value>, R), Rejection> {
    let mut obj = Obj::root(params, options);
    let result = validate(&mut obj);
    let (normalised, params_errors, bad_request) = obj.finish();
    if bad_request {
        return Err(Rejection::BadRequest);
    }
    errors.extend(params_errors);
    Ok((normalised, result))
}

fn validate_dial(
    envelope: &Map<String, Value>,
    params: Option<&Map<String, Value>>,
    options: ValidationOptions,
    errors: &mut Vec<FieldError>,
) -> Result<Option<ValidatedRequest>, Rejection> {
    if envelope.get("id").is_some_and(|v| !v.is_null()) {
        tracing::info!("ignoring top-level id on dial");
    }
    let Some(params) = params else {
        return Ok(None);
    };
    let (_, request) = run_params(params, options, errors, dial::dial)?;
    Ok(Some(ValidatedRequest::Dial(Box::new(request))))
}

fn validate_update(
    envelope: &Map<String, Value>,
    params: Option<&Map<String, Value>>,
    options: ValidationOptions,
    errors: &mut Vec<FieldError>,
) -> Result<Option<ValidatedRequest>, Rejection> {
    // The id travels in params.id; params.call_id and a top-level id are accepted (A24).
    let candidates = [
        ("id", params.and_then(|p| p.get("id"))),
        ("call_id", params.and_then(|p| p.get("call_id"))),
        ("id", envelope.get("id")),
    ];
    let call_id = match candidates
        .into_iter()
        .find(|(_, value)| value.is_some_and(|v| !v.is_null()))
    {
        Some((attribute, Some(value))) => parse_call_id(attribute, value, errors),
        _ => {
            errors.push(FieldError::new(
                MISSING_REQUIRED_PARAMETER,
                "id",
                "id is required (the call to update, in params.id)",
            ));
            None
        }
    };
    let Some(params) = params else {
        return Ok(None);
    };
    let (_, update) = run_params(params, options, errors, update::update)?;
    Ok(call_id.map(|call_id| ValidatedRequest::Call {
        call_id,
        command: Box::new(CallCommand::Update(update)),
        control_id: None,
    }))
}

fn validate_call_command(
    command: CommandName,
    envelope: &Map<String, Value>,
    params: Option<&Map<String, Value>>,
    options: ValidationOptions,
    errors: &mut Vec<FieldError>,
) -> Result<Option<ValidatedRequest>, Rejection> {
    let call_id = match envelope.get("id").filter(|v| !v.is_null()) {
        Some(value) => parse_call_id("id", value, errors),
        None => {
            errors.push(FieldError::new(
                MISSING_REQUIRED_PARAMETER,
                "id",
                "id is required (the call to act on)",
            ));
            None
        }
    };
    let Some(params) = params else {
        return Ok(None);
    };
    let typed = if let Some(validator) = params_validator(command) {
        let (normalised, ()) = run_params(params, options, errors, validator)?;
        if errors.is_empty() {
            typed_command(command.as_str(), normalised, errors)
        } else {
            None
        }
    } else {
        // dial and update never come here: a bug, not the caller's fault.
        tracing::error!(command = command.as_str(), "no params validator");
        errors.push(FieldError::new(
            INVALID_COMMAND_ATTEMPTED,
            "command",
            format!("command '{}' is not supported", command.as_str()),
        ));
        None
    };
    let control_id = typed
        .as_ref()
        .and_then(CallCommand::control_id)
        .map(str::to_owned);
    Ok(call_id
        .zip(typed)
        .map(|(call_id, command)| ValidatedRequest::Call {
            call_id,
            command: Box::new(command),
            control_id,
        }))
}

/// The typed command from params the validator accepted. The validator reports every problem a
/// caller can make with its attribute; a failure here means it and the typed params disagree.
fn typed_command(
    command: &str,
    normalised: Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<CallCommand> {
    match CallCommand::from_json(command, Value::Object(normalised)) {
        Ok(typed) => Some(typed),
        Err(e) => {
            tracing::error!(command, error = %e, "validated params do not fit the typed command");
            errors.push(FieldError::new(
                INVALID_PARAMETER,
                "params",
                format!("params could not be read: {e}"),
            ));
            None
        }
    }
}

fn parse_call_id(attribute: &str, value: &Value, errors: &mut Vec<FieldError>) -> Option<Uuid> {
    let parsed = value.as_str().and_then(formats::parse_uuid);
    if parsed.is_none() {
        errors.push(FieldError::new(
            INVALID_PARAMETER,
            attribute,
            format!("{attribute} must be a call id (UUID)"),
        ));
    }
    parsed
}

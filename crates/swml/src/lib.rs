//! SWML documents: loading from JSON or YAML (object or string form), the runtime validator
//! ([`check`], swml.md §1.7) every surface (dial, update, transfer, `to_script`, fetched and
//! inline documents) shares, the SDK schema as a lint ([`schema_lint`]), semantic lint, the
//! expression engine, the interpreter and the simulator.

use std::sync::OnceLock;

use serde_json::Value;

pub mod check;
pub mod expr;
pub mod lint;
mod methods;
pub mod pool;
pub mod run;
pub mod simulate;
pub mod size;
pub mod url;

pub use expr::JsBudget;
pub use methods::ai::{AiMessage, AiTurnOps, ModelReply, ModelRequest, ModelToolCall, SpeakPlan};
pub use methods::ai_pronounce::{pronounced, Pronounce};
/// The Model Context Protocol client of `SWAIG.mcp_servers` (also the AI sidecar's).
pub mod mcp {
    pub use crate::methods::ai_mcp::{
        call_text, tool_definitions, Discovery, McpServer, MAX_SERVERS,
    };
}
pub use methods::connect::{Confirm, ConnectDest, ConnectPlan, STREAM_CONTROL_ID};
pub use methods::enter_queue::{QueueOutcome, QueuePlan};
pub use methods::join_conference::ConferencePlan;
pub use methods::set::{MAX_VARIABLES_BYTES, MAX_VARIABLE_BYTES};
pub use methods::{ALL_METHODS, IMPLEMENTED};
pub use run::{
    BackgroundAudio, Completion, ControlWait, Effect, HttpRequest, HttpResponse, ReferResult, Run,
    ScriptWarning, Step,
};

/// Largest document accepted, in bytes of source text.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Largest YAML document accepted: its parser holds every event of the document at once
/// (~80 bytes of memory per byte of text), so YAML is capped lower than JSON.
pub const MAX_YAML_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SwmlError {
    #[error("SWML document is empty")]
    Empty,
    #[error("SWML document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("SWML document in YAML is larger than {MAX_YAML_BYTES} bytes (JSON may be larger)")]
    YamlTooLarge,
    #[error("SWML document is too complex: {0}")]
    TooComplex(#[from] size::TooComplex),
    #[error("SWML document is neither JSON nor YAML: {0}")]
    Syntax(String),
    #[error("SWML document must be an object with `sections`")]
    NotAnObject,
    /// The runtime validator refused the document (swml.md §1.7); the first problem's code is
    /// the document's.
    #[error("SWML document is invalid: {}", join_problems(.0))]
    Invalid(Vec<check::Problem>),
}

fn join_problems(problems: &[check::Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl SwmlError {
    /// The SWML error code (swml.md §2.11) for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            SwmlError::Empty
            | SwmlError::TooLarge
            | SwmlError::TooComplex(_)
            | SwmlError::YamlTooLarge
            | SwmlError::Syntax(_) => "relay_script_parse_error",
            SwmlError::NotAnObject => "relay_script_element_wrong_type",
            SwmlError::Invalid(problems) => problems
                .first()
                .map_or("relay_script_parse_error", |p| p.code),
        }
    }
}

/// A parsed SWML document that passed the runtime validator ([`check`]), in its normalised
/// form, with the warnings the validator raised (unknown names, ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    value: Value,
    warnings: Vec<check::Problem>,
}

impl Document {
    pub fn as_value(&self) -> &Value {
        &self.value
    }

    pub fn into_value(self) -> Value {
        self.value
    }

    /// What the validator ignored (unknown top-level elements and parameter names).
    pub fn warnings(&self) -> &[check::Problem] {
        &self.warnings
    }

    /// Parses text (JSON first, then YAML) and validates it.
    pub fn from_text(text: &str) -> Result<Document, SwmlError> {
        Self::from_value(parse_text(text)?)
    }

    /// Accepts the three forms `dial.swml` takes (ambiguity register A23): an object, a JSON string
    /// or a YAML string.
    pub fn from_value(value: Value) -> Result<Document, SwmlError> {
        let value = match value {
            Value::String(text) => parse_text(&text)?,
            other => other,
        };
        if !value.is_object() {
            return Err(SwmlError::NotAnObject);
        }
        let checked = check::check(value).map_err(SwmlError::Invalid)?;
        Ok(Document {
            value: checked.value,
            warnings: checked.warnings,
        })
    }
}

/// JSON or YAML text → JSON value, without validation.
pub fn parse_text(text: &str) -> Result<Value, SwmlError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(SwmlError::TooLarge);
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SwmlError::Empty);
    }
    if trimmed.starts_with(['{', '[']) {
        size::scan_json(trimmed.as_bytes())?;
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => Ok(v),
        Err(_) if trimmed.len() > MAX_YAML_BYTES => Err(SwmlError::YamlTooLarge),
        Err(json_err) => match size::parse_yaml(trimmed)? {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(SwmlError::NotAnObject),
            Err(yaml_err) => Err(SwmlError::Syntax(format!(
                "JSON: {json_err}; YAML: {yaml_err}"
            ))),
        },
    }
}

/// Which schema the lint uses (docs/swml-validation.md).
pub const SCHEMA_LINT_SOURCE: &str = "signalwire-sdk 3.7.5 swml.schema.json";

fn schema_validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: Value =
                serde_json::from_str(include_str!(concat!(env!("OUT_DIR"), "/swml.schema.json")))
                    .ok()?;
            jsonschema::draft202012::new(&schema).ok()
        })
        .as_ref()
}

/// The SDK's JSON Schema as a lint (swml.md §1.6): what it says about a document, each finding
/// naming its JSON path. It is not what decides whether a document runs — [`Document`] is —
/// because that schema is older than SWML and closed: it lacks `stream`, `transcribe`, and many
/// fields the current language has. Used by `dialtone swml validate` and the tests.
pub fn schema_lint(value: &Value) -> Vec<String> {
    let Some(v) = schema_validator() else {
        return vec!["the embedded SWML schema failed to compile".into()];
    };
    v.iter_errors(value)
        .take(10)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_object_json_string_and_yaml_string() {
        let obj = json!({"version":"1.0.0","sections":{"main":[{"answer":{}},{"hangup":{}}]}});
        assert!(Document::from_value(obj.clone()).is_ok());
        assert!(Document::from_value(Value::String(obj.to_string())).is_ok());
        let yaml = "version: 1.0.0\nsections:\n  main:\n    - answer: {}\n    - play:\n        url: 'silence:2'\n";
        let doc = Document::from_text(yaml).unwrap();
        assert_eq!(
            doc.as_value()["sections"]["main"][1]["play"]["url"],
            "silence:2"
        );
    }

    #[test]
    fn rejects_bad_documents_with_reasons() {
        assert_eq!(Document::from_text("  "), Err(SwmlError::Empty));
        assert!(matches!(
            Document::from_text("[1,2]"),
            Err(SwmlError::NotAnObject)
        ));
        assert!(matches!(
            Document::from_text("{not json: [}"),
            Err(SwmlError::Syntax(_))
        ));
        let no_sections = json!({"version":"1.0.0"});
        let e = Document::from_value(no_sections).unwrap_err();
        assert_eq!(e.code(), "relay_script_sections_missing");
        let bad_method = json!({"sections":{"main":[{"no_such_method":{}}]}});
        let Err(SwmlError::Invalid(errs)) = Document::from_value(bad_method) else {
            panic!("expected a validation error")
        };
        assert_eq!(errs[0].code, "relay_script_method_undefined");
        assert_eq!(errs[0].path, "/sections/main/0/no_such_method");
        assert_eq!(
            Document::from_text("{not json: [}").unwrap_err().code(),
            "relay_script_parse_error"
        );
    }

    #[test]
    fn every_shared_example_that_exists_validates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/spec/swml-examples");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "json" | "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(e) = Document::from_text(&text) {
                panic!("{} failed: {e}", path.display());
            }
        }
    }
}

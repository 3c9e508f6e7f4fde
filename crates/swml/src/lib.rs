//! SWML documents: loading from JSON or YAML (object or string form) and validating them against
//! SignalWire's published schema. The interpreter arrives with the SWML engine; this crate is the
//! loader every surface (dial, update, transfer, fetched documents) shares.

use std::sync::OnceLock;

use serde_json::Value;

/// Largest document accepted, in bytes of source text.
pub mod expr;
pub mod lint;
mod methods;
pub mod run;
pub mod simulate;

pub use methods::{ALL_METHODS, IMPLEMENTED};
pub use run::{Completion, ControlWait, Effect, HttpRequest, HttpResponse, Run, ScriptWarning};

pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SwmlError {
    #[error("SWML document is empty")]
    Empty,
    #[error("SWML document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("SWML document is neither JSON nor YAML: {0}")]
    Syntax(String),
    #[error("SWML document must be an object with `sections`")]
    NotAnObject,
    #[error("SWML document does not match the schema: {}", .0.join("; "))]
    Schema(Vec<String>),
}

/// A parsed, schema-valid SWML document (JSON object form).
#[derive(Debug, Clone, PartialEq)]
pub struct Document(Value);

impl Document {
    pub fn as_value(&self) -> &Value {
        &self.0
    }

    pub fn into_value(self) -> Value {
        self.0
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
        validate(&value)?;
        Ok(Document(value))
    }
}

/// JSON or YAML text → JSON value, without schema validation.
pub fn parse_text(text: &str) -> Result<Value, SwmlError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(SwmlError::TooLarge);
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SwmlError::Empty);
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => Ok(v),
        Err(json_err) => match serde_yaml::from_str::<Value>(trimmed) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(SwmlError::NotAnObject),
            Err(yaml_err) => Err(SwmlError::Syntax(format!(
                "JSON: {json_err}; YAML: {yaml_err}"
            ))),
        },
    }
}

fn validator() -> Option<&'static jsonschema::Validator> {
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

/// Methods valid in SWML that the SDK's schema does not define (swml.md §1.6). They are checked by
/// the interpreter when it loads them, not by the schema.
const SCHEMA_GAP_METHODS: [&str; 4] = ["stream", "stop_stream", "transcribe", "transcribe_stop"];

/// `connect` fields valid in SWML that the SDK's schema lacks (swml.md §1.6).
const SCHEMA_GAP_CONNECT_FIELDS: [&str; 8] = [
    "from_name",
    "status_url",
    "name",
    "codec",
    "realtime",
    "status_url_method",
    "authorization_bearer_token",
    "custom_parameters",
];

/// A copy of the document with the schema's known gaps masked: gap methods become a harmless
/// `label` step and gap `connect` fields are removed, so the rest is still checked strictly.
fn masked_for_schema(value: &Value) -> Value {
    let mut doc = value.clone();
    if let Some(sections) = doc.get_mut("sections").and_then(Value::as_object_mut) {
        for steps in sections.values_mut().filter_map(Value::as_array_mut) {
            for step in steps.iter_mut() {
                mask_step(step);
            }
        }
    }
    doc
}

fn mask_step(step: &mut Value) {
    let Some(obj) = step.as_object_mut() else {
        return;
    };
    if obj.len() != 1 {
        return;
    }
    if SCHEMA_GAP_METHODS.iter().any(|m| obj.contains_key(*m)) {
        *step = serde_json::json!({ "label": "schema-gap" });
        return;
    }
    if let Some(connect) = obj.get_mut("connect").and_then(Value::as_object_mut) {
        for field in SCHEMA_GAP_CONNECT_FIELDS {
            connect.remove(field);
        }
    }
}

/// Validates a JSON value against the SWML schema; the errors name the failing JSON paths.
pub fn validate(value: &Value) -> Result<(), SwmlError> {
    let Some(v) = validator() else {
        return Err(SwmlError::Schema(vec![
            "the embedded SWML schema failed to compile".into(),
        ]));
    };
    let masked = masked_for_schema(value);
    let errors: Vec<String> = v
        .iter_errors(&masked)
        .take(10)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SwmlError::Schema(errors))
    }
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
        assert!(matches!(
            Document::from_value(no_sections),
            Err(SwmlError::Schema(_))
        ));
        let bad_method = json!({"sections":{"main":[{"no_such_method":{}}]}});
        let Err(SwmlError::Schema(errs)) = Document::from_value(bad_method) else {
            panic!("expected schema error")
        };
        assert!(!errs.is_empty());
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

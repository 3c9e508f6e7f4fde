//! Inline SWML as the API receives it: an object, or JSON or YAML text of one (ambiguity register
//! A23). Only the shape is checked here; the node runs the SWML validator
//! (docs/swml-validation.md).

use serde_json::Value;

use super::codes::INVALID_PARAMETER;
use super::fields::Problem;
use super::formats;

const NOT_A_DOCUMENT: &str = "must be a SWML document: an object, or JSON or YAML text of one";

/// The document as a JSON object.
pub fn parse_document(value: &Value) -> Result<Value, Problem> {
    match value {
        Value::Object(_) => Ok(value.clone()),
        Value::String(text) => parse_text(text).ok_or((INVALID_PARAMETER, NOT_A_DOCUMENT.into())),
        _ => Err((INVALID_PARAMETER, NOT_A_DOCUMENT.into())),
    }
}

/// `to_script`: a SWML URL (kept as a string) or a document (parsed to an object).
pub fn parse_document_or_url(value: &Value) -> Result<Value, Problem> {
    match value {
        Value::String(text) if formats::is_http_url(text.trim()) => {
            Ok(Value::String(text.trim().to_owned()))
        }
        _ => parse_document(value).map_err(|(code, _)| {
            (
                code,
                "must be an http(s) SWML URL or a SWML document (object, JSON or YAML text)"
                    .to_owned(),
            )
        }),
    }
}

fn parse_text(text: &str) -> Option<Value> {
    ::swml::parse_text(text).ok().filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn object_json_and_yaml_forms() {
        let doc = json!({"version": "1.0.0", "sections": {"main": [{"answer": {}}]}});
        assert_eq!(parse_document(&doc).unwrap(), doc);
        assert_eq!(parse_document(&json!(doc.to_string())).unwrap(), doc);
        let yaml = "version: 1.0.0\nsections:\n  main:\n    - answer: {}\n";
        assert_eq!(parse_document(&json!(yaml)).unwrap(), doc);
    }

    #[test]
    fn non_documents_are_refused() {
        for bad in [
            json!("hello"),
            json!("[1,2]"),
            json!(""),
            json!(3),
            json!([]),
        ] {
            assert!(parse_document(&bad).is_err(), "{bad}");
        }
        assert!(parse_document(&json!("a: [")).is_err());
    }

    #[test]
    fn to_script_keeps_urls() {
        assert_eq!(
            parse_document_or_url(&json!("https://x.example/swml")).unwrap(),
            json!("https://x.example/swml")
        );
        assert!(parse_document_or_url(&json!("ftp://x")).is_err());
    }
}

//! The languages an `ai` agent speaks (swml.md §6.1 `languages`, `multilingual`): each with its
//! name, code, voice, fillers and `pronounce` rules. The first (or `multilingual`'s
//! `start_language`) is spoken at the start. With more than one, the model is told which it
//! speaks and which it may switch to, and is offered the engine's `change_language` tool: the
//! agent's voice, speech language and fillers follow. The switch is the model's, asked by the
//! caller: `multilingual`'s recogniser-driven switching needs a recogniser that tells the
//! language of an utterance, which the node's (US English) does not (docs/ai.md).

use serde_json::{json, Value};

use super::ai_pronounce::{self, Pronounce};

/// The engine's tool for a switch.
pub(crate) const CHANGE_LANGUAGE: &str = "change_language";

/// One language of the agent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Language {
    pub name: String,
    pub code: Option<String>,
    pub voice: Option<String>,
    pub function_fillers: Vec<String>,
    pub speech_fillers: Vec<String>,
    pub pronounce: Vec<Pronounce>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// A fillers list: a plain list, or a map by language (`code`'s entry, else one of the same
/// base language — `en-GB` for `en-US` — else `default`, else the first).
pub(crate) fn phrases(v: Option<&Value>, code: &str) -> Vec<String> {
    let base = |c: &str| {
        c.split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let list = match v {
        Some(Value::Array(a)) => Some(a),
        Some(Value::Object(m)) => m
            .get(code)
            .or_else(|| {
                m.iter()
                    .find(|(k, _)| base(k) == base(code))
                    .map(|(_, v)| v)
            })
            .or_else(|| m.get("default"))
            .or_else(|| m.values().next())
            .and_then(Value::as_array),
        _ => None,
    };
    list.into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// English names of the languages a code most often names (the model is told names).
fn name_of(code: &str) -> String {
    let base = code
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let known = [
        ("en", "English"),
        ("es", "Spanish"),
        ("fr", "French"),
        ("de", "German"),
        ("it", "Italian"),
        ("pt", "Portuguese"),
        ("nl", "Dutch"),
        ("sv", "Swedish"),
        ("pl", "Polish"),
        ("ru", "Russian"),
        ("ja", "Japanese"),
        ("zh", "Chinese"),
        ("ko", "Korean"),
        ("ar", "Arabic"),
        ("hi", "Hindi"),
        ("tr", "Turkish"),
    ];
    known
        .iter()
        .find(|(c, _)| *c == base)
        .map_or_else(|| code.to_string(), |(_, n)| n.to_string())
}

/// The agent's languages and the one it starts in, from the document's `multilingual` (which
/// wins) or `languages`.
pub(crate) fn of(ai: &Value) -> (Vec<Language>, usize) {
    if let Some(multi) = ai.get("multilingual").filter(|m| m.is_object()) {
        return multilingual(multi);
    }
    let list: Vec<Language> = ai
        .get("languages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|l| l.is_object())
        .map(|l| {
            let code = text(l, "code");
            let key = code.clone().unwrap_or_else(|| "en".into());
            let key = key.as_str();
            let mut function_fillers = phrases(l.get("function_fillers"), key);
            if function_fillers.is_empty() {
                function_fillers = phrases(l.get("fillers"), key);
            }
            Language {
                name: text(l, "name").unwrap_or_else(|| name_of(key)),
                code,
                voice: text(l, "voice"),
                function_fillers,
                speech_fillers: phrases(l.get("speech_fillers"), key),
                pronounce: ai_pronounce::rules(l.get("pronounce")),
            }
        })
        .collect();
    (list, 0)
}

/// `multilingual {languages: [{language, voice}], start_language, allowed, fillers,
/// function_fillers}`.
fn multilingual(m: &Value) -> (Vec<Language>, usize) {
    let allowed: Option<Vec<String>> = m.get("allowed").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect()
    });
    let start = text(m, "start_language")
        .unwrap_or_else(|| "en".into())
        .to_ascii_lowercase();
    let base = |code: &str| {
        code.split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let list: Vec<Language> = m
        .get("languages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let code = text(l, "language")?;
            let keep = base(&code) == base(&start)
                || allowed
                    .as_ref()
                    .is_none_or(|a| a.iter().any(|x| base(x) == base(&code)));
            keep.then(|| Language {
                name: name_of(&code),
                voice: text(l, "voice"),
                function_fillers: phrases(m.get("function_fillers"), &code),
                speech_fillers: phrases(m.get("fillers"), &code),
                pronounce: Vec::new(),
                code: Some(code),
            })
        })
        .collect();
    let at = list
        .iter()
        .position(|l| l.code.as_deref().is_some_and(|c| base(c) == base(&start)))
        .unwrap_or(0);
    (list, at)
}

/// The engine's `change_language` tool, when there is a choice.
pub(crate) fn tool(languages: &[Language]) -> Option<Value> {
    if languages.len() < 2 {
        return None;
    }
    let names: Vec<&str> = languages.iter().map(|l| l.name.as_str()).collect();
    Some(json!({"type": "function", "function": {
        "name": CHANGE_LANGUAGE,
        "description": "Speak another language from now on, when the user asks for it.",
        "parameters": {"type": "object", "properties": {
            "language": {"type": "string", "enum": names, "description": "The language to speak."}},
            "required": ["language"]}}}))
}

/// What the system message says of the languages, when there is a choice.
pub(crate) fn instructions(languages: &[Language], current: usize) -> Option<String> {
    if languages.len() < 2 {
        return None;
    }
    let now = languages.get(current)?;
    let others: Vec<&str> = languages
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != current)
        .map(|(_, l)| l.name.as_str())
        .collect();
    Some(format!(
        "## Language\n\nYou are speaking {}: answer in {}. You can also speak {}. When the user \
         asks for one of these languages, call `{CHANGE_LANGUAGE}` with it, then answer in it.",
        now.name,
        now.name,
        others.join(", ")
    ))
}

/// The language `asked` names (its name or code, any case).
pub(crate) fn find(languages: &[Language], asked: &str) -> Option<usize> {
    let asked = asked.trim();
    languages.iter().position(|l| {
        l.name.eq_ignore_ascii_case(asked)
            || l.code
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(asked))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_come_with_their_voices_and_fillers() {
        let (list, at) = of(&json!({"languages": [
            {"name": "English", "code": "en-US", "voice": "kal", "speech_fillers": ["Hmm."]},
            {"code": "es-ES", "voice": "espeak:es", "function_fillers": {"es-ES": ["Un momento."]}}]}));
        assert_eq!(at, 0);
        assert_eq!(list[1].name, "Spanish");
        assert_eq!(list[1].function_fillers, ["Un momento."]);
        assert_eq!(list[0].speech_fillers, ["Hmm."]);
        let offered = tool(&list).unwrap();
        assert_eq!(
            offered["function"]["parameters"]["properties"]["language"]["enum"],
            json!(["English", "Spanish"])
        );
        let said = instructions(&list, 1).unwrap();
        assert!(said.contains("You are speaking Spanish") && said.contains("also speak English"));
        assert_eq!(find(&list, "spanish"), Some(1));
        assert_eq!(find(&list, "EN-us"), Some(0));
        assert_eq!(find(&list, "French"), None);
        // One language: no choice to offer.
        let (one, _) = of(&json!({"languages": [{"name": "English", "code": "en-US"}]}));
        assert!(tool(&one).is_none() && instructions(&one, 0).is_none());
    }

    #[test]
    fn multilingual_wins_and_starts_in_its_start_language() {
        let (list, at) = of(&json!({
            "languages": [{"name": "English", "code": "en-US"}],
            "multilingual": {"start_language": "fr", "allowed": ["es"],
                "fillers": {"fr": ["Un instant."], "default": ["One moment."]},
                "languages": [{"language": "en-US", "voice": "slt"},
                              {"language": "fr-FR", "voice": "espeak:fr-fr"},
                              {"language": "es", "voice": "espeak:es"},
                              {"language": "de"}, {"voice": "no language"}]}}));
        let names: Vec<&str> = list.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            ["French", "Spanish"],
            "allowed and the start language only"
        );
        assert_eq!(at, 0);
        assert_eq!(list[0].speech_fillers, ["Un instant."]);
        assert_eq!(list[1].speech_fillers, ["One moment."]);
        assert_eq!(list[0].voice.as_deref(), Some("espeak:fr-fr"));
    }
}

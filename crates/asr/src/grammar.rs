//! The JSGF grammar a recognition decodes against, built from the request.
//!
//! Alternatives are: every `hints` phrase, the digit words (zero…nine, oh) when digits are
//! allowed, and common yes/no words. An utterance is one or more alternatives in a row, so
//! "one two three" or "yes please" (as a hint) both parse. Words are lower-cased and stripped
//! of punctuation (apostrophes kept); a phrase with any word missing from the dictionary is
//! dropped whole, because a partial phrase would match speech the caller did not ask for.

use crate::RecognitionRequest;

/// Spoken digits, accepted when the collect allows digits.
pub const DIGIT_WORDS: [&str; 11] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh",
];
/// Always accepted, so a yes/no question works without hints.
pub const YES_NO_WORDS: [&str; 5] = ["yes", "yeah", "yep", "no", "nope"];
/// More phrases than this are ignored (bounds the grammar's size from untrusted input).
pub const MAX_PHRASES: usize = 500;
/// Words per phrase beyond this drop the phrase.
pub const MAX_WORDS_PER_PHRASE: usize = 20;

/// Splits a phrase into normalised words: lower case, letters/digits/apostrophes only.
pub fn words(phrase: &str) -> Vec<String> {
    phrase
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The usable phrases (each a list of dictionary words) for `req`, deduplicated, in order:
/// hints, then digit words, then yes/no words.
pub fn phrases(req: &RecognitionRequest, in_dictionary: &dyn Fn(&str) -> bool) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut add = |ws: Vec<String>| {
        if ws.is_empty() || ws.len() > MAX_WORDS_PER_PHRASE || out.len() >= MAX_PHRASES {
            return;
        }
        if ws.iter().all(|w| in_dictionary(w)) && !out.contains(&ws) {
            out.push(ws);
        }
    };
    for hint in &req.hints {
        add(words(hint));
    }
    if req.digits_allowed {
        for d in DIGIT_WORDS {
            add(vec![d.to_string()]);
        }
    }
    for w in YES_NO_WORDS {
        add(vec![w.to_string()]);
    }
    out
}

/// JSGF source for `phrases`; None when there is nothing to recognise.
pub fn jsgf(phrases: &[Vec<String>], digits: bool) -> Option<String> {
    if phrases.is_empty() {
        return None;
    }
    let mut alts: Vec<String> = phrases.iter().map(|p| p.join(" ")).collect();
    let mut rules = String::new();
    if digits {
        alts.push("<digit>+".into());
        rules = format!("<digit> = {};\n", DIGIT_WORDS.join(" | "));
    }
    Some(format!(
        "#JSGF V1.0;\ngrammar dialtone;\npublic <utterance> = {};\n{rules}",
        alts.join(" | ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(hints: &[&str], digits: bool) -> RecognitionRequest {
        RecognitionRequest {
            language: "en-US".into(),
            hints: hints.iter().map(|h| h.to_string()).collect(),
            sample_rate: 8000,
            digits_allowed: digits,
        }
    }

    #[test]
    fn words_are_normalised() {
        assert_eq!(words("  Yes, PLEASE! "), vec!["yes", "please"]);
        assert_eq!(words("don't-stop"), vec!["don't", "stop"]);
        assert!(words("?!").is_empty());
    }

    #[test]
    fn phrases_with_unknown_words_are_dropped_whole() {
        let dict = |w: &str| w != "blorptastic";
        let p = phrases(
            &req(&["yes please", "blorptastic thing", "sales"], false),
            &dict,
        );
        assert_eq!(p[0], vec!["yes", "please"]);
        assert_eq!(p[1], vec!["sales"]);
        assert!(!p.iter().any(|ws| ws.contains(&"thing".to_string())));
        assert!(p.contains(&vec!["no".to_string()]));
        assert!(!p.contains(&vec!["seven".to_string()]));
    }

    #[test]
    fn digits_and_dedup() {
        let p = phrases(&req(&["one", "One"], true), &|_| true);
        assert_eq!(
            p.iter().filter(|w| *w == &vec!["one".to_string()]).count(),
            1
        );
        assert!(p.contains(&vec!["oh".to_string()]));
    }

    #[test]
    fn grammar_text() {
        let g = jsgf(
            &[vec!["yes".into(), "please".into()], vec!["no".into()]],
            true,
        )
        .unwrap_or_default();
        assert!(g.starts_with("#JSGF V1.0;"));
        assert!(g.contains("<utterance> = yes please | no | <digit>+;"));
        assert_eq!(jsgf(&[], true), None);
    }
}

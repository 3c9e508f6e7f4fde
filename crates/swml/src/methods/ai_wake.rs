//! The `ai` agent's name and pauses (swml.md §6.1 `params`): `ai_name` (default `computer`),
//! `wake_prefix`, `enable_pause` (the model is offered `pause_conversation`: the agent goes
//! quiet until it hears its name), `start_paused` (it starts so), `speak_when_spoken_to` (it
//! answers only what is said to it by name; the rest is heard and kept).

use serde_json::{json, Value};

/// The engine's tool for a pause.
pub(crate) const PAUSE_CONVERSATION: &str = "pause_conversation";

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Wake {
    /// What wakes the agent: `wake_prefix` and `ai_name`, lower-cased words.
    phrase: Vec<String>,
    name: String,
    pub pausable: bool,
    pub paused: bool,
    pub only_when_named: bool,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Wake {
    pub(crate) fn of(params: &Value) -> Wake {
        let flag = |k: &str| params.get(k).and_then(super::as_bool) == Some(true);
        let text = |k: &str| {
            params
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
        };
        let name = text("ai_name").unwrap_or("computer").to_string();
        let mut phrase = text("wake_prefix").map(words).unwrap_or_default();
        phrase.extend(words(&name));
        let only_when_named = flag("speak_when_spoken_to");
        let paused = flag("start_paused") && !only_when_named;
        Wake {
            phrase,
            name,
            // The two are exclusive (swml.md): speak_when_spoken_to wins.
            pausable: (flag("enable_pause") || paused) && !only_when_named,
            paused,
            only_when_named,
        }
    }

    /// `text` says the wake phrase (its words in a row, any case).
    pub(crate) fn addressed(&self, text: &str) -> bool {
        let said = words(text);
        !self.phrase.is_empty() && said.windows(self.phrase.len()).any(|w| w == self.phrase)
    }

    /// Whether an utterance is to be answered; hearing the wake phrase ends a pause.
    pub(crate) fn answers(&mut self, text: &str) -> bool {
        if self.paused || self.only_when_named {
            if !self.addressed(text) {
                return false;
            }
            self.paused = false;
        }
        true
    }

    /// The model's `pause_conversation`, when pauses are on and the agent is not paused.
    pub(crate) fn tool(&self) -> Option<Value> {
        (self.pausable && !self.paused).then(|| {
            json!({"type": "function", "function": {
                "name": PAUSE_CONVERSATION,
                "description": format!(
                    "Pause the conversation when the user asks you to hold on, wait or pause: you \
                     stay silent until they say \"{}\".", self.name),
                "parameters": {"type": "object", "properties": {}}}})
        })
    }

    /// The model paused the conversation: what it is told.
    pub(crate) fn pause(&mut self) -> String {
        self.paused = true;
        format!(
            "Paused. Say nothing more now: the conversation resumes when the user says \"{}\".",
            self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_ends_when_the_name_is_said_with_its_prefix() {
        let mut w =
            Wake::of(&json!({"enable_pause": true, "ai_name": "Max", "wake_prefix": "hey"}));
        assert!(w.tool().is_some() && w.answers("anything"));
        w.pause();
        assert!(w.tool().is_none());
        assert!(!w.answers("max are you there"), "the prefix is missing");
        assert!(!w.answers("hey, what's up"));
        assert!(w.answers("Hey Max! I'm back."));
        assert!(!w.paused && w.answers("and more"));
    }

    #[test]
    fn start_paused_and_speak_when_spoken_to() {
        let mut w = Wake::of(&json!({"start_paused": true}));
        assert!(w.paused && w.pausable);
        assert!(!w.answers("hello"));
        assert!(w.answers("computer, help"));
        let mut named = Wake::of(&json!({"speak_when_spoken_to": true, "enable_pause": true}));
        assert!(!named.pausable && named.tool().is_none());
        assert!(!named.answers("just talking"));
        assert!(named.answers("Computer: what time is it?"));
        assert!(!named.answers("thanks"), "each answer needs the name");
        let off = Wake::of(&json!({}));
        assert!(off.tool().is_none());
        assert!(!off.addressed("computers are great"), "whole words only");
    }
}

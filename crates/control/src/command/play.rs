//! `calling.play` and its controls (calling-api.md §6.6–6.8); SWML `play` builds the same
//! [`PlayParams`].

use serde::{Deserialize, Serialize};

use super::defaults;

/// Which audio of the call an operation works on (`listen` = what the call's party hears,
/// `speak` = what it says, `both`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AudioDirection {
    #[default]
    Listen,
    Speak,
    Both,
}

impl AudioDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            AudioDirection::Listen => "listen",
            AudioDirection::Speak => "speak",
            AudioDirection::Both => "both",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TtsGender {
    Male,
    #[default]
    Female,
}

impl TtsGender {
    pub fn as_str(self) -> &'static str {
        match self {
            TtsGender::Male => "male",
            TtsGender::Female => "female",
        }
    }
}

/// Longest text one `tts` item (SWML `say:`) may carry, in characters. SignalWire documents no
/// limit; this keeps one item's synthesis short and bounded (about three minutes of speech).
pub const MAX_TTS_CHARS_PER_ITEM: usize = 3_000;
/// Longest text all the `tts` items of one play (or prompt) may carry together.
pub const MAX_TTS_CHARS_PER_PLAY: usize = 10_000;

/// Why a play's text-to-speech is over the caps, if it is: the REST API answers 422 with the
/// same limits (api::validate::play), a SWML `play`/`prompt` fails with this message.
pub fn tts_text_over_cap(items: &[MediaItem]) -> Option<String> {
    let mut total = 0usize;
    for (index, item) in items.iter().enumerate() {
        if let MediaItem::Tts(t) = item {
            let n = t.text.chars().count();
            if n > MAX_TTS_CHARS_PER_ITEM {
                return Some(format!(
                    "text of item {index} is {n} characters; at most {MAX_TTS_CHARS_PER_ITEM} per item"
                ));
            }
            total += n;
        }
    }
    (total > MAX_TTS_CHARS_PER_PLAY).then(|| {
        format!(
            "text to speak is {total} characters in all; at most {MAX_TTS_CHARS_PER_PLAY} per play"
        )
    })
}

/// Text to speak; unset fields take the command's (REST) or the document's (SWML) settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TtsItem {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<TtsGender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
}

/// One playable item (`{type, params}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "params", rename_all = "lowercase")]
pub enum MediaItem {
    Audio {
        url: String,
    },
    Tts(TtsItem),
    /// Seconds of silence.
    Silence {
        duration: f64,
    },
    /// A country's ringback cadence; `duration` seconds, or until stopped when absent, or
    /// exactly one cycle when `single_cycle` (SWML's `ring:cc`, swml.md §6.19).
    Ringtone {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<f64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        single_cycle: bool,
    },
}

impl MediaItem {
    /// A US ring, repeating until stopped: ringback, and hold audio when none is given.
    pub fn us_ring() -> MediaItem {
        MediaItem::Ringtone {
            name: "us".into(),
            duration: None,
            single_cycle: false,
        }
    }
}

/// `calling.play` (§6.6) and SWML `play` (swml.md §6.19).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayParams {
    pub control_id: String,
    pub play: Vec<MediaItem>,
    /// Gain in dB, -40..=40.
    #[serde(default)]
    pub volume: f64,
    #[serde(default)]
    pub direction: AudioDirection,
    /// Times the list plays; 0 repeats until stopped.
    #[serde(rename = "loop", default = "defaults::one")]
    pub loops: u32,
    #[serde(default = "defaults::tts_language")]
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    #[serde(default)]
    pub gender: TtsGender,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
}

impl PlayParams {
    /// A playback of `items` with every other setting at its default.
    pub fn new(control_id: String, play: Vec<MediaItem>) -> Self {
        PlayParams {
            control_id,
            play,
            volume: 0.0,
            direction: AudioDirection::default(),
            loops: defaults::one(),
            language: defaults::tts_language(),
            voice: None,
            gender: TtsGender::default(),
            status_url: None,
        }
    }
}

/// `calling.play.volume` (§6.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayVolumeParams {
    pub control_id: String,
    pub volume: f64,
}

#[cfg(test)]
mod tts_cap_tests {
    use super::*;

    fn say(n: usize) -> MediaItem {
        MediaItem::Tts(TtsItem {
            text: "é".repeat(n),
            language: None,
            gender: None,
            voice: None,
        })
    }

    #[test]
    fn tts_text_is_capped_per_item_and_per_play_in_characters() {
        assert_eq!(tts_text_over_cap(&[say(MAX_TTS_CHARS_PER_ITEM)]), None);
        let one = tts_text_over_cap(&[say(1), say(MAX_TTS_CHARS_PER_ITEM + 1)]).unwrap();
        assert!(
            one.contains("item 1") && one.contains("3000 per item"),
            "{one}"
        );
        let four = vec![say(MAX_TTS_CHARS_PER_ITEM); 3];
        assert_eq!(tts_text_over_cap(&four), None);
        let mut over = four.clone();
        over.push(say(MAX_TTS_CHARS_PER_PLAY - 3 * MAX_TTS_CHARS_PER_ITEM + 1));
        assert!(tts_text_over_cap(&over).unwrap().contains("10000 per play"));
        let silence = MediaItem::Silence { duration: 1.0 };
        assert_eq!(tts_text_over_cap(&[silence]), None);
    }
}

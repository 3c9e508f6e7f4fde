//! The glue between a call's operations and the listeners and filter on its audio (media's
//! [`media::listen`]): detect and speech specs become media configurations, the denoiser is
//! set and cleared, and what the listeners report goes to the call's session by the key's
//! prefix, as typed session events.

use tracing::{debug, info, warn};

use control::session::{
    DetectKind, DetectOutcome, DetectSpec, DetectorEvent, SessionEvent, SpeechEvent,
};
use media::amd::{AmdParams, AmdResult};
use media::denoise::DenoiseFilter;
use media::detect::{DetectConfig, DetectEvent, DetectMode, MachineConfig};
use media::fax::FaxTone;
use media::listen::{FrameFilter, KeyedEvent, ListenerEvent};

use crate::actor::CallActor;
use crate::shard::ShardCommand;

/// Key prefix of `calling.detect` detectors (then the detect's control_id).
pub(crate) const DETECT_PREFIX: &str = "detect:";
/// Key prefix of a speech collect's audio tap (then the collect's control_id).
pub(crate) const SPEECH_PREFIX: &str = "speech:";

impl CallActor {
    pub(crate) async fn on_listener_event(&mut self, ev: KeyedEvent) {
        let typed = match ev.event {
            ListenerEvent::Fax(progress) => {
                match ev.key.strip_prefix(crate::actor::fax::FAX_PREFIX) {
                    Some(id) => self.on_fax_progress(id.to_owned(), progress).await,
                    None => debug!(key = %ev.key, "fax event from an unknown modem ignored"),
                }
                return;
            }
            ListenerEvent::Detect(d) => {
                ev.key
                    .strip_prefix(DETECT_PREFIX)
                    .map(|id| SessionEvent::Detector {
                        control_id: id.to_owned(),
                        event: detector_event(d),
                    })
            }
            ListenerEvent::Speech(s) => {
                if let Some(tap) = ev.key.strip_prefix(crate::actor::live::LIVE_PREFIX) {
                    return self.on_live_speech(tap, speech_event(s)).await;
                }
                ev.key
                    .strip_prefix(SPEECH_PREFIX)
                    .map(|id| SessionEvent::Speech {
                        control_id: id.to_owned(),
                        event: speech_event(s),
                    })
            }
        };
        match typed {
            Some(event) => self.op_event(event).await,
            None => debug!(key = %ev.key, "event from an unknown listener ignored"),
        }
    }

    /// REST `calling.denoise` / `calling.denoise.stop` (calling-api.md §6.21): RNNoise on the
    /// far end's audio as the call's filter. Idempotent: a second `denoise` keeps the running
    /// filter (and its adapted state); `stop` when off is fine.
    pub(crate) fn set_denoise(&mut self, on: bool) {
        if on == self.denoising {
            return;
        }
        info!(on, "denoise");
        self.denoising = on;
        let filter = on.then(|| Box::new(DenoiseFilter::default()) as Box<dyn FrameFilter>);
        self.node.media.send(
            self.media_key,
            ShardCommand::SetFilter {
                call_id: self.ident.call_id,
                filter,
            },
        );
    }
}

/// A detect's verdict in the API's words (`MACHINE`, `CNG`, ...).
fn detector_event(ev: DetectEvent) -> DetectorEvent {
    let (kind, event, beep) = match ev {
        DetectEvent::Finished => return DetectorEvent::Finished,
        DetectEvent::Fax(FaxTone::Cng) => (DetectKind::Fax, "CNG", false),
        DetectEvent::Fax(FaxTone::Ced) => (DetectKind::Fax, "CED", false),
        DetectEvent::Machine { result, beep } => {
            let name = match result {
                AmdResult::Human => "HUMAN",
                AmdResult::Machine => "MACHINE",
                AmdResult::Unknown => "UNKNOWN",
                AmdResult::Ready => "READY",
                AmdResult::NotReady => "NOT_READY",
            };
            (DetectKind::Machine, name, beep)
        }
    };
    DetectorEvent::Detected(DetectOutcome {
        kind,
        event: event.to_owned(),
        beep,
    })
}

fn speech_event(ev: media::speech::SpeechEvent) -> SpeechEvent {
    use media::speech::SpeechEvent as S;
    match ev {
        S::StartOfInput => SpeechEvent::StartOfInput,
        S::Partial { text } => SpeechEvent::Partial { text },
        S::Result { text, confidence } => {
            // The end of an utterance (turn-latency timelines start here: docs/benchmarks.md).
            info!(chars = text.len(), confidence, "utterance recognised");
            SpeechEvent::Result { text, confidence }
        }
        S::Error { message } => {
            warn!(%message, "speech collect failed");
            SpeechEvent::Error { message }
        }
    }
}

/// Seconds as the detector's milliseconds.
fn detector_ms(secs: f64) -> u32 {
    let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
    (secs * 1000.0).min(f64::from(u32::MAX)) as u32
}

/// Machine params as the detector wants them (seconds → ms), with the spec's defaults.
fn machine_config(p: &control::command::MachineParams) -> MachineConfig {
    MachineConfig {
        amd: AmdParams {
            initial_timeout_ms: detector_ms(p.initial_timeout),
            end_silence_timeout_ms: detector_ms(p.end_silence_timeout),
            machine_voice_threshold_ms: detector_ms(p.machine_voice_threshold),
            machine_words_threshold: p.machine_words_threshold,
            machine_ready_timeout_ms: detector_ms(p.machine_ready_timeout()),
            detect_beep: true,
        },
        detect_message_end: p.detect_message_end,
        detect_interruptions: p.detect_interruptions,
    }
}

/// What a detect's listener runs.
pub(crate) fn detect_config(spec: &DetectSpec) -> DetectConfig {
    DetectConfig {
        mode: match spec.kind {
            DetectKind::Machine => DetectMode::Machine,
            DetectKind::Fax => DetectMode::Fax,
            DetectKind::Digit => DetectMode::Digit,
        },
        machine: machine_config(&spec.machine),
        tone: spec.tone.map(|t| match t {
            control::command::FaxTone::Cng => FaxTone::Cng,
            control::command::FaxTone::Ced => FaxTone::Ced,
        }),
        timeout_ms: spec.timeout_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_default_per_spec() {
        let typed = serde_json::from_value(serde_json::json!({ "end_silence_timeout": 2.0 }))
            .expect("machine params");
        let m = machine_config(&typed);
        assert_eq!(m.amd.initial_timeout_ms, 4500);
        assert_eq!(m.amd.machine_ready_timeout_ms, 2000);
        assert_eq!(m.amd.machine_words_threshold, 6);
        assert!(m.detect_message_end && !m.detect_interruptions);
    }

    #[test]
    fn verdicts_in_the_api_words() {
        let d = detector_event(DetectEvent::Machine {
            result: AmdResult::NotReady,
            beep: true,
        });
        assert_eq!(
            d,
            DetectorEvent::Detected(DetectOutcome {
                kind: DetectKind::Machine,
                event: "NOT_READY".into(),
                beep: true
            })
        );
        assert_eq!(
            detector_event(DetectEvent::Fax(FaxTone::Ced)),
            DetectorEvent::Detected(DetectOutcome::new(DetectKind::Fax, "CED"))
        );
        assert_eq!(
            detector_event(DetectEvent::Finished),
            DetectorEvent::Finished
        );
    }
}

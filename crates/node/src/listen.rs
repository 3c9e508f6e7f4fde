//! Routes what the listeners on a call's audio report (see [`crate::shard::FrameListener`]) to
//! the call's session, by the key's prefix, as typed events.

use serde_json::Value;
use tracing::{debug, warn};

use control::session::{DetectKind, DetectOutcome, DetectorEvent, SessionEvent, SpeechEvent};

use crate::actor::CallActor;
use crate::shard::ListenerEvent;

/// Key prefix of `calling.detect` detectors (then the detect's control_id).
pub(crate) const DETECT_PREFIX: &str = "detect:";
/// Key prefix of a speech collect's audio tap (then the collect's control_id).
pub(crate) const SPEECH_PREFIX: &str = "speech:";

impl CallActor {
    pub(crate) async fn on_listener_event(&mut self, ev: ListenerEvent) {
        let typed = if let Some(control_id) = ev.key.strip_prefix(DETECT_PREFIX) {
            detector_event(&ev.event).map(|event| SessionEvent::Detector {
                control_id: control_id.to_owned(),
                event,
            })
        } else if let Some(control_id) = ev.key.strip_prefix(SPEECH_PREFIX) {
            speech_event(&ev.event).map(|event| SessionEvent::Speech {
                control_id: control_id.to_owned(),
                event,
            })
        } else {
            debug!(key = %ev.key, "event from an unknown listener ignored");
            None
        };
        if let Some(event) = typed {
            self.op_event(event).await;
        }
    }
}

/// `{"detect": {type, params: {event, beep?}}}` or `{"finished": true}` (detect.rs).
fn detector_event(v: &Value) -> Option<DetectorEvent> {
    if v.get("finished").is_some() {
        return Some(DetectorEvent::Finished);
    }
    let d = v.get("detect")?;
    let kind = match d.get("type").and_then(Value::as_str)? {
        "machine" => DetectKind::Machine,
        "fax" => DetectKind::Fax,
        "digit" => DetectKind::Digit,
        other => {
            warn!(kind = other, "unknown detector event");
            return None;
        }
    };
    let params = d.get("params")?;
    Some(DetectorEvent::Detected(DetectOutcome {
        kind,
        event: params.get("event").and_then(Value::as_str)?.to_owned(),
        beep: params.get("beep").and_then(Value::as_bool).unwrap_or(false),
    }))
}

/// `{"kind": start_of_input | partial | result | error, ...}` (speech.rs).
fn speech_event(v: &Value) -> Option<SpeechEvent> {
    let text = || {
        v.get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Some(match v.get("kind").and_then(Value::as_str)? {
        "start_of_input" => SpeechEvent::StartOfInput,
        "partial" => SpeechEvent::Partial { text: text() },
        "result" => SpeechEvent::Result {
            text: text(),
            confidence: v.get("confidence").and_then(Value::as_f64).unwrap_or(0.0),
        },
        "error" => {
            let message = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            warn!(%message, "speech collect failed");
            SpeechEvent::Error { message }
        }
        _ => return None,
    })
}

//! Routes what the listeners on a call's audio report (see [`crate::shard::FrameListener`]) to
//! the feature that added them, by the key's prefix.

use tracing::debug;

use crate::actor::CallActor;
use crate::shard::ListenerEvent;

/// Key prefix of `calling.detect` detectors (then the detect's control_id).
pub(crate) const DETECT_PREFIX: &str = "detect:";
/// Key prefix of a speech collect's audio tap (then the collect's control_id).
pub(crate) const SPEECH_PREFIX: &str = "speech:";

impl CallActor {
    pub(crate) async fn on_listener_event(&mut self, ev: ListenerEvent) {
        if let Some(control_id) = ev.key.strip_prefix(DETECT_PREFIX) {
            self.on_detect_event(control_id, ev.event).await;
        } else if let Some(control_id) = ev.key.strip_prefix(SPEECH_PREFIX) {
            self.on_speech_event(control_id, ev.event).await;
        } else {
            debug!(key = %ev.key, "event from an unknown listener ignored");
        }
    }
}

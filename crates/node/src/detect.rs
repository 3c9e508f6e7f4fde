//! REST `calling.detect` (+ `.stop`) and SWML `detect_machine`: not built yet.

use serde_json::Value;

use crate::actor::CallActor;

impl CallActor {
    pub(crate) async fn on_detect_event(&mut self, control_id: &str, event: Value) {
        let _ = (control_id, event);
    }
}

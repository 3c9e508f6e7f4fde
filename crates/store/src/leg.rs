//! How a stored call reads as the control layer's types: the Call Leg the API answers with,
//! its direction and leg type, and which states its subscriber asked for.

use control::{CallLeg, CallStatus, Direction, LegType};

use crate::CallRecord;

impl CallRecord {
    /// The Call Leg of this call (calling-api.md §4), with the operator extensions.
    pub fn leg(&self) -> CallLeg {
        let ended = self.ended_at_ms.is_some();
        let when_ended = |v: Option<i64>| ended.then(|| v.unwrap_or(0));
        CallLeg {
            id: self.id,
            from: self.from.clone(),
            to: self.to.clone(),
            direction: self.direction(),
            source: "realtime_api".into(),
            url: self.url.clone(),
            charge: 0.0,
            created_at: iso8601(self.created_at_ms),
            charge_details: Vec::new(),
            status: CallStatus::parse(&self.status),
            duration: when_ended(self.duration_ms).map(|ms| ms / 1000),
            duration_ms: when_ended(self.duration_ms),
            billing_ms: when_ended(self.billing_ms),
            leg_type: self.leg_type(),
            parent_id: self.parent_id,
            end_reason: self.end_reason.clone(),
            answered_at: self.answered_at_ms.map(iso8601),
            ended_at: self.ended_at_ms.map(iso8601),
            // A row that does not parse (written by another version) shows no stats.
            media_stats: self
                .media_stats
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            held: (self.answered_at_ms.is_some() && !ended).then_some(self.held),
        }
    }

    pub fn direction(&self) -> Direction {
        Direction::parse(&self.direction).unwrap_or(Direction::OutboundApi)
    }

    pub fn leg_type(&self) -> LegType {
        match self.leg_type.as_str() {
            "relay_sip_call" => LegType::RelaySipCall,
            "relay_webrtc_call" => LegType::RelayWebrtcCall,
            _ => LegType::RelayPstnCall,
        }
    }

    /// Whether the call's subscriber asked for `state` webhooks.
    pub fn subscribed(&self, state: &str) -> bool {
        serde_json::from_str::<Vec<String>>(&self.status_events)
            .map(|v| v.iter().any(|s| s == state))
            .unwrap_or(false)
    }
}

/// How a leg type is stored.
pub fn leg_type_name(t: LegType) -> &'static str {
    match t {
        LegType::RelayPstnCall => "relay_pstn_call",
        LegType::RelaySipCall => "relay_sip_call",
        LegType::RelayWebrtcCall => "relay_webrtc_call",
    }
}

/// `2024-05-06T12:20:00Z`.
fn iso8601(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_times_and_leg_types() {
        let mut r = CallRecord {
            status_events: r#"["ringing","ended"]"#.into(),
            created_at_ms: 1_714_998_000_000,
            leg_type: leg_type_name(LegType::RelaySipCall).into(),
            ..CallRecord::default()
        };
        assert!(r.subscribed("ended"));
        assert!(!r.subscribed("answered"));
        assert_eq!(r.leg().created_at, "2024-05-06T12:20:00Z");
        assert_eq!(r.leg_type(), LegType::RelaySipCall);
        assert_eq!(r.leg().duration, None, "not ended");
        r.ended_at_ms = Some(1_714_998_010_000);
        r.duration_ms = Some(10_500);
        assert_eq!(r.leg().duration, Some(10));
        assert_eq!(r.leg().billing_ms, Some(0));
        r.status_events = "garbage".into();
        assert!(!r.subscribed("ended"));
        assert_eq!(
            r.leg().held,
            None,
            "not answered, then ended: no hold state"
        );
        r.ended_at_ms = None;
        r.answered_at_ms = Some(1_714_998_001_000);
        r.held = true;
        assert_eq!(r.leg().held, Some(true));
        assert_eq!(r.leg().media_stats, None);
        r.media_stats = Some(r#"{"final":true}"#.into());
        assert_eq!(
            r.leg().media_stats,
            None,
            "a row that does not parse shows none"
        );
        let report = control::MediaReport {
            is_final: true,
            packets_sent: 10,
            rtt_ms: Some(3),
            ..control::MediaReport::default()
        };
        r.media_stats = serde_json::to_string(&report).ok();
        assert_eq!(r.leg().media_stats, Some(report));
    }
}

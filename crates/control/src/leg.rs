//! The Call Leg: the object every successful command answers with (calling-api.md §4.1).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::status::{CallStatus, Direction};

/// The keys of SignalWire's Call Leg (calling-api.md §4.1), a closed schema. Command responses
/// carry exactly these; the operator extensions of [`CallLeg`] (`end_reason`,
/// `answered_at`, `ended_at`) stay on the operator GETs.
pub const CALL_LEG_KEYS: [&str; 15] = [
    "id",
    "from",
    "to",
    "direction",
    "source",
    "url",
    "charge",
    "created_at",
    "charge_details",
    "status",
    "duration",
    "duration_ms",
    "billing_ms",
    "type",
    "parent_id",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegType {
    RelayPstnCall,
    RelaySipCall,
    RelayWebrtcCall,
}

impl LegType {
    /// Ambiguity register A27: `sip:`/`sips:` → SIP, `verto:`/`client:` → WebRTC, E.164 → PSTN.
    pub fn for_destination(to: &str) -> LegType {
        let lower = to.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            LegType::RelaySipCall
        } else if lower.starts_with("verto:") || lower.starts_with("client:") {
            LegType::RelayWebrtcCall
        } else {
            LegType::RelayPstnCall
        }
    }

    pub fn device_type(self) -> &'static str {
        match self {
            LegType::RelayPstnCall => "phone",
            LegType::RelaySipCall => "sip",
            LegType::RelayWebrtcCall => "webrtc",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeDetail {
    pub description: String,
    pub charge: f64,
}

/// All keys are always present; nullable ones serialize as `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallLeg {
    pub id: Uuid,
    pub from: String,
    pub to: String,
    pub direction: Direction,
    pub source: String,
    pub url: Option<String>,
    pub charge: f64,
    pub created_at: String,
    pub charge_details: Vec<ChargeDetail>,
    pub status: Option<CallStatus>,
    pub duration: Option<i64>,
    pub duration_ms: Option<i64>,
    pub billing_ms: Option<i64>,
    #[serde(rename = "type")]
    pub leg_type: LegType,
    pub parent_id: Option<Uuid>,
    /// Operator extension (not in SignalWire's Call Leg): why the call ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// Operator extension: when the far end answered (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<String>,
    /// Operator extension: when the call ended (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leg_serializes_every_key() {
        let leg = CallLeg {
            id: Uuid::nil(),
            from: "+15105550100".into(),
            to: "sip:alice@example.net".into(),
            direction: Direction::OutboundApi,
            source: "realtime_api".into(),
            url: None,
            charge: 0.0,
            created_at: "2025-03-02T17:45:09Z".into(),
            charge_details: vec![],
            status: Some(CallStatus::Queued),
            duration: None,
            duration_ms: None,
            billing_ms: None,
            leg_type: LegType::RelaySipCall,
            parent_id: None,
            end_reason: None,
            answered_at: None,
            ended_at: None,
        };
        let v = serde_json::to_value(&leg).unwrap();
        let obj = v.as_object().unwrap();
        for key in CALL_LEG_KEYS {
            assert!(obj.contains_key(key), "missing {key}");
        }
        assert_eq!(v["direction"], "outbound-api");
        assert_eq!(v["type"], "relay_sip_call");
        assert!(v["url"].is_null());
    }

    #[test]
    fn destination_types() {
        assert_eq!(LegType::for_destination("sip:a@b"), LegType::RelaySipCall);
        assert_eq!(LegType::for_destination("SIPS:a@b"), LegType::RelaySipCall);
        assert_eq!(
            LegType::for_destination("+14155550100"),
            LegType::RelayPstnCall
        );
        assert_eq!(
            LegType::for_destination("verto:x@y"),
            LegType::RelayWebrtcCall
        );
    }
}

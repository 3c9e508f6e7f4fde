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
    /// Operator extension: the call's RTP/RTCP statistics, once its media ran (updated while
    /// it is live, final at hang-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_stats: Option<MediaReport>,
    /// Operator extension: while the call is up, whether the far end holds it (its SDP says
    /// `sendonly`/`inactive` or `c=0.0.0.0`: we send it no audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<bool>,
}

/// A call's media statistics (operator extension of the Call Leg, `media_stats`). Counts are
/// RTP packets; times are milliseconds. "Remote" values are what the far end's RTCP receiver
/// reports say about our stream; the others are what we sent and measured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MediaReport {
    /// False while the call is live (the last report), true once it ended.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// When these counters were taken (ISO 8601).
    pub updated_at: String,
    pub packets_sent: u64,
    pub packets_received: u64,
    /// The far end's packets we never received (RFC 3550 cumulative loss, as we measured).
    pub packets_lost: u64,
    /// Interarrival jitter of the far end's stream as we measured it (RFC 3550 §6.4.1), ms.
    pub jitter_ms: f64,
    /// Whether the far end sent any RTCP report.
    pub rtcp_received: bool,
    pub rtcp_reports_sent: u64,
    pub rtcp_reports_received: u64,
    /// Round trip (ms) from the far end's last report block about our SRs (LSR/DLSR);
    /// `null` until it echoed one.
    pub rtt_ms: Option<u32>,
    /// The far end's count of our packets it lost (cumulative, may be negative with
    /// duplicates); `null` until it reported about our stream.
    pub remote_packets_lost: Option<i64>,
    /// The far end's loss of our stream since its previous report, 0.0–1.0.
    pub remote_fraction_lost: Option<f64>,
    /// The far end's interarrival jitter of our stream, ms.
    pub remote_jitter_ms: Option<f64>,
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
            media_stats: None,
            held: None,
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

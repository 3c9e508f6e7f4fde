//! Call statuses, directions and end reasons, spelled as the Calling API spells them.

use serde::{Deserialize, Serialize};

/// `status` of a Call Leg (calling-api.md §4.3). `completed` is accepted on input but never emitted
/// (ambiguity register A7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    Queued,
    Initiated,
    Created,
    Ringing,
    Answered,
    Ending,
    Ended,
    Failed,
    Canceled,
    Completed,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Created => "created",
            CallStatus::Ringing => "ringing",
            CallStatus::Answered => "answered",
            CallStatus::Ending => "ending",
            CallStatus::Ended => "ended",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
            CallStatus::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => CallStatus::Queued,
            "initiated" => CallStatus::Initiated,
            "created" => CallStatus::Created,
            "ringing" => CallStatus::Ringing,
            "answered" => CallStatus::Answered,
            "ending" => CallStatus::Ending,
            "ended" => CallStatus::Ended,
            "failed" => CallStatus::Failed,
            "canceled" => CallStatus::Canceled,
            "completed" => CallStatus::Completed,
            _ => return None,
        })
    }

    /// No further transition is possible.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CallStatus::Ended | CallStatus::Failed | CallStatus::Canceled | CallStatus::Completed
        )
    }

    /// Before answer: the call can still be canceled.
    pub fn is_pre_answer(self) -> bool {
        matches!(
            self,
            CallStatus::Queued | CallStatus::Initiated | CallStatus::Created | CallStatus::Ringing
        )
    }
}

/// Why a call ended. Emitted with the RELAY spellings (ambiguity register A4); both spellings are
/// accepted on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    Hangup,
    Cancel,
    Busy,
    NoAnswer,
    Decline,
    Error,
    Abandoned,
    MaxDuration,
    NotFound,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Hangup => "hangup",
            EndReason::Cancel => "cancel",
            EndReason::Busy => "busy",
            EndReason::NoAnswer => "noAnswer",
            EndReason::Decline => "decline",
            EndReason::Error => "error",
            EndReason::Abandoned => "abandoned",
            EndReason::MaxDuration => "max_duration",
            EndReason::NotFound => "not_found",
        }
    }

    /// Accepts the RELAY and the SWML-webhook spellings.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hangup" => EndReason::Hangup,
            "cancel" => EndReason::Cancel,
            "busy" => EndReason::Busy,
            "noAnswer" | "no_answer" => EndReason::NoAnswer,
            "decline" | "declined" => EndReason::Decline,
            "error" => EndReason::Error,
            "abandoned" => EndReason::Abandoned,
            "max_duration" => EndReason::MaxDuration,
            "not_found" => EndReason::NotFound,
            _ => return None,
        })
    }
}

impl Serialize for EndReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EndReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EndReason::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown end reason {s}")))
    }
}

/// Direction of a leg as the Call Leg reports it. Webhooks say `outbound` for `outbound-api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    #[serde(rename = "inbound")]
    Inbound,
    #[serde(rename = "outbound")]
    Outbound,
    #[serde(rename = "outbound-api")]
    OutboundApi,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::OutboundApi => "outbound-api",
        }
    }

    /// The spelling webhooks and SWML fetches use (`inbound` / `outbound`).
    pub fn webhook_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound | Direction::OutboundApi => "outbound",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            "outbound-api" => Direction::OutboundApi,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_terminality() {
        for s in [
            "queued",
            "initiated",
            "created",
            "ringing",
            "answered",
            "ending",
            "ended",
            "failed",
            "canceled",
            "completed",
        ] {
            let st = CallStatus::parse(s).unwrap();
            assert_eq!(st.as_str(), s);
            assert_eq!(serde_json::to_value(st).unwrap(), s);
        }
        assert!(CallStatus::Ended.is_terminal());
        assert!(!CallStatus::Ringing.is_terminal());
        assert!(CallStatus::Ringing.is_pre_answer());
        assert!(!CallStatus::Answered.is_pre_answer());
    }

    #[test]
    fn end_reasons_accept_both_spellings_and_emit_relay_ones() {
        assert_eq!(EndReason::parse("no_answer"), Some(EndReason::NoAnswer));
        assert_eq!(EndReason::parse("declined"), Some(EndReason::Decline));
        assert_eq!(
            serde_json::to_value(EndReason::NoAnswer).unwrap(),
            "noAnswer"
        );
        assert_eq!(EndReason::parse("nope"), None);
    }
}

//! `SWAIG.native_functions` (swml.md §6.1): tools the engine answers itself. `check_time` tells
//! the time (in the zone asked for, else `params.local_tz`), `wait_seconds` waits in silence,
//! `wait_for_user` listens without the agent saying anything, `adjust_response_latency` is
//! accepted and changes nothing (docs/ai.md).

use chrono_tz::Tz;
use serde_json::{json, Value};

use super::template_fns::utc;

/// `params.local_tz`'s default (swml.md §6.1).
pub(crate) const DEFAULT_LOCAL_TZ: &str = "US/Central";

/// Longest `wait_seconds`.
pub(crate) const MAX_WAIT_S: u32 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Native {
    CheckTime,
    WaitSeconds,
    WaitForUser,
    AdjustResponseLatency,
}

impl Native {
    const ALL: [Native; 4] = [
        Native::CheckTime,
        Native::WaitSeconds,
        Native::WaitForUser,
        Native::AdjustResponseLatency,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Native::CheckTime => "check_time",
            Native::WaitSeconds => "wait_seconds",
            Native::WaitForUser => "wait_for_user",
            Native::AdjustResponseLatency => "adjust_response_latency",
        }
    }

    pub(crate) fn named(name: &str) -> Option<Native> {
        Native::ALL.into_iter().find(|n| n.name() == name)
    }

    /// The tool as the model is offered it.
    pub(crate) fn tool(self) -> Value {
        let (description, properties, required) = match self {
            Native::CheckTime => (
                "Tell the current date and time.",
                json!({"timezone": {"type": "string", "description": "An IANA time zone such as Europe/Paris; the local one when absent."}}),
                json!([]),
            ),
            Native::WaitSeconds => (
                "Wait in silence for a number of seconds, e.g. when the user asks for a moment.",
                json!({"seconds": {"type": "integer", "description": "How long to wait (at most 60)."}}),
                json!(["seconds"]),
            ),
            Native::WaitForUser => (
                "Say nothing and wait for the user to speak.",
                json!({}),
                json!([]),
            ),
            Native::AdjustResponseLatency => (
                "Adjust how long to wait for the user before answering.",
                json!({"milliseconds": {"type": "integer"}}),
                json!([]),
            ),
        };
        json!({"type": "function", "function": {"name": self.name(), "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}})
    }
}

/// The natives a document enables (unknown names are ignored).
pub(crate) fn enabled(swaig: &Value) -> Vec<Native> {
    let mut out: Vec<Native> = swaig
        .get("native_functions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(Native::named)
        .collect();
    out.dedup();
    out
}

/// `check_time`'s answer at `now_ms` (Unix milliseconds) in the IANA zone `timezone`, else
/// `local_tz`; a zone that is not known is said so, and the time given in `local_tz`.
pub(crate) fn check_time(now_ms: u64, timezone: Option<&str>, local_tz: &str) -> String {
    let when = utc(now_ms);
    let local: Tz = local_tz.trim().parse().unwrap_or(Tz::UTC);
    let say = |zone: Tz| {
        when.with_timezone(&zone)
            .format("%A, %B %-d, %Y, %H:%M %Z")
            .to_string()
    };
    match timezone.map(str::trim).filter(|tz| !tz.is_empty()) {
        None => format!("It is {} ({local}).", say(local)),
        Some(tz) => match tz.parse::<Tz>() {
            Ok(zone) => format!("It is {} ({zone}).", say(zone)),
            Err(_) => format!(
                "The time zone {tz} is not known. It is {} ({local}).",
                say(local)
            ),
        },
    }
}

/// `wait_seconds`' length from its arguments: 1 to [`MAX_WAIT_S`], 5 when unreadable.
pub(crate) fn wait_seconds(args: &Value) -> u32 {
    args.get("seconds")
        .and_then(super::as_f64)
        .filter(|s| s.is_finite())
        .map_or(5, |s| s.clamp(1.0, f64::from(MAX_WAIT_S)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natives_are_named_offered_and_answered() {
        let swaig = json!({"native_functions": ["check_time", "nope", "wait_seconds", 7]});
        assert_eq!(
            enabled(&swaig),
            vec![Native::CheckTime, Native::WaitSeconds]
        );
        assert_eq!(
            Native::WaitSeconds.tool()["function"]["parameters"]["required"],
            json!(["seconds"])
        );
        // 2026-12-06 19:00 UTC
        let t = 1_796_583_600_000;
        assert_eq!(
            check_time(t, None, DEFAULT_LOCAL_TZ),
            "It is Sunday, December 6, 2026, 13:00 CST (US/Central)."
        );
        assert_eq!(
            check_time(t, Some("Europe/Paris"), DEFAULT_LOCAL_TZ),
            "It is Sunday, December 6, 2026, 20:00 CET (Europe/Paris)."
        );
        assert_eq!(
            check_time(t, Some("Mars/Base"), "Asia/Tokyo"),
            "The time zone Mars/Base is not known. It is Monday, December 7, 2026, 04:00 JST (Asia/Tokyo)."
        );
        // A local zone that is not known falls back to UTC.
        assert!(check_time(t, None, "nowhere").ends_with("19:00 UTC (UTC)."));
        assert_eq!(wait_seconds(&json!({"seconds": 3})), 3);
        assert_eq!(wait_seconds(&json!({"seconds": "1e9"})), MAX_WAIT_S);
        assert_eq!(wait_seconds(&json!({})), 5);
    }
}

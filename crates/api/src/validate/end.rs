//! `calling.end` (calling-api.md §6.3): hang up with a reason.

use control::EndReason;

use super::fields::{check_enum, Obj};

/// `HangupReason`, with the SWML-webhook spellings accepted too (A4).
const HANGUP_REASONS: [&str; 8] = [
    "hangup",
    "cancel",
    "busy",
    "noAnswer",
    "no_answer",
    "decline",
    "declined",
    "error",
];

/// The reason, in its RELAY spelling (absent: `hangup`, control::command::EndParams).
pub fn end(p: &mut Obj<'_>) {
    p.field("reason", false, |v| {
        let (name, _) = check_enum(v, &HANGUP_REASONS)?;
        let reason = EndReason::parse(name).unwrap_or(EndReason::Hangup);
        Ok(((), reason.as_str().into()))
    });
}

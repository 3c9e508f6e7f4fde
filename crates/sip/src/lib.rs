//! Our narrow SIP adapter over the pinned SIP stack crate: place, cancel, hang up, answer re-INVITEs; digest credentials.

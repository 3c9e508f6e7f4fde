//! SIP session timers (RFC 4028) for the legs we place: what the INVITE asks for, what the
//! 2xx decided, and when to refresh or give up. Pure: no clock, the leg's task keeps the time.
//!
//! * The INVITE carries `Session-Expires: <n>` (no `refresher`: the far end chooses) and
//!   `Supported: timer`. After a `422 Session Interval Too Small` the INVITE is sent again once
//!   with the far end's `Min-SE` as both its `Session-Expires` and its `Min-SE` (§7.4).
//! * The 2xx decides (§7.2): no `Session-Expires` in it means no timer; `refresher=uac` (or
//!   none given) makes us the refresher, `refresher=uas` the far end.
//! * We refresh with an UPDATE without a body (no new offer, §7.4) at half the interval; every
//!   2xx to it starts the interval again (with the interval it names, if any). A refresh
//!   answered 408 or 481, or not answered at all, ends the session (§10); another failure
//!   leaves the session to expire.
//! * When the far end refreshes, each of its re-INVITEs or UPDATEs starts the interval again;
//!   when none came, we send BYE `min(32, interval / 3)` seconds before the session would
//!   expire (§10).

/// Who sends the refreshes, as the 2xx says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// We (the UAC of the INVITE).
    Us,
    /// The far end.
    FarEnd,
}

/// A session timer in force on a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// The session interval, seconds (> 0).
    pub interval_secs: u32,
    pub refresher: Refresher,
}

/// `Session-Expires: 1800;refresher=uac` → (1800, Some("uac")). `None` when the delta-seconds
/// are missing, not a number or 0.
pub fn parse_session_expires(value: &str) -> Option<(u32, Option<String>)> {
    let mut parts = value.split(';');
    let secs: u32 = parts.next()?.trim().parse().ok()?;
    if secs == 0 {
        return None;
    }
    let refresher = parts.find_map(|p| {
        let (name, v) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Some((secs, refresher))
}

/// `Min-SE: 90` (parameters ignored); `None` when it is not a positive number.
pub fn parse_min_se(value: &str) -> Option<u32> {
    value
        .split(';')
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|s| *s > 0)
}

/// The timer a 2xx to our INVITE (or to our refresh) puts in force: its `Session-Expires`
/// value, if any. A `refresher` other than `uas` (`uac`, none, anything unknown) makes us
/// the refresher: we never leave a session without someone refreshing it.
pub fn from_answer(session_expires: Option<&str>) -> Option<SessionTimer> {
    let (interval_secs, refresher) = parse_session_expires(session_expires?)?;
    Some(SessionTimer {
        interval_secs,
        refresher: match refresher.as_deref() {
            Some("uas") => Refresher::FarEnd,
            _ => Refresher::Us,
        },
    })
}

impl SessionTimer {
    /// Milliseconds after the last refresh (or the answer) at which we act: send a refresh
    /// (half the interval) when we refresh, or send BYE (`min(32 s, interval / 3)` before the
    /// expiry) when the far end should have refreshed.
    pub fn next_action_after_ms(&self) -> u64 {
        let interval_ms = u64::from(self.interval_secs) * 1000;
        match self.refresher {
            Refresher::Us => interval_ms / 2,
            Refresher::FarEnd => interval_ms - (interval_ms / 3).min(32_000),
        }
    }

    /// Milliseconds after the last refresh at which a session we refresh but could not
    /// refresh is ended (the same margin before the expiry as the far end's case).
    pub fn give_up_after_ms(&self) -> u64 {
        let interval_ms = u64::from(self.interval_secs) * 1000;
        interval_ms - (interval_ms / 3).min(32_000)
    }

    /// The `Session-Expires` of our refresh request (we stay the refresher).
    pub fn refresh_header(&self) -> String {
        format!("{};refresher=uac", self.interval_secs)
    }
}

/// What a non-2xx (or no) response to our refresh means (RFC 4028 §10): `true` when the
/// session is over at once (408, 481, no response), `false` when it may simply expire.
pub fn refresh_failure_ends_session(code: Option<u16>) -> bool {
    matches!(code, None | Some(408) | Some(481))
}

/// The `Session-Expires` we put in our 2xx to a far end's refresh that carried one: its
/// value, with `refresher=uac` (the far end, who sent it, keeps refreshing) when it named
/// none. `None` when the request had no valid `Session-Expires` (we then add nothing).
pub fn echo_for_refresh(request_value: Option<&str>) -> Option<String> {
    let (secs, refresher) = parse_session_expires(request_value?)?;
    Some(format!(
        "{secs};refresher={}",
        refresher.as_deref().unwrap_or("uac")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expires_values_parse() {
        assert_eq!(parse_session_expires("1800"), Some((1800, None)));
        assert_eq!(
            parse_session_expires(" 90 ; Refresher = UAS"),
            Some((90, Some("uas".into())))
        );
        assert_eq!(
            parse_session_expires("4;foo=bar;refresher=uac"),
            Some((4, Some("uac".into())))
        );
        assert_eq!(parse_session_expires("0"), None);
        assert_eq!(parse_session_expires("-5"), None);
        assert_eq!(parse_session_expires("abc;refresher=uac"), None);
        assert_eq!(parse_session_expires(""), None);
        assert_eq!(parse_min_se("120"), Some(120));
        assert_eq!(parse_min_se("120;x=y"), Some(120));
        assert_eq!(parse_min_se("0"), None);
        assert_eq!(parse_min_se("soon"), None);
    }

    #[test]
    fn the_answer_decides_who_refreshes() {
        assert_eq!(from_answer(None), None);
        assert_eq!(from_answer(Some("garbage")), None);
        assert_eq!(
            from_answer(Some("1800;refresher=uac")),
            Some(SessionTimer {
                interval_secs: 1800,
                refresher: Refresher::Us
            })
        );
        assert_eq!(
            from_answer(Some("600;refresher=uas")).map(|t| t.refresher),
            Some(Refresher::FarEnd)
        );
        // A 2xx must name the refresher; if it does not, we refresh rather than nobody.
        assert_eq!(
            from_answer(Some("600")).map(|t| t.refresher),
            Some(Refresher::Us)
        );
    }

    #[test]
    fn refreshes_at_half_and_gives_up_before_the_expiry() {
        let us = SessionTimer {
            interval_secs: 1800,
            refresher: Refresher::Us,
        };
        assert_eq!(us.next_action_after_ms(), 900_000);
        assert_eq!(us.give_up_after_ms(), 1_768_000);
        assert_eq!(us.refresh_header(), "1800;refresher=uac");
        let far = SessionTimer {
            interval_secs: 1800,
            refresher: Refresher::FarEnd,
        };
        // min(32 s, 600 s) before the 1800 s expiry.
        assert_eq!(far.next_action_after_ms(), 1_768_000);
        // Short intervals: a third of the interval before.
        let short = SessionTimer {
            interval_secs: 6,
            refresher: Refresher::FarEnd,
        };
        assert_eq!(short.next_action_after_ms(), 4_000);
        let one = SessionTimer {
            interval_secs: 1,
            refresher: Refresher::Us,
        };
        assert_eq!(one.next_action_after_ms(), 500);
        assert_eq!(one.give_up_after_ms(), 667);
    }

    #[test]
    fn which_refresh_failures_end_the_session() {
        assert!(refresh_failure_ends_session(None));
        assert!(refresh_failure_ends_session(Some(408)));
        assert!(refresh_failure_ends_session(Some(481)));
        assert!(!refresh_failure_ends_session(Some(501)));
        assert!(!refresh_failure_ends_session(Some(405)));
    }

    #[test]
    fn a_far_end_refresh_is_echoed_with_its_refresher() {
        assert_eq!(
            echo_for_refresh(Some("90;refresher=uas")).as_deref(),
            Some("90;refresher=uas")
        );
        assert_eq!(
            echo_for_refresh(Some("90")).as_deref(),
            Some("90;refresher=uac")
        );
        assert_eq!(echo_for_refresh(Some("x")), None);
        assert_eq!(echo_for_refresh(None), None);
    }
}

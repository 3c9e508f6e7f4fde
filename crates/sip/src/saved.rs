//! An established dialog kept outside the process ([`SavedDialog`]), so that a node restarted
//! after a crash can end the call with a BYE the far end accepts: Call-ID, both tags, From and
//! To as the dialog has them, our CSeq, the remote target (the far end's Contact) and the
//! route set. [`SavedDialog::encode`] gives one text (a `key: value` line per field, a
//! `route:` line per route) for the caller to persist; [`SavedDialog::decode`] reads it back
//! and never panics on a damaged text.
//!
//! Our CSeq only advances when we send an in-dialog request, and the only one the adapter
//! sends is the final BYE (re-INVITE/UPDATE from our side are not built), so the dialog saved
//! when the call is answered stays right for the call's whole life.

use rsipstack::dialog::dialog::{DialogSnapshot, DialogSnapshotState, DialogState};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::dialog::DialogId;
use rsipstack::sip::typed;
use rsipstack::sip::{Route, Uri};
use rsipstack::transaction::key::TransactionRole;

use crate::SipError;

/// One established dialog, as [`crate::LegHandle::saved_dialog`] /
/// [`crate::InboundHandle::saved_dialog`] give it and [`crate::SipEndpoint::bye_saved`] ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedDialog {
    /// We sent the INVITE (an outbound call); false for an inbound call.
    pub uac: bool,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// The From header value of the dialog's requests from the INVITE's sender.
    pub from: String,
    /// The To header value of the same.
    pub to: String,
    /// The last CSeq number we used in the dialog.
    pub local_cseq: u32,
    pub remote_cseq: u32,
    /// Our Contact URI, if the dialog has one.
    pub local_contact: Option<String>,
    /// Where in-dialog requests go: the far end's Contact URI.
    pub remote_target: String,
    /// Route header values, in the order our requests carry them.
    pub route_set: Vec<String>,
}

fn bad(reason: impl Into<String>) -> SipError {
    SipError::Stack(format!("saved dialog: {}", reason.into()))
}

fn one_line(key: &str, value: &str) -> Result<String, SipError> {
    if value.contains(['\r', '\n']) {
        return Err(bad(format!("{key} holds a line break")));
    }
    Ok(format!("{key}: {value}\n"))
}

impl SavedDialog {
    /// A confirmed dialog's state; `None` before it is confirmed or once it has ended.
    pub(crate) fn of(dialog: &InviteDialog) -> Option<SavedDialog> {
        if !matches!(dialog.state(), DialogState::Confirmed(..)) {
            return None;
        }
        let s = dialog.snapshot();
        Some(SavedDialog {
            uac: s.role == TransactionRole::Client,
            call_id: s.id.call_id,
            local_tag: s.id.local_tag,
            remote_tag: s.id.remote_tag,
            from: s.from.to_string(),
            to: s.to.to_string(),
            local_cseq: s.local_cseq,
            remote_cseq: s.remote_cseq,
            local_contact: s.local_contact.map(|u| u.to_string()),
            remote_target: s.remote_uri.to_string(),
            route_set: s.route_set.iter().map(|r| r.value().to_string()).collect(),
        })
    }

    /// The text to persist. Fails only if a field holds a line break (no parsed SIP value
    /// can).
    pub fn encode(&self) -> Result<String, SipError> {
        let mut out = String::new();
        out += &one_line("role", if self.uac { "uac" } else { "uas" })?;
        out += &one_line("call-id", &self.call_id)?;
        out += &one_line("local-tag", &self.local_tag)?;
        out += &one_line("remote-tag", &self.remote_tag)?;
        out += &one_line("from", &self.from)?;
        out += &one_line("to", &self.to)?;
        out += &one_line("local-cseq", &self.local_cseq.to_string())?;
        out += &one_line("remote-cseq", &self.remote_cseq.to_string())?;
        if let Some(c) = &self.local_contact {
            out += &one_line("local-contact", c)?;
        }
        out += &one_line("remote-target", &self.remote_target)?;
        for r in &self.route_set {
            out += &one_line("route", r)?;
        }
        Ok(out)
    }

    /// Reads what [`SavedDialog::encode`] wrote.
    pub fn decode(text: &str) -> Result<SavedDialog, SipError> {
        let mut d = SavedDialog {
            uac: true,
            call_id: String::new(),
            local_tag: String::new(),
            remote_tag: String::new(),
            from: String::new(),
            to: String::new(),
            local_cseq: 0,
            remote_cseq: 0,
            local_contact: None,
            remote_target: String::new(),
            route_set: Vec::new(),
        };
        let mut role = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (key, value) = line
                .split_once(": ")
                .ok_or_else(|| bad(format!("line without a key: {line:?}")))?;
            let number = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| bad(format!("{key} is not a number")))
            };
            match key {
                "role" => role = Some(value == "uac"),
                "call-id" => d.call_id = value.into(),
                "local-tag" => d.local_tag = value.into(),
                "remote-tag" => d.remote_tag = value.into(),
                "from" => d.from = value.into(),
                "to" => d.to = value.into(),
                "local-cseq" => d.local_cseq = number(value)?,
                "remote-cseq" => d.remote_cseq = number(value)?,
                "local-contact" => d.local_contact = Some(value.into()),
                "remote-target" => d.remote_target = value.into(),
                "route" => d.route_set.push(value.into()),
                _ => return Err(bad(format!("unknown key {key:?}"))),
            }
        }
        d.uac = role.ok_or_else(|| bad("no role"))?;
        for (name, v) in [
            ("call-id", &d.call_id),
            ("from", &d.from),
            ("to", &d.to),
            ("remote-target", &d.remote_target),
        ] {
            if v.is_empty() {
                return Err(bad(format!("no {name}")));
            }
        }
        Ok(d)
    }

    /// The stack's snapshot of this dialog, confirmed.
    pub(crate) fn snapshot(&self) -> Result<DialogSnapshot, SipError> {
        let uri =
            |what: &str, s: &str| Uri::try_from(s).map_err(|e| bad(format!("{what} {s:?}: {e}")));
        Ok(DialogSnapshot {
            state: DialogSnapshotState::Confirmed,
            role: if self.uac {
                TransactionRole::Client
            } else {
                TransactionRole::Server
            },
            id: DialogId {
                call_id: self.call_id.clone(),
                local_tag: self.local_tag.clone(),
                remote_tag: self.remote_tag.clone(),
            },
            from: typed::From::parse(&self.from).map_err(|e| bad(format!("from: {e}")))?,
            to: typed::To::parse(&self.to).map_err(|e| bad(format!("to: {e}")))?,
            local_cseq: self.local_cseq,
            remote_cseq: self.remote_cseq,
            local_contact: self
                .local_contact
                .as_deref()
                .map(|c| uri("local-contact", c))
                .transpose()?,
            remote_uri: uri("remote-target", &self.remote_target)?,
            remote_contact: None,
            route_set: self.route_set.iter().map(Route::new).collect(),
            supports_100rel: false,
            session_id: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SavedDialog {
        SavedDialog {
            uac: true,
            call_id: "abc@127.0.0.1".into(),
            local_tag: "l1".into(),
            remote_tag: "r1".into(),
            from: "<sip:+15105550100@127.0.0.1>;tag=l1".into(),
            to: "<sip:service@127.0.0.1:5070>;tag=r1".into(),
            local_cseq: 1,
            remote_cseq: 0,
            local_contact: Some("sip:+15105550100@127.0.0.1:5060".into()),
            remote_target: "sip:127.0.0.1:5070;transport=UDP".into(),
            route_set: vec![
                "<sip:p1.example.net;lr>".into(),
                "<sip:p2.example.net;lr>".into(),
            ],
        }
    }

    #[test]
    fn round_trips_through_its_text() {
        let d = sample();
        let text = d.encode().unwrap();
        assert_eq!(SavedDialog::decode(&text).unwrap(), d);
        let inbound = SavedDialog {
            uac: false,
            local_contact: None,
            route_set: vec![],
            ..sample()
        };
        assert_eq!(
            SavedDialog::decode(&inbound.encode().unwrap()).unwrap(),
            inbound
        );
    }

    #[test]
    fn becomes_a_confirmed_snapshot() {
        let s = sample().snapshot().unwrap();
        assert_eq!(s.state, DialogSnapshotState::Confirmed);
        assert_eq!(s.role, TransactionRole::Client);
        assert_eq!(s.id.remote_tag, "r1");
        assert_eq!(s.remote_uri.to_string(), "sip:127.0.0.1:5070;transport=UDP");
        assert_eq!(s.route_set.len(), 2);
        assert_eq!(s.local_cseq, 1);
    }

    #[test]
    fn damaged_texts_are_errors_not_panics() {
        let good = sample().encode().unwrap();
        for text in [
            "",
            "garbage",
            "role: uac\n",
            &good.replace("local-cseq: 1", "local-cseq: x"),
            &good.replace("call-id", "callid"),
        ] {
            assert!(SavedDialog::decode(text).is_err(), "{text:?}");
        }
        // Values that are no SIP decode; becoming a dialog does not panic (the stack's
        // parsers are lenient, an error is not guaranteed).
        let odd = good.replace("remote-target: sip:", "remote-target: <<");
        let _ = SavedDialog::decode(&odd).map(|d| d.snapshot());
        let odd = good.replace("from: <sip:", "from: <<<");
        let _ = SavedDialog::decode(&odd).map(|d| d.snapshot());
        let mut broken = sample();
        broken.to = "a\r\nb".into();
        assert!(broken.encode().is_err());
    }
}

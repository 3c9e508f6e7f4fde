//! `calling.tap` (calling-api.md §6.15): fork call audio to an RTP or WebSocket device.

use std::net::Ipv4Addr;

use serde_json::Value;

use super::codes::{INVALID_PARAMETER, URL_IS_UNSAFE};
use super::fields::{Limits, Obj};
use super::formats;
use super::play::PLAY_DIRECTIONS;
use super::simple::control_id_or_generated;

/// `TapCodec`: upper- and lower-case spellings.
const TAP_CODECS: [&str; 6] = ["PCMU", "PCMA", "OPUS", "pcmu", "pcma", "opus"];

pub fn tap(p: &mut Obj<'_>) {
    control_id_or_generated(p);
    p.req_object("tap", tap_spec);
    p.req_object("device", device);
    p.opt_http_url("status_url");
}

/// `{type:"audio", params:{direction}}`; a missing `type` means audio, the only kind there is.
fn tap_spec(t: &mut Obj<'_>) {
    t.opt_enum("type", &["audio"]);
    t.req_object("params", |params| {
        params.req_enum("direction", &PLAY_DIRECTIONS);
    });
}

fn device(d: &mut Obj<'_>) {
    let kind = d.req_enum("type", &["rtp", "ws"]);
    let reject_private = d.options().reject_private_tap_addresses;
    match kind {
        Some("rtp") => {
            d.req_object("params", |params| rtp_params(params, reject_private));
        }
        Some("ws") => {
            d.req_object("params", ws_params);
        }
        _ => {
            d.get("params");
        }
    }
}

fn rtp_params(r: &mut Obj<'_>, reject_private: bool) {
    r.field("addr", true, |v| {
        let addr = v
            .as_str()
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
            .ok_or((INVALID_PARAMETER, "must be an IPv4 address".to_owned()))?;
        if reject_private && !formats::is_public_ipv4(addr) {
            return Err((
                URL_IS_UNSAFE,
                "must be a public IPv4 address (private and reserved ranges are refused)"
                    .to_owned(),
            ));
        }
        Ok(((), Value::String(addr.to_string())))
    });
    r.req_int("port", Limits::between(1.0, 65535.0));
    r.opt_enum("codec", &TAP_CODECS);
    r.field("ptime", false, |v| {
        let ptime = v
            .as_i64()
            .filter(|ms| (10..=120).contains(ms) && ms % 10 == 0)
            .ok_or((
                INVALID_PARAMETER,
                "must be a multiple of 10 between 10 and 120".to_owned(),
            ))?;
        Ok(((), Value::from(ptime)))
    });
}

fn ws_params(w: &mut Obj<'_>) {
    w.field("uri", true, |v| match v.as_str() {
        Some(uri) if formats::is_ws_url(uri) => Ok(((), v.clone())),
        _ => Err((
            INVALID_PARAMETER,
            "must be a ws:// or wss:// URL".to_owned(),
        )),
    });
    w.opt_enum("codec", &TAP_CODECS);
    w.opt_int("rate", Limits::POSITIVE);
}

//! `calling.stream` (calling-api.md §6.17): stream call audio to a `wss://` endpoint.

use super::codes::INVALID_PARAMETER;
use super::fields::Obj;
use super::formats;
use super::simple::control_id_or_generated;

pub fn stream(p: &mut Obj<'_>) {
    control_id_or_generated(p);
    p.field("url", true, |v| match v.as_str() {
        Some(url) if formats::is_wss_url(url) => Ok(((), v.clone())),
        _ => Err((
            INVALID_PARAMETER,
            "must be a wss:// URL (ws:// is refused)".to_owned(),
        )),
    });
    p.opt_str("name");
    p.opt_str("codec");
    p.opt_enum("track", &["inbound_track", "outbound_track", "both_tracks"]);
    p.opt_str("authorization_bearer_token");
    p.opt_any_object("custom_parameters");
    p.opt_http_url("status_url");
    p.opt_http_method("status_url_method");
}

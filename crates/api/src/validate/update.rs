//! `update` (calling-api.md §6.2): redirect, cancel or complete a call.

use control::command::UpdateParams;
use control::CallStatus;

use super::codes::{INCOMPATIBLE_PARAMETERS, INLINE_SWML_OR_SWML_WEBHOOK_REQUIRED};
use super::fields::Obj;
use super::swml;

/// The call id (`id` / `call_id`) is resolved by the envelope check; here it is only marked known.
pub fn update(p: &mut Obj<'_>) -> UpdateParams {
    p.get("id");
    p.get("call_id");
    let url = p.opt_http_url("url").map(str::to_owned);
    let swml = p.field("swml", false, |v| {
        swml::parse_document(v).map(|doc| (doc.clone(), doc))
    });
    let status = p
        .opt_enum("status", &["canceled", "completed"])
        .and_then(CallStatus::parse);
    // A9: a pure cancel/complete needs neither url nor swml.
    match (p.present("url"), p.present("swml"), p.present("status")) {
        (false, false, false) => p.fail(
            "url",
            INLINE_SWML_OR_SWML_WEBHOOK_REQUIRED,
            "or swml or status is required",
        ),
        (true, true, _) => p.fail(
            "swml",
            INCOMPATIBLE_PARAMETERS,
            "cannot be given together with url: send one of them",
        ),
        _ => {}
    }
    UpdateParams {
        url,
        swml,
        fallback_url: p.opt_http_url("fallback_url").map(str::to_owned),
        status,
        status_url: p.opt_http_url("status_url").map(str::to_owned),
    }
}

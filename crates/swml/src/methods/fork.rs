//! `tap` (swml.md §6.38), `stop_tap` (§6.35), `stream` (§6.36), `stop_stream` (§6.34): REST
//! `calling.tap` / `calling.stream` and their `.stop`s underneath. A `tap` or `stream` step
//! waits until the fork runs (or could not start) so its variables are true; then the
//! document goes on while the audio flows.

use std::net::Ipv4Addr;

use control::command::{
    AudioDirection, ControlIdParams, StreamParams, StreamTrack, TapAudioParams, TapCodec,
    TapDevice, TapKind, TapParams, TapSpec,
};
use control::session::OpResult;
use control::{CallCommand, HttpMethod};
use serde_json::{Map, Value};

use super::{as_f64, control_step, set_var};
use crate::expr::stringify;
use crate::run::{Completion, ControlWait, Flow, Run};

fn text(p: &Map<String, Value>, key: &str) -> Option<String> {
    p.get(key).map(stringify).filter(|s| !s.is_empty())
}

/// The `calling.tap` params of a SWML `tap`, or why there are none.
fn tap_params(p: &Map<String, Value>, control_id: String) -> Result<TapParams, String> {
    let uri = text(p, "uri").ok_or("`uri` is required")?;
    let direction = match text(p, "direction").as_deref() {
        None | Some("speak") => AudioDirection::Speak,
        Some("listen") => AudioDirection::Listen,
        Some("both") => AudioDirection::Both,
        Some(other) => return Err(format!("direction `{other}` is not speak, listen or both")),
    };
    let codec = match text(p, "codec").map(|c| c.to_ascii_uppercase()).as_deref() {
        None | Some("PCMU") => TapCodec::Pcmu,
        Some("PCMA") => TapCodec::Pcma,
        Some(other) => return Err(format!("codec `{other}` is not PCMU or PCMA")),
    };
    let device = if let Some(rest) = uri.strip_prefix("rtp://") {
        let (host, port) = rest
            .trim_end_matches('/')
            .rsplit_once(':')
            .ok_or("an rtp:// uri needs IP:port")?;
        let addr: Ipv4Addr = host
            .parse()
            .map_err(|_| format!("`{host}` is not an IPv4 address"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{port}` is not a port"))?;
        let ptime = match p.get("rtp_ptime") {
            None => 20,
            Some(v) => as_f64(v)
                .filter(|ms| {
                    (10.0..=120.0).contains(ms)
                        && ms.fract() == 0.0
                        && (*ms as u32).is_multiple_of(10)
                })
                .map(|ms| ms as u32)
                .ok_or("`rtp_ptime` must be a multiple of 10 between 10 and 120")?,
        };
        TapDevice::Rtp {
            addr,
            port,
            codec: Some(codec),
            ptime: Some(ptime),
        }
    } else if uri.starts_with("ws://") || uri.starts_with("wss://") {
        TapDevice::Ws {
            uri,
            codec: Some(codec),
            rate: None,
        }
    } else {
        return Err(format!("uri `{uri}` is not rtp://, ws:// or wss://"));
    };
    Ok(TapParams {
        control_id,
        tap: TapSpec {
            kind: TapKind::Audio,
            params: TapAudioParams { direction },
        },
        device,
        status_url: text(p, "status_url"),
    })
}

/// The `calling.stream` params of a SWML `stream`, or why there are none.
pub(crate) fn stream_params(
    p: &Map<String, Value>,
    control_id: String,
) -> Result<StreamParams, String> {
    let url = text(p, "url").ok_or("`url` is required")?;
    if !url.starts_with("wss://") {
        return Err(format!("url `{url}` is not a wss:// URL"));
    }
    let track = match text(p, "track").as_deref() {
        None | Some("inbound_track") => StreamTrack::InboundTrack,
        Some("outbound_track") => StreamTrack::OutboundTrack,
        Some("both_tracks") => StreamTrack::BothTracks,
        Some(other) => {
            return Err(format!(
                "track `{other}` is not inbound_track, outbound_track or both_tracks"
            ))
        }
    };
    let status_url_method = match text(p, "status_url_method")
        .map(|m| m.to_ascii_uppercase())
        .as_deref()
    {
        None | Some("POST") => HttpMethod::Post,
        Some("GET") => HttpMethod::Get,
        Some(other) => return Err(format!("status_url_method `{other}` is not GET or POST")),
    };
    let custom_parameters = match p.get("custom_parameters") {
        None => None,
        Some(Value::Object(m)) => Some(super::stringify_params(&Value::Object(m.clone()))),
        Some(_) => return Err("`custom_parameters` must be an object".into()),
    };
    Ok(StreamParams {
        control_id,
        url,
        name: text(p, "name"),
        codec: text(p, "codec"),
        track,
        authorization_bearer_token: text(p, "authorization_bearer_token"),
        custom_parameters,
        status_url: text(p, "status_url"),
        status_url_method,
    })
}

fn object(run: &mut Run, params: &Value, method: &str) -> Option<Map<String, Value>> {
    match run.expand(params) {
        Value::Object(m) => Some(m),
        Value::Null => Some(Map::new()),
        _ => {
            run.warn(
                "relay_script_element_wrong_type",
                format!("{method} takes an object"),
            );
            None
        }
    }
}

fn result_var(method: &str) -> &'static str {
    match method {
        "tap" => "tap_result",
        "stop_tap" => "stop_tap_result",
        "stream" => "stream_result",
        _ => "stop_stream_result",
    }
}

/// `tap` and `stream`.
pub(crate) fn run_start(run: &mut Run, method: &'static str, params: &Value, now: u64) -> Flow {
    let Some(p) = object(run, params, method) else {
        set_var(run, result_var(method), "failed");
        return Flow::Next;
    };
    let control_id = text(&p, "control_id").unwrap_or_else(|| run.new_control_id(method));
    let command = if method == "tap" {
        tap_params(&p, control_id).map(CallCommand::Tap)
    } else {
        stream_params(&p, control_id).map(CallCommand::Stream)
    };
    match command {
        Ok(command) => {
            // Known before it starts; the result variable says whether it did.
            match &command {
                CallCommand::Tap(t) => {
                    set_var(run, "tap_control_id", &t.control_id);
                    set_var(run, "tap_uri", &text(&p, "uri").unwrap_or_default());
                }
                CallCommand::Stream(s) => set_var(run, "stream_control_id", &s.control_id),
                _ => {}
            }
            control_step(method, now, command, ControlWait::Final)
        }
        Err(why) => {
            run.warn(
                "relay_script_method_parameter_invalid_value",
                format!("{method}: {why}"),
            );
            set_var(run, result_var(method), "failed");
            Flow::Next
        }
    }
}

/// `stop_tap` and `stop_stream`: the given `control_id`, or the latest one started.
pub(crate) fn run_stop(run: &mut Run, method: &'static str, params: &Value, now: u64) -> Flow {
    let p = object(run, params, method).unwrap_or_default();
    let latest = if method == "stop_tap" {
        "tap_control_id"
    } else {
        "stream_control_id"
    };
    let control_id = text(&p, "control_id").or_else(|| {
        run.scope
            .vars
            .get(latest)
            .map(stringify)
            .filter(|c| !c.is_empty())
    });
    let Some(control_id) = control_id else {
        run.warn(
            "relay_script_method_parameter_missing",
            format!("{method}: no control_id and none started"),
        );
        set_var(run, result_var(method), "failed");
        return Flow::Next;
    };
    let params = ControlIdParams { control_id };
    let command = if method == "stop_tap" {
        CallCommand::TapStop(params)
    } else {
        CallCommand::StreamStop(params)
    };
    control_step(method, now, command, ControlWait::Started)
}

/// The §4.4 variables of how a fork step ended.
pub(crate) fn on_completion(run: &mut Run, name: &str, completion: Completion) {
    match (name, completion) {
        ("tap", Completion::Op(OpResult::Forked(Ok(info)))) => {
            set_var(run, "tap_result", "success");
            set_var(run, "tap_codec", &info.codec);
            set_var(run, "tap_rate", &info.rate.to_string());
            set_var(run, "tap_ptime", &info.ptime.to_string());
            if let Some(src) = info.source {
                set_var(run, "tap_rtp_src_addr", &src.ip().to_string());
                set_var(run, "tap_rtp_src_port", &src.port().to_string());
            }
        }
        ("stream", Completion::Op(OpResult::Forked(Ok(_)))) => {
            set_var(run, "stream_result", "success");
        }
        ("stop_tap" | "stop_stream", Completion::Started { .. }) => {
            set_var(run, result_var(name), "success");
        }
        (name, other) => {
            set_var(run, result_var(name), "failed");
            let message = match other {
                Completion::Failed { message } => Some(message),
                Completion::Op(OpResult::Forked(Err(why))) => Some(why),
                _ => None,
            };
            if let Some(message) = message {
                run.warn(
                    "relay_script_method_execute_failed",
                    format!("{name} failed: {message}"),
                );
            }
        }
    }
}

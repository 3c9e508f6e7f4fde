//! `connect` (swml.md §6.6): dial one or more far ends and bridge the caller to the first that
//! answers. The four forms become stages of destinations: `to` one stage of one, `serial` one
//! stage per destination, `parallel` one stage of all, `serial_parallel` its groups. The
//! runtime dials stage after stage (all of a stage at once) and completes with
//! [`Completion::Connect`]: `Ok` once a bridge ran and the far end hung up, `Err(reason)` when
//! every destination failed.

use serde_json::{json, Map, Value};

use super::set_var;
use crate::expr::stringify;
use crate::run::{Completion, Effect, Flow, Run, Waiting};

/// Ring timeout per destination when none is given (seconds).
pub const DEFAULT_TIMEOUT_SECS: u32 = 60;
/// Longest bridge when `max_duration` is not given (swml.md §6.6: 4 hours).
pub const DEFAULT_MAX_DURATION_SECS: u64 = 14_400;
/// Destinations one `connect` may dial in all.
pub const MAX_DESTINATIONS: usize = 32;

/// One far end to dial.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectDest {
    /// A SIP URI or an E.164 number.
    pub to: String,
    pub from: Option<String>,
    pub from_name: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Comma list, as `codecs` spells it.
    pub codecs: Option<String>,
    pub timeout_secs: u32,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `forbidden`, `optional` or `mandatory`.
    pub encryption: Option<String>,
    pub call_state_url: Option<String>,
    pub call_state_events: Vec<String>,
    /// A script run on this leg once it answers, before it is bridged (unexpanded: it runs
    /// with the leg's own `call`).
    pub confirm: Option<Confirm>,
    /// How long `confirm` may take (default: the leg's `timeout`).
    pub confirm_timeout_secs: Option<u32>,
    /// `session_timeout`: the SIP `Session-Expires` seconds of the leg's INVITE (RFC 4028).
    pub session_timeout_secs: Option<u32>,
}

/// `confirm`: a SWML document's URL, or inline steps.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    Url(String),
    Steps(Value),
}

impl Confirm {
    fn of(v: &Value) -> Result<Confirm, String> {
        match v {
            Value::String(u) if u.starts_with("http://") || u.starts_with("https://") => {
                Ok(Confirm::Url(u.clone()))
            }
            Value::Array(_) => Ok(Confirm::Steps(v.clone())),
            _ => Err("confirm must be an http(s) URL or a list of steps".into()),
        }
    }

    /// The document the leg runs: the steps as its `main`.
    pub fn inline_document(&self) -> Option<Value> {
        match self {
            Confirm::Steps(steps) => Some(json!({"version": "1.0.0", "sections": {"main": steps}})),
            Confirm::Url(_) => None,
        }
    }
}

/// What a `connect` asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectPlan {
    /// Dialled in order; the destinations of one stage at once.
    pub stages: Vec<Vec<ConnectDest>>,
    /// What the caller hears while dialling; empty: a US ring.
    pub ringback: Vec<control::command::MediaItem>,
    /// Leave an unanswered caller unanswered until a far end answers.
    pub answer_on_bridge: bool,
    pub max_duration_secs: u64,
    /// Where `calling.call.connect` events go.
    pub status_url: Option<String>,
    /// `to: "stream:wss://…"`: the caller is connected to a media stream instead of a far end
    /// (no stages then); the connect lasts as long as the stream.
    pub stream: Option<control::command::StreamParams>,
}

/// The `control_id` of a `connect` to a stream.
pub const STREAM_CONTROL_ID: &str = "connect-stream";

impl ConnectPlan {
    /// The destinations as text: `a + b` for one stage's, `, then ` between stages.
    pub fn describe(&self) -> String {
        self.stages
            .iter()
            .map(|s| {
                s.iter()
                    .map(|d| d.to.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .collect::<Vec<_>>()
            .join(", then ")
    }
}

/// Why a `connect` could not even start (the step fails with `connect_failed_reason = error`).
fn refuse(run: &mut Run, code: &'static str, message: String) -> Flow {
    run.warn(code, format!("connect: {message}"));
    set_var(run, "connect_result", "failed");
    set_var(run, "connect_failed_reason", "error");
    set_var(run, "return_value", "failed");
    Flow::Next
}

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    // `confirm` scripts run later on the far leg with its own `call`: not expanded here.
    let p = run.expand(&without_confirms(params));
    let Value::Object(top) = &p else {
        return refuse(
            run,
            "relay_script_element_wrong_type",
            "parameters must be an object".into(),
        );
    };
    let plan = match plan(top).and_then(|plan| with_confirms(plan, params)) {
        Ok(plan) => plan,
        Err(message) => return refuse(run, "relay_script_method_parameter_invalid_value", message),
    };
    Flow::Wait(
        Waiting::Connect {
            // Unexpanded: the hook's expressions are evaluated when it runs, after the connect.
            result: params.get("result").cloned(),
            transfer_after_bridge: top
                .get("transfer_after_bridge")
                .map(stringify)
                .filter(|s| !s.is_empty()),
        },
        Some(Box::new(Effect::Connect(plan))),
    )
}

/// The plan of an expanded `connect` object, or why it cannot run here.
pub fn plan(top: &Map<String, Value>) -> Result<ConnectPlan, String> {
    for (key, why) in [
        (
            "confirm",
            "`confirm` scripts are not built on this server yet",
        ),
        ("webrtc_media", "WebRTC media is not built on this server"),
    ] {
        if top.get(key).is_some_and(|v| v != &Value::Bool(false)) {
            return Err(why.into());
        }
    }
    if let Some(url) = top
        .get("to")
        .map(stringify)
        .and_then(|to| to.trim().strip_prefix("stream:").map(str::to_owned))
    {
        // The destination's stream fields are the top level's (swml.md §6.6).
        let mut fields = top.clone();
        fields.insert("url".into(), Value::String(url));
        fields.remove("status_url");
        let stream = super::fork::stream_params(&fields, STREAM_CONTROL_ID.into())?;
        control::command::ForkFormat::parse_stream(stream.codec.as_deref())?;
        return Ok(ConnectPlan {
            stream: Some(stream),
            max_duration_secs: DEFAULT_MAX_DURATION_SECS,
            ..ConnectPlan::default()
        });
    }
    let defaults = dest_of(top, None)?;
    let stages: Vec<Vec<ConnectDest>> = if let Some(to) = top.get("to") {
        vec![vec![dest_of(top, Some(to)).map(|d| d.to_owned())?]]
    } else if let Some(list) = top.get("serial") {
        list_of(list, "serial")?
            .iter()
            .map(|d| one(d, &defaults).map(|d| vec![d]))
            .collect::<Result<_, _>>()?
    } else if let Some(list) = top.get("parallel") {
        vec![list_of(list, "parallel")?
            .iter()
            .map(|d| one(d, &defaults))
            .collect::<Result<_, _>>()?]
    } else if let Some(groups) = top.get("serial_parallel") {
        list_of(groups, "serial_parallel")?
            .iter()
            .map(|g| {
                list_of(g, "a serial_parallel group")?
                    .iter()
                    .map(|d| one(d, &defaults))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, _>>()?
    } else {
        return Err("needs `to`, `serial`, `parallel` or `serial_parallel`".into());
    };
    let queued = stages.iter().flatten().any(|d| d.to.starts_with("queue:"));
    if queued
        && top
            .get("transfer_after_bridge")
            .is_none_or(|v| stringify(v).is_empty())
    {
        return Err("a `queue:` destination needs `transfer_after_bridge`".into());
    }
    let count: usize = stages.iter().map(Vec::len).sum();
    if count == 0 || stages.iter().any(Vec::is_empty) {
        return Err("has no destination to dial".into());
    }
    if count > MAX_DESTINATIONS {
        return Err(format!(
            "dials {count} destinations; at most {MAX_DESTINATIONS}"
        ));
    }
    Ok(ConnectPlan {
        stages,
        ringback: ringback(top.get("ringback"))
            .iter()
            .map(|u| super::play::parse_playable(u).map_err(|e| format!("ringback: {e}")))
            .collect::<Result<_, _>>()?,
        answer_on_bridge: truthy(top.get("answer_on_bridge")),
        max_duration_secs: top
            .get("max_duration")
            .and_then(number)
            .filter(|n| *n > 0.0)
            .map_or(DEFAULT_MAX_DURATION_SECS, |n| n as u64),
        status_url: top
            .get("status_url")
            .map(stringify)
            .filter(|s| !s.is_empty()),
        stream: None,
    })
}

fn list_of<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array().ok_or_else(|| format!("{what} must be a list"))
}

/// A destination of a list: a string (`to` alone) or an object, each inheriting the top level.
fn one(item: &Value, defaults: &ConnectDest) -> Result<ConnectDest, String> {
    match item {
        Value::String(_) => {
            let mut d = defaults.clone();
            d.to = checked_to(item)?;
            Ok(d)
        }
        Value::Object(o) => {
            let mut d = dest_of(o, o.get("to"))?;
            // Per-destination fields override the top level's (swml.md §6.6).
            let inherit = |mine: &mut Option<String>, top: &Option<String>| {
                if mine.is_none() {
                    mine.clone_from(top);
                }
            };
            inherit(&mut d.from, &defaults.from);
            inherit(&mut d.from_name, &defaults.from_name);
            inherit(&mut d.codecs, &defaults.codecs);
            inherit(&mut d.username, &defaults.username);
            inherit(&mut d.password, &defaults.password);
            inherit(&mut d.encryption, &defaults.encryption);
            inherit(&mut d.call_state_url, &defaults.call_state_url);
            if d.headers.is_empty() {
                d.headers.clone_from(&defaults.headers);
            }
            if !o.contains_key("timeout") {
                d.timeout_secs = defaults.timeout_secs;
            }
            if d.confirm_timeout_secs.is_none() {
                d.confirm_timeout_secs = defaults.confirm_timeout_secs;
            }
            if d.session_timeout_secs.is_none() {
                d.session_timeout_secs = defaults.session_timeout_secs;
            }
            if !o.contains_key("call_state_events") {
                d.call_state_events.clone_from(&defaults.call_state_events);
            }
            Ok(d)
        }
        _ => Err("a destination must be a string or an object".into()),
    }
}

/// The fields of a destination (or of the top level, `to` absent).
fn dest_of(o: &Map<String, Value>, to: Option<&Value>) -> Result<ConnectDest, String> {
    let text = |key: &str| o.get(key).map(stringify).filter(|s| !s.is_empty());
    if o.get("webrtc_media")
        .is_some_and(|v| v != &Value::Bool(false))
    {
        return Err("`webrtc_media` is not built on this server".into());
    }
    let confirm_timeout_secs = match o.get("confirm_timeout").and_then(number) {
        Some(t) if (1.0..=600.0).contains(&t) => Some(t as u32),
        Some(t) => return Err(format!("confirm_timeout {t} must be 1 to 600 seconds")),
        None => None,
    };
    let session_timeout_secs = match o.get("session_timeout").and_then(number) {
        Some(t) if t >= 1.0 && t <= f64::from(u32::MAX) => Some(t as u32),
        Some(t) => {
            return Err(format!(
                "session_timeout {t} must be a positive number of seconds"
            ))
        }
        None if o.contains_key("session_timeout") => {
            return Err("session_timeout must be a number of seconds".into())
        }
        None => None,
    };
    let encryption = text("encryption");
    if let Some(e) = &encryption {
        if !["forbidden", "optional", "mandatory"].contains(&e.as_str()) {
            return Err(format!(
                "encryption must be forbidden, optional or mandatory (got {e:?})"
            ));
        }
    }
    let timeout_secs = match o.get("timeout").and_then(number) {
        Some(t) if (1.0..=600.0).contains(&t) => t as u32,
        Some(t) => return Err(format!("timeout {t} must be 1 to 600 seconds")),
        None => DEFAULT_TIMEOUT_SECS,
    };
    let headers = match o.get("headers") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|h| {
                let name = h.get("name").map(stringify).unwrap_or_default();
                let value = h.get("value").map(stringify).unwrap_or_default();
                if name.is_empty() {
                    Err("a header needs a `name`".to_string())
                } else {
                    Ok((name, value))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    Ok(ConnectDest {
        to: match to {
            Some(t) => checked_to(t)?,
            None => String::new(),
        },
        from: text("from"),
        from_name: text("from_name"),
        headers,
        codecs: text("codecs"),
        timeout_secs,
        username: text("username"),
        password: text("password"),
        encryption,
        call_state_url: text("call_state_url"),
        call_state_events: match o.get("call_state_events") {
            Some(Value::Array(items)) => items.iter().map(stringify).collect(),
            _ => vec!["ended".into()],
        },
        confirm: o.get("confirm").map(Confirm::of).transpose()?,
        confirm_timeout_secs,
        session_timeout_secs,
    })
}

/// The four lists of destinations of a `connect` object, by key.
const LISTS: [&str; 2] = ["serial", "parallel"];

/// `params` without any `confirm` (top level and per destination).
fn without_confirms(params: &Value) -> Value {
    let mut p = params.clone();
    let strip = |v: &mut Value| {
        if let Value::Object(o) = v {
            o.remove("confirm");
        }
    };
    strip(&mut p);
    if let Value::Object(o) = &mut p {
        for key in LISTS {
            if let Some(Value::Array(items)) = o.get_mut(key) {
                items.iter_mut().for_each(strip);
            }
        }
        if let Some(Value::Array(groups)) = o.get_mut("serial_parallel") {
            for g in groups.iter_mut() {
                if let Value::Array(items) = g {
                    items.iter_mut().for_each(strip);
                }
            }
        }
    }
    p
}

/// The plan with each destination's unexpanded `confirm` (its own, else the top level's).
fn with_confirms(mut plan: ConnectPlan, raw: &Value) -> Result<ConnectPlan, String> {
    let of = |v: Option<&Value>| {
        v.and_then(|v| v.get("confirm"))
            .map(Confirm::of)
            .transpose()
    };
    let top = of(Some(raw))?;
    let stages: Vec<Vec<Option<&Value>>> = if raw.get("to").is_some() {
        vec![vec![None]]
    } else if let Some(Value::Array(items)) = raw.get("serial") {
        items.iter().map(|d| vec![Some(d)]).collect()
    } else if let Some(Value::Array(items)) = raw.get("parallel") {
        vec![items.iter().map(Some).collect()]
    } else if let Some(Value::Array(groups)) = raw.get("serial_parallel") {
        groups
            .iter()
            .map(|g| {
                g.as_array()
                    .map_or_else(Vec::new, |i| i.iter().map(Some).collect())
            })
            .collect()
    } else {
        Vec::new()
    };
    for (stage, raws) in plan.stages.iter_mut().zip(stages) {
        for (dest, raw) in stage.iter_mut().zip(raws) {
            dest.confirm = match of(raw)? {
                Some(c) => Some(c),
                None => top.clone(),
            };
        }
    }
    Ok(plan)
}

/// A destination this server can dial: a SIP URI or an E.164 number. Queues, streams and
/// Fabric addresses are named as not built.
fn checked_to(v: &Value) -> Result<String, String> {
    let to = stringify(v).trim().to_string();
    let lower = to.to_ascii_lowercase();
    if let Some(name) = to.strip_prefix("queue:") {
        control::queue::check_name(name).map_err(|e| format!("{to:?}: {e}"))?;
        return Ok(to);
    }
    let not_built = [
        ("stream:", "stream destinations in a list"),
        ("/", "Resource Addresses"),
        ("verto:", "WebRTC destinations"),
    ];
    if let Some((_, what)) = not_built.iter().find(|(p, _)| lower.starts_with(p)) {
        if lower.starts_with("stream:") {
            return Err(format!("{what} ({to:?}): a stream is only a single `to`"));
        }
        return Err(format!("{what} ({to:?}) are not built on this server yet"));
    }
    let digits = to.strip_prefix('+').unwrap_or("");
    let e164 = (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    let sip = (lower.starts_with("sip:") || lower.starts_with("sips:"))
        && to.len() > 5
        && (to.contains('@') || to.contains('.'))
        && !to.contains(char::is_whitespace);
    if e164 || sip {
        Ok(to)
    } else {
        Err(format!("{to:?} is neither a SIP URI nor an E.164 number"))
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn ringback(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().map(stringify).collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The connect ended: the variables of swml.md §4.4, then the `result` hook (default variable
/// `connect_result`), then `transfer_after_bridge` when a bridge ran.
pub(crate) fn on_completion(
    run: &mut Run,
    result: Option<Value>,
    transfer_after_bridge: Option<String>,
    completion: Completion,
) {
    let outcome = match completion {
        Completion::Connect(outcome) => outcome,
        Completion::Failed { message } => Err(message),
        _ => Err("error".into()),
    };
    match &outcome {
        Ok(()) => {
            set_var(run, "connect_result", "connected");
            set_var(run, "return_value", "connected");
        }
        Err(reason) => {
            set_var(run, "connect_result", "failed");
            set_var(run, "connect_failed_reason", reason);
            set_var(run, "return_value", "failed");
        }
    }
    // The block entered last runs first: the transfer below, the result hook on top.
    if let (Ok(()), Some(dest)) = (&outcome, transfer_after_bridge) {
        run.enter_block(&Value::Array(vec![json!({ "transfer": { "dest": dest } })]));
    }
    if let Some(hook) = result {
        super::execute::enter_result_hook(run, hook, "connect_result");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(v: Value) -> Result<ConnectPlan, String> {
        match v {
            Value::Object(o) => plan(&o),
            _ => Err("not an object".into()),
        }
    }

    #[test]
    fn the_four_forms_become_stages() {
        let p = plan_of(json!({"to": "sip:a@example.com", "timeout": 5, "from": "+15551110000"}))
            .unwrap();
        assert_eq!(p.stages.len(), 1);
        assert_eq!(p.stages[0][0].timeout_secs, 5);
        assert_eq!(p.stages[0][0].from.as_deref(), Some("+15551110000"));

        let p = plan_of(
            json!({"serial": [{"to": "sip:a@x.org"}, {"to": "+15552220000", "timeout": 9}],
                               "timeout": 7, "codecs": "PCMA"}),
        )
        .unwrap();
        assert_eq!(
            p.stages.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 1]
        );
        assert_eq!(
            (p.stages[0][0].timeout_secs, p.stages[1][0].timeout_secs),
            (7, 9)
        );
        assert_eq!(
            p.stages[1][0].codecs.as_deref(),
            Some("PCMA"),
            "inherited from the top"
        );

        let p = plan_of(json!({"parallel": [{"to": "sip:a@x.org"}, {"to": "sip:b@x.org"}, {"to": "sip:c@x.org"}]})).unwrap();
        assert_eq!(p.stages.iter().map(Vec::len).collect::<Vec<_>>(), vec![3]);

        let p = plan_of(json!({"serial_parallel": [[{"to": "sip:a@x.org"}, {"to": "sip:b@x.org"}], [{"to": "sip:c@x.org"}]]})).unwrap();
        assert_eq!(
            p.stages.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert_eq!(p.max_duration_secs, DEFAULT_MAX_DURATION_SECS);
    }

    /// `confirm` stays unexpanded (it runs with the far leg's `call`), per destination or
    /// inherited from the top level.
    #[test]
    fn confirm_scripts_are_kept_as_written() {
        let raw = json!({"serial": [{"to": "sip:a@x.org", "confirm": [{"play": {"url": "say:${call.to}"}}]},
                                    {"to": "sip:b@x.org"}],
                         "confirm": "https://x.org/confirm", "confirm_timeout": 9});
        let Value::Object(top) = without_confirms(&raw) else {
            panic!()
        };
        let p = with_confirms(plan(&top).unwrap(), &raw).unwrap();
        assert_eq!(
            p.stages[0][0].confirm,
            Some(Confirm::Steps(json!([{"play": {"url": "say:${call.to}"}}])))
        );
        assert_eq!(
            p.stages[1][0].confirm,
            Some(Confirm::Url("https://x.org/confirm".into()))
        );
        assert_eq!(
            p.stages[1][0].confirm_timeout_secs,
            Some(9),
            "inherited from the top level"
        );
    }

    /// `to: stream:wss://…` is a stream with the top level's stream fields, no stages.
    #[test]
    fn a_stream_destination_is_a_stream() {
        let p = plan_of(
            json!({"to": "stream:wss://bot.example/s", "codec": "PCMA", "name": "b",
                               "realtime": true, "authorization_bearer_token": "t",
                               "custom_parameters": {"n": 1}}),
        )
        .unwrap();
        assert!(p.stages.is_empty());
        let s = p.stream.unwrap();
        assert_eq!(s.url, "wss://bot.example/s");
        assert_eq!(
            (s.codec.as_deref(), s.name.as_deref()),
            (Some("PCMA"), Some("b"))
        );
        assert_eq!(s.authorization_bearer_token.as_deref(), Some("t"));
        assert_eq!(s.custom_parameters.unwrap()["n"], json!("1"));
        assert_eq!(s.control_id, STREAM_CONTROL_ID);
    }

    #[test]
    fn session_timeout_is_per_destination_with_the_top_level_as_default() {
        let p = plan_of(json!({
            "session_timeout": 1800,
            "serial": ["sip:a@x.org", {"to": "sip:b@x.org", "session_timeout": "90"},
                       {"to": "sip:c@x.org"}]
        }))
        .unwrap();
        let got: Vec<Option<u32>> = p
            .stages
            .iter()
            .flatten()
            .map(|d| d.session_timeout_secs)
            .collect();
        assert_eq!(got, [Some(1800), Some(90), Some(1800)]);
        let none = plan_of(json!({"to": "sip:a@x.org"})).unwrap();
        assert_eq!(none.stages[0][0].session_timeout_secs, None);
        for bad in [json!(0), json!(-3), json!("soon"), json!(true)] {
            let e = plan_of(json!({"to": "sip:a@x.org", "session_timeout": bad})).unwrap_err();
            assert!(e.contains("session_timeout"), "{e}");
        }
    }

    #[test]
    fn what_cannot_run_here_is_named() {
        assert!(plan_of(
            json!({"to": "queue:support", "transfer_after_bridge": "https://x.org/after"})
        )
        .is_ok());
        for (v, needle) in [
            (json!({"to": "queue:support"}), "transfer_after_bridge"),
            (json!({"to": "queue:"}), "queue name"),
            (json!({"serial": ["stream:wss://x"]}), "single `to`"),
            (json!({"to": "stream:ws://x"}), "wss://"),
            (json!({"to": "stream:wss://x", "codec": "G729"}), "G729"),
            (json!({"to": "/public/room"}), "Resource"),
            (json!({"to": "hello"}), "neither"),
            (
                json!({"to": "sip:a@x.org", "confirm": "https://x/c"}),
                "confirm",
            ),
            (json!({"to": "sip:a@x.org", "webrtc_media": true}), "WebRTC"),
            (
                json!({"to": "sip:a@x.org", "encryption": "always"}),
                "encryption",
            ),
            (json!({"to": "sip:a@x.org", "timeout": 0}), "timeout"),
            (json!({"serial": []}), "no destination"),
            (json!({"parallel": "sip:a@x.org"}), "list"),
        ] {
            let e = plan_of(v.clone()).unwrap_err();
            assert!(e.contains(needle), "{v}: {e}");
        }
        let many: Vec<Value> = (0..40).map(|i| json!(format!("sip:u{i}@x.org"))).collect();
        assert!(plan_of(json!({ "parallel": many }))
            .unwrap_err()
            .contains("at most"));
    }

    /// Runs `doc` until its `connect`, completes it with `outcome`, and returns the effects
    /// after it and the variables.
    fn after_connect(doc: Value, outcome: Result<(), String>) -> (Vec<Effect>, Map<String, Value>) {
        let mut run = Run::new(doc, Map::new(), Map::new());
        run.start(0);
        let mut seen_connect = false;
        while let Some(e) = run.poll_effect() {
            seen_connect |= matches!(e, Effect::Connect(_));
        }
        assert!(seen_connect);
        run.complete(10, Completion::Connect(outcome));
        let effects = std::iter::from_fn(|| run.poll_effect()).collect();
        (effects, run.vars().clone())
    }

    fn doc(connect: Value) -> Value {
        json!({"version": "1.0.0", "sections": {
            "main": [{"connect": connect}, {"user_event": {"event": {"next": "${connect_result}"}}}],
            "after": [{"user_event": {"event": {"after": true}}}]
        }})
    }

    #[test]
    fn a_failed_connect_sets_its_variables_and_runs_the_result_hook() {
        let hook = json!({"case": {"failed": [{"user_event": {"event": {"why": "${connect_failed_reason}"}}}]}});
        let (effects, vars) = after_connect(
            doc(json!({"to": "sip:a@x.org", "result": hook, "transfer_after_bridge": "after"})),
            Err("busy".into()),
        );
        assert_eq!(vars["connect_result"], "failed");
        assert_eq!(vars["connect_failed_reason"], "busy");
        assert_eq!(vars["return_value"], "failed");
        let events: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::UserEvent { event } => Some(event.clone()),
                _ => None,
            })
            .collect();
        // The hook saw the reason; no transfer after a failed connect; the next step runs.
        assert_eq!(
            events,
            vec![json!({"why": "busy"}), json!({"next": "failed"})]
        );
    }

    #[test]
    fn a_connect_that_bridged_goes_on_with_transfer_after_bridge() {
        let (effects, vars) = after_connect(
            doc(json!({"to": "sip:a@x.org", "transfer_after_bridge": "after"})),
            Ok(()),
        );
        assert_eq!(vars["connect_result"], "connected");
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::UserEvent { event } if event == &json!({"after": true}))));
        assert!(!effects
            .iter()
            .any(|e| matches!(e, Effect::UserEvent { event } if event.get("next").is_some())));
    }
}

//! Runs a document against a simulated call on virtual time and records what happens: the engine
//! behind `dialtone swml run`. Media takes its natural time (silence, ring durations, an estimate
//! for speech); HTTP is not performed unless a canned response is given.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::{Completion, Effect, HttpResponse, PlayItem, Run};

/// Speech is estimated at this many ms per character for the virtual clock.
const SAY_MS_PER_CHAR: u64 = 60;

#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// The `call` object; a plausible inbound phone call when empty.
    pub call: Map<String, Value>,
    pub envs: Map<String, Value>,
    /// Canned documents for execute/transfer URLs.
    pub documents: HashMap<String, Value>,
    /// Canned responses for `request` URLs.
    pub responses: HashMap<String, HttpResponse>,
    /// Stop after this much virtual time (ms).
    pub max_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TraceLine {
    pub at_ms: u64,
    pub text: String,
}

pub fn default_call() -> Map<String, Value> {
    json!({
        "call_id": "00000000-0000-4000-8000-000000000001", "node_id": "simulated", "segment_id": "simulated",
        "call_state": "answered", "direction": "inbound", "type": "phone",
        "from": "+14155550123", "to": "+15550100000",
        "from_number": "+14155550123", "to_number": "+15550100000", "headers": []
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// Runs `doc` (already loaded) to its end; returns the trace and the final variables.
pub fn simulate(doc: Value, opts: SimOptions) -> (Vec<TraceLine>, Map<String, Value>) {
    let call = if opts.call.is_empty() {
        default_call()
    } else {
        opts.call.clone()
    };
    let max_ms = if opts.max_ms == 0 {
        3_600_000
    } else {
        opts.max_ms
    };
    let mut run = Run::new(doc, call, opts.envs.clone());
    let mut now = 0u64;
    let mut trace = Vec::new();
    run.start(now);
    loop {
        let mut pending: Option<(u64, Completion)> = None;
        while let Some(e) = run.poll_effect() {
            let (line, completion) = describe(&e, &opts);
            trace.push(TraceLine {
                at_ms: now,
                text: line,
            });
            if completion.is_some() {
                pending = completion;
            }
        }
        if let Some((took, c)) = pending {
            now += took;
            run.complete(now, c);
        } else if let Some(t) = run.poll_timeout() {
            now = t.max(now);
            run.handle_timeout(now);
        } else {
            break;
        }
        if now > max_ms {
            trace.push(TraceLine {
                at_ms: now,
                text: "stopped: virtual time limit".into(),
            });
            break;
        }
    }
    if !run.is_finished() {
        trace.push(TraceLine {
            at_ms: now,
            text: "waiting forever (sleep -1 or similar): call would stay up".into(),
        });
    }
    (trace, run.vars().clone())
}

fn play_ms(items: &[PlayItem]) -> u64 {
    items
        .iter()
        .map(|i| match i {
            PlayItem::Audio { .. } => 0,
            PlayItem::Say { text, .. } => text.chars().count() as u64 * SAY_MS_PER_CHAR,
            PlayItem::Silence { seconds } => (seconds * 1000.0) as u64,
            PlayItem::Ring { seconds, .. } => (seconds.unwrap_or(6.0) * 1000.0) as u64,
        })
        .sum()
}

fn describe(e: &Effect, opts: &SimOptions) -> (String, Option<(u64, Completion)>) {
    match e {
        Effect::Answer {
            max_duration_secs, ..
        } => (
            format!("answer (max_duration {max_duration_secs}s)"),
            Some((0, Completion::Done)),
        ),
        Effect::Play {
            items,
            volume_db,
            auto_answer,
            ..
        } => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    PlayItem::Audio { url } => url.clone(),
                    PlayItem::Say {
                        text,
                        voice,
                        language,
                        ..
                    } => format!("say:{text} [{voice}, {language}]"),
                    PlayItem::Silence { seconds } => format!("silence:{seconds}"),
                    PlayItem::Ring { country, seconds } => match seconds {
                        Some(s) => format!("ring:{s}:{country}"),
                        None => format!("ring:{country}"),
                    },
                })
                .collect();
            let early = if *auto_answer { "" } else { " (early media)" };
            (
                format!("play {} at {volume_db} dB{early}", parts.join(", ")),
                Some((play_ms(items), Completion::Done)),
            )
        }
        Effect::SendDigits { digits } => (
            format!("send_digits {digits}"),
            Some((digits.len() as u64 * 200, Completion::Done)),
        ),
        Effect::Request(r) => {
            let c = match opts.responses.get(&r.url) {
                Some(resp) => Completion::Http(Ok(resp.clone())),
                None => Completion::Http(Err("no HTTP in simulation (no canned response)".into())),
            };
            (format!("request {} {}", r.method, r.url), Some((0, c)))
        }
        Effect::Fetch { url, .. } => {
            let c = match opts.documents.get(url) {
                Some(d) => Completion::Document(Ok(d.clone())),
                None => {
                    Completion::Document(Err("no HTTP in simulation (no canned document)".into()))
                }
            };
            (format!("fetch SWML {url}"), Some((0, c)))
        }
        Effect::UserEvent { event } => (format!("user_event {event}"), None),
        Effect::Warning(w) => (
            format!(
                "warning {}: {} ({} at {}[{}])",
                w.code, w.message, w.method, w.section, w.step_index
            ),
            None,
        ),
        Effect::Hangup { reason } => (format!("hangup ({reason})"), None),
        Effect::Control {
            command,
            params,
            wait,
        } => {
            let control_id = params
                .get("control_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (took, result) = match (*command, wait) {
                (_, crate::ControlWait::Started) => (
                    0,
                    json!({ "control_id": control_id,
                            "url": format!("simulated://recordings/{control_id}") }),
                ),
                // Nobody speaks in a simulation: recordings and detections end without input.
                ("calling.record", _) => {
                    let audio = &params["record"]["audio"];
                    let wait_s = audio["initial_timeout"]
                        .as_f64()
                        .filter(|t| *t > 0.0)
                        .or(audio["max_length"].as_f64().filter(|t| *t > 0.0))
                        .unwrap_or(60.0);
                    (
                        (wait_s * 1000.0) as u64,
                        json!({ "control_id": control_id, "state": "no_input" }),
                    )
                }
                _ => {
                    let wait_s = params["detect"]["params"]["initial_timeout"]
                        .as_f64()
                        .unwrap_or(4.5);
                    (
                        (wait_s * 1000.0) as u64,
                        json!({ "type": params["detect"]["type"], "params": { "event": "UNKNOWN" } }),
                    )
                }
            };
            (
                format!("{command} {params}"),
                Some((took, Completion::Result(result))),
            )
        }
        Effect::Prompt {
            items,
            volume_db,
            collect,
        } => {
            let initial = collect["initial_timeout"].as_f64().unwrap_or(5.0);
            (
                format!(
                    "prompt ({} items at {volume_db} dB) collect {collect}",
                    items.len()
                ),
                Some((
                    play_ms(items) + (initial * 1000.0) as u64,
                    Completion::Result(json!({ "type": "no_input" })),
                )),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_uses_virtual_time() {
        let doc = json!({"sections": {"main": [
            {"answer": {}}, {"play": {"url": "silence:1.5"}}, {"sleep": 500},
            {"play": {"url": "say:hi"}}, {"hangup": {}}
        ]}});
        let (trace, vars) = simulate(doc, SimOptions::default());
        let at: Vec<(u64, &str)> = trace.iter().map(|t| (t.at_ms, t.text.as_str())).collect();
        assert_eq!(at[0], (0, "answer (max_duration 14400s)"));
        assert_eq!(at[1].0, 0);
        assert_eq!(at[2].0, 2000, "1.5 s silence then 0.5 s sleep");
        assert_eq!(at[3], (2120, "hangup (hangup)"));
        assert_eq!(vars["answer_result"], "success");
    }
}

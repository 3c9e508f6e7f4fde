//! Runs a document against a simulated call on virtual time and records what happens: the engine
//! behind `dialtone swml run`. Media takes its natural time (silence, ring durations, an estimate
//! for speech); HTTP is not performed unless a canned response is given.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use control::command::{MediaItem, PlayParams};
use control::session::{CollectResult, DetectKind, DetectOutcome, OpResult, RecordingResult};
use control::CallCommand;

use crate::{Completion, Effect, HttpResponse, Run};

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

fn play_ms(play: &PlayParams) -> u64 {
    play.play
        .iter()
        .map(|i| match i {
            MediaItem::Audio { .. } => 0,
            MediaItem::Tts(t) => t.text.chars().count() as u64 * SAY_MS_PER_CHAR,
            MediaItem::Silence { duration } => (duration * 1000.0) as u64,
            MediaItem::Ringtone { duration, .. } => (duration.unwrap_or(6.0) * 1000.0) as u64,
        })
        .sum()
}

/// The playables as a document would write them, with the TTS settings.
fn playables(play: &PlayParams) -> String {
    let parts: Vec<String> = play
        .play
        .iter()
        .map(|i| match i {
            MediaItem::Audio { url } => url.clone(),
            MediaItem::Tts(t) => format!(
                "say:{} [{}, {}]",
                t.text,
                t.voice
                    .as_deref()
                    .or(play.voice.as_deref())
                    .unwrap_or("default voice"),
                t.language.as_deref().unwrap_or(&play.language)
            ),
            MediaItem::Silence { duration } => format!("silence:{duration}"),
            MediaItem::Ringtone { name, duration, .. } => match duration {
                Some(s) => format!("ring:{s}:{name}"),
                None => format!("ring:{name}"),
            },
        })
        .collect();
    parts.join(", ")
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
            params,
            auto_answer,
        } => {
            let early = if *auto_answer { "" } else { " (early media)" };
            (
                format!("play {} at {} dB{early}", playables(params), params.volume),
                Some((play_ms(params), Completion::Done)),
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
        Effect::Background(Some(b)) => (
            format!("background audio {} (loops {})", b.url, b.loops),
            None,
        ),
        Effect::Background(None) => ("background audio stops".to_string(), None),
        Effect::Warning(w) => (
            format!(
                "warning {}: {} ({} at {}[{}])",
                w.code, w.message, w.method, w.section, w.step_index
            ),
            None,
        ),
        Effect::Hangup { reason, .. } => (format!("hangup ({reason})"), None),
        Effect::JoinConference(plan) => (
            format!("join_conference {}", plan.name),
            Some((0, Completion::Conference("completed".into()))),
        ),
        // Nobody takes a queued caller in a simulation: it waits until `wait_time`.
        Effect::EnterQueue(plan) => (
            format!(
                "enter_queue {} (wait_time {}s)",
                plan.queue_name, plan.wait_time_secs
            ),
            Some((
                plan.wait_time_secs * 1000,
                Completion::Queue(crate::QueueOutcome {
                    result: "timeout".into(),
                    wait_time: plan.wait_time_secs as i64,
                    entry_position: 1,
                    entry_size: 1,
                }),
            )),
        ),
        // Nobody answers in a simulation.
        Effect::Connect(plan) => (
            format!("connect {}", plan.describe()),
            Some((
                plan.stages
                    .iter()
                    .map(|s| s.iter().map(|d| d.timeout_secs).max().unwrap_or(0) as u64 * 1000)
                    .sum(),
                Completion::Connect(Err("no_answer".into())),
            )),
        ),
        // No fax machine answers in a simulation: T.30 gives up after its T0 (60 s).
        Effect::Fax(p) => (
            match p.document.as_deref() {
                Some(doc) => format!("send_fax {doc}"),
                None => "receive_fax".into(),
            },
            Some((
                60_000,
                Completion::Op(control::session::OpResult::Faxed(
                    control::session::FaxResult {
                        result_code: 2,
                        result_text: "Timed out waiting for initial communication".into(),
                        ..Default::default()
                    },
                )),
            )),
        ),
        // No model in a simulation: the agent says it cannot answer and ends.
        Effect::Model(r) => (
            format!(
                "ai model turn ({} messages, {} tools)",
                r.messages.len(),
                r.tools.len()
            ),
            Some((0, Completion::Model(Err("no model in simulation".into())))),
        ),
        // Nobody takes a transfer in a simulation: the REFER is declined at once.
        Effect::Refer(p) => (
            format!("sip_refer {}", p.device.params.to),
            Some((
                0,
                Completion::Refer(crate::ReferResult {
                    success: false,
                    response_code: Some(603),
                    notify_code: None,
                }),
            )),
        ),
        Effect::Control { command, wait } => {
            let control_id = command.control_id().unwrap_or_default().to_owned();
            let (took, completion) = match (command, wait) {
                (_, crate::ControlWait::Started) => (
                    0,
                    Completion::Started {
                        url: Some(format!("simulated://recordings/{control_id}")),
                        control_id,
                    },
                ),
                // Nobody speaks in a simulation: recordings and detections end without input.
                (CallCommand::Record(r), _) => {
                    let audio = &r.record.audio;
                    let wait_s = Some(audio.initial_timeout)
                        .filter(|t| *t > 0.0)
                        .or(Some(audio.max_length as f64).filter(|t| *t > 0.0))
                        .unwrap_or(60.0);
                    (
                        (wait_s * 1000.0) as u64,
                        Completion::Op(OpResult::Recorded(RecordingResult {
                            state: "no_input".into(),
                            ..Default::default()
                        })),
                    )
                }
                // A simulated tap or stream runs at once (nothing is sent anywhere).
                (CallCommand::Tap(_) | CallCommand::Stream(_), _) => (
                    0,
                    Completion::Op(OpResult::Forked(Ok(control::session::ForkInfo {
                        codec: "PCMU".into(),
                        rate: 8000,
                        ptime: 20,
                        source: None,
                    }))),
                ),
                (CallCommand::Detect(d), _) => {
                    let wait_s = match &d.detect {
                        control::command::Detector::Machine(m) => m.initial_timeout,
                        _ => control::command::defaults::machine_initial_timeout(),
                    };
                    let kind = match d.detect {
                        control::command::Detector::Fax(_) => DetectKind::Fax,
                        _ => DetectKind::Machine,
                    };
                    (
                        (wait_s * 1000.0) as u64,
                        Completion::Op(OpResult::Detected(DetectOutcome::new(kind, "UNKNOWN"))),
                    )
                }
                _ => (
                    0,
                    Completion::Started {
                        control_id,
                        url: None,
                    },
                ),
            };
            (
                format!("{} {}", command.name(), command.params_json()),
                Some((took, completion)),
            )
        }
        Effect::Listen { play_id, collect } => {
            let collect_json = CallCommand::Collect(collect.clone()).params_json();
            (
                format!("listen after {play_id} collect {collect_json}"),
                Some((
                    (collect.initial_timeout * 1000.0) as u64,
                    Completion::Op(OpResult::Collected(CollectResult::NoInput)),
                )),
            )
        }
        Effect::Prompt { play, collect } => {
            let collect_json = CallCommand::Collect(collect.clone()).params_json();
            (
                format!(
                    "prompt ({} items at {} dB) collect {collect_json}",
                    play.play.len(),
                    play.volume
                ),
                Some((
                    play_ms(play) + (collect.initial_timeout * 1000.0) as u64,
                    Completion::Op(OpResult::Collected(CollectResult::NoInput)),
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

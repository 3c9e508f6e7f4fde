//! Golden tests: documents run through the interpreter on virtual time with a scripted runtime;
//! the trace of effects and the final variables are asserted.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use control::command::MediaItem;
use control::session::{CollectResult, DetectKind, DetectOutcome, OpResult, RecordingResult};
use serde_json::{json, Map, Value};
use swml::{Completion, Effect, HttpRequest, HttpResponse, Run};

/// The shared SWML examples: `DIALTONE_SWML_EXAMPLES`, else `shared/spec/swml-examples` beside
/// any ancestor of this crate (where CI puts it).
fn examples_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DIALTONE_SWML_EXAMPLES") {
        return Some(PathBuf::from(p)).filter(|p| p.is_dir());
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/spec/swml-examples"))
        .find(|p| p.is_dir())
}

/// A scripted runtime: every blocking effect completes at once (or as scripted), time only
/// moves when the script sleeps.
struct Sim {
    run: Run,
    now: u64,
    trace: Vec<String>,
    documents: HashMap<String, Value>,
    http: HashMap<String, Result<HttpResponse, String>>,
    /// Answers given in turn to requests to one URL (before `http`'s).
    http_queue: HashMap<String, VecDeque<Result<HttpResponse, String>>>,
    fail_plays: bool,
    fetch_payloads: Vec<Value>,
    /// Results of the script's prompts, in order; then no_input.
    prompt_results: std::collections::VecDeque<CollectResult>,
    /// What a waiting detect_machine ends with.
    detect_result: DetectOutcome,
    /// Call-control commands the script ran, with their params.
    controls: Vec<(String, Value)>,
    /// The `ai` agent's model answers, in order; then an error.
    model_replies: std::collections::VecDeque<Result<swml::ModelReply, String>>,
    /// What the agent asked its model.
    model_requests: Vec<swml::ModelRequest>,
    /// Every HTTP request the script made.
    requests: Vec<swml::HttpRequest>,
    /// The runtime speaks a model's answer as it streams when the agent asks (a trace line
    /// `spoke <play> <words>`).
    speaks: bool,
    /// Virtual time each completion takes (0: completions are instant).
    tick_ms: u64,
}

fn call() -> Map<String, Value> {
    json!({
        "call_id": "c-1", "from": "+14155550123", "to": "+15550100000", "type": "phone",
        "direction": "inbound", "call_state": "answered", "headers": []
    })
    .as_object()
    .cloned()
    .unwrap()
}

impl Sim {
    fn new(doc: Value) -> Sim {
        let doc = swml::Document::from_value(doc)
            .expect("document must load")
            .into_value();
        Sim::unchecked(doc)
    }

    /// Skips load-time validation: for runtime checks the schema would already catch.
    fn unchecked(doc: Value) -> Sim {
        Sim {
            run: Run::new(doc, call(), Map::new()),
            now: 0,
            trace: Vec::new(),
            documents: HashMap::new(),
            http: HashMap::new(),
            http_queue: HashMap::new(),
            fail_plays: false,
            fetch_payloads: Vec::new(),
            prompt_results: Default::default(),
            detect_result: DetectOutcome::new(DetectKind::Machine, "UNKNOWN"),
            controls: Vec::new(),
            model_replies: Default::default(),
            model_requests: Vec::new(),
            speaks: false,
            tick_ms: 0,
            requests: Vec::new(),
        }
    }

    /// `None` (with a visible message) when the spec folder is not beside the checkout.
    fn from_example(name: &str) -> Option<Sim> {
        let Some(dir) = examples_dir() else {
            eprintln!(
                "SKIPPED {name}: shared/spec/swml-examples not found (set DIALTONE_SWML_EXAMPLES)"
            );
            return None;
        };
        let path = dir.join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Some(Sim::new(swml::parse_text(&text).unwrap()))
    }

    fn go(mut self) -> Sim {
        self.run.start(self.now);
        for _ in 0..10_000 {
            let mut pending = None;
            while let Some(e) = self.run.poll_effect() {
                self.trace.push(describe(&e));
                pending = match e {
                    Effect::Answer { .. } | Effect::SendDigits { .. } => Some(Completion::Done),
                    Effect::Play { .. } if self.fail_plays => Some(Completion::Failed {
                        message: "404".into(),
                    }),
                    Effect::Play { .. } => Some(Completion::Done),
                    Effect::Request(r) => {
                        let queued = self
                            .http_queue
                            .get_mut(&r.url)
                            .and_then(VecDeque::pop_front);
                        let c = Completion::Http(
                            queued
                                .or_else(|| self.http.get(&r.url).cloned())
                                .unwrap_or(Err("connection refused".into())),
                        );
                        self.requests.push(r);
                        Some(c)
                    }
                    Effect::Model(req) => {
                        let mut reply = self
                            .model_replies
                            .pop_front()
                            .unwrap_or(Err("no model".into()));
                        if let (true, Some(plan), Ok(r)) = (self.speaks, &req.speak, &mut reply) {
                            if !r.text.is_empty() {
                                let words = format!("{} {}", plan.prefix, r.text);
                                let line =
                                    format!("spoke {} {}", plan.play.control_id, words.trim());
                                self.trace.push(line);
                                r.spoken = true;
                            }
                        }
                        self.model_requests.push(req);
                        Some(Completion::Model(reply))
                    }
                    Effect::Fetch { url, payload } => {
                        self.fetch_payloads.push(payload);
                        Some(Completion::Document(
                            self.documents
                                .get(&url)
                                .cloned()
                                .ok_or("HTTP 500".to_string()),
                        ))
                    }
                    Effect::UserEvent { .. }
                    | Effect::Warning(_)
                    | Effect::Hangup { .. }
                    | Effect::Background(_) => pending,
                    // Nobody answers in these runs.
                    Effect::Connect(_) => Some(Completion::Connect(Err("no_answer".into()))),
                    Effect::JoinConference(_) => Some(Completion::Conference("completed".into())),
                    Effect::EnterQueue(_) => Some(Completion::Queue(swml::QueueOutcome {
                        result: "timeout".into(),
                        wait_time: 1,
                        entry_position: 1,
                        entry_size: 1,
                    })),
                    Effect::Refer(_) => Some(Completion::Refer(swml::ReferResult::default())),
                    // Every fax goes through: two pages.
                    Effect::Fax(p) => Some(Completion::Op(control::session::OpResult::Faxed(
                        control::session::FaxResult {
                            success: true,
                            result_code: 0,
                            result_text: "OK".into(),
                            pages: 2,
                            identity: p.identity.clone().unwrap_or_default(),
                            remote_identity: "+15550000000".into(),
                            document: Some(
                                p.document
                                    .clone()
                                    .unwrap_or_else(|| "http://node/fax.pdf".into()),
                            ),
                        },
                    ))),
                    Effect::Control { command, wait } => {
                        self.controls
                            .push((command.name().to_string(), command.params_json()));
                        let id = command.control_id().unwrap_or_default().to_string();
                        Some(match (command, wait) {
                            (_, swml::ControlWait::Started) => Completion::Started {
                                url: Some(format!("https://rec.test/{id}")),
                                control_id: id,
                            },
                            (control::CallCommand::Record(_), _) => {
                                Completion::Op(OpResult::Recorded(RecordingResult {
                                    state: "finished".into(),
                                    url: Some(format!("https://rec.test/{id}.mp3")),
                                    duration: Some(3.5),
                                    size: None,
                                }))
                            }
                            _ => Completion::Op(OpResult::Detected(self.detect_result.clone())),
                        })
                    }
                    Effect::Prompt { collect, .. } | Effect::Listen { collect, .. } => {
                        self.controls.push((
                            "prompt".into(),
                            control::CallCommand::Collect(collect).params_json(),
                        ));
                        let result = self
                            .prompt_results
                            .pop_front()
                            .unwrap_or(CollectResult::NoInput);
                        Some(Completion::Op(OpResult::Collected(result)))
                    }
                };
            }
            if let Some(c) = pending {
                self.now += self.tick_ms;
                self.run.complete(self.now, c);
            } else if let Some(t) = self.run.poll_timeout() {
                self.now = t;
                self.trace.push(format!("@{t}"));
                self.run.handle_timeout(self.now);
            } else {
                break;
            }
        }
        assert!(
            self.run.is_finished(),
            "script did not finish; trace: {:#?}",
            self.trace
        );
        self
    }

    fn var(&self, name: &str) -> Value {
        self.run.vars().get(name).cloned().unwrap_or(Value::Null)
    }

    fn says(&self) -> Vec<String> {
        self.trace
            .iter()
            .filter_map(|t| t.strip_prefix("play say:").map(str::to_string))
            .collect()
    }
}

fn describe(e: &Effect) -> String {
    match e {
        Effect::Answer {
            max_duration_secs, ..
        } => format!("answer {max_duration_secs}"),
        Effect::Play {
            params,
            auto_answer,
        } => {
            let parts: Vec<String> = params
                .play
                .iter()
                .map(|i| match i {
                    MediaItem::Audio { url } => format!("audio:{url}"),
                    MediaItem::Tts(t) => match (&params.voice, params.language.as_str()) {
                        (None, "en-US") => format!("say:{}", t.text),
                        (voice, language) => {
                            format!(
                                "say[{}/{language}]:{}",
                                voice.as_deref().unwrap_or(""),
                                t.text
                            )
                        }
                    },
                    MediaItem::Silence { duration } => format!("silence:{duration}"),
                    MediaItem::Ringtone { name, duration, .. } => {
                        format!("ring:{name}:{duration:?}")
                    }
                })
                .collect();
            let mut s = format!("play {}", parts.join(" | "));
            if params.volume != 0.0 {
                s.push_str(&format!(" @{}dB", params.volume));
            }
            if !auto_answer {
                s.push_str(" (early media)");
            }
            s
        }
        Effect::SendDigits { digits } => format!("send_digits {digits}"),
        Effect::Request(r) => format!("request {} {}", r.method, r.url),
        Effect::Fetch { url, .. } => format!("fetch {url}"),
        Effect::UserEvent { event } => format!("user_event {event}"),
        Effect::Background(Some(b)) => {
            format!("background {} {}dB x{}", b.url, b.volume_db, b.loops)
        }
        Effect::Background(None) => "background stop".into(),
        Effect::Warning(w) => format!("warning {} ({})", w.code, w.method),
        Effect::Hangup { reason, .. } => format!("hangup {reason}"),
        Effect::EnterQueue(plan) => format!("enter_queue {}", plan.queue_name),
        Effect::JoinConference(plan) => format!("join_conference {}", plan.name),
        Effect::Refer(p) => format!("sip_refer {}", p.device.params.to),
        Effect::Fax(p) => format!(
            "{} {}",
            p.direction.method(),
            p.document.as_deref().unwrap_or("")
        ),
        Effect::Connect(plan) => format!("connect {}", plan.describe()),
        Effect::Model(r) => format!(
            "model {} messages, {} tools{}",
            r.messages.len(),
            r.tools.len(),
            r.filler
                .as_ref()
                .map_or(String::new(), |f| format!(", filler {:?}", f.play))
        ),
        Effect::Control { command, .. } => {
            format!("{} {}", command.name(), command.control_id().unwrap_or(""))
        }
        Effect::Listen { play_id, collect } => {
            let collect = control::CallCommand::Collect(collect.clone()).params_json();
            format!("listen {play_id} collect {collect}")
        }
        Effect::Prompt { play, collect } => {
            let say: Vec<String> = play
                .play
                .iter()
                .map(|i| match (i, &play.voice, play.language.as_str()) {
                    (MediaItem::Tts(t), None, "en-US") => format!("say:{}", t.text),
                    (MediaItem::Tts(t), voice, language) => format!(
                        "say[{}/{language}]:{}",
                        voice.as_deref().unwrap_or(""),
                        t.text
                    ),
                    (other, _, _) => format!("{other:?}"),
                })
                .collect();
            let collect = control::CallCommand::Collect(collect.clone()).params_json();
            let volume = if play.volume != 0.0 {
                format!(" @{}dB", play.volume)
            } else {
                String::new()
            };
            format!("prompt {}{volume} collect {collect}", say.join(" | "))
        }
    }
}

#[test]
fn example_06_execute_return() {
    let Some(sim) = Sim::from_example("06-execute-return.json") else {
        return;
    };
    let sim = sim.go();
    assert_eq!(
        sim.says(),
        vec![
            "Two plus three is 5.",
            "Alice works in billing. Params here: .",
            "Hello from a section without return.",
            "Count is 1.",
        ]
    );
    assert_eq!(sim.var("greeting_count"), json!(1));
    assert_eq!(sim.var("answer_result"), json!("success"));
    assert_eq!(sim.trace.last().unwrap(), "hangup hangup");
}

#[test]
fn example_07_cond_expressions() {
    let Some(sim) = Sim::from_example("07-cond-expressions.yaml") else {
        return;
    };
    let sim = sim.go();
    assert_eq!(sim.var("subtotal"), json!(15));
    assert_eq!(sim.var("tax"), json!(1.2));
    assert_eq!(sim.var("total"), json!(16.2));
    assert_eq!(sim.var("qty"), json!("3"));
    assert_eq!(sim.var("area_code"), json!("415"));
    assert_eq!(sim.var("count"), json!(3));
    assert_eq!(sim.var("vip"), json!(true));
    assert_eq!(sim.var("label"), json!("Welcome"));
    assert_eq!(
        sim.says(),
        vec![
            "Your total is 16.20 dollars for 3 items from area code 415.",
            "Priority line.",
            "Welcome"
        ]
    );
    assert_eq!(
        sim.trace.last().unwrap(),
        "hangup hangup",
        "runs off the end: hang up"
    );
}

#[test]
fn example_09_play_schemes() {
    let Some(sim) = Sim::from_example("09-play-schemes.yaml") else {
        return;
    };
    let sim = sim.go();
    let plays: Vec<&String> = sim.trace.iter().filter(|t| t.starts_with("play")).collect();
    assert_eq!(plays[0], "play ring:uk:Some(4.0) (early media)");
    assert_eq!(
        plays[1],
        "play say:Welcome. | silence:1.5 | ring:us:None | audio:https://cdn:pw@media.example.com/audio/jingle.mp3 @6dB"
    );
    assert_eq!(
        plays[2],
        "play say[gcloud.es-ES-Neural2-A/es-ES]:Hola, bienvenido."
    );
    assert_eq!(
        plays[3],
        "play say[gcloud.es-ES-Neural2-A/es-ES]:Gracias por llamar."
    );
    assert_eq!(
        plays[4],
        "play say[amazon.Ruth:neural/en-US]:This sentence uses a different voice."
    );
    assert!(plays[5].contains("say[amazon.Joanna/en-US]:<speak>"));
    assert_eq!(sim.trace[1], "answer 14400");
}

#[test]
fn example_17_runs_until_the_unimplemented_send_sms_and_fails_visibly() {
    let Some(sim) = Sim::from_example("17-user-event-send-digits.json") else {
        return;
    };
    let sim = sim.go();
    assert!(sim.trace[0].starts_with("user_event {\"call_stage\":\"dialing_ivr\""));
    assert_eq!(sim.trace[1], "@2000", "sleep is virtual time");
    assert_eq!(sim.trace[2], "send_digits ww1W234#");
    assert_eq!(sim.says(), vec!["Digits sent: success."]);
    assert_eq!(
        sim.trace[sim.trace.len() - 2],
        "warning relay_script_method_execute_failed (send_sms)"
    );
    assert_eq!(sim.trace.last().unwrap(), "hangup error");
    assert_eq!(
        sim.var("script_error"),
        json!("relay_script_method_execute_failed")
    );
}

#[test]
fn every_example_loads_and_runs_to_a_defined_end() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/swml-examples");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".md") {
            continue;
        }
        let Some(sim) = Sim::from_example(&name) else {
            return;
        };
        let sim = sim.go();
        let last = sim.trace.last().cloned().unwrap_or_default();
        assert!(last.starts_with("hangup"), "{name}: ended with {last}");
    }
}

#[test]
fn goto_max_counts_jumps_and_falls_through() {
    let sim = Sim::new(json!({"sections": {"main": [
        {"set": {"n": 0}},
        {"label": "top"},
        {"set": {"n": "${n + 1}"}},
        {"play": {"url": "say:pass ${n}"}},
        {"goto": {"label": "top", "max": 3}},
        {"play": {"url": "say:done"}}
    ]}}))
    .go();
    assert_eq!(
        sim.says(),
        vec!["pass 1", "pass 2", "pass 3", "pass 4", "done"]
    );
}

#[test]
fn goto_when_false_does_not_jump_and_missing_label_warns() {
    let sim = Sim::new(json!({"sections": {"main": [
        {"label": "top"},
        {"goto": {"label": "top", "when": "1 > 2"}},
        {"goto": {"label": "nowhere"}},
        {"play": {"url": "say:after"}}
    ]}}))
    .go();
    assert_eq!(sim.says(), vec!["after"]);
    assert!(sim
        .trace
        .iter()
        .any(|t| t == "warning relay_script_method_parameter_invalid_value (goto)"));
}

#[test]
fn switch_without_match_or_default_warns_and_falls_through() {
    let sim = Sim::new(json!({"sections": {"main": [
        {"set": {"choice": 7}},
        {"switch": {"variable": "choice", "case": {"1": [{"play": {"url": "say:one"}}]}}},
        {"switch": {"variable": "choice", "case": {"7": [{"play": {"url": "say:seven"}}]}}},
        {"play": {"url": "say:next"}}
    ]}}))
    .go();
    assert_eq!(sim.says(), vec!["seven", "next"]);
    assert!(sim
        .trace
        .iter()
        .any(|t| t.contains("relay_script_method_no_matching_condition")));
}

#[test]
fn remote_execute_posts_payload_and_runs_returned_document_as_subroutine() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"set": {"attempt": 1}},
        {"execute": {"dest": "https://swml.test/check", "params": {"pin": 1234, "deep": {"x": true}}, "meta": {"secret": 1}}},
        {"play": {"url": "say:result ${return_value}"}},
        {"execute": {"dest": "https://swml.test/missing"}},
        {"play": {"url": "say:error ${script_error}"}}
    ]}}));
    sim.documents.insert(
        "https://swml.test/check".into(),
        json!({"sections": {"main": [{"return": "${params.pin == '1234' ? 'ok' : 'bad'}"}]}}),
    );
    let sim = sim.go();
    assert_eq!(
        sim.says(),
        vec!["result ok", "error relay_script_method_execute_failed"]
    );
    let p = &sim.fetch_payloads[0];
    assert_eq!(p["params"], json!({"pin": "1234", "deep": {"x": "true"}}));
    assert_eq!(p["vars"]["attempt"], json!(1));
    assert_eq!(p["call"]["call_id"], json!("c-1"));
    assert!(p.get("meta").is_none());
}

#[test]
fn transfer_replaces_the_script_and_never_returns() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"transfer": {"dest": "https://swml.test/next", "params": {"where": "sales"}}},
        {"play": {"url": "say:never"}}
    ]}}));
    sim.documents.insert(
        "https://swml.test/next".into(),
        json!({"sections": {"main": [{"play": {"url": "say:welcome to ${params.where}"}}, {"transfer": {"dest": "tail"}}], "tail": [{"play": {"url": "say:tail"}}]}}),
    );
    let sim = sim.go();
    assert_eq!(sim.says(), vec!["welcome to sales", "tail"]);
}

#[test]
fn transfer_loop_is_stopped_at_32() {
    let sim = Sim::new(json!({"sections": {"main": [{"transfer": {"dest": "main"}}]}})).go();
    assert_eq!(
        sim.trace
            .iter()
            .filter(|t| t.contains("too_many_transfers"))
            .count(),
        1
    );
    assert_eq!(sim.trace.last().unwrap(), "hangup error");
}

#[test]
fn runaway_instant_loop_is_stopped() {
    let sim = Sim::new(json!({"sections": {"main": [
        {"label": "a"}, {"goto": {"label": "a", "max": 100}}, {"execute": {"dest": "main"}}
    ]}}))
    .go();
    assert_eq!(sim.trace.last().unwrap(), "hangup error");
}

/// A goto loop over a runaway expression: the call's budget (here two expressions' worth)
/// runs out, and the script fails (a warning, then hangup `error`) instead of looping on.
#[test]
fn a_loop_of_runaway_javascript_fails_once_the_calls_budget_is_spent() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"label": "top"},
        {"set": {"x": "${(function(){ var n = 0; for (;;) { n++; } })()}"}},
        {"goto": {"label": "top", "max": 100}},
        {"play": {"url": "say:never"}}
    ]}}));
    let budget = swml::JsBudget::new(4_000);
    sim.run.set_js_budget(budget.clone());
    let sim = sim.go();
    assert_eq!(budget.get(), 4_000);
    assert_eq!(sim.trace.last().unwrap(), "hangup error", "{:?}", sim.trace);
    assert_eq!(
        sim.var("script_error_message"),
        json!("the script has spent its JavaScript budget")
    );
    assert!(sim.says().is_empty());
}

/// A step that spent a slice of JavaScript yields: the run waits on a timeout due at once
/// (so its runtime can serve other events and scripts) and goes on when it fires.
#[test]
fn a_script_yields_after_a_slice_of_javascript() {
    let mut run = Run::new(
        json!({"sections": {"main": [
            {"label": "top"},
            {"set": {"x": "${(function(){ var n = 0; for (;;) { n++; } })()}"}},
            {"goto": {"label": "top", "max": 100}}
        ]}}),
        call(),
        Map::new(),
    );
    let budget = swml::JsBudget::new(swml::expr::JS_SLICE * 2 + 100);
    run.set_js_budget(budget.clone());
    run.step(7, swml::Step::Start);
    assert!(!run.is_finished() && run.is_yielding());
    assert_eq!(run.poll_timeout(), Some(7));
    assert!(budget.get() >= swml::expr::JS_SLICE);
    run.step(8, swml::Step::Timeout);
    let mut yields = 1;
    while run.poll_timeout().is_some() {
        run.step(9, swml::Step::Timeout);
        yields += 1;
        assert!(yields < 5);
    }
    assert!(run.is_finished());
    let effects: Vec<Effect> = std::iter::from_fn(|| run.poll_effect()).collect();
    assert_eq!(
        effects.last(),
        Some(&Effect::Hangup {
            reason: "error".into(),
            end_of_document: false,
        })
    );
}

/// Cancelling the budget from another thread stops the expression running on this one; the
/// script then stops quietly (the call is ending: no warning, no hangup of its own).
#[test]
fn cancelling_the_budget_stops_a_running_expression_and_the_script() {
    let mut run = Run::new(
        json!({"sections": {"main": [
            {"set": {"x": "${(function(){ var n = 0; for (;;) { n++; } })()}"}},
            {"play": {"url": "say:never"}}
        ]}}),
        call(),
        Map::new(),
    );
    let budget = swml::JsBudget::new(u32::MAX);
    run.set_js_budget(budget.clone());
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        budget.cancel();
    });
    run.step(0, swml::Step::Start);
    canceller.join().unwrap();
    assert!(run.is_finished());
    assert_eq!(run.poll_effect(), None);
}

/// Text to speak is capped like REST `calling.play` (3,000 characters per `say:`, 10,000 per
/// play): over the cap the method fails with a warning and nothing is played.
#[test]
fn an_over_cap_say_fails_the_play_with_a_warning() {
    let long = "a".repeat(3001);
    let sim = Sim::new(json!({"sections": {"main": [
        {"play": {"url": format!("say:{long}")}},
        {"play": {"urls": ["say:ok", format!("say:{}", "b".repeat(3000))]}}
    ]}}))
    .go();
    assert_eq!(
        sim.trace[0],
        "warning relay_script_method_execute_failed (play)"
    );
    assert!(sim
        .var("script_error_message")
        .as_str()
        .unwrap()
        .contains("at most 3000 per item"));
    assert_eq!(sim.says().len(), 1, "{:?}", sim.trace);
}

#[test]
fn request_sets_response_variables() {
    let mut sim = Sim::unchecked(json!({"sections": {"main": [
        {"request": {"url": "https://api.test/x", "method": "get", "save_variables": true, "headers": {"X-Id": "${call.call_id}", "Cookie": "no"}}},
        {"play": {"url": "say:${request_result} ${request_response_code} ${request_response.name} ${request_response_headers.content-type}"}},
        {"request": {"url": "https://api.test/down", "method": "POST", "body": {"a": 1}}},
        {"play": {"url": "say:${request_result} ${return_value}"}},
        {"request": {"url": "https://api.test/x", "method": "PATCH"}}
    ]}}));
    sim.http.insert(
        "https://api.test/x".into(),
        Ok(HttpResponse {
            code: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: r#"{"name":"Ann"}"#.into(),
        }),
    );
    let sim = sim.go();
    assert_eq!(
        sim.says(),
        vec!["success 200 Ann application/json", "failed failed"]
    );
    assert!(
        sim.trace
            .iter()
            .any(|t| t == "warning relay_script_method_parameter_invalid_value (request)"),
        "Cookie header dropped with a warning"
    );
    assert_eq!(
        sim.var("request_result"),
        json!("failed"),
        "PATCH is rejected"
    );
}

#[test]
fn failed_play_warns_and_continues() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"play": {"url": "https://media.test/missing.wav"}},
        {"hangup": {"reason": "busy"}}
    ]}}));
    sim.fail_plays = true;
    let sim = sim.go();
    assert_eq!(
        sim.var("script_error"),
        json!("relay_script_method_execute_failed")
    );
    assert_eq!(sim.trace.last().unwrap(), "hangup busy");
}

#[test]
fn bad_play_urls_and_empty_say_are_errors() {
    let sim = Sim::unchecked(json!({"sections": {"main": [
        {"play": {"url": "say:${nothing}"}},
        {"play": {"url": "ftp://x"}},
        {"play": {"url": "silence:0"}}
    ]}}))
    .go();
    assert_eq!(
        sim.trace
            .iter()
            .filter(|t| t.starts_with("warning relay_script_method_execute_failed"))
            .count(),
        3
    );
}

#[test]
fn unset_and_dotted_set() {
    let sim = Sim::new(json!({"sections": {"main": [
        {"set": {"a.b": 1, "x": "y"}},
        {"unset": ["x", "a.b"]},
        {"play": {"url": "say:[${x}] ${a}"}}
    ]}}))
    .go();
    assert_eq!(sim.says(), vec!["[] {}"]);
}

#[test]
fn call_end_stops_the_script() {
    let doc = swml::Document::from_value(json!({"sections": {"main": [{"play": {"url": "say:hi"}}, {"play": {"url": "say:never"}}]}}))
        .unwrap()
        .into_value();
    let mut run = Run::new(doc, call(), Map::new());
    run.start(0);
    assert!(matches!(run.poll_effect(), Some(Effect::Play { .. })));
    run.call_ended();
    run.complete(10, Completion::Done);
    assert!(run.poll_effect().is_none());
    assert!(run.is_finished());
}

#[test]
fn replace_document_restarts_at_the_new_main() {
    let doc = swml::Document::from_value(json!({"sections": {"main": [{"sleep": -1}]}}))
        .unwrap()
        .into_value();
    let mut run = Run::new(doc, call(), Map::new());
    run.start(0);
    assert_eq!(run.poll_timeout(), None);
    run.replace_document(5, json!({"sections": {"main": [{"hangup": {}}]}}));
    assert_eq!(
        run.poll_effect(),
        Some(Effect::Hangup {
            reason: "hangup".into(),
            end_of_document: false,
        })
    );
}

#[test]
fn execute_result_hook_sees_on_return_changes() {
    let sim = Sim::new(json!({"sections": {
        "main": [
            {"execute": {"dest": "sub", "on_return": [{"set": {"return_value": "changed"}}],
                         "result": {"case": {"changed": [{"play": {"url": "say:hook saw change"}}]},
                                    "default": [{"play": {"url": "say:stale"}}]}}}
        ],
        "sub": [{"return": "orig"}]
    }}))
    .go();
    assert_eq!(sim.says(), vec!["hook saw change"]);
}

fn digit(d: &str) -> CollectResult {
    CollectResult::Digit {
        digits: d.into(),
        terminator: String::new(),
    }
}

#[test]
fn example_01_ivr_retries_then_says_goodbye() {
    let Some(mut sim) = Sim::from_example("01-ivr-menu.yaml") else {
        return;
    };
    sim.prompt_results.push_back(digit("9"));
    let sim = sim.go();
    let prompts: Vec<&String> = sim
        .trace
        .iter()
        .filter(|t| t.starts_with("prompt "))
        .collect();
    assert_eq!(prompts.len(), 3, "{:#?}", sim.trace);
    let collect = &sim.controls[0].1;
    assert_eq!(
        collect["digits"],
        json!({"digit_timeout": 3.0, "max": 1, "terminators": "#"})
    );
    assert_eq!(collect["initial_timeout"], 6.0);
    assert_eq!(collect["start_input_timers"], false);
    assert!(collect.get("speech").is_none());
    let says = sim.says();
    assert_eq!(
        says.iter()
            .filter(|s| *s == "That is not a valid choice.")
            .count(),
        3
    );
    assert_eq!(says.last().map(String::as_str), Some("Goodbye."));
    assert_eq!(sim.var("prompt_result"), "no_input");
    assert_eq!(sim.var("prompt_value"), "");
}

#[test]
fn example_02_voicemail_records_then_posts_the_url() {
    let Some(sim) = Sim::from_example("02-voicemail.json") else {
        return;
    };
    let sim = sim.go();
    let (command, params) = &sim.controls[0];
    assert_eq!(command, "calling.record");
    let audio = &params["record"]["audio"];
    assert_eq!(audio["format"], "mp3");
    assert_eq!(audio["beep"], true);
    assert_eq!(audio["terminators"], "#");
    assert_eq!(audio["end_silence_timeout"], 3.0);
    assert_eq!(audio["max_length"], 120);
    assert_eq!(sim.var("record_result"), "success");
    let url = sim.var("record_url");
    assert!(url.as_str().unwrap().ends_with(".mp3"), "{url}");
    assert_eq!(sim.var("request_url"), sim.var("request_url"));
}

#[test]
fn example_10_record_call_and_stop_the_latest() {
    let Some(sim) = Sim::from_example("10-record-call.json") else {
        return;
    };
    let sim = sim.go();
    let commands: Vec<(&str, &str)> = sim
        .controls
        .iter()
        .map(|(c, p)| (c.as_str(), p["control_id"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(commands[0], ("calling.record", "full-call"));
    let second = commands[1].1.to_string();
    assert_ne!(second, "full-call");
    assert_eq!(commands[2], ("calling.record.stop", second.as_str()));
    assert_eq!(commands[3], ("calling.record.stop", "full-call"));
    let first = &sim.controls[0].1["record"]["audio"];
    assert_eq!(first["stereo"], true);
    assert_eq!(first["direction"], "both");
    assert_eq!(first["terminators"], "");
    let second_audio = &sim.controls[1].1["record"]["audio"];
    assert_eq!(second_audio["format"], "wav");
    assert_eq!(second_audio["direction"], "speak");
    assert_eq!(sim.var("record_control_id"), second.as_str());
    assert_eq!(sim.var("record_call_result"), "success");
    assert_eq!(sim.var("stop_record_call_result"), "success");
    assert!(sim
        .trace
        .contains(&format!("play audio:https://rec.test/{second}")));
}

#[test]
fn example_11_machine_detection_plays_the_reminder() {
    let Some(mut sim) = Sim::from_example("11-detect-machine.yaml") else {
        return;
    };
    sim.detect_result = DetectOutcome {
        kind: DetectKind::Machine,
        event: "READY".into(),
        beep: true,
    };
    let sim = sim.go();
    let (command, params) = &sim.controls[0];
    assert_eq!(command, "calling.detect");
    assert_eq!(params["detect"]["type"], "machine");
    assert_eq!(params["detect"]["params"]["detect_message_end"], true);
    assert_eq!(params["detect"]["params"]["machine_words_threshold"], 6);
    assert_eq!(params["timeout"], 20.0);
    assert_eq!(sim.var("detect_result"), "machine");
    assert_eq!(sim.var("detect_machine_beep"), true);
    assert!(sim.says()[0].starts_with("Hello, this is a reminder"));
}

#[test]
fn example_14_denoise_on_then_off() {
    let Some(mut sim) = Sim::from_example("14-denoise.yaml") else {
        return;
    };
    sim.prompt_results.push_back(digit("5"));
    let sim = sim.go();
    assert_eq!(
        sim.says(),
        vec![
            "Noise reduction is on.",
            "Noise reduction is off. You pressed 5."
        ]
    );
}

#[test]
fn prompt_speech_parameters_switch_the_mode() {
    let doc = json!({"version": "1.0.0", "sections": {"main": [
        {"prompt": {"play": "say:Say yes or no.", "speech_hints": ["yes", "no"]}},
        {"set": {"first": "${prompt_value}"}},
        {"prompt": {"play": "say:Again.", "speech_timeout": 4, "max_digits": 2}},
        {"hangup": {}}
    ]}});
    let mut sim = Sim::new(doc);
    sim.prompt_results.push_back(CollectResult::Speech {
        text: " Yes. ".into(),
        confidence: 0.8,
    });
    sim.prompt_results.push_back(CollectResult::Digit {
        digits: String::new(),
        terminator: "#".into(),
    });
    let sim = sim.go();
    let prompts: Vec<&String> = sim
        .trace
        .iter()
        .filter(|t| t.starts_with("prompt "))
        .collect();
    assert_eq!(prompts.len(), 2);
    let (first, second) = (&sim.controls[0].1, &sim.controls[1].1);
    assert_eq!(
        first["speech"],
        json!({"hints": ["yes", "no"], "end_silence_timeout": 1.0, "speech_timeout": 60.0,
               "language": "en-US"}),
        "the hints, and REST's defaults for the rest"
    );
    assert!(first.get("digits").is_none());
    assert_eq!(second["speech"]["speech_timeout"], 4.0);
    assert_eq!(second["digits"]["max"], 2);
    assert_eq!(second["digits"]["terminators"], "");
    assert_eq!(sim.var("first"), "yes");
    assert_eq!(sim.var("prompt_result"), "no_match");
    assert_eq!(sim.var("prompt_digit_terminator"), "#");
}

#[test]
fn inline_documents_run_in_their_normalised_form() {
    // `play: "<url>"` (swml.md §1.4) inside an inline transfer and execute document.
    let sim = Sim::new(json!({"sections": {"main": [
        {"execute": {"dest": {"sections": {"main": [{"play": "say:from execute"}, {"return": {}}]}}}},
        {"transfer": {"dest": {"sections": {"main": [{"play": "say:moved"}]}}}}
    ]}}))
    .go();
    assert_eq!(sim.says(), vec!["from execute", "moved"]);
}

#[test]
fn a_doubling_loop_cannot_grow_a_variable_past_its_cap() {
    let sim = Sim::new(json!({"version": "1.0.0", "sections": {"main": [
        {"set": {"s": "0123456789abcdef"}},
        {"label": "again"},
        {"set": {"s": "${vars.s}${vars.s}"}},
        {"goto": {"label": "again", "max": 40}},
        {"hangup": {}}
    ]}}))
    .go();
    let s = sim.var("s");
    let s = s.as_str().unwrap_or_default();
    assert!(
        s.len() <= swml::MAX_VARIABLE_BYTES,
        "{} bytes kept",
        s.len()
    );
    assert!(s.len() >= 16 * 1024, "it grew until the cap: {}", s.len());
    assert!(
        sim.trace
            .iter()
            .any(|t| t.starts_with("warning relay_script_method_parameter_invalid_value")),
        "{:?}",
        sim.trace
    );
}

#[test]
fn fax_steps_wait_for_the_fax_and_set_their_variables() {
    let sim = Sim::new(json!({"sections": {"main": [
        {"send_fax": {"document": "https://docs.test/a.pdf", "identity": "+15551110000", "header_info": "ACME"}},
        {"play": {"url": "say:${send_fax_result} ${send_fax_pages} ${send_fax_result_code} ${send_fax_remote_identity} ${send_fax_document} ${send_fax_identity}"}},
        {"receive_fax": {}},
        {"play": {"url": "say:${receive_fax_result} ${receive_fax_pages} ${receive_fax_document} ${receive_fax_result_text}"}},
        {"send_fax": {"document": "ftp://docs.test/a.pdf"}},
        {"play": {"url": "say:${send_fax_result}"}}
    ]}}))
    .go();
    assert_eq!(
        sim.says(),
        vec![
            "success 2 0 +15550000000 https://docs.test/a.pdf +15551110000",
            "success 2 http://node/fax.pdf OK",
            "failed",
        ]
    );
    assert!(sim
        .trace
        .iter()
        .any(|t| t == "send_fax https://docs.test/a.pdf"));
    assert!(sim.trace.iter().any(|t| t == "receive_fax "));
    assert!(sim
        .trace
        .iter()
        .any(|t| t == "warning relay_script_method_parameter_invalid_value (send_fax)"));
}

fn speech(text: &str) -> CollectResult {
    CollectResult::Speech {
        text: text.into(),
        confidence: 0.9,
    }
}

fn tool_call(id: &str, name: &str, arguments: &str) -> Result<swml::ModelReply, String> {
    Ok(swml::ModelReply {
        text: String::new(),
        tool_calls: vec![swml::ModelToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }],
        spoken: false,
    })
}

fn says(text: &str) -> Result<swml::ModelReply, String> {
    Ok(swml::ModelReply {
        text: text.into(),
        tool_calls: Vec::new(),
        spoken: false,
    })
}

fn json_ok(body: Value) -> Result<HttpResponse, String> {
    Ok(HttpResponse {
        code: 200,
        headers: vec![],
        body: body.to_string(),
    })
}

/// A whole conversation: the greeting, the caller's question, a SWAIG tool call to the user's
/// webhook and its answer back to the model, the answer spoken while the caller's next words are
/// collected, a tool whose actions say goodbye and hang up, the summary and the report.
#[test]
fn ai_agent_talks_calls_tools_and_reports() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {
            "prompt": {"text": "You are a weather bot.", "temperature": 0.3},
            "post_prompt": {"text": "Summarize the call."},
            "post_prompt_url": "https://hooks.test/post",
            "global_data": {"caller": "alice"},
            "hints": ["weather", {"hint": "Paris"}],
            "params": {"static_greeting": "Hello, ask me about the weather.", "end_of_speech_timeout": 900},
            "SWAIG": {
                "defaults": {"web_hook_url": "https://hooks.test/swaig"},
                "functions": [
                    {"function": "get_weather", "description": "The weather in a city",
                     "meta_data_token": "tok",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
                    {"function": "end_call", "description": "End the call", "web_hook_url": "https://hooks.test/end"},
                    {"function": "disabled", "description": "Off", "active": false}
                ]
            }
        }},
        {"play": {"url": "say:after the agent"}}
    ]}}));
    sim.prompt_results
        .push_back(speech("what is the weather in paris"));
    sim.prompt_results.push_back(speech("thank you goodbye"));
    sim.model_replies
        .push_back(tool_call("call-1", "get_weather", r#"{"city":"Paris"}"#));
    sim.model_replies.push_back(says("It is sunny in Paris."));
    sim.model_replies
        .push_back(tool_call("call-2", "end_call", "{}"));
    sim.model_replies
        .push_back(says("The caller asked for the weather in Paris."));
    sim.http.insert(
        "https://hooks.test/swaig".into(),
        json_ok(json!({"response": "sunny, 22 degrees", "action": [{"set_global_data": {"city": "Paris"}}]})),
    );
    sim.http.insert(
        "https://hooks.test/end".into(),
        json_ok(json!({"response": "ok", "action": [{"say": "Goodbye!"}, {"hangup": true}]})),
    );
    sim.http
        .insert("https://hooks.test/post".into(), json_ok(json!({})));
    let sim = sim.go();
    let prompts: Vec<&String> = sim
        .trace
        .iter()
        .filter(|t| t.starts_with("prompt "))
        .collect();
    assert_eq!(prompts.len(), 2, "{:#?}", sim.trace);
    assert!(prompts[0].starts_with("prompt say:Hello, ask me about the weather. collect"));
    assert!(prompts[1].starts_with("prompt say:It is sunny in Paris. collect"));
    // Each turn collects speech with the hints and the end-of-speech timeout; input stops the
    // agent's words (barge-in), as a prompt's collect does.
    let (_, collect) = &sim.controls[0];
    assert_eq!(collect["speech"]["hints"], json!(["weather", "Paris"]));
    assert_eq!(collect["speech"]["end_silence_timeout"], json!(0.9));
    assert_eq!(
        sim.says(),
        vec!["Goodbye!"],
        "the closing words, then hang up"
    );
    assert_eq!(sim.trace.last().map(String::as_str), Some("hangup hangup"));
    assert_eq!(sim.var("ai_result"), json!("success"));

    // The model saw the system prompt, the greeting, the caller, its own tool call and the
    // function's response, with the functions as tools (the inactive one left out).
    let first = &sim.model_requests[0];
    assert_eq!(first.temperature, Some(0.3));
    let names: Vec<&str> = first
        .tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_weather", "end_call"]);
    assert_eq!(
        first.tools[0]["function"]["parameters"]["properties"]["city"]["type"],
        "string"
    );
    let roles = |r: &swml::ModelRequest| -> Vec<String> {
        r.messages
            .iter()
            .map(|m| m["role"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(roles(first), ["system", "assistant", "user"]);
    assert_eq!(first.messages[2]["content"], "what is the weather in paris");
    let second = &sim.model_requests[1];
    assert_eq!(
        roles(second),
        ["system", "assistant", "user", "assistant", "tool"]
    );
    assert_eq!(
        second.messages[3]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(second.messages[4]["tool_call_id"], "call-1");
    assert_eq!(second.messages[4]["content"], "sunny, 22 degrees");
    // The summary: the conversation and the post prompt, no tools.
    let summary = &sim.model_requests[3];
    assert!(summary.tools.is_empty());
    assert_eq!(
        summary.messages.last().unwrap()["content"],
        "Summarize the call."
    );

    // The SWAIG request as SignalWire sends it.
    let swaig: Value = serde_json::from_str(sim.requests[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(sim.requests[0].url, "https://hooks.test/swaig");
    assert_eq!(sim.requests[0].method, "POST");
    assert_eq!(swaig["function"], "get_weather");
    assert_eq!(swaig["argument"]["parsed"][0]["city"], "Paris");
    assert_eq!(swaig["argument"]["raw"], r#"{"city":"Paris"}"#);
    assert_eq!(swaig["call_id"], "c-1");
    assert_eq!(swaig["meta_data_token"], "tok");
    assert_eq!(swaig["content_type"], "text/swaig");
    assert_eq!(swaig["global_data"], json!({"caller": "alice"}));
    // set_global_data reached the next call.
    let end: Value = serde_json::from_str(sim.requests[1].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        end["global_data"],
        json!({"caller": "alice", "city": "Paris"})
    );
    // The report.
    let report: Value = serde_json::from_str(sim.requests[2].body.as_deref().unwrap()).unwrap();
    assert_eq!(sim.requests[2].url, "https://hooks.test/post");
    assert_eq!(report["action"], "post_conversation");
    assert_eq!(
        report["post_prompt_data"]["raw"],
        "The caller asked for the weather in Paris."
    );
    assert_eq!(
        report["call_log"][0]["content"],
        "Hello, ask me about the weather."
    );
    assert_eq!(report["call_id"], "c-1");
}

/// A model that does not answer: the caller hears a fallback, `ai_result` is `failed`, the
/// script goes on.
#[test]
fn ai_agent_with_its_model_down_says_so_and_the_script_goes_on() {
    let sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"pom": [{"title": "Role", "body": "You help.", "bullets": ["Be brief"]}]}}},
        {"play": {"url": "say:ai ${ai_result}"}}
    ]}}))
    .go();
    assert_eq!(
        sim.says(),
        vec!["I'm sorry, I cannot answer right now.", "ai failed"]
    );
    // The POM prompt became Markdown.
    assert_eq!(
        sim.model_requests[0].messages[0]["content"],
        "## Role\n\nYou help.\n\n- Be brief"
    );
}

/// A function's `stop` action ends the agent; the call stays up and the script continues. A
/// webhook that fails tells the model so.
#[test]
fn ai_agent_stop_action_continues_the_script() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"},
                "SWAIG": {"functions": [
                    {"function": "broken", "description": "x", "web_hook_url": "https://hooks.test/down"},
                    {"function": "done", "description": "y", "web_hook_url": "https://hooks.test/done"}]}}},
        {"play": {"url": "say:next ${ai_result}"}}
    ]}}));
    sim.model_replies.push_back(tool_call("a", "broken", "{}"));
    sim.model_replies
        .push_back(tool_call("b", "done", "not json"));
    sim.http.insert(
        "https://hooks.test/done".into(),
        json_ok(json!({"response": "bye", "action": {"stop": true, "say": "All done."}})),
    );
    let sim = sim.go();
    assert_eq!(sim.says(), vec!["All done.", "next success"]);
    let second = &sim.model_requests[1];
    let tool = second.messages.last().unwrap();
    assert_eq!(tool["role"], "tool");
    assert!(
        tool["content"].as_str().unwrap().contains("failed"),
        "{tool}"
    );
    // Unparsable arguments reach the webhook as raw text, parsed as an empty object.
    let done: Value = serde_json::from_str(sim.requests[1].body.as_deref().unwrap()).unwrap();
    assert_eq!(done["argument"]["raw"], "not json");
    assert_eq!(done["argument"]["parsed"][0], json!({}));
}

/// `prompt` must be an object: a bare string fails the step visibly, the script goes on.
#[test]
fn ai_with_a_bare_string_prompt_fails_the_step() {
    let sim = Sim::unchecked(json!({"sections": {"main": [
        {"ai": {"prompt": "You are a bot"}},
        {"play": {"url": "say:${ai_result}"}}
    ]}}))
    .go();
    assert_eq!(sim.says(), vec!["failed"]);
    assert!(sim
        .trace
        .iter()
        .any(|t| t == "warning relay_script_element_wrong_type (ai)"));
    assert!(sim.model_requests.is_empty());
}

/// The AI's own templates (`${args.x}`, `${lc:…}` in a `data_map`, a prompt's
/// `${global_data.x}`, swml.md §5.7) are not SWML expressions: the step leaves them to the agent
/// (§5.8) instead of failing to evaluate them.
#[test]
fn ai_leaves_the_swaig_templates_alone() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Hours bot for ${global_data.clinic}, caller ${caller_id_number}"},
                "global_data": {"clinic": "Main St"},
                "params": {"static_greeting": "Hello ${call.from}"},
                "SWAIG": {"functions": [{"function": "get_hours", "description": "hours",
                    "data_map": {"expressions": [{"string": "${lc:args.day}", "pattern": "sunday",
                                                  "output": {"response": "closed"}}]}}]}}}
    ]}}));
    sim.prompt_results
        .push_back(speech("are you open on sunday"));
    sim.model_replies.push_back(says("Bye."));
    let sim = sim.go();
    assert!(
        !sim.trace.iter().any(|t| t.starts_with("warning")),
        "{:#?}",
        sim.trace
    );
    // SWML variables expand in `params`; the prompt is expanded by the AI's own templates, with
    // the prompt variables.
    assert!(
        sim.trace[0].starts_with("prompt say:Hello +14155550123 collect"),
        "{:#?}",
        sim.trace
    );
    assert_eq!(
        sim.model_requests[0].messages[0]["content"],
        "Hours bot for Main St, caller +14155550123"
    );
}

/// Shared example 18 (EXPECTED.md): `get_hours` is answered by its `data_map` without any HTTP
/// (the expression on `${lc:args.day}`, else the top-level output, `${global_data.clinic}`
/// expanded); `transfer_to_human` is POSTed to `defaults.web_hook_url` with its credentials;
/// the summary goes to `post_prompt_url`; the agent ends without hangup or transfer, so the
/// script goes on with `ai_result` success.
#[test]
fn example_18_ai_agent() {
    let Some(mut sim) = Sim::from_example("18-ai-agent.json") else {
        return;
    };
    sim.prompt_results
        .push_back(speech("are you open on saturday"));
    sim.prompt_results.push_back(speech("and on monday"));
    sim.prompt_results
        .push_back(speech("let me talk to someone"));
    sim.model_replies
        .push_back(says("Hello, Example Dental, how can I help?"));
    sim.model_replies
        .push_back(tool_call("h1", "get_hours", r#"{"day":"Saturday"}"#));
    sim.model_replies
        .push_back(says("We are closed on weekends."));
    sim.model_replies
        .push_back(tool_call("h2", "get_hours", r#"{"day":"Monday"}"#));
    sim.model_replies
        .push_back(says("We are open 8 to 5 on Monday."));
    sim.model_replies
        .push_back(tool_call("t1", "transfer_to_human", "{}"));
    sim.model_replies
        .push_back(says("Asked for hours and a human."));
    sim.http.insert(
        "https://user:pass@hooks.example.com/ai/swaig".into(),
        json_ok(json!({"response": "nobody is available", "action": [{"stop": true}]})),
    );
    sim.http.insert(
        "https://hooks.example.com/ai/summary".into(),
        json_ok(json!({})),
    );
    let sim = sim.go();
    let tool_results: Vec<&Value> = sim
        .model_requests
        .iter()
        .filter_map(|r| r.messages.last())
        .filter(|m| m["role"] == "tool")
        .map(|m| &m["content"])
        .collect();
    assert_eq!(
        tool_results,
        [
            &json!("Example Dental is closed on weekends."),
            &json!("Example Dental is open 8 to 5 on Monday.")
        ]
    );
    // The webhook's `stop` ended the agent: its response is in the report, not asked about.
    let report: Value = serde_json::from_str(sim.requests[1].body.as_deref().unwrap()).unwrap();
    let last_tool = report["call_log"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .unwrap();
    assert_eq!(last_tool["content"], "nobody is available");
    assert_eq!(
        report["post_prompt_data"]["raw"],
        "Asked for hours and a human."
    );
    // Only the webhook function and the report made HTTP requests.
    let urls: Vec<&str> = sim.requests.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "https://user:pass@hooks.example.com/ai/swaig",
            "https://hooks.example.com/ai/summary"
        ]
    );
    assert_eq!(sim.var("ai_result"), json!("success"));
    assert_eq!(
        sim.says().last().map(String::as_str),
        Some("The assistant has finished with result success. Goodbye.")
    );
    assert_eq!(sim.trace.last().map(String::as_str), Some("hangup hangup"));
}

/// The actions that change the agent: `toggle_functions` (the model's tools change),
/// `set_meta_data` (shared by the functions with the same token, seen by the next call),
/// `context_switch` (a new system prompt) and `user_input` (words put in the caller's mouth).
#[test]
fn ai_actions_change_tools_meta_data_prompt_and_input() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "First prompt"},
                "SWAIG": {"defaults": {"web_hook_url": "https://hooks.test/swaig"},
                          "functions": [
                    {"function": "login", "description": "log in", "meta_data_token": "t"},
                    {"function": "account", "description": "account", "meta_data_token": "t", "active": false}]}}}
    ]}}));
    sim.prompt_results.push_back(speech("log me in"));
    sim.model_replies.push_back(tool_call("1", "login", "{}"));
    sim.model_replies.push_back(tool_call("2", "account", "{}"));
    sim.model_replies.push_back(says("Done."));
    sim.http.insert(
        "https://hooks.test/swaig".into(),
        json_ok(json!({"response": "ok", "action": [
            {"toggle_functions": [{"function": "login", "active": false}, {"function": "account", "active": true}]},
            {"set_meta_data": {"user": "alice"}},
            {"context_switch": {"system_prompt": "Second prompt", "user_prompt": "show my account"}}]})),
    );
    let sim = sim.go();
    let tools = |i: usize| -> Vec<String> {
        sim.model_requests[i]
            .tools
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(tools(0), ["login"]);
    assert_eq!(tools(1), ["account"]);
    let second = &sim.model_requests[1].messages;
    assert_eq!(second[0]["content"], "Second prompt");
    let last = second.last().unwrap();
    assert_eq!(
        (&last["role"], &last["content"]),
        (&json!("user"), &json!("show my account"))
    );
    // The account call carries the meta_data the login call set (one token).
    let account: Value = serde_json::from_str(sim.requests[1].body.as_deref().unwrap()).unwrap();
    assert_eq!(account["function"], "account");
    assert_eq!(account["meta_data"], json!({"user": "alice"}));
}

/// `calling.ai.stop` and `calling.ai_message` reach the waiting agent through the Run: a
/// message joins the next model turn, a stop while listening hands the runtime the turn's
/// operations and ends the agent (its report sent) on the completion that follows.
#[test]
fn ai_stop_and_message_reach_the_waiting_agent() {
    let doc = swml::Document::from_value(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"}, "post_prompt_url": "https://hooks.test/post",
                "params": {"static_greeting": "Hi"}}},
        {"play": {"url": "say:after ${ai_result}"}}
    ]}}))
    .unwrap()
    .into_value();
    let mut run = Run::new(doc, call(), Map::new());
    assert!(run.ai_stop().is_none(), "no agent before the step runs");
    run.start(0);
    let Some(Effect::Prompt { play, collect }) = run.poll_effect() else {
        panic!("the greeting turn")
    };
    let mut global = Map::new();
    global.insert("vip".into(), json!(true));
    let formal = swml::AiMessage {
        role: "system".into(),
        text: Some("Be formal.".into()),
        global_data: Some(global),
        ..Default::default()
    };
    assert_eq!(
        run.ai_message(formal),
        Some(None),
        "a system message waits for the next turn"
    );
    run.complete(
        10,
        Completion::Op(OpResult::Collected(speech("hello there"))),
    );
    let Some(Effect::Model(req)) = run.poll_effect() else {
        panic!("a model turn")
    };
    let roles: Vec<&str> = req
        .messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "assistant", "system", "user"]);
    assert_eq!(req.messages[2]["content"], "Be formal.");
    run.complete(
        20,
        says("How can I help?")
            .map_or_else(|e| Completion::Model(Err(e)), |r| Completion::Model(Ok(r))),
    );
    let Some(Effect::Prompt {
        play: play2,
        collect: collect2,
    }) = run.poll_effect()
    else {
        panic!("the answer turn")
    };
    assert_ne!(
        (&play.control_id, &collect.control_id),
        (&play2.control_id, &collect2.control_id)
    );
    // Stopped while listening: the runtime gets this turn's operations.
    let ops = run.ai_stop().expect("an agent runs").expect("it listens");
    assert_eq!(
        (ops.play, ops.collect),
        (play2.control_id.clone(), collect2.control_id.clone())
    );
    run.complete(
        30,
        Completion::Failed {
            message: "stopped".into(),
        },
    );
    let Some(Effect::Request(report)) = run.poll_effect() else {
        panic!("the report")
    };
    assert_eq!(report.url, "https://hooks.test/post");
    let body: Value = serde_json::from_str(report.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["global_data"], json!({"vip": true}));
    run.complete(40, Completion::Http(json_ok(json!({}))));
    let Some(Effect::Play { params, .. }) = run.poll_effect() else {
        panic!("the script goes on")
    };
    assert!(matches!(&params.play[0], MediaItem::Tts(t) if t.text == "after success"));
    let late = swml::AiMessage {
        role: "user".into(),
        text: Some("late".into()),
        ..Default::default()
    };
    assert_eq!(run.ai_message(late), None, "the agent is over");
}

/// A `SWML` action with `transfer` (the SDK sends `"true"` as a string) leaves the agent and
/// hands the call to that document; a `transfer` action to a URL fetches it as `transfer` does.
/// Either way the steps after `ai` never run.
#[test]
fn ai_swml_transfer_actions_leave_the_agent_for_the_document() {
    let doc = |hook: &str| {
        json!({"sections": {"main": [
            {"ai": {"prompt": {"text": "Bot"},
                    "SWAIG": {"functions": [{"function": "go", "description": "go", "web_hook_url": hook}]}}},
            {"play": {"url": "say:after the agent"}}
        ]}})
    };
    let mut sim = Sim::new(doc("https://hooks.test/swml"));
    sim.model_replies.push_back(tool_call("1", "go", "{}"));
    sim.http.insert(
        "https://hooks.test/swml".into(),
        json_ok(json!({"response": "transferring", "action": [
            {"say": "Transferring you."},
            {"SWML": {"version": "1.0.0", "sections": {"main": [{"play": {"url": "say:in the new document"}}]}},
             "transfer": "true"}]})),
    );
    let sim = sim.go();
    assert_eq!(sim.says(), vec!["Transferring you.", "in the new document"]);
    assert_eq!(sim.var("ai_result"), json!("success"));

    let mut sim = Sim::new(doc("https://hooks.test/transfer"));
    sim.model_replies.push_back(tool_call("1", "go", "{}"));
    sim.http.insert(
        "https://hooks.test/transfer".into(),
        json_ok(json!({"response": "ok", "action": [{"transfer": {"dest": "https://app.test/next.json"}}]})),
    );
    sim.documents.insert(
        "https://app.test/next.json".into(),
        json!({"version": "1.0.0", "sections": {"main": [{"play": {"url": "say:next document"}}]}}),
    );
    let sim = sim.go();
    assert_eq!(sim.says(), vec!["next document"]);
    assert!(
        sim.trace
            .iter()
            .any(|t| t == "fetch https://app.test/next.json"),
        "{:#?}",
        sim.trace
    );
}

/// A `SWML` action without `transfer` runs on the call once the function has answered (here a
/// `play`, then a `return` out of the document), and the agent goes on: the model is asked
/// again and the conversation continues; a document that does not validate is a warning.
#[test]
fn ai_inline_swml_action_runs_and_the_agent_goes_on() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"},
                "SWAIG": {"functions": [{"function": "go", "description": "go",
                                         "web_hook_url": "https://hooks.test/inline"}]}}},
        {"play": {"url": "say:after the agent"}}
    ]}}));
    sim.model_replies.push_back(tool_call("1", "go", "{}"));
    sim.http.insert(
        "https://hooks.test/inline".into(),
        json_ok(json!({"response": "played the jingle", "action": [
            {"SWML": {"version": "1.0.0", "sections": {"main": [
                {"play": {"url": "say:the inline jingle"}},
                {"set": {"jingle": "done"}},
                {"return": {}},
                {"play": {"url": "say:never said"}}]}}},
            {"SWML": {"sections": {"main": [{"no_such_method": {}}]}}}]})),
    );
    sim.model_replies.push_back(says("Back with you."));
    let sim = sim.go();
    let t = &sim.trace;
    let jingle = t.iter().position(|s| s == "play say:the inline jingle");
    let back = t
        .iter()
        .position(|s| s.starts_with("prompt say:Back with you."));
    assert!(
        jingle.is_some() && back.is_some() && jingle < back,
        "{t:#?}"
    );
    assert!(!t.iter().any(|s| s.contains("never said")), "{t:#?}");
    assert_eq!(
        sim.says().last().map(String::as_str),
        Some("after the agent"),
        "the script goes on after the agent"
    );
    assert_eq!(sim.var("jingle"), json!("done"));
    assert!(
        sim.trace.iter().any(|t| t.starts_with("warning")),
        "the second document is refused: {:#?}",
        sim.trace
    );
    let m = &sim.model_requests;
    assert_eq!(
        m[1].messages.last().unwrap()["content"],
        "played the jingle"
    );
}

/// Background audio: `params.background_file` starts with the agent (its loops and volume),
/// `playback_bg` replaces it (once), `stop_playback_bg` stops it; what still plays when the
/// agent ends is stopped.
#[test]
fn ai_background_file_and_playback_bg_actions() {
    let doc = |second: Value| {
        json!({"sections": {"main": [
            {"ai": {"prompt": {"text": "Bot"},
                    "params": {"background_file": "https://m.test/music.wav",
                               "background_file_loops": 3, "background_file_volume": -6},
                    "SWAIG": {"functions": [
                        {"function": "ding", "description": "ding", "data_map": {"output":
                            {"response": "ok", "action": [{"playback_bg": {"file": "https://m.test/ding.wav"}}]}}},
                        {"function": "quiet", "description": "quiet", "data_map": {"output":
                            {"response": "ok", "action": second}}}]}}},
            {"play": {"url": "say:after the agent"}}
        ]}})
    };
    let backgrounds = |sim: &Sim| -> Vec<String> {
        sim.trace
            .iter()
            .filter(|t| t.starts_with("background") || t.starts_with("play say:after"))
            .cloned()
            .collect()
    };
    let mut sim = Sim::new(doc(json!([{"stop_playback_bg": true}])));
    sim.model_replies.push_back(tool_call("1", "ding", "{}"));
    sim.model_replies.push_back(tool_call("2", "quiet", "{}"));
    let sim = sim.go();
    assert_eq!(
        backgrounds(&sim),
        vec![
            "background https://m.test/music.wav -6dB x3",
            "background https://m.test/ding.wav 0dB x1",
            "background stop",
            "play say:after the agent",
        ]
    );

    let mut sim = Sim::new(doc(json!([{"say": "nothing to stop"}])));
    sim.model_replies.push_back(tool_call("1", "ding", "{}"));
    let sim = sim.go();
    assert_eq!(
        backgrounds(&sim),
        vec![
            "background https://m.test/music.wav -6dB x3",
            "background https://m.test/ding.wav 0dB x1",
            "background stop",
            "play say:after the agent",
        ]
    );
}

/// `playback_bg` with `wait`: what plays under the call stops, the file plays once in the open,
/// and only then is the model asked with the function's answer.
#[test]
fn ai_playback_bg_with_wait_plays_the_file_before_the_agent_goes_on() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"},
                "params": {"background_file": "https://m.test/music.wav"},
                "SWAIG": {"functions": [
                    {"function": "ding", "description": "ding", "data_map": {"output":
                        {"response": "ok", "action": [{"playback_bg": {"file": "https://m.test/ding.wav", "wait": true}}]}}}]}}}
    ]}}));
    sim.model_replies.push_back(tool_call("1", "ding", "{}"));
    let sim = sim.go();
    let seen: Vec<&String> = sim
        .trace
        .iter()
        .filter(|t| {
            t.starts_with("background") || t.starts_with("play audio") || t.starts_with("model")
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            "background https://m.test/music.wav 0dB x0",
            "model 1 messages, 1 tools",
            "background stop",
            "play audio:https://m.test/ding.wav",
            "model 3 messages, 1 tools",
        ],
        "{:#?}",
        sim.trace
    );
}

/// A function's `wait_file` is mixed under the call from the moment its webhook goes out until
/// it answers (`wait_file_loops` times, else until then); the agent's own background audio
/// comes back after it, and a function without one changes nothing.
#[test]
fn ai_function_wait_file_plays_while_its_webhook_runs() {
    let doc = |params: Value| {
        json!({"sections": {"main": [
            {"ai": {"prompt": {"text": "Bot"}, "params": params,
                    "SWAIG": {"functions": [
                        {"function": "slow", "description": "slow", "web_hook_url": "https://hooks.test/slow",
                         "wait_file": "https://m.test/wait.wav", "wait_file_loops": 2},
                        {"function": "plain", "description": "plain", "web_hook_url": "https://hooks.test/plain"}]}}}
        ]}})
    };
    let traced = |sim: &Sim| -> Vec<String> {
        sim.trace
            .iter()
            .filter(|t| t.starts_with("background") || t.starts_with("request"))
            .cloned()
            .collect()
    };
    let answer = || json_ok(json!({"response": "done"}));
    let mut sim = Sim::new(doc(json!({})));
    sim.http.insert("https://hooks.test/slow".into(), answer());
    sim.http.insert("https://hooks.test/plain".into(), answer());
    sim.model_replies.push_back(tool_call("1", "slow", "{}"));
    sim.model_replies.push_back(tool_call("2", "plain", "{}"));
    let sim = sim.go();
    assert_eq!(
        traced(&sim),
        vec![
            "background https://m.test/wait.wav 0dB x2",
            "request POST https://hooks.test/slow",
            "background stop",
            "request POST https://hooks.test/plain",
        ]
    );

    let mut sim = Sim::new(doc(json!({"background_file": "https://m.test/music.wav"})));
    sim.http.insert("https://hooks.test/slow".into(), answer());
    sim.model_replies.push_back(tool_call("1", "slow", "{}"));
    let sim = sim.go();
    assert_eq!(
        traced(&sim),
        vec![
            "background https://m.test/music.wav 0dB x0",
            "background https://m.test/wait.wav 0dB x2",
            "request POST https://hooks.test/slow",
            "background https://m.test/music.wav 0dB x0",
            "background stop",
        ]
    );
}

/// `pronounce` (the document's, then `languages[0]`'s) changes what is said, not what the
/// conversation holds.
#[test]
fn ai_pronounce_rules_apply_to_speech_only() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"},
                "params": {"static_greeting": "Ask the SQL desk, Dr. Lee."},
                "pronounce": [{"replace": "sql", "with": "sequel"}],
                "languages": [{"name": "English", "code": "en-US",
                               "pronounce": [{"replace": "Dr.", "with": "Doctor", "ignore_case": false}]}]}}
    ]}}));
    sim.prompt_results.push_back(speech("thanks"));
    sim.model_replies.push_back(says("You're welcome."));
    let sim = sim.go();
    assert!(
        sim.trace
            .iter()
            .any(|t| t.starts_with("prompt say:Ask the sequel desk, Doctor Lee. collect")),
        "{:#?}",
        sim.trace
    );
    assert_eq!(
        sim.model_requests[0].messages[1]["content"],
        "Ask the SQL desk, Dr. Lee."
    );
}

/// `SWAIG.mcp_servers`: the server is initialised (its session kept), its tools listed and
/// offered to the model; a call of one is a `tools/call` in that session and its text goes
/// back to the model. A server that fails is a warning; the agent goes on.
#[test]
fn ai_mcp_server_tools_are_listed_and_called() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"},
                "SWAIG": {"mcp_servers": [{"url": "http://mcp.test/mcp", "headers": {"Authorization": "Bearer t"}},
                                          {"url": "http://down.test/mcp"}]}}}
    ]}}));
    let ok = |headers: Vec<(String, String)>, body: &str| {
        Ok(HttpResponse {
            code: 200,
            headers,
            body: body.into(),
        })
    };
    sim.http_queue.insert(
        "http://mcp.test/mcp".into(),
        VecDeque::from([
            ok(
                vec![("mcp-session-id".into(), "s-1".into())],
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-06-18\"}}\n\n",
            ),
            Ok(HttpResponse { code: 202, headers: vec![], body: String::new() }),
            ok(vec![], r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get_weather","description":"The weather","inputSchema":{"type":"object","properties":{"city":{"type":"string"}}}}]}}"#),
            ok(vec![], r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"sunny in Paris"}]}}"#),
        ]),
    );
    sim.model_replies
        .push_back(tool_call("1", "get_weather", r#"{"city": "Paris"}"#));
    sim.model_replies.push_back(says("It is sunny."));
    let sim = sim.go();
    let m = &sim.model_requests;
    let tools: Vec<&str> = m[0]
        .tools
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(tools, ["get_weather"]);
    assert_eq!(m[1].messages.last().unwrap()["content"], "sunny in Paris");
    let to_mcp: Vec<&HttpRequest> = sim
        .requests
        .iter()
        .filter(|r| r.url == "http://mcp.test/mcp")
        .collect();
    assert_eq!(to_mcp.len(), 4);
    let call = to_mcp[3];
    let body: Value = serde_json::from_str(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["method"], "tools/call");
    assert_eq!(
        body["params"],
        json!({"name": "get_weather", "arguments": {"city": "Paris"}})
    );
    for h in [
        ("Mcp-Session-Id", "s-1"),
        ("Authorization", "Bearer t"),
        ("MCP-Protocol-Version", "2025-06-18"),
    ] {
        assert!(
            call.headers.contains(&(h.0.to_string(), h.1.to_string())),
            "{:?}",
            call.headers
        );
    }
    let warned = sim.var("script_error_message");
    assert!(
        warned
            .as_str()
            .unwrap_or("")
            .contains("http://down.test/mcp"),
        "the server that is down is a warning: {warned}"
    );
}

/// `languages[0].speech_fillers`: one is said (in turn) as the model starts on the caller's
/// words — not on the agent's opening words.
#[test]
fn ai_speech_fillers_are_said_while_the_model_thinks() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"},
                "languages": [{"name": "English", "code": "en-US",
                               "speech_fillers": ["Let me see.", "One moment."]}]}}
    ]}}));
    sim.prompt_results.push_back(speech("first question"));
    sim.prompt_results.push_back(speech("second question"));
    sim.model_replies.push_back(says("Hello."));
    sim.model_replies.push_back(says("First answer."));
    sim.model_replies.push_back(says("Second answer."));
    let sim = sim.go();
    let models: Vec<&String> = sim
        .trace
        .iter()
        .filter(|t| t.starts_with("model "))
        .collect();
    assert!(!models[0].contains("filler"), "{}", models[0]);
    assert!(models[1].contains("Let me see."), "{}", models[1]);
    assert!(models[2].contains("One moment."), "{}", models[2]);
}

/// `SWAIG.internal_fillers`: a phrase for `check_time` starts the model's next turn; one for
/// `wait_seconds` is said before the wait.
#[test]
fn ai_internal_fillers_are_said_for_engine_functions() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"}, "params": {"static_greeting": "Hi."},
                "SWAIG": {"native_functions": ["check_time", "wait_seconds"],
                          "internal_fillers": {"check_time": {"en-US": ["Checking the clock."]},
                                               "wait_seconds": ["Take your time."]}}}}
    ]}}));
    sim.prompt_results.push_back(speech("what time is it"));
    sim.model_replies
        .push_back(tool_call("1", "check_time", "{}"));
    sim.model_replies
        .push_back(tool_call("2", "wait_seconds", r#"{"seconds": 2}"#));
    sim.model_replies.push_back(says("Done."));
    let sim = sim.go();
    let models: Vec<&String> = sim
        .trace
        .iter()
        .filter(|t| t.starts_with("model "))
        .collect();
    assert!(models[1].contains("Checking the clock."), "{}", models[1]);
    assert!(
        sim.trace
            .iter()
            .any(|t| t == "play say:Take your time. | silence:2"),
        "{:#?}",
        sim.trace
    );
}

/// `params.swaig_allow_swml: false`: a function's SWML is not run.
#[test]
fn ai_swaig_allow_swml_false_ignores_swml_actions() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"}, "params": {"swaig_allow_swml": false},
                "SWAIG": {"functions": [{"function": "go", "description": "go",
                                         "web_hook_url": "https://hooks.test/inline"}]}}},
        {"play": {"url": "say:after the agent"}}
    ]}}));
    sim.model_replies.push_back(tool_call("1", "go", "{}"));
    sim.http.insert(
        "https://hooks.test/inline".into(),
        json_ok(json!({"response": "ok", "action": [
            {"SWML": {"sections": {"main": [{"play": {"url": "say:the inline jingle"}}]}},
             "transfer": "true"},
            {"stop": true}]})),
    );
    let sim = sim.go();
    assert_eq!(sim.says(), vec!["after the agent"]);
}

/// A `user` message (`calling.ai_message`) while the agent listens is answered at once: the
/// runtime cuts the turn and the model gets the message; `reset` replaces the prompt and
/// starts the conversation over.
#[test]
fn ai_user_message_is_answered_at_once_and_reset_starts_over() {
    let doc = swml::Document::from_value(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Old prompt"}, "params": {"static_greeting": "Hi"}}}
    ]}}))
    .unwrap()
    .into_value();
    let mut run = Run::new(doc, call(), Map::new());
    run.start(0);
    let Some(Effect::Prompt { play, collect }) = run.poll_effect() else {
        panic!("the greeting turn")
    };
    let m = swml::AiMessage {
        role: "user".into(),
        text: Some("what time is it".into()),
        full_reset: true,
        system_prompt: Some("New prompt".into()),
        ..Default::default()
    };
    let ops = run
        .ai_message(m)
        .expect("an agent runs")
        .expect("it listens: cut");
    assert_eq!(
        (ops.play, ops.collect),
        (play.control_id, collect.control_id)
    );
    run.complete(
        5,
        Completion::Failed {
            message: "cut".into(),
        },
    );
    let Some(Effect::Model(req)) = run.poll_effect() else {
        panic!("the model answers at once")
    };
    assert_eq!(
        req.messages,
        vec![
            json!({"role": "system", "content": "New prompt"}),
            json!({"role": "user", "content": "what time is it"})
        ],
        "the greeting is gone with the reset"
    );
}

/// `calling.ai_hold`: the listening turn is cut, the model words the announcement (no tools),
/// then the announcement and hold music play; `calling.ai_unhold` stops that playback and the
/// model, told the caller is back, speaks again.
#[test]
fn ai_hold_and_unhold() {
    let doc = swml::Document::from_value(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"}, "params": {"static_greeting": "Hi"},
                "SWAIG": {"functions": [{"function": "f", "description": "f", "web_hook_url": "https://h.test/f"}]}}}
    ]}}))
    .unwrap()
    .into_value();
    let mut run = Run::new(doc, call(), Map::new());
    assert_eq!(run.ai_hold(30, None), None, "no agent yet");
    run.start(0);
    let Some(Effect::Prompt { collect, .. }) = run.poll_effect() else {
        panic!("the greeting turn")
    };
    let ops = run
        .ai_hold(30, None)
        .expect("an agent")
        .expect("listening: cut");
    assert_eq!(ops.collect, collect.control_id);
    assert_eq!(
        run.ai_unhold(None),
        Some(None),
        "not on hold yet: nothing to stop"
    );
    // That unhold called the hold off; ask again.
    assert!(run.ai_hold(30, None).is_some());
    run.complete(
        5,
        Completion::Failed {
            message: "cut".into(),
        },
    );
    let Some(Effect::Model(announce)) = run.poll_effect() else {
        panic!("the announcement")
    };
    assert!(announce.tools.is_empty());
    assert_eq!(
        announce.messages.last().unwrap()["content"],
        "Tell the user you are putting them on hold."
    );
    run.complete(
        6,
        says("Please hold on.")
            .map_or_else(|e| Completion::Model(Err(e)), |r| Completion::Model(Ok(r))),
    );
    let Some(Effect::Play { params, .. }) = run.poll_effect() else {
        panic!("the hold")
    };
    assert!(matches!(&params.play[0], MediaItem::Tts(t) if t.text == "Please hold on."));
    assert!(matches!(&params.play[1], MediaItem::Ringtone { duration: Some(d), .. } if *d == 30.0));
    let play_id = run
        .ai_unhold(Some("Back now".into()))
        .expect("an agent")
        .expect("on hold");
    assert_eq!(play_id, params.control_id);
    run.complete(7, Completion::Done);
    let Some(Effect::Model(back)) = run.poll_effect() else {
        panic!("the model speaks again")
    };
    assert_eq!(back.tools.len(), 1);
    assert_eq!(back.messages.last().unwrap()["content"], "Back now");
    run.complete(
        8,
        says("Thanks for waiting.")
            .map_or_else(|e| Completion::Model(Err(e)), |r| Completion::Model(Ok(r))),
    );
    let Some(Effect::Prompt { play, .. }) = run.poll_effect() else {
        panic!("a turn again")
    };
    assert!(matches!(&play.play[0], MediaItem::Tts(t) if t.text == "Thanks for waiting."));
}

/// A hold asked while the model thinks waits for its answer, which is said with the
/// announcement; a stop while a function runs gives its call a result, so the summary's
/// conversation is one the model API accepts.
#[test]
fn ai_hold_while_thinking_and_stop_while_calling() {
    let doc = swml::Document::from_value(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Bot"}, "post_prompt": {"text": "Sum up"}, "post_prompt_url": "https://h.test/post",
                "SWAIG": {"functions": [{"function": "f", "description": "f", "web_hook_url": "https://h.test/f"}]}}}
    ]}}))
    .unwrap()
    .into_value();
    let mut run = Run::new(doc, call(), Map::new());
    run.start(0);
    assert!(
        matches!(run.poll_effect(), Some(Effect::Model(_))),
        "the model speaks first"
    );
    assert_eq!(
        run.ai_hold(10, None),
        Some(None),
        "thinking: nothing to cut"
    );
    run.complete(
        1,
        Completion::Model(Ok(swml::ModelReply {
            text: "Welcome.".into(),
            tool_calls: vec![],
            spoken: false,
        })),
    );
    let Some(Effect::Model(announce)) = run.poll_effect() else {
        panic!("the announcement")
    };
    assert!(announce.tools.is_empty());
    run.complete(
        2,
        Completion::Model(Ok(swml::ModelReply {
            text: "One moment.".into(),
            tool_calls: vec![],
            spoken: false,
        })),
    );
    let Some(Effect::Play { params, .. }) = run.poll_effect() else {
        panic!("the hold")
    };
    assert!(matches!(&params.play[0], MediaItem::Tts(t) if t.text == "Welcome. One moment."));
    run.complete(3, Completion::Done); // the hold's timeout
    assert!(
        matches!(run.poll_effect(), Some(Effect::Model(_))),
        "back from hold"
    );
    run.complete(
        4,
        Completion::Model(Ok(swml::ModelReply {
            text: String::new(),
            tool_calls: vec![swml::ModelToolCall {
                id: "c1".into(),
                name: "f".into(),
                arguments: "{}".into(),
            }],
            spoken: false,
        })),
    );
    assert!(
        matches!(run.poll_effect(), Some(Effect::Request(_))),
        "the function's webhook"
    );
    assert_eq!(run.ai_stop(), Some(None), "calling: nothing to cut");
    run.complete(5, Completion::Http(Err("slow".into())));
    let Some(Effect::Model(summary)) = run.poll_effect() else {
        panic!("the summary")
    };
    let tool = summary
        .messages
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .unwrap();
    assert_eq!(tool["tool_call_id"], "c1");
}

fn calls(list: &[(&str, &str, &str)]) -> Result<swml::ModelReply, String> {
    Ok(swml::ModelReply {
        text: String::new(),
        tool_calls: list
            .iter()
            .map(|(id, name, arguments)| swml::ModelToolCall {
                id: (*id).into(),
                name: (*name).into(),
                arguments: (*arguments).into(),
            })
            .collect(),
        spoken: false,
    })
}

fn tool_names(r: &swml::ModelRequest) -> Vec<String> {
    r.tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Contexts and steps, the native functions, an include's remote signatures and a `data_map`
/// webhook with `foreach`, in one conversation: the included function is fetched first; the
/// first step offers no SWAIG function; `next_step` moves on (the prompt and the tools follow);
/// `wait_seconds` waits in silence; the data_map's webhook answers the model; `change_context`
/// enters an isolated context (its filler said, the conversation wiped) whose step is the end.
#[test]
fn ai_contexts_steps_natives_includes_and_data_map_webhooks() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {
            "prompt": {"text": "You are a clinic's assistant.", "contexts": {
                "default": {"steps": [
                    {"name": "greet", "text": "Ask for the caller's name.", "functions": "none"},
                    {"name": "help", "text": "Find them a doctor.", "step_criteria": "a doctor was found",
                     "functions": ["find_doctor"], "valid_contexts": ["billing"]}]},
                "billing": {"text": "You explain bills.", "isolated": true,
                            "enter_fillers": {"en-US": ["Billing here."]},
                            "steps": [{"name": "bill", "text": "Explain the bill.", "end": true}]}}},
            "SWAIG": {
                "native_functions": ["check_time", "wait_seconds"],
                "includes": [{"url": "https://inc.test/swaig", "functions": ["remote_fn"], "meta_data": {"k": "v"}}],
                "functions": [{"function": "find_doctor", "description": "Find a doctor",
                    "parameters": {"type": "object", "properties": {"specialty": {"type": "string"}}},
                    "data_map": {"webhooks": [{
                        "url": "https://api.test/doctors?s=${enc:args.specialty}",
                        "foreach": {"input_key": "doctors", "output_key": "list", "max": 3, "append": "${this.name}; "},
                        "output": {"response": "Doctors: ${list}"}}]}}]}
        }},
        {"play": {"url": "say:after the agent"}}
    ]}}));
    sim.http.insert(
        "https://inc.test/swaig".into(),
        json_ok(json!([
            {"function": "remote_fn", "description": "Remote", "argument": {"type": "object", "properties": {}}},
            {"function": "not_wanted", "description": "Left out"}])),
    );
    sim.http.insert(
        "https://api.test/doctors?s=dentist".into(),
        json_ok(json!({"doctors": [{"name": "Dr. Ann"}, {"name": "Dr. Bo"}]})),
    );
    sim.model_replies.push_back(calls(&[
        ("1", "next_step", r#"{"step": "help"}"#),
        ("2", "wait_seconds", r#"{"seconds": 2}"#),
    ]));
    sim.model_replies.push_back(says("How can I help?"));
    sim.prompt_results.push_back(speech("i need a dentist"));
    sim.model_replies
        .push_back(tool_call("3", "find_doctor", r#"{"specialty": "dentist"}"#));
    sim.model_replies.push_back(tool_call(
        "4",
        "change_context",
        r#"{"context": "billing"}"#,
    ));
    sim.model_replies
        .push_back(says("Your bill is ten dollars."));
    let sim = sim.go();

    // The include's signature request came first; only the function it names joined.
    let sig: Value = serde_json::from_str(sim.requests[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(sig["action"], "get_signature");
    assert_eq!(sig["functions"], json!(["remote_fn"]));
    assert_eq!(sig["content_disposition"], "function signature request");

    let m = &sim.model_requests;
    assert_eq!(m.len(), 5, "{:#?}", sim.trace);
    // Step `greet`: no SWAIG function, the natives and next_step.
    assert_eq!(
        tool_names(&m[0]),
        ["check_time", "wait_seconds", "next_step"]
    );
    let system = m[0].messages[0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("You are a clinic's assistant."),
        "{system}"
    );
    assert!(
        system.contains("## Current step: greet") && system.contains("Ask for the caller's name.")
    );
    // Step `help`: its one function and change_context; the tool answers reached the model.
    assert_eq!(
        tool_names(&m[1]),
        [
            "find_doctor",
            "check_time",
            "wait_seconds",
            "change_context"
        ]
    );
    let system = m[1].messages[0]["content"].as_str().unwrap();
    assert!(
        system.contains("## Current step: help")
            && system.contains("complete when: a doctor was found")
    );
    let results: Vec<&Value> = m[1]
        .messages
        .iter()
        .filter(|x| x["role"] == "tool")
        .map(|x| &x["content"])
        .collect();
    assert_eq!(
        results,
        [
            &json!("Now in the step `help`; follow its instructions."),
            &json!("Waited 2 seconds.")
        ]
    );
    assert!(
        sim.trace.iter().any(|t| t == "play silence:2"),
        "{:#?}",
        sim.trace
    );
    // The data_map's webhook, its list through foreach.
    assert_eq!(sim.requests[1].url, "https://api.test/doctors?s=dentist");
    assert_eq!(sim.requests[1].method, "GET");
    assert_eq!(
        m[3].messages.last().unwrap()["content"],
        "Doctors: Dr. Ann; Dr. Bo; "
    );
    // The isolated billing context: only its system prompt is left.
    assert_eq!(m[4].messages.len(), 1, "{:#?}", m[4].messages);
    let system = m[4].messages[0]["content"].as_str().unwrap();
    assert!(system.contains("You explain bills.") && system.contains("## Current step: bill"));
    assert!(tool_names(&m[4]).iter().all(|t| t != "next_step"));
    // Its end step: the filler and the answer are the last words, then the script goes on.
    assert_eq!(
        sim.says(),
        ["Billing here. Your bill is ten dollars.", "after the agent"]
    );
    assert_eq!(sim.var("ai_result"), json!("success"));
}

/// A native `wait_for_user` listens without a word; an unknown step is refused to the model;
/// `check_time` answers in the zone asked for (else `params.local_tz`).
#[test]
fn ai_wait_for_user_and_check_time() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Be brief.", "contexts": {"default": {"steps": [
                    {"name": "one", "text": "First."}, {"name": "two", "text": "Second."}]}}},
                "params": {"static_greeting": "Hi.", "local_tz": "Europe/Paris"},
                "SWAIG": {"native_functions": ["wait_for_user", "check_time"]}}}
    ]}}));
    sim.prompt_results.push_back(speech("hold on"));
    sim.prompt_results.push_back(speech("what time is it"));
    sim.model_replies.push_back(calls(&[
        ("1", "wait_for_user", "{}"),
        ("2", "next_step", r#"{"step": "three"}"#),
    ]));
    sim.model_replies
        .push_back(tool_call("3", "check_time", r#"{"timezone": "UTC"}"#));
    sim.model_replies
        .push_back(tool_call("4", "check_time", "{}"));
    sim.model_replies.push_back(says("It is late."));
    let sim = sim.go();
    let prompts: Vec<&String> = sim
        .trace
        .iter()
        .filter(|t| t.starts_with("prompt "))
        .collect();
    assert!(
        prompts[0].starts_with("prompt say:Hi. collect"),
        "{}",
        prompts[0]
    );
    assert!(
        prompts[1].starts_with("prompt Silence { duration: 0.1 } collect"),
        "listens in silence: {}",
        prompts[1]
    );
    let m = &sim.model_requests;
    let refused = &m[1].messages[m[1].messages.len() - 2];
    assert!(
        refused["content"]
            .as_str()
            .unwrap()
            .contains("`three` is not a step you can move to now; valid: two"),
        "{refused}"
    );
    let time = m[2].messages.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        time.starts_with("It is ") && time.ends_with(" UTC (UTC)."),
        "{time}"
    );
    let local = m[3].messages.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(local.ends_with("(Europe/Paris)."), "{local}");
}

/// A function's `hold` action puts the caller on hold as `calling.ai_hold` would: the model's
/// answer and its announcement, hold music for the action's timeout, then the conversation on.
#[test]
fn ai_hold_action_holds_for_its_timeout() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Be brief."}, "params": {"static_greeting": "Hi."},
                "SWAIG": {"functions": [{"function": "check", "description": "check",
                    "data_map": {"output": {"response": "checking", "action": [{"hold": {"timeout": 7}}]}}}]}}}
    ]}}));
    sim.prompt_results.push_back(speech("check it"));
    sim.model_replies.push_back(tool_call("1", "check", "{}"));
    sim.model_replies.push_back(says("Let me check."));
    sim.model_replies.push_back(says("Please hold on."));
    let sim = sim.go();
    let held = sim
        .trace
        .iter()
        .find(|t| t.starts_with("play say:Let me check. Please hold on."))
        .unwrap_or_else(|| panic!("{:?}", &sim.trace[..sim.trace.len().min(8)]));
    assert!(held.contains("ring:us:Some(7.0)"), "{held}");
    let m = &sim.model_requests;
    assert!(
        m[2].tools.is_empty(),
        "the announcement is worded without tools"
    );
    assert_eq!(
        m[3].messages.last().unwrap()["content"],
        "The user has been taken off hold."
    );
}

/// The `@{…}` template functions in a `data_map` output: the date in a zone, a phone number,
/// arithmetic; `@{sleep}` makes the agent wait in silence once the function has answered.
#[test]
fn ai_data_map_template_functions_and_sleep() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Be brief."}, "params": {"static_greeting": "Hi."},
                "SWAIG": {"functions": [{"function": "info", "description": "info",
                    "data_map": {"output": {"response":
                        "@{strftime_tz America/New_York %Y-%m-%d}|${fmt_ph:args.n}|@{fmt_ph international:sep:. ${args.n}}|@{expr ${args.k} * 2 + 1}@{sleep 2.5}"}}}]}}}
    ]}}));
    sim.prompt_results.push_back(speech("tell me"));
    sim.model_replies
        .push_back(tool_call("1", "info", r#"{"n": "+15551234567", "k": 20}"#));
    sim.model_replies.push_back(says("Done."));
    let sim = sim.go();
    let answer = sim.model_requests[1].messages.last().unwrap()["content"].clone();
    assert_eq!(
        answer, "1969-12-31|(555) 123-4567|+1.555.123.4567|41",
        "{:#?}",
        sim.model_requests[1].messages
    );
    let waited = sim
        .trace
        .iter()
        .position(|t| t.starts_with("play silence:2.5"))
        .unwrap_or_else(|| panic!("{:#?}", sim.trace));
    let next = sim.trace[waited + 1..]
        .iter()
        .find(|t| t.starts_with("play") || t.starts_with("prompt"))
        .unwrap_or_else(|| panic!("{:#?}", sim.trace));
    assert!(
        next.contains("Done."),
        "the model answers after the sleep: {next}"
    );
}

/// `params.hold_music`: after the hold announcement the music loops (as background audio over
/// a silent wait) for the rest of the hold, then stops and the conversation goes on.
#[test]
fn ai_hold_music_plays_after_the_announcement() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Be brief."},
                "params": {"static_greeting": "Hi.", "hold_music": "https://m.test/hold.wav"},
                "SWAIG": {"functions": [{"function": "check", "description": "check",
                    "data_map": {"output": {"response": "checking", "action": [{"hold": {"timeout": 7}}]}}}]}}}
    ]}}));
    sim.prompt_results.push_back(speech("check it"));
    sim.model_replies.push_back(tool_call("1", "check", "{}"));
    sim.model_replies.push_back(says("Let me check."));
    sim.model_replies.push_back(says("Please hold on."));
    let sim = sim.go();
    let at = sim
        .trace
        .iter()
        .position(|t| t.starts_with("play say:Let me check. Please hold on."))
        .unwrap_or_else(|| panic!("{:#?}", sim.trace));
    assert!(
        !sim.trace[at].contains("ring:"),
        "no ringback: {}",
        sim.trace[at]
    );
    let next: Vec<&String> = sim.trace[at + 1..]
        .iter()
        .filter(|t| t.starts_with("play") || t.starts_with("background"))
        .take(3)
        .collect();
    assert_eq!(
        next,
        vec![
            "background https://m.test/hold.wav 0dB x0",
            "play silence:7",
            "background stop"
        ],
        "{:#?}",
        sim.trace
    );
    assert_eq!(
        sim.model_requests[3].messages.last().unwrap()["content"],
        "The user has been taken off hold."
    );
}

/// The runtime speaks the model's answers as they stream: the turn then listens after that
/// playback (no second playback of the same words); words a function said first go with the
/// answer.
#[test]
fn ai_answers_spoken_as_they_stream_are_listened_after() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Be brief."},
                "SWAIG": {"functions": [
                    {"function": "lookup", "description": "look up",
                     "data_map": {"output": {"response": "found", "action": [{"say": "One moment."}]}}},
                    {"function": "bye", "description": "end",
                     "data_map": {"output": {"response": "ok", "action": [{"stop": true}]}}}]}}},
        {"play": {"url": "say:after"}}
    ]}}));
    sim.speaks = true;
    sim.model_replies
        .push_back(says("Hello, what do you need?"));
    sim.prompt_results.push_back(speech("look it up"));
    sim.model_replies.push_back(tool_call("1", "lookup", "{}"));
    sim.model_replies.push_back(says("It is found."));
    sim.prompt_results.push_back(speech("thanks bye"));
    sim.model_replies.push_back(tool_call("2", "bye", "{}"));
    let sim = sim.go();
    let lines: Vec<&str> = sim
        .trace
        .iter()
        .map(String::as_str)
        .filter(|t| {
            t.starts_with("spoke ")
                || t.starts_with("listen ")
                || t.starts_with("prompt ")
                || t.starts_with("play ")
        })
        .collect();
    let short: Vec<String> = lines
        .iter()
        .map(|l| l.split(" collect ").next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        short,
        [
            "spoke swml-ai-say-2 Hello, what do you need?",
            "listen swml-ai-say-2",
            "spoke swml-ai-say-6 One moment. It is found.",
            "listen swml-ai-say-6",
            "play say:after"
        ],
        "{:#?}",
        sim.trace
    );
    // The stop ends the agent without another model turn; each turn's plan was a fresh
    // playback.
    assert_eq!(sim.model_requests.len(), 4);
    assert!(sim.model_requests.iter().all(|r| r.speak.is_some()));
    // A turn listens with the collect its plan named (the runtime started it with the
    // playback, so the caller could talk over the answer while the model wrote it).
    let planned = &sim.model_requests[0]
        .speak
        .as_ref()
        .unwrap()
        .collect
        .control_id;
    let (_, listened) = &sim.controls[0];
    assert_eq!(&listened["control_id"], planned);
}

/// `amazon_bedrock` is the same agent (its `contexts` left out); `params.wait_for_user` hears
/// the caller first; `params.hard_stop_time` ends the conversation at the next turn once it is
/// up, with the model's goodbye (worded without tools).
#[test]
fn amazon_bedrock_waits_for_the_user_and_stops_at_the_hard_stop_time() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"amazon_bedrock": {"prompt": {"text": "Be brief.", "voice_id": "amy",
                                       "contexts": {"default": {"steps": [{"name": "x", "text": "X"}]}}},
                            "params": {"wait_for_user": true, "hard_stop_time": "0:00:02",
                                       "hard_stop_prompt": "Say goodbye."}}},
        {"play": {"url": "say:after"}}
    ]}}));
    sim.prompt_results.push_back(speech("hello"));
    sim.model_replies.push_back(says("Hi, how can I help?"));
    sim.model_replies
        .push_back(says("Sorry, time is up. Goodbye."));
    // Every step of the simulation is a second: the hard stop is up by the second turn's end.
    sim.tick_ms = 1_000;
    let sim = sim.go();
    let prompts: Vec<&String> = sim
        .trace
        .iter()
        .filter(|t| t.starts_with("prompt "))
        .collect();
    assert!(
        prompts[0].starts_with("prompt Silence { duration: 0.1 } collect"),
        "the caller first: {}",
        prompts[0]
    );
    let m = &sim.model_requests;
    assert_eq!(m.len(), 2, "{:#?}", sim.trace);
    assert!(!m[0].messages[0]["content"]
        .as_str()
        .unwrap()
        .contains("Current step"));
    assert_eq!(m[1].messages.last().unwrap()["content"], "Say goodbye.");
    assert!(m[1].tools.is_empty());
    assert_eq!(sim.says(), ["Sorry, time is up. Goodbye.", "after"]);
    assert_eq!(sim.var("ai_result"), json!("success"));
}

/// `languages[0]` gives the agent's voice and language (its TTS and its recogniser);
/// `static_greeting_no_barge` plays the greeting whole before listening, and
/// `enable_barge: false` does so for every answer (none is then streamed).
#[test]
fn ai_voice_language_and_barge_settings() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Be brief."},
                "languages": [{"name": "French", "code": "fr-FR", "voice": "slt"}],
                "params": {"static_greeting": "Bonjour.", "static_greeting_no_barge": true}}}
    ]}}));
    sim.speaks = true;
    sim.prompt_results.push_back(speech("salut"));
    sim.model_replies.push_back(says("Comment allez-vous?"));
    let sim = sim.go();
    let t: Vec<&str> = sim
        .trace
        .iter()
        .map(|l| l.split(" collect ").next().unwrap_or(""))
        .take(4)
        .collect();
    assert_eq!(
        t,
        [
            "play say[slt/fr-FR]:Bonjour.",
            "prompt Silence { duration: 0.1 }",
            "model 3 messages, 0 tools",
            "spoke swml-ai-say-5 Comment allez-vous?"
        ],
        "{:#?}",
        sim.trace
    );
    let (_, collect) = &sim.controls[0];
    assert_eq!(collect["speech"]["language"], "fr-FR");
    assert_eq!(
        sim.model_requests[0]
            .speak
            .as_ref()
            .unwrap()
            .play
            .voice
            .as_deref(),
        Some("slt")
    );
    assert_eq!(
        sim.model_requests[0].speak.as_ref().unwrap().play.language,
        "fr-FR"
    );

    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Be brief."}, "params": {"enable_barge": false}}}
    ]}}));
    sim.speaks = true;
    sim.model_replies.push_back(says("Hello there."));
    let sim = sim.go();
    assert!(
        sim.model_requests[0].speak.is_none(),
        "no barge: nothing streamed"
    );
    assert!(
        sim.trace.iter().any(|l| l == "play say:Hello there."),
        "{:#?}",
        sim.trace
    );
}

/// `wait_for_fillers`: the function's filler is said first and its webhook goes out after it;
/// without it the two go together (the filler rides on the request).
#[test]
fn ai_wait_for_fillers_sends_the_webhook_after_the_filler() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Be brief."},
                "SWAIG": {"defaults": {"web_hook_url": "https://hooks.test/swaig"},
                          "functions": [
                    {"function": "patient", "description": "p", "fillers": ["Hold on."],
                     "wait_for_fillers": true},
                    {"function": "eager", "description": "e", "fillers": ["Checking."]}]}}}
    ]}}));
    sim.model_replies
        .push_back(calls(&[("1", "patient", "{}"), ("2", "eager", "{}")]));
    sim.http.insert(
        "https://hooks.test/swaig".into(),
        json_ok(json!({"response": "ok"})),
    );
    let sim = sim.go();
    let seen: Vec<&String> = sim
        .trace
        .iter()
        .filter(|t| t.starts_with("play say") || t.starts_with("request"))
        .collect();
    // (Then the model, out of replies, gives the fallback phrase.)
    assert_eq!(
        seen[..3],
        [
            "play say:Hold on.",
            "request POST https://hooks.test/swaig",
            "request POST https://hooks.test/swaig",
        ],
        "{:#?}",
        sim.trace
    );
    assert!(sim.requests[0].filler.is_none());
    assert!(sim.requests[1].filler.is_some());
}

/// A function's `fillers` (else the language's `function_fillers`) are said while its webhook
/// runs, in turn; `skip_fillers` leaves out the language's, not the function's own.
#[test]
fn ai_fillers_are_said_while_functions_run() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Be brief."},
                "languages": [{"name": "English", "code": "en-US", "voice": "kal",
                               "function_fillers": ["One moment.", "Let me check."]}],
                "SWAIG": {"defaults": {"web_hook_url": "https://hooks.test/swaig"},
                          "functions": [
                    {"function": "a", "description": "a"},
                    {"function": "b", "description": "b", "fillers": {"en-US": ["Looking it up."]}},
                    {"function": "c", "description": "c", "skip_fillers": true},
                    {"function": "d", "description": "d", "skip_fillers": true,
                     "fillers": ["Its own words."]}]}}}
    ]}}));
    sim.model_replies.push_back(calls(&[
        ("1", "a", "{}"),
        ("2", "b", "{}"),
        ("3", "c", "{}"),
        ("4", "a", "{}"),
        ("5", "d", "{}"),
    ]));
    sim.http.insert(
        "https://hooks.test/swaig".into(),
        json_ok(json!({"response": "ok"})),
    );
    let sim = sim.go();
    let said: Vec<Option<String>> = sim
        .requests
        .iter()
        .map(|r| {
            r.filler.as_ref().map(|p| match &p.play[0] {
                control::command::MediaItem::Tts(t) => {
                    format!("{}:{}", p.voice.clone().unwrap_or_default(), t.text)
                }
                other => format!("{other:?}"),
            })
        })
        .collect();
    assert_eq!(
        said,
        [
            Some("kal:One moment.".to_string()),
            Some("kal:Looking it up.".to_string()),
            None,
            Some("kal:Let me check.".to_string()),
            Some("kal:Its own words.".to_string())
        ]
    );
}

/// The signalwire-sdk's contexts: a context's `prompt`, `initial_step` and `valid_steps`; a step's
/// `reset` (a `consolidate` and a `user_prompt` when it leaves for a context); the new context's
/// `system_prompt` and `post_prompt`. The model summarises the conversation once the tool
/// round is over, and that summary is all of it the next turn sees.
#[test]
fn ai_sdk_contexts_switch_with_a_consolidated_conversation() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {
            "prompt": {"text": "Base prompt.", "contexts": {
                "default": {"prompt": "Front desk.", "initial_step": "ask", "valid_steps": ["bye"],
                    "steps": [
                        {"name": "greet", "text": "Never entered."},
                        {"name": "ask", "text": "Ask what they need.", "valid_contexts": ["billing"],
                         "reset": {"consolidate": true, "user_prompt": "I have a billing question."}},
                        {"name": "bye", "text": "Say goodbye.", "end": true}]},
                "billing": {"system_prompt": "You are the billing desk.",
                            "post_prompt": "Summarise the billing talk.",
                            "steps": [{"name": "bill", "text": "Explain the bill.", "end": true}]}}},
            "post_prompt": {"text": "Summarise the call."},
            "post_prompt_url": "https://hooks.test/post"
        }}
    ]}}));
    sim.http
        .insert("https://hooks.test/post".into(), json_ok(json!({})));
    sim.model_replies.push_back(says("Hello, how can I help?"));
    sim.prompt_results.push_back(speech("my bill is wrong"));
    sim.model_replies.push_back(tool_call(
        "1",
        "change_context",
        r#"{"context": "billing"}"#,
    ));
    sim.model_replies
        .push_back(says("The caller says their bill is wrong."));
    sim.model_replies
        .push_back(says("Let me explain the bill."));
    sim.model_replies.push_back(says("Explained a wrong bill."));
    let sim = sim.go();

    let m = &sim.model_requests;
    assert_eq!(m.len(), 5, "{:#?}", sim.trace);
    // `initial_step` and the context's own `prompt`; `valid_steps` from the context.
    let system = m[0].messages[0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("Base prompt.\n\nFront desk.")
            && system.contains("## Current step: ask"),
        "{system}"
    );
    assert_eq!(tool_names(&m[0]), ["next_step", "change_context"]);
    assert_eq!(
        m[0].tools[0]["function"]["parameters"]["properties"]["step"]["enum"],
        json!(["bye"])
    );
    // The consolidation: the whole conversation, the model's switch and its result, then the
    // request for a summary; no tools.
    let ask = &m[2].messages;
    let roles: Vec<&str> = ask.iter().map(|x| x["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["system", "assistant", "user", "assistant", "tool", "system"]
    );
    assert!(ask[5]["content"]
        .as_str()
        .unwrap()
        .starts_with("Summarise the conversation"));
    assert!(m[2].tools.is_empty());
    // The billing desk sees its prompt, the summary and the step's user prompt, nothing else.
    let next = &m[3].messages;
    assert_eq!(next.len(), 3, "{next:#?}");
    let system = next[0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("You are the billing desk.") && system.contains("## Current step: bill"),
        "{system}"
    );
    assert_eq!(
        next[1],
        json!({"role": "system", "content":
            "Summary of the conversation so far: The caller says their bill is wrong."})
    );
    assert_eq!(
        next[2],
        json!({"role": "user", "content": "I have a billing question."})
    );
    // The context's post_prompt stands in for the agent's.
    assert_eq!(
        m[4].messages.last().unwrap()["content"],
        "Summarise the billing talk."
    );
    let report: Value = serde_json::from_str(sim.requests[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(report["post_prompt_data"]["raw"], "Explained a wrong bill.");
    assert_eq!(sim.says(), ["Let me explain the bill."]);
}

/// `context_switch` as the SDK writes it: a bare string is a new system prompt (the
/// conversation kept); `system_pom` with `full_reset` starts the conversation over with the
/// rendered prompt and the `user_prompt`. A model that cannot summarise leaves the
/// conversation whole.
#[test]
fn ai_context_switch_string_pom_full_reset_and_a_failed_consolidation() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "First prompt"},
                "SWAIG": {"defaults": {"web_hook_url": "https://hooks.test/swaig"},
                          "functions": [{"function": "switch", "description": "switch"}]}}}
    ]}}));
    sim.http_queue.insert(
        "https://hooks.test/swaig".into(),
        VecDeque::from([
            json_ok(json!({"response": "ok", "action": [{"context_switch": "Second prompt"}]})),
            json_ok(json!({"response": "ok", "action": [{"context_switch": {
                "system_pom": [{"title": "Role", "body": "Third prompt."}],
                "user_prompt": "start again", "full_reset": true}}]})),
            json_ok(
                json!({"response": "ok", "action": [{"context_switch": {"consolidate": true}}]}),
            ),
        ]),
    );
    sim.prompt_results.push_back(speech("switch please"));
    sim.model_replies.push_back(tool_call("1", "switch", "{}"));
    sim.model_replies.push_back(tool_call("2", "switch", "{}"));
    sim.model_replies.push_back(tool_call("3", "switch", "{}"));
    sim.model_replies.push_back(Err("the model is down".into()));
    sim.model_replies.push_back(says("Done."));
    sim.model_replies.push_back(says("Bye."));
    let sim = sim.go();
    let m = &sim.model_requests;
    assert_eq!(m.len(), 6, "{:#?}", sim.trace);
    // The string: a new prompt, the conversation kept.
    assert_eq!(m[1].messages[0]["content"], "Second prompt");
    assert_eq!(m[1].messages.len(), 3, "{:#?}", m[1].messages);
    // system_pom + full_reset: the rendered prompt and the user prompt only.
    assert_eq!(
        m[2].messages,
        [
            json!({"role": "system", "content": "## Role\n\nThird prompt."}),
            json!({"role": "user", "content": "start again"})
        ]
    );
    // The summary failed: the conversation goes on whole, with a warning.
    assert_eq!(m[3].messages.len(), 5, "{:#?}", m[3].messages);
    assert_eq!(m[4].messages.len(), 4, "{:#?}", m[4].messages);
    assert!(
        sim.trace
            .iter()
            .any(|t| t == "warning relay_script_method_execute_failed (ai)"),
        "{:#?}",
        sim.trace
    );
}

/// The prompt is a template of the prompt variables: a `set_global_data` shows in the next
/// turn's system message; a `data_map` output reads them at its root and under `prompt_vars`.
#[test]
fn ai_prompt_variables_follow_global_data() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Talking to ${name} on a ${call_direction} call."},
                "global_data": {"name": "a stranger"},
                "SWAIG": {"defaults": {"web_hook_url": "https://hooks.test/swaig"},
                          "functions": [
                    {"function": "login", "description": "log in"},
                    {"function": "whoami", "description": "who am I", "data_map": {"output": {
                        "response": "You are ${name} calling from ${prompt_vars.caller_id_number}."}}}]}}}
    ]}}));
    sim.http.insert(
        "https://hooks.test/swaig".into(),
        json_ok(json!({"response": "ok", "action": [{"set_global_data": {"name": "Ann"}}]})),
    );
    sim.model_replies.push_back(tool_call("1", "login", "{}"));
    sim.model_replies.push_back(tool_call("2", "whoami", "{}"));
    sim.model_replies.push_back(says("Done."));
    let sim = sim.go();
    let m = &sim.model_requests;
    assert_eq!(
        m[0].messages[0]["content"],
        "Talking to a stranger on a inbound call."
    );
    assert_eq!(
        m[1].messages[0]["content"],
        "Talking to Ann on a inbound call."
    );
    assert_eq!(
        m[2].messages.last().unwrap()["content"],
        "You are Ann calling from +14155550123."
    );
}

/// A step's `gather_info` (the SDK's gather mode): its questions asked one at a time in the
/// system message with only `gather_submit` offered; an accepted answer leaves no trace in the
/// conversation and lands in `global_data.<output_key>`; a question to confirm refuses an
/// unconfirmed answer; the last answer takes the step to its `completion_action`, whose text
/// reads the answers.
#[test]
fn ai_gather_info_asks_one_question_at_a_time() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {
            "prompt": {"text": "Travel desk.", "contexts": {"default": {"steps": [
                {"name": "intake", "text": "Help with the trip.", "gather_info": {
                    "output_key": "profile", "prompt": "Introduce yourself.", "completion_action": "plan",
                    "questions": [
                        {"key": "name", "question": "What is your name?"},
                        {"key": "nights", "question": "How many nights?", "type": "integer", "confirm": true}]}},
                {"name": "skipped", "text": "Never entered."},
                {"name": "plan", "text": "Plan ${profile.nights} nights for ${profile.name}.", "end": true}]}}},
            "SWAIG": {"native_functions": ["check_time"],
                      "functions": [{"function": "book", "description": "book", "web_hook_url": "https://hooks.test/book"}]}
        }}
    ]}}));
    sim.model_replies.push_back(says("Hi, what is your name?"));
    sim.prompt_results.push_back(speech("ann"));
    sim.model_replies
        .push_back(tool_call("1", "gather_submit", r#"{"answer": "Ann"}"#));
    sim.model_replies
        .push_back(tool_call("2", "gather_submit", r#"{"answer": "3"}"#));
    sim.model_replies
        .push_back(says("Three nights, is that right?"));
    sim.prompt_results.push_back(speech("yes"));
    sim.model_replies.push_back(tool_call(
        "3",
        "gather_submit",
        r#"{"answer": 3, "confirmed_by_user": "true"}"#,
    ));
    sim.model_replies.push_back(says("Planned."));
    let sim = sim.go();
    let m = &sim.model_requests;
    assert_eq!(m.len(), 6, "{:#?}", sim.trace);
    let system = |i: usize| m[i].messages[0]["content"].as_str().unwrap().to_string();
    // The first question, with the preamble; gather_submit alone (no natives, no functions).
    assert!(
        system(0).contains("Introduce yourself.\n\nAsk the user: \"What is your name?\""),
        "{}",
        system(0)
    );
    assert!(!system(0).contains("Help with the trip."));
    assert_eq!(tool_names(&m[0]), ["gather_submit"]);
    // The answer left no trace: the next question is asked over the plain conversation.
    assert!(system(2).contains("How many nights?") && system(2).contains("MUST confirm"));
    let roles: Vec<&str> = m[2]
        .messages
        .iter()
        .map(|x| x["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "assistant", "user"]);
    assert_eq!(
        m[2].tools[0]["function"]["parameters"]["required"],
        json!(["answer", "confirmed_by_user"])
    );
    // The unconfirmed answer was refused to the model.
    let refused = m[3].messages.last().unwrap();
    assert_eq!(refused["role"], "tool");
    assert!(refused["content"]
        .as_str()
        .unwrap()
        .contains("confirmation"));
    // The last answer: the step `plan`, its text reading global_data.profile; the tools back.
    assert!(system(5).contains("## Current step: plan"), "{}", system(5));
    assert!(
        system(5).contains("Plan 3 nights for Ann."),
        "{}",
        system(5)
    );
    assert_eq!(tool_names(&m[5]), ["book", "check_time"]);
    assert!(m[5].messages.iter().all(|x| x["tool_calls"]
        .as_array()
        .is_none_or(|c| c.iter().all(|t| t["id"] != "1" && t["id"] != "3"))));
    assert_eq!(sim.says().last().map(String::as_str), Some("Planned."));
}

/// An MCP server with `resources: true`: its resources are listed and read before the first
/// turn (a URI template filled from `resource_vars`, expanded with the prompt variables); a
/// JSON object's keys join `global_data`, other text goes under the resource's name; one that
/// cannot be read is passed over. The prompt reads them.
#[test]
fn ai_mcp_resources_fill_global_data() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Customer ${customer_name} (${global_data.caller}); notes: ${notes}; ${missing}."},
                "SWAIG": {"mcp_servers": [{"url": "http://crm.test/mcp", "resources": true,
                                           "resource_vars": {"caller_id": "${caller_id_number}"}}]}}}
    ]}}));
    let ok = |body: &str| {
        Ok(HttpResponse {
            code: 200,
            headers: vec![],
            body: body.into(),
        })
    };
    sim.http_queue.insert(
        "http://crm.test/mcp".into(),
        VecDeque::from([
            ok(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}"#),
            Ok(HttpResponse { code: 202, headers: vec![], body: String::new() }),
            ok(r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}"#),
            ok(r#"{"jsonrpc":"2.0","id":3,"result":{"resources":[
                {"uri":"crm://notes","name":"notes"},{"uri":"crm://gone","name":"gone"}]}}"#),
            ok(r#"{"jsonrpc":"2.0","id":4,"result":{"resourceTemplates":[
                {"uriTemplate":"crm://customer/{caller_id}","name":"customer"},
                {"uriTemplate":"crm://order/{order_id}","name":"order"}]}}"#),
            ok(r#"{"jsonrpc":"2.0","id":5,"result":{"contents":[{"uri":"crm://notes","text":"prefers mornings"}]}}"#),
            ok(r#"{"jsonrpc":"2.0","id":6,"error":{"code":-32002,"message":"Resource not found"}}"#),
            ok(r#"{"jsonrpc":"2.0","id":7,"result":{"contents":[{"uri":"crm://customer/+14155550123",
                "text":"{\"customer_name\":\"Ann\",\"caller\":\"+14155550123\"}"}]}}"#),
        ]),
    );
    sim.model_replies.push_back(says("Hello Ann."));
    let sim = sim.go();
    let bodies: Vec<Value> = sim
        .requests
        .iter()
        .filter(|r| r.url == "http://crm.test/mcp")
        .map(|r| serde_json::from_str(r.body.as_deref().unwrap()).unwrap())
        .collect();
    let methods: Vec<&str> = bodies
        .iter()
        .map(|b| b["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "resources/list",
            "resources/templates/list",
            "resources/read",
            "resources/read",
            "resources/read"
        ]
    );
    // The template without a value for its variable was not read.
    assert_eq!(bodies[7]["params"]["uri"], "crm://customer/+14155550123");
    assert_eq!(
        sim.model_requests[0].messages[0]["content"],
        "Customer Ann (+14155550123); notes: prefers mornings; ."
    );
    assert!(sim
        .trace
        .iter()
        .any(|t| t == "warning relay_script_method_execute_failed (ai)"));
}

/// An agent with two `languages`: the model is told which it speaks and offered
/// `change_language`; a switch changes the voice and speech language of what it says next (and
/// the system message), and the speech fillers are the new language's.
#[test]
fn ai_languages_switch_when_the_model_asks() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Help."},
                "languages": [
                    {"name": "English", "code": "en-US", "voice": "kal"},
                    {"name": "Spanish", "code": "es-ES", "voice": "espeak:es"}]}}
    ]}}));
    sim.model_replies.push_back(says("Hello."));
    sim.prompt_results.push_back(speech("speak spanish please"));
    sim.model_replies.push_back(tool_call(
        "1",
        "change_language",
        r#"{"language": "Spanish"}"#,
    ));
    sim.model_replies.push_back(says("Hola."));
    let sim = sim.go();
    let m = &sim.model_requests;
    let system = |i: usize| m[i].messages[0]["content"].as_str().unwrap().to_string();
    assert!(
        system(0).contains("You are speaking English") && system(0).contains("also speak Spanish"),
        "{}",
        system(0)
    );
    assert!(tool_names(&m[0]).contains(&"change_language".to_string()));
    assert_eq!(
        m[2].messages.last().unwrap()["content"],
        "Now speaking Spanish: answer in Spanish."
    );
    assert!(
        system(2).contains("You are speaking Spanish"),
        "{}",
        system(2)
    );
    let said: Vec<&String> = sim
        .trace
        .iter()
        .filter(|t| t.contains("say[") || t.contains("say:"))
        .collect();
    assert!(
        said.iter().any(|t| t.contains("say[kal/en-US]:Hello.")),
        "{said:#?}"
    );
    assert!(
        said.iter()
            .any(|t| t.contains("say[espeak:es/es-ES]:Hola.")),
        "{said:#?}"
    );
}

/// `params.attention_timeout`: after that much silence the model is given the attention prompt
/// and what it says is the next turn's words; the inactivity timeout still counts from the
/// caller's last words (the agent's attempts do not reset it) and ends the session.
#[test]
fn ai_attention_timeout_prompts_the_model_and_inactivity_still_ends() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Help."},
                "params": {"attention_timeout": 10000, "inactivity_timeout": 25000,
                           "attention_timeout_prompt": "Ask if they are still there."}}}
    ]}}));
    sim.tick_ms = 2000;
    sim.model_replies.push_back(says("Hello."));
    sim.model_replies.push_back(says("Are you still there?"));
    sim.model_replies.push_back(says("Hello?"));
    sim.model_replies.push_back(says("Goodbye."));
    let sim = sim.go();
    let m = &sim.model_requests;
    let attention: Vec<usize> = m
        .iter()
        .enumerate()
        .filter(|(_, r)| r.messages.last().unwrap()["content"] == "Ask if they are still there.")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(attention, [1, 2], "{:#?}", sim.trace);
    let listens: Vec<f64> = sim
        .controls
        .iter()
        .filter(|(name, _)| name == "prompt")
        .map(|(_, p)| p["initial_timeout"].as_f64().unwrap())
        .collect();
    // Each listen waits at most what is left of the attention timeout.
    assert!(listens.iter().all(|t| *t <= 10.0), "{listens:?}");
    assert_eq!(sim.var("ai_result"), json!("success"), "{:#?}", sim.trace);
    assert!(
        sim.trace
            .iter()
            .any(|t| t.contains("say:Are you still there?")),
        "{:#?}",
        sim.trace
    );
}

/// The rest of the SWAIG actions and the `params` that shape what the model and the webhooks
/// get: `add_dynamic_hints` / `clear_dynamic_hints` (the listens' hints), `end_of_speech_timeout`,
/// `settings`, `replace_in_history`, `user_event`, `wait_for_user`; `swaig_set_global_data:
/// false`, `swaig_post_conversation`, `swaig_post_swml_vars`, `ai_volume`,
/// `conversation_sliding_window`, `max_response_tokens`.
#[test]
fn ai_more_actions_and_params() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"set": {"plan": "gold", "other": "x"}},
        {"ai": {"prompt": {"text": "Help."}, "hints": ["doc hint"],
                "params": {"ai_volume": 6, "conversation_sliding_window": 4, "max_response_tokens": 50,
                           "conscience": "Stay on topic.", "app_name": "desk",
                           "convo": [{"role": "user", "content": "earlier words"}, {"role": "bogus", "content": "x"}],
                           "swaig_set_global_data": false, "swaig_post_conversation": true,
                           "swaig_post_swml_vars": ["plan"]},
                "SWAIG": {"functions": [{"function": "tune", "description": "tune",
                                         "web_hook_url": "https://hooks.test/tune"}]}}}
    ]}}));
    sim.http_queue.insert(
        "https://hooks.test/tune".into(),
        VecDeque::from([
            json_ok(json!({"response": "secret details", "action": [
                {"add_dynamic_hints": ["alpha", {"hint": "beta", "pattern": "b", "replace": "B"}]},
                {"end_of_speech_timeout": 1500},
                {"settings": {"temperature": 0.2, "max_tokens": 99}},
                {"replace_in_history": "done"},
                {"user_event": {"k": "v"}},
                {"set_global_data": {"x": 1}}]})),
            json_ok(json!({"response": "ok", "action": [
                {"clear_dynamic_hints": {}}, {"wait_for_user": true}]})),
        ]),
    );
    sim.model_replies.push_back(says("Hi."));
    sim.prompt_results.push_back(speech("tune it"));
    sim.model_replies.push_back(tool_call("1", "tune", "{}"));
    sim.model_replies.push_back(says("Tuned."));
    sim.prompt_results.push_back(speech("again"));
    sim.model_replies.push_back(tool_call("2", "tune", "{}"));
    let sim = sim.go();
    let m = &sim.model_requests;
    assert_eq!(
        m.len(),
        4,
        "wait_for_user: no model turn after the second call"
    );
    assert_eq!(m[0].max_tokens, Some(50));
    assert_eq!((m[2].temperature, m[2].max_tokens), (Some(0.2), Some(99)));
    // The model sees the replaced result, and at most 4 messages after the system message (and
    // the conscience after a function's result).
    let result = m[2].messages.iter().find(|x| x["tool_call_id"] == "1");
    assert_eq!(result.map(|r| &r["content"]), Some(&json!("done")));
    assert!(m.iter().all(|r| r.messages.len() <= 6), "{m:#?}");
    assert_eq!(m[3].messages.len(), 5, "{:#?}", m[3].messages);
    // `convo` seeded the conversation; `conscience` follows the functions' results only.
    assert_eq!(
        m[0].messages[1],
        json!({"role": "user", "content": "earlier words"})
    );
    assert_eq!(m[0].messages.len(), 2);
    assert_eq!(
        m[2].messages.last().unwrap(),
        &json!({"role": "system", "content": "Stay on topic."})
    );
    assert!(m[1]
        .messages
        .iter()
        .all(|x| x["content"] != "Stay on topic."));
    // The listens: the dynamic hints and the end-of-speech timeout, then the hints cleared.
    let listens: Vec<&Value> = sim
        .controls
        .iter()
        .filter(|(n, _)| n == "prompt")
        .map(|(_, p)| &p["speech"])
        .collect();
    assert_eq!(listens[0]["hints"], json!(["doc hint"]));
    assert_eq!(listens[1]["hints"], json!(["doc hint", "alpha", "beta"]));
    assert_eq!(listens[1]["end_silence_timeout"], json!(1.5));
    assert_eq!(listens[2]["hints"], json!(["doc hint"]));
    assert!(sim.trace.iter().any(|t| t == r#"user_event {"k":"v"}"#));
    // The agent's words at ai_volume.
    assert!(
        sim.trace
            .iter()
            .any(|t| t.starts_with("prompt say:Hi. @6dB collect")),
        "{:#?}",
        sim.trace
    );
    // The webhooks: the conversation and the named variable; global_data left as it was.
    let bodies: Vec<Value> = sim
        .requests
        .iter()
        .map(|r| serde_json::from_str(r.body.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(bodies[0]["SWMLVars"], json!({"plan": "gold"}));
    assert_eq!(bodies[0]["app_name"], "desk");
    assert_eq!(
        bodies[0]["call_log"][1],
        json!({"role": "assistant", "content": "Hi."})
    );
    assert_eq!(bodies[1]["global_data"], json!({}));
}

/// `initial_sleep_ms` waits before the greeting; `enable_pause` offers `pause_conversation`:
/// once the model pauses, the caller's words are not answered until they say the agent's name
/// (`ai_name` after `wake_prefix`); `digit_terminators` lets keypresses in as the caller's words.
#[test]
fn ai_pause_wake_name_digits_and_initial_sleep() {
    let mut sim = Sim::new(json!({"sections": {"main": [
        {"ai": {"prompt": {"text": "Help."},
                "params": {"initial_sleep_ms": 1500, "static_greeting": "Hi.", "enable_pause": true,
                           "ai_name": "Max", "wake_prefix": "hey", "digit_terminators": "#"}}}
    ]}}));
    sim.prompt_results.push_back(speech("hold on please"));
    sim.model_replies
        .push_back(tool_call("1", "pause_conversation", "{}"));
    sim.prompt_results
        .push_back(speech("talking to someone else"));
    sim.prompt_results.push_back(speech("hey max i am back"));
    sim.model_replies
        .push_back(says("Welcome back. Your account number?"));
    // The terminator alone is nothing said: the agent listens on.
    sim.prompt_results.push_back(CollectResult::Digit {
        digits: String::new(),
        terminator: "#".into(),
    });
    sim.prompt_results.push_back(CollectResult::Digit {
        digits: "4321".into(),
        terminator: "#".into(),
    });
    sim.model_replies.push_back(says("Thanks."));
    let sim = sim.go();
    assert_eq!(sim.trace[0], "play silence:1.5", "{:#?}", sim.trace);
    let m = &sim.model_requests;
    assert_eq!(m.len(), 3, "{:#?}", sim.trace);
    assert!(tool_names(&m[0]).contains(&"pause_conversation".to_string()));
    // Paused: the words not said to Max were not answered (nor kept); the wake words are, and
    // the pause is offered again.
    assert!(tool_names(&m[1]).contains(&"pause_conversation".to_string()));
    let users: Vec<&Value> = m[1]
        .messages
        .iter()
        .filter(|x| x["role"] == "user")
        .map(|x| &x["content"])
        .collect();
    assert_eq!(
        users,
        [&json!("hold on please"), &json!("hey max i am back")]
    );
    assert_eq!(
        m[2].messages.last().unwrap(),
        &json!({"role": "user", "content": "4321"})
    );
    // The listens take keypresses up to `#`.
    let digits = sim
        .controls
        .iter()
        .find(|(n, _)| n == "prompt")
        .map(|(_, p)| p["digits"].clone());
    assert_eq!(
        digits,
        Some(json!({"max": 32, "terminators": "#", "digit_timeout": 3.0}))
    );
}

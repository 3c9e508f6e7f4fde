//! The session on virtual time: no clock, no sockets, no sleeping.

use serde_json::json;

use super::*;
use crate::command::{
    ControlIdParams, DetectParams, Detector, DigitDetectParams, DigitsParams, MachineParams,
    MediaItem, PauseBehavior, RecordAudio, RecordParams, RecordPauseParams, RecordSpec,
    SpeechParams,
};

const REST: Origin = Origin::Rest;
const SCRIPT: Origin = Origin::Script { wait_final: true };

fn drain(s: &mut CallSession) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

/// The audio of playback `id` is ready at `now`.
fn ready(s: &mut CallSession, now: u64, id: PlaybackId) {
    s.handle_event(now, SessionEvent::PlayReady { id, result: Ok(()) });
}

fn play(control_id: &str) -> PlayParams {
    let mut p = PlayParams::new(
        control_id.into(),
        vec![MediaItem::Silence { duration: 1.0 }],
    );
    p.status_url = Some("http://hooks.test/play".into());
    p
}

fn digits(control_id: &str, max: u32) -> CollectParams {
    let mut c = CollectParams::new(control_id.into());
    c.digits = Some(DigitsParams::new(max));
    c.start_input_timers = true;
    c.status_url = Some("http://hooks.test/collect".into());
    c
}

fn cid(id: &str) -> ControlIdParams {
    ControlIdParams {
        control_id: id.into(),
    }
}

fn code(e: ControlError) -> &'static str {
    match e {
        ControlError::Unprocessable { code, .. } | ControlError::InvalidState { code, .. } => code,
        other => panic!("unexpected {other:?}"),
    }
}

fn collect_results(actions: &[Action]) -> Vec<CollectResult> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(CallEvent::Collect { result, .. }) => Some(result.clone()),
            _ => None,
        })
        .collect()
}

fn play_states(actions: &[Action]) -> Vec<PlayState> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(CallEvent::Play { state, .. }) => Some(*state),
            _ => None,
        })
        .collect()
}

fn script_done(actions: &[Action]) -> Vec<(String, OpResult)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ScriptDone { control_id, result } => Some((control_id.clone(), result.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn play_is_prepared_queued_and_reported() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Play(play("p1")), SCRIPT)
        .unwrap();
    let a = drain(&mut s);
    let Some(Action::PreparePlay { id, .. }) = a.first() else {
        panic!("{a:?}")
    };
    let id = *id;
    s.handle_event(10, SessionEvent::PlayReady { id, result: Ok(()) });
    assert_eq!(
        drain(&mut s),
        [Action::QueuePlay {
            id,
            volume_db: 0.0,
            loops: 1
        }]
    );
    s.handle_event(20, SessionEvent::Player(PlayerEvent::Playing(id)));
    s.handle_event(1020, SessionEvent::Player(PlayerEvent::Finished(id)));
    let a = drain(&mut s);
    assert_eq!(play_states(&a), [PlayState::Playing, PlayState::Finished]);
    assert_eq!(script_done(&a), [("p1".into(), OpResult::Played(Ok(())))]);
    assert!(!s.is_active("p1"), "a finished playback leaves the table");
}

#[test]
fn stop_before_the_audio_is_ready_never_queues_it() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Play(play("p1")), REST)
        .unwrap();
    drain(&mut s);
    s.handle_command(5, CallCommand::PlayStop(cid("p1")), REST)
        .unwrap();
    assert!(
        drain(&mut s).is_empty(),
        "nothing on the player to stop yet"
    );
    ready(&mut s, 10, 1);
    let a = drain(&mut s);
    assert!(!a.iter().any(|a| matches!(a, Action::QueuePlay { .. })));
    assert_eq!(play_states(&a), [PlayState::Finished]);
    assert!(script_done(&a).is_empty(), "REST plays complete no script");
}

#[test]
fn audio_that_cannot_be_had_fails_the_playback() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Play(play("p1")), SCRIPT)
        .unwrap();
    drain(&mut s);
    s.handle_event(
        10,
        SessionEvent::PlayReady {
            id: 1,
            result: Err("404".into()),
        },
    );
    let a = drain(&mut s);
    assert_eq!(play_states(&a), [PlayState::Error]);
    assert_eq!(
        script_done(&a),
        [("p1".into(), OpResult::Played(Err("404".into())))]
    );
}

#[test]
fn play_controls_reach_the_player_once_it_plays() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Play(play("p1")), REST)
        .unwrap();
    ready(&mut s, 1, 1);
    drain(&mut s);
    s.handle_command(2, CallCommand::PlayPause(cid("p1")), REST)
        .unwrap();
    s.handle_command(
        3,
        CallCommand::PlayVolume(crate::command::PlayVolumeParams {
            control_id: "p1".into(),
            volume: -6.0,
        }),
        REST,
    )
    .unwrap();
    assert_eq!(
        drain(&mut s),
        [
            Action::PlayControl {
                id: 1,
                op: PlayerOp::Pause
            },
            Action::PlayControl {
                id: 1,
                op: PlayerOp::Volume(-6.0)
            }
        ]
    );
}

#[test]
fn one_table_for_every_kind_with_the_specs_errors() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Play(play("x")), REST)
        .unwrap();
    // The same control_id on another kind of operation is not unique either.
    let e = s
        .handle_command(0, CallCommand::Collect(digits("x", 1)), REST)
        .unwrap_err();
    assert_eq!(code(e), "value_not_unique");
    let e = s
        .handle_command(0, CallCommand::Play(play("x")), REST)
        .unwrap_err();
    assert_eq!(code(e), "value_not_unique");
    for command in [
        CallCommand::PlayStop(cid("nope")),
        CallCommand::CollectStop(cid("x")),
        CallCommand::RecordStop(cid("x")),
        CallCommand::DetectStop(cid("x")),
        CallCommand::CollectStartInputTimers(cid("nope")),
    ] {
        let e = s.handle_command(0, command, REST).unwrap_err();
        assert_eq!(code(e), "does_not_exist");
    }
}

#[test]
fn digits_end_at_max_at_a_terminator_and_at_the_digit_timeout() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Collect(digits("c1", 3)), REST)
        .unwrap();
    assert_eq!(drain(&mut s), [Action::InBandDigits(true)]);
    assert_eq!(s.poll_timeout(), Some(5_000), "initial timeout");
    s.handle_event(100, SessionEvent::Digit('1'));
    assert_eq!(s.poll_timeout(), Some(5_100), "inter-digit timeout");
    s.handle_event(200, SessionEvent::Digit('2'));
    s.handle_event(300, SessionEvent::Digit('3'));
    let a = drain(&mut s);
    assert_eq!(
        collect_results(&a),
        [CollectResult::Digit {
            digits: "123".into(),
            terminator: String::new()
        }]
    );
    assert!(a.contains(&Action::InBandDigits(false)));

    s.handle_command(1_000, CallCommand::Collect(digits("c2", 5)), REST)
        .unwrap();
    s.handle_event(1_100, SessionEvent::Digit('4'));
    s.handle_event(1_200, SessionEvent::Digit('#'));
    assert_eq!(
        collect_results(&drain(&mut s)),
        [CollectResult::Digit {
            digits: "4".into(),
            terminator: "#".into()
        }]
    );

    s.handle_command(2_000, CallCommand::Collect(digits("c3", 5)), REST)
        .unwrap();
    s.handle_event(2_100, SessionEvent::Digit('7'));
    s.handle_timeout(7_099);
    assert!(collect_results(&drain(&mut s)).is_empty(), "not due yet");
    s.handle_timeout(7_100);
    assert_eq!(
        collect_results(&drain(&mut s)),
        [CollectResult::Digit {
            digits: "7".into(),
            terminator: String::new()
        }]
    );
}

#[test]
fn no_input_only_once_the_input_timers_run() {
    let mut s = CallSession::new();
    let mut c = digits("c1", 1);
    c.start_input_timers = false;
    s.handle_command(0, CallCommand::Collect(c), SCRIPT)
        .unwrap();
    assert_eq!(s.poll_timeout(), None, "timers wait for start_input_timers");
    s.handle_command(
        60_000,
        CallCommand::CollectStartInputTimers(cid("c1")),
        REST,
    )
    .unwrap();
    assert_eq!(s.poll_timeout(), Some(65_000));
    s.handle_timeout(65_000);
    let a = drain(&mut s);
    assert_eq!(collect_results(&a), [CollectResult::NoInput]);
    assert_eq!(
        script_done(&a),
        [("c1".into(), OpResult::Collected(CollectResult::NoInput))]
    );
}

#[test]
fn continuous_collect_reports_each_round_and_finished_when_stopped() {
    let mut s = CallSession::new();
    let mut c = digits("c1", 1);
    c.continuous = true;
    s.handle_command(0, CallCommand::Collect(c), REST).unwrap();
    s.handle_event(10, SessionEvent::Digit('1'));
    s.handle_event(20, SessionEvent::Digit('2'));
    s.handle_timeout(5_020);
    let a = drain(&mut s);
    assert_eq!(
        collect_results(&a),
        [
            CollectResult::Digit {
                digits: "1".into(),
                terminator: String::new()
            },
            CollectResult::Digit {
                digits: "2".into(),
                terminator: String::new()
            },
            CollectResult::NoInput
        ]
    );
    assert!(a.iter().all(|a| !matches!(
        a,
        Action::Event(CallEvent::Collect { state, .. }) if *state != Some("collecting")
    )));
    s.handle_command(6_000, CallCommand::CollectStop(cid("c1")), REST)
        .unwrap();
    let a = drain(&mut s);
    assert!(a.iter().any(|a| matches!(
        a,
        Action::Event(CallEvent::Collect {
            result: CollectResult::Finished,
            state: Some("finished"),
            ..
        })
    )));
    assert!(!s.is_active("c1"));
}

#[test]
fn stopping_a_single_collect_reports_nothing() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Collect(digits("c1", 4)), SCRIPT)
        .unwrap();
    drain(&mut s);
    s.handle_command(10, CallCommand::CollectStop(cid("c1")), REST)
        .unwrap();
    let a = drain(&mut s);
    assert!(collect_results(&a).is_empty());
    assert!(script_done(&a).is_empty());
}

#[test]
fn speech_results_partials_and_low_confidence() {
    let mut s = CallSession::new();
    let mut c = CollectParams::new("s1".into());
    c.speech = Some(SpeechParams {
        hints: vec!["yes".into(), "no".into()],
        ..SpeechParams::new()
    });
    c.partial_results = true;
    c.send_start_of_input = true;
    c.start_input_timers = true;
    s.handle_command(0, CallCommand::Collect(c), REST).unwrap();
    let a = drain(&mut s);
    let Some(Action::SpeechListener {
        spec: Some(spec), ..
    }) = a.first()
    else {
        panic!("{a:?}")
    };
    assert_eq!(spec.hints, ["yes", "no"]);
    assert!(!spec.digits_allowed, "hints leave spoken digits out");
    s.handle_event(
        1_000,
        SessionEvent::Speech {
            control_id: "s1".into(),
            event: SpeechEvent::StartOfInput,
        },
    );
    assert_eq!(
        s.poll_timeout(),
        Some(1_000 + 60_000 + 1_000 + 5_000),
        "the utterance bounds the wait now"
    );
    s.handle_event(
        1_500,
        SessionEvent::Speech {
            control_id: "s1".into(),
            event: SpeechEvent::Partial { text: "ye".into() },
        },
    );
    s.handle_event(
        2_000,
        SessionEvent::Speech {
            control_id: "s1".into(),
            event: SpeechEvent::Result {
                text: "yes".into(),
                confidence: 0.9,
            },
        },
    );
    let a = drain(&mut s);
    assert_eq!(
        collect_results(&a),
        [
            CollectResult::StartOfInput,
            CollectResult::Speech {
                text: "ye".into(),
                confidence: 0.0
            },
            CollectResult::Speech {
                text: "yes".into(),
                confidence: 0.9
            }
        ]
    );
    assert!(a.contains(&Action::SpeechListener {
        control_id: "s1".into(),
        spec: None
    }));

    let mut c = CollectParams::new("s2".into());
    c.speech = Some(SpeechParams::new());
    s.handle_command(3_000, CallCommand::Collect(c), REST)
        .unwrap();
    s.handle_event(
        4_000,
        SessionEvent::Speech {
            control_id: "s2".into(),
            event: SpeechEvent::Result {
                text: "mumble".into(),
                confidence: 0.1,
            },
        },
    );
    assert_eq!(collect_results(&drain(&mut s)), [CollectResult::NoMatch]);
}

#[test]
fn prompt_timers_start_when_its_playback_ends() {
    let mut s = CallSession::new();
    let mut c = digits("c1", 2);
    c.start_input_timers = true; // the prompt holds them anyway
    s.start_prompt(0, play("pp"), c).unwrap();
    assert_eq!(s.poll_timeout(), None);
    ready(&mut s, 1, 1);
    s.handle_event(3_000, SessionEvent::Player(PlayerEvent::Finished(1)));
    assert_eq!(s.poll_timeout(), Some(8_000));
    let a = drain(&mut s);
    assert!(
        script_done(&a).is_empty(),
        "the script waits for the collect"
    );
    s.handle_timeout(8_000);
    assert_eq!(
        script_done(&drain(&mut s)),
        [("c1".into(), OpResult::Collected(CollectResult::NoInput))]
    );
}

#[test]
fn prompt_input_stops_its_playback() {
    let mut s = CallSession::new();
    s.start_prompt(0, play("pp"), digits("c1", 2)).unwrap();
    ready(&mut s, 1, 1);
    drain(&mut s);
    s.handle_event(500, SessionEvent::Digit('5'));
    let a = drain(&mut s);
    assert!(
        a.contains(&Action::PlayControl {
            id: 1,
            op: PlayerOp::Stop
        }),
        "barge-in: {a:?}"
    );
    s.handle_event(520, SessionEvent::Player(PlayerEvent::Stopped(1)));
    s.handle_event(600, SessionEvent::Digit('6'));
    assert_eq!(
        script_done(&drain(&mut s)),
        [(
            "c1".into(),
            OpResult::Collected(CollectResult::Digit {
                digits: "56".into(),
                terminator: String::new()
            })
        )]
    );
}

/// `listen_after`: a collect joins a playback the runtime started itself — input stops it
/// and its end starts the timers; once it has ended, the timers start at once.
#[test]
fn listening_after_a_running_playback_makes_it_the_prompts() {
    let mut s = CallSession::new();
    let script = Origin::Script { wait_final: false };
    s.handle_command(0, CallCommand::Play(play("spoken")), script)
        .unwrap();
    ready(&mut s, 1, 1);
    drain(&mut s);
    s.listen_after(100, "spoken", digits("c1", 2)).unwrap();
    assert_eq!(s.poll_timeout(), None, "the timers wait for the playback");
    s.handle_event(500, SessionEvent::Digit('5'));
    assert!(drain(&mut s).contains(&Action::PlayControl {
        id: 1,
        op: PlayerOp::Stop
    }));

    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Play(play("spoken")), script)
        .unwrap();
    ready(&mut s, 1, 1);
    s.handle_event(2_000, SessionEvent::Player(PlayerEvent::Finished(1)));
    drain(&mut s);
    s.listen_after(2_100, "spoken", digits("c1", 2)).unwrap();
    assert_eq!(
        s.poll_timeout(),
        Some(7_100),
        "ended already: the timers run"
    );
    s.handle_timeout(7_100);
    assert_eq!(
        script_done(&drain(&mut s)),
        [("c1".into(), OpResult::Collected(CollectResult::NoInput))]
    );
}

fn record(control_id: &str) -> RecordParams {
    RecordParams {
        control_id: control_id.into(),
        record: RecordSpec {
            audio: RecordAudio::default(),
        },
        status_url: Some("http://hooks.test/rec".into()),
    }
}

#[test]
fn recordings_pause_resume_stop_on_a_terminator_and_complete_the_script() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Record(record("r1")), SCRIPT)
        .unwrap();
    let a = drain(&mut s);
    assert_eq!(a[0], Action::RecorderTap(true));
    assert!(matches!(a[1], Action::StartRecording { .. }));
    s.handle_command(
        10,
        CallCommand::RecordPause(RecordPauseParams {
            control_id: "r1".into(),
            behavior: PauseBehavior::Silence,
        }),
        REST,
    )
    .unwrap();
    s.handle_command(20, CallCommand::RecordResume(cid("r1")), REST)
        .unwrap();
    let a = drain(&mut s);
    let states: Vec<RecordState> = a
        .iter()
        .filter_map(|a| match a {
            Action::Event(CallEvent::Record { state, .. }) => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            RecordState::Paused(PauseBehavior::Silence),
            RecordState::Recording
        ]
    );
    s.handle_event(30, SessionEvent::Digit('#'));
    assert!(drain(&mut s).contains(&Action::RecorderControl {
        control_id: "r1".into(),
        op: RecorderOp::Stop
    }));
    s.handle_event(
        40,
        SessionEvent::RecordingDone {
            control_id: "r1".into(),
            result: RecordingResult {
                state: "finished".into(),
                ..Default::default()
            },
        },
    );
    let a = drain(&mut s);
    assert_eq!(a[0], Action::RecorderTap(false));
    assert_eq!(
        script_done(&a),
        [(
            "r1".into(),
            OpResult::Recorded(RecordingResult {
                state: "finished".into(),
                ..Default::default()
            })
        )]
    );
}

fn machine_detect(control_id: &str, message_end: bool) -> DetectParams {
    DetectParams {
        control_id: control_id.into(),
        detect: Detector::Machine(MachineParams {
            detect_message_end: message_end,
            ..MachineParams::default()
        }),
        timeout: 30.0,
        status_url: None,
    }
}

fn detected(s: &mut CallSession, id: &str, event: &str) {
    s.handle_event(
        0,
        SessionEvent::Detector {
            control_id: id.into(),
            event: DetectorEvent::Detected(DetectOutcome::new(DetectKind::Machine, event)),
        },
    );
}

#[test]
fn a_waiting_machine_detect_ends_at_ready_when_it_waits_for_the_message_end() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Detect(machine_detect("d1", true)), SCRIPT)
        .unwrap();
    drain(&mut s);
    detected(&mut s, "d1", "MACHINE");
    detected(&mut s, "d1", "NOT_READY");
    assert!(script_done(&drain(&mut s)).is_empty());
    detected(&mut s, "d1", "READY");
    let a = drain(&mut s);
    assert_eq!(
        script_done(&a).len(),
        1,
        "completed once, not again by finished"
    );
    assert!(a.contains(&Action::DetectListener {
        control_id: "d1".into(),
        spec: None
    }));
    assert!(!s.is_active("d1"));

    s.handle_command(0, CallCommand::Detect(machine_detect("d2", false)), SCRIPT)
        .unwrap();
    detected(&mut s, "d2", "MACHINE");
    let done = script_done(&drain(&mut s));
    assert_eq!(done.len(), 1);
    assert!(matches!(&done[0].1, OpResult::Detected(o) if o.event == "MACHINE"));
}

#[test]
fn digit_detects_turn_in_band_detection_on_and_report_matching_keys() {
    let mut s = CallSession::new();
    let p = DetectParams {
        control_id: "dd".into(),
        detect: Detector::Digit(DigitDetectParams {
            digits: "12".into(),
        }),
        timeout: 0.0,
        status_url: Some("http://hooks.test/d".into()),
    };
    s.handle_command(0, CallCommand::Detect(p), REST).unwrap();
    let a = drain(&mut s);
    assert!(matches!(
        &a[0],
        Action::DetectListener {
            spec: Some(DetectSpec {
                timeout_ms: None,
                ..
            }),
            ..
        }
    ));
    assert_eq!(a[1], Action::InBandDigits(true));
    s.handle_event(10, SessionEvent::Digit('3'));
    s.handle_event(20, SessionEvent::Digit('2'));
    let events: Vec<String> = drain(&mut s)
        .into_iter()
        .filter_map(|a| match a {
            Action::Event(CallEvent::Detect { outcome, .. }) => Some(outcome.event),
            _ => None,
        })
        .collect();
    assert_eq!(events, ["2"]);
    s.handle_command(30, CallCommand::DetectStop(cid("dd")), REST)
        .unwrap();
    let a = drain(&mut s);
    assert!(a.contains(&Action::InBandDigits(false)));
}

#[test]
fn the_call_ending_mid_operation_finishes_plays_and_stops_recordings_silently() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Play(play("p1")), SCRIPT)
        .unwrap();
    s.handle_command(0, CallCommand::Record(record("r1")), REST)
        .unwrap();
    s.handle_command(0, CallCommand::Collect(digits("c1", 2)), SCRIPT)
        .unwrap();
    drain(&mut s);
    s.call_ended();
    let a = drain(&mut s);
    assert_eq!(play_states(&a), [PlayState::Finished]);
    assert!(a.contains(&Action::RecorderControl {
        control_id: "r1".into(),
        op: RecorderOp::Stop
    }));
    assert!(
        script_done(&a).is_empty(),
        "no script runs on an ended call"
    );
    assert_eq!(s.poll_timeout(), None);
    let e = s
        .handle_command(1, CallCommand::Play(play("p2")), REST)
        .unwrap_err();
    assert_eq!(code(e), "invalid_state");
}

#[test]
fn denoise_is_an_action_and_transfer_is_not_the_sessions() {
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Denoise(Default::default()), REST)
        .unwrap();
    s.handle_command(0, CallCommand::DenoiseStop(Default::default()), REST)
        .unwrap();
    assert_eq!(
        drain(&mut s),
        [Action::Denoise(true), Action::Denoise(false)]
    );
    let transfer = CallCommand::from_json("calling.transfer", json!({"dest": "sip:a@b"})).unwrap();
    assert!(matches!(
        s.handle_command(0, transfer, REST),
        Err(ControlError::Internal(_))
    ));
}

#[test]
fn a_transfer_rings_until_the_far_leg_answers_and_either_end_hangs_up_the_other() {
    let far = uuid::Uuid::new_v4();
    let mut s = CallSession::new();
    s.handle_command(0, CallCommand::Play(play("flow")), SCRIPT)
        .unwrap();
    ready(&mut s, 1, 1);
    drain(&mut s);
    s.check_transfer().unwrap();
    s.transferred(far, true);
    let a = drain(&mut s);
    assert!(
        a.contains(&Action::PlayControl {
            id: 1,
            op: PlayerOp::Stop
        }),
        "the flow's playback stops: {a:?}"
    );
    assert!(matches!(
        a.last(),
        Some(Action::PreparePlay { params, .. }) if params.control_id == format!("ringback-{far}")
    ));
    assert!(s.check_transfer().is_err(), "one bridge at a time");
    ready(&mut s, 2, 2);
    drain(&mut s);
    s.handle_event(
        3,
        SessionEvent::PeerAnswered {
            call_id: uuid::Uuid::new_v4(),
        },
    );
    assert!(
        drain(&mut s).is_empty(),
        "another call's answer changes nothing"
    );
    s.handle_event(4, SessionEvent::PeerAnswered { call_id: far });
    assert_eq!(
        drain(&mut s),
        [
            Action::PlayControl {
                id: 2,
                op: PlayerOp::Stop
            },
            Action::BridgeMedia { peer: far }
        ]
    );
    s.handle_event(5, SessionEvent::PeerEnded { call_id: far });
    assert_eq!(drain(&mut s), [Action::HangUp]);
    s.call_ended();
    assert!(
        !drain(&mut s)
            .iter()
            .any(|a| matches!(a, Action::PeerEnded { .. })),
        "the far leg already knows"
    );
}

#[test]
fn a_far_leg_tells_its_parent_when_it_ends() {
    let parent = uuid::Uuid::new_v4();
    let mut s = CallSession::new();
    s.far_leg_of(parent);
    assert_eq!(s.bridge_parent(), Some(parent));
    s.call_ended();
    assert_eq!(
        drain(&mut s),
        [Action::Unbridge, Action::PeerEnded { peer: parent }]
    );
}

fn tap(control_id: &str) -> CallCommand {
    CallCommand::from_json(
        "calling.tap",
        json!({"control_id": control_id, "tap": {"type": "audio", "params": {"direction": "both"}},
               "device": {"type": "rtp", "params": {"addr": "203.0.113.1", "port": 4000}},
               "status_url": "http://hooks.test/tap"}),
    )
    .unwrap()
}

fn stream(control_id: &str, codec: Option<&str>) -> CallCommand {
    let mut p = json!({"control_id": control_id, "url": "wss://bot.test/media"});
    if let Some(c) = codec {
        p["codec"] = json!(c);
    }
    CallCommand::from_json("calling.stream", p).unwrap()
}

fn fork_states(actions: &[Action]) -> Vec<ForkState> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(CallEvent::Fork { state, .. }) => Some(state.clone()),
            _ => None,
        })
        .collect()
}

/// A tap starts its fork, reports `tapping` once it runs (a waiting script is done then) and
/// `finished` with a stop that takes it down; a second stop is `does_not_exist`.
#[test]
fn a_tap_runs_then_stops() {
    let mut s = CallSession::new();
    s.handle_command(0, tap("t"), SCRIPT).unwrap();
    let a = drain(&mut s);
    assert!(
        matches!(a.as_slice(), [Action::StartFork { control_id, spec: ForkSpec::Tap(_) }] if control_id == "t")
    );
    let info = ForkInfo {
        codec: "PCMU".into(),
        rate: 8000,
        ptime: 20,
        source: None,
    };
    s.handle_event(
        1,
        SessionEvent::ForkStarted {
            control_id: "t".into(),
            info: info.clone(),
        },
    );
    let a = drain(&mut s);
    assert_eq!(fork_states(&a), vec![ForkState::Started]);
    assert_eq!(
        script_done(&a),
        vec![("t".to_string(), OpResult::Forked(Ok(info)))]
    );
    // A stream cannot stop a tap.
    assert_eq!(
        code(
            s.handle_command(2, CallCommand::StreamStop(cid("t")), REST)
                .unwrap_err()
        ),
        "does_not_exist"
    );
    s.handle_command(2, CallCommand::TapStop(cid("t")), REST)
        .unwrap();
    let a = drain(&mut s);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::StopFork { control_id } if control_id == "t")));
    assert_eq!(
        fork_states(&a),
        vec![ForkState::Finished {
            reason: Some("stopped".into())
        }]
    );
    assert!(
        script_done(&a).is_empty(),
        "the script was done at the start"
    );
    assert_eq!(
        code(
            s.handle_command(3, CallCommand::TapStop(cid("t")), REST)
                .unwrap_err()
        ),
        "does_not_exist"
    );
    // The fork's task reporting its end afterwards changes nothing.
    s.handle_event(
        4,
        SessionEvent::ForkEnded {
            control_id: "t".into(),
            reason: "stopped".into(),
        },
    );
    assert!(drain(&mut s).is_empty());
}

/// A fork that cannot start fails a waiting script with why, and still reports `finished`.
#[test]
fn a_stream_that_cannot_connect_fails_its_script() {
    let mut s = CallSession::new();
    s.handle_command(0, stream("s", None), SCRIPT).unwrap();
    drain(&mut s);
    s.handle_event(
        1,
        SessionEvent::ForkEnded {
            control_id: "s".into(),
            reason: "refused".into(),
        },
    );
    let a = drain(&mut s);
    assert_eq!(
        script_done(&a),
        vec![("s".to_string(), OpResult::Forked(Err("refused".into())))]
    );
    assert_eq!(
        fork_states(&a),
        vec![ForkState::Finished {
            reason: Some("refused".into())
        }]
    );
    assert!(!s.is_active("s"));
}

/// Codecs a fork cannot send are refused before anything starts; control ids are shared with
/// every other operation; forks end with the call.
#[test]
fn fork_requests_are_checked_and_end_with_the_call() {
    let mut s = CallSession::new();
    assert_eq!(
        code(
            s.handle_command(0, stream("s", Some("OPUS")), REST)
                .unwrap_err()
        ),
        "invalid_parameter"
    );
    let opus_tap = CallCommand::from_json(
        "calling.tap",
        json!({"control_id": "t", "tap": {"params": {"direction": "speak"}},
               "device": {"type": "ws", "params": {"uri": "wss://x.test/", "codec": "OPUS"}}}),
    )
    .unwrap();
    assert!(matches!(
        s.handle_command(0, opus_tap, REST),
        Err(ControlError::NotImplemented { .. })
    ));
    assert!(drain(&mut s).is_empty());
    s.handle_command(0, CallCommand::Play(play("x")), REST)
        .unwrap();
    assert_eq!(
        code(s.handle_command(0, tap("x"), REST).unwrap_err()),
        "value_not_unique"
    );
    s.handle_command(0, stream("s", Some("L16@16000h")), REST)
        .unwrap();
    s.handle_command(0, tap("t"), REST).unwrap();
    drain(&mut s);
    s.call_ended();
    let a = drain(&mut s);
    let stops = a
        .iter()
        .filter(|x| matches!(x, Action::StopFork { .. }))
        .count();
    assert_eq!(stops, 2);
    assert_eq!(
        fork_states(&a),
        vec![
            ForkState::Finished {
                reason: Some("hangup".into())
            };
            2
        ]
    );
}

/// A transcription is a recording of the whole call that only `transcribe.stop` stops (once);
/// one per call (409); its recording's end frees the slot.
#[test]
fn one_transcription_per_call() {
    let mut s = CallSession::new();
    let t = |id: &str| {
        CallCommand::from_json(
            "calling.transcribe",
            json!({"control_id": id, "status_url": "http://hooks.test/t"}),
        )
        .unwrap()
    };
    s.handle_command(0, t("t1"), REST).unwrap();
    let a = drain(&mut s);
    let started = a.iter().find_map(|x| match x {
        Action::StartRecording {
            params, transcript, ..
        } => Some((params.clone(), transcript.clone())),
        _ => None,
    });
    let Some((params, Some(transcript))) = started else {
        panic!("{a:?}")
    };
    assert_eq!(
        transcript.status_url.as_deref(),
        Some("http://hooks.test/t")
    );
    assert_eq!(
        params.record.audio.direction,
        crate::command::AudioDirection::Both
    );
    assert_eq!(params.status_url, None);
    assert!(matches!(
        s.handle_command(1, t("t2"), REST),
        Err(ControlError::Conflict { .. })
    ));
    assert_eq!(
        code(
            s.handle_command(1, CallCommand::RecordStop(cid("t1")), REST)
                .unwrap_err()
        ),
        "does_not_exist"
    );
    s.handle_command(2, CallCommand::TranscribeStop(cid("t1")), REST)
        .unwrap();
    assert!(drain(&mut s).iter().any(|x| matches!(
        x,
        Action::RecorderControl {
            op: RecorderOp::Stop,
            ..
        }
    )));
    assert_eq!(
        code(
            s.handle_command(3, CallCommand::TranscribeStop(cid("t1")), REST)
                .unwrap_err()
        ),
        "does_not_exist"
    );
    s.handle_event(
        4,
        SessionEvent::RecordingDone {
            control_id: "t1".into(),
            result: RecordingResult::default(),
        },
    );
    drain(&mut s);
    s.handle_command(5, t("t3"), REST).unwrap();
}

fn fax(
    control_id: &str,
    direction: crate::command::FaxDirection,
) -> crate::command::FaxTransferParams {
    crate::command::FaxTransferParams {
        control_id: control_id.into(),
        direction,
        document: (direction == crate::command::FaxDirection::Send)
            .then(|| "https://docs.test/a.pdf".into()),
        header_info: None,
        identity: None,
        status_url: Some("http://hooks.test/fax".into()),
    }
}

fn fax_events(actions: &[Action]) -> Vec<FaxProgress> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(CallEvent::Fax { progress, .. }) => Some(progress.clone()),
            _ => None,
        })
        .collect()
}

/// A fax runs as an operation: one at a time, pages and its end as events, the script's
/// result; `.stop` names the right kind and the end says `stopped`.
#[test]
fn a_fax_reports_pages_and_its_end_and_stops_on_request() {
    use crate::command::FaxDirection::{Receive, Send};
    let mut s = CallSession::new();
    s.start_fax(fax("f1", Send), SCRIPT).unwrap();
    assert!(
        matches!(&drain(&mut s)[..], [Action::StartFax { params }] if params.control_id == "f1")
    );
    // One fax at a time; a send needs a document.
    assert_eq!(
        code(s.start_fax(fax("f2", Receive), SCRIPT).unwrap_err()),
        "invalid_state"
    );
    let mut no_doc = fax("f3", Send);
    no_doc.document = None;
    let mut other = CallSession::new();
    assert_eq!(
        code(other.start_fax(no_doc, SCRIPT).unwrap_err()),
        "missing_parameter"
    );
    s.handle_event(
        0,
        SessionEvent::FaxStarted {
            control_id: "f1".into(),
            document: Some("https://docs.test/a.pdf".into()),
            identity: "+15551230000".into(),
        },
    );
    s.handle_event(
        0,
        SessionEvent::FaxPage {
            control_id: "f1".into(),
            number: 1,
        },
    );
    assert_eq!(
        fax_events(&drain(&mut s)),
        vec![FaxProgress::Page { number: 1 }]
    );
    // The stop of the other kind does not know it; the right one asks the driver once.
    let wrong = s.handle_command(0, CallCommand::ReceiveFaxStop(cid("f1")), REST);
    assert_eq!(code(wrong.unwrap_err()), "does_not_exist");
    s.handle_command(0, CallCommand::SendFaxStop(cid("f1")), REST)
        .unwrap();
    s.handle_command(0, CallCommand::SendFaxStop(cid("f1")), REST)
        .unwrap();
    let stops = drain(&mut s);
    assert_eq!(
        stops,
        vec![Action::StopFax {
            control_id: "f1".into()
        }]
    );
    let ended = FaxResult {
        success: false,
        result_code: 49,
        result_text: "Call dropped prematurely".into(),
        pages: 1,
        remote_identity: "+15550000000".into(),
        ..FaxResult::default()
    };
    s.handle_event(
        0,
        SessionEvent::FaxFinished {
            control_id: "f1".into(),
            result: ended,
        },
    );
    let actions = drain(&mut s);
    let expected = FaxResult {
        success: false,
        result_code: 49,
        result_text: "stopped".into(),
        pages: 1,
        identity: "+15551230000".into(),
        remote_identity: "+15550000000".into(),
        document: Some("https://docs.test/a.pdf".into()),
    };
    assert_eq!(
        fax_events(&actions),
        vec![FaxProgress::Finished(expected.clone())]
    );
    assert_eq!(
        script_done(&actions),
        vec![("f1".to_string(), OpResult::Faxed(expected))]
    );
    // Over: another fax may start; a stop of the old one is unknown.
    assert!(s
        .handle_command(0, CallCommand::SendFaxStop(cid("f1")), REST)
        .is_err());
    s.start_fax(fax("f2", Receive), SCRIPT).unwrap();
}

/// The call's end hands each running fax to the driver to report (no event yet, no script
/// result): the terminal may still say the last page was confirmed.
#[test]
fn a_fax_cut_by_the_hang_up_is_handed_to_the_driver() {
    let mut s = CallSession::new();
    s.start_fax(fax("r1", crate::command::FaxDirection::Receive), SCRIPT)
        .unwrap();
    s.handle_command(0, CallCommand::ReceiveFaxStop(cid("r1")), REST)
        .unwrap();
    drain(&mut s);
    s.call_ended();
    assert_eq!(
        drain(&mut s),
        vec![Action::AbandonFax {
            control_id: "r1".into(),
            direction: crate::command::FaxDirection::Receive,
            status_url: Some("http://hooks.test/fax".into()),
            stopped: true,
        }]
    );
    assert_eq!(
        code(
            s.start_fax(fax("r2", crate::command::FaxDirection::Receive), SCRIPT)
                .unwrap_err()
        ),
        "invalid_state"
    );
}

fn speech_event(s: &mut CallSession, now: u64, event: SpeechEvent) {
    s.handle_event(
        now,
        SessionEvent::Speech {
            control_id: "c1".into(),
            event,
        },
    );
}

/// `barge_min_words` (an AI agent's): speech stops the prompt only once the running
/// transcript has that many words; an utterance with fewer while it plays is let go and the
/// collect listens on; after the playback any utterance counts.
#[test]
fn prompt_barge_waits_for_enough_words() {
    let mut s = CallSession::new();
    let mut c = CollectParams::new("c1".into());
    c.speech = Some(SpeechParams::new());
    c.barge_min_words = 3;
    s.start_prompt(0, play("pp"), c).unwrap();
    let a = drain(&mut s);
    let spec = a.iter().find_map(|x| match x {
        Action::SpeechListener {
            spec: Some(spec), ..
        } => Some(spec.clone()),
        _ => None,
    });
    let spec = spec.expect("a listener");
    assert!(
        spec.partial_results && spec.continuous,
        "partials to count words, and listening on: {spec:?}"
    );
    ready(&mut s, 1, 1);
    drain(&mut s);
    let stops = |a: &[Action]| {
        a.iter()
            .filter(|x| {
                matches!(
                    x,
                    Action::PlayControl {
                        op: PlayerOp::Stop,
                        ..
                    }
                )
            })
            .count()
    };
    speech_event(&mut s, 500, SpeechEvent::StartOfInput);
    speech_event(
        &mut s,
        900,
        SpeechEvent::Partial {
            text: "uh huh".into(),
        },
    );
    assert_eq!(stops(&drain(&mut s)), 0, "two words do not cut the prompt");
    speech_event(
        &mut s,
        1_200,
        SpeechEvent::Result {
            text: "uh huh".into(),
            confidence: 0.9,
        },
    );
    let a = drain(&mut s);
    assert_eq!(stops(&a), 0);
    assert!(script_done(&a).is_empty(), "let go, not a result: {a:?}");
    assert_eq!(s.poll_timeout(), None, "timers wait for the playback's end");

    speech_event(&mut s, 2_000, SpeechEvent::StartOfInput);
    speech_event(
        &mut s,
        2_600,
        SpeechEvent::Partial {
            text: "wait a second".into(),
        },
    );
    assert_eq!(stops(&drain(&mut s)), 1, "three words cut it");
    s.handle_event(2_620, SessionEvent::Player(PlayerEvent::Stopped(1)));
    speech_event(
        &mut s,
        3_000,
        SpeechEvent::Result {
            text: "wait a second".into(),
            confidence: 0.9,
        },
    );
    assert_eq!(
        script_done(&drain(&mut s)),
        [(
            "c1".into(),
            OpResult::Collected(CollectResult::Speech {
                text: "wait a second".into(),
                confidence: 0.9
            })
        )]
    );

    // Once the prompt has played, one word is an answer.
    let mut s = CallSession::new();
    let mut c = CollectParams::new("c1".into());
    c.speech = Some(SpeechParams::new());
    c.barge_min_words = 3;
    s.start_prompt(0, play("pp"), c).unwrap();
    ready(&mut s, 1, 1);
    s.handle_event(2_000, SessionEvent::Player(PlayerEvent::Finished(1)));
    drain(&mut s);
    speech_event(&mut s, 2_500, SpeechEvent::StartOfInput);
    speech_event(
        &mut s,
        3_000,
        SpeechEvent::Result {
            text: "yes".into(),
            confidence: 0.9,
        },
    );
    assert_eq!(script_done(&drain(&mut s)).len(), 1);
}

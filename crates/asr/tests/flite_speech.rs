//! The embedded engine against flite's 8 kHz speech (real libraries, no mocks).

use asr::{Pocketsphinx, PocketsphinxConfig, RecognitionRequest, SpeechEngine, Transcript};
use tts::{FliteTts, Tts, TtsRequest};

fn say(text: &str) -> Vec<i16> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let tts = FliteTts::start().expect("flite");
    let audio = rt
        .block_on(tts.synthesize(&TtsRequest {
            text: text.into(),
            voice: String::new(),
            language: "en-US".into(),
            gender: "female".into(),
        }))
        .expect("synthesis");
    // Telephone audio is 8 kHz: halve flite's 16 kHz with a [1 2 1]/4 low-pass.
    let samples: Vec<i16> = match audio.sample_rate {
        8000 => audio.samples.clone(),
        16000 => audio
            .samples
            .windows(3)
            .step_by(2)
            .map(|w| ((i32::from(w[0]) + 2 * i32::from(w[1]) + i32::from(w[2])) / 4) as i16)
            .collect(),
        r => panic!("flite rate {r}"),
    };
    // Half a second of silence either side, like a caller answering.
    let mut pcm = vec![0i16; 4000];
    pcm.extend_from_slice(&samples);
    pcm.extend(std::iter::repeat_n(0i16, 4000));
    pcm
}

fn recognise(engine: &Pocketsphinx, pcm: &[i16], hints: &[&str], digits: bool) -> Transcript {
    let mut rec = engine
        .start(&RecognitionRequest {
            language: "en-US".into(),
            hints: hints.iter().map(|h| h.to_string()).collect(),
            sample_rate: 8000,
            digits_allowed: digits,
        })
        .expect("start");
    for chunk in pcm.chunks(160) {
        rec.push(chunk);
    }
    rec.finish().expect("finish")
}

fn engine() -> Pocketsphinx {
    Pocketsphinx::new(PocketsphinxConfig::default()).expect("pocketsphinx installed")
}

#[test]
fn hint_phrase_is_recognised() {
    let e = engine();
    let t = recognise(
        &e,
        &say("yes please"),
        &["yes please", "sales", "support"],
        false,
    );
    eprintln!("{t:?}");
    assert_eq!(t.text, "yes please");
    assert!(t.confidence > 0.5, "{t:?}");
}

#[test]
fn spoken_digits_are_recognised() {
    let e = engine();
    for digits in ["one two", "nine eight", "five"] {
        let t = recognise(&e, &say(digits), &[], true);
        assert_eq!(t.text, digits, "{t:?}");
    }
}

#[test]
fn words_from_the_hints_only() {
    let e = engine();
    for choice in ["billing", "sales", "customer support"] {
        let t = recognise(
            &e,
            &say(choice),
            &["billing", "customer support", "sales"],
            false,
        );
        assert_eq!(t.text, choice, "{t:?}");
    }
}

#[test]
fn out_of_grammar_speech_gives_low_confidence() {
    let e = engine();
    let good = recognise(&e, &say("sales"), &["sales", "billing"], false);
    let bad = recognise(
        &e,
        &say("the weather in paris is lovely this afternoon"),
        &["sales", "billing"],
        false,
    );
    eprintln!("good {good:?} bad {bad:?}");
    assert!(bad.text.is_empty() || bad.confidence < 0.3, "{bad:?}");
    assert!(good.confidence > bad.confidence);
}

#[test]
fn silence_gives_no_text() {
    let e = engine();
    let t = recognise(&e, &vec![0i16; 16000], &["sales"], true);
    assert!(t.text.is_empty(), "{t:?}");
}

#[test]
fn partials_arrive_while_speaking() {
    let e = engine();
    let phrase = "i would like to pay my bill";
    let pcm = say(phrase);
    let mut rec = e
        .start(&RecognitionRequest {
            language: "en-US".into(),
            hints: vec![phrase.into(), "talk to an agent".into()],
            sample_rate: 8000,
            digits_allowed: false,
        })
        .expect("start");
    let mut partials = Vec::new();
    for chunk in pcm.chunks(1600) {
        rec.push(chunk);
        if let Some(p) = rec.partial() {
            partials.push(p);
        }
    }
    let t = rec.finish().expect("finish");
    eprintln!("{partials:?} {t:?}");
    assert!(!partials.is_empty());
    assert_eq!(t.text, phrase);
}

#[test]
fn empty_grammar_and_bad_rate_are_errors() {
    let e = engine();
    let req = RecognitionRequest {
        language: "en-US".into(),
        hints: vec![],
        sample_rate: 44_100,
        digits_allowed: false,
    };
    assert!(e.start(&req).is_err());
}

#[test]
fn missing_model_is_a_clear_error() {
    let r = Pocketsphinx::new(PocketsphinxConfig {
        model_dir: "/nonexistent".into(),
    });
    assert!(matches!(r, Err(asr::AsrError::Unavailable(_))));
}

/// The far end of the e2e tests speaks with the flite binary's 8 kHz voice.
#[test]
fn flite_binary_voice_is_recognised() {
    let path = std::env::temp_dir().join(format!("asr-test-{}.wav", std::process::id()));
    let Ok(status) = std::process::Command::new("flite")
        .args(["-t", "yes please", "-o"])
        .arg(&path)
        .status()
    else {
        eprintln!("flite binary not installed; skipped");
        return;
    };
    assert!(status.success());
    let bytes = std::fs::read(&path).expect("wav");
    let _ = std::fs::remove_file(&path);
    // flite writes a plain 44-byte header, 8 kHz 16-bit mono.
    let mut pcm = vec![0i16; 4000];
    pcm.extend(
        bytes[44..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]])),
    );
    pcm.extend(std::iter::repeat_n(0i16, 4000));
    let t = recognise(&engine(), &pcm, &["yes please", "no thanks"], false);
    assert_eq!(t.text, "yes please");
    assert!(t.confidence > 0.5, "{t:?}");
}

/// The embedded transcriber (language-model mode) finds most words of free speech that no
/// grammar names, piece by piece; silence gives nothing; another rate is an error.
#[test]
fn free_speech_is_transcribed_by_the_language_model() {
    use asr::Transcriber as _;
    let e = engine();
    let mut pcm = say("the weather is nice today");
    pcm.extend(std::iter::repeat_n(0i16, 8000));
    pcm.extend(say("please call me back tomorrow morning"));
    let text = e.transcribe(&pcm, 8000, "en-US").expect("transcribe");
    let wanted = [
        "weather", "nice", "today", "call", "back", "tomorrow", "morning",
    ];
    let found = wanted.iter().filter(|w| text.contains(*w)).count();
    assert!(found >= 4, "{text:?}");
    assert_eq!(
        e.transcribe(&[0; 16_000], 8000, "en-US").expect("silence"),
        ""
    );
    assert!(e.transcribe(&pcm, 44_100, "en-US").is_err());
}

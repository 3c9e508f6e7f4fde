//! Real-time factor of the embedded engine: processing time / audio duration, on flite's
//! speech at 8 kHz fed in 20 ms frames (as a call delivers it). `cargo bench -p asr`.

use std::time::Instant;

use asr::{Pocketsphinx, PocketsphinxConfig, RecognitionRequest, SpeechEngine};
use tts::{FliteTts, Tts, TtsRequest};

fn main() {
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => return eprintln!("runtime: {e}"),
    };
    let (tts, engine) = match (
        FliteTts::start(),
        Pocketsphinx::new(PocketsphinxConfig::default()),
    ) {
        (Ok(t), Ok(e)) => (t, e),
        (t, e) => return eprintln!("engines unavailable: {:?} {:?}", t.err(), e.err()),
    };
    let phrase = "i would like to speak to customer support about my bill please";
    let audio = match rt.block_on(tts.synthesize(&TtsRequest {
        text: phrase.into(),
        voice: String::new(),
        language: "en-US".into(),
        gender: "female".into(),
    })) {
        Ok(a) => a,
        Err(e) => return eprintln!("tts: {e}"),
    };
    // 16 kHz flite halved to the telephone's 8 kHz.
    let pcm: Vec<i16> = if audio.sample_rate == 16_000 {
        audio.samples.iter().step_by(2).copied().collect()
    } else {
        audio.samples.to_vec()
    };
    let audio_s = pcm.len() as f64 / 8000.0;
    let req = RecognitionRequest {
        language: "en-US".into(),
        hints: vec![phrase.into(), "billing".into(), "sales".into()],
        sample_rate: 8000,
        digits_allowed: true,
    };
    let runs = 5;
    let mut best = f64::MAX;
    let mut text = String::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let Ok(mut rec) = engine.start(&req) else {
            return eprintln!("start failed");
        };
        for frame in pcm.chunks(160) {
            rec.push(frame);
            let _ = rec.partial();
        }
        match rec.finish() {
            Ok(t) => text = t.text,
            Err(e) => return eprintln!("finish: {e}"),
        }
        best = best.min(t0.elapsed().as_secs_f64());
    }
    println!(
        "asr rtf: {:.3} (best of {runs}: {:.0} ms for {:.2} s of 8 kHz speech, partial polled every 20 ms) -> {text:?}",
        best / audio_s,
        best * 1000.0,
        audio_s
    );
}

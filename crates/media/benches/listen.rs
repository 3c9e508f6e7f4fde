//! Cost per 20 ms frame of what a listening call runs on the far end's audio: in-band DTMF
//! detection and the VAD, on the kinds of audio a call carries. `cargo bench -p media --bench
//! listen`. Each figure is the median of 7 runs over 10 s of audio (500 frames).

use std::hint::black_box;
use std::time::Instant;

use media::dtmf::InBandDetector;
use media::tone::ToneGenerator;
use media::vad::Vad;

const RUNS: usize = 7;
const RATE: u32 = 8000;
const FRAME: usize = 160;

/// Median ns per 20 ms frame of running `per_frame` over `audio`.
fn time_per_frame(audio: &[i16], mut per_frame: impl FnMut(&[i16])) -> f64 {
    for frame in audio.chunks_exact(FRAME).take(50) {
        per_frame(frame);
    }
    let frames = audio.len() / FRAME;
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for frame in audio.chunks_exact(FRAME) {
                per_frame(black_box(frame));
            }
            start.elapsed().as_secs_f64() * 1e9 / frames as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[RUNS / 2]
}

fn report(name: &str, ns: f64) {
    // A frame is 20 ms: per call, the share of one core this takes.
    println!(
        "{name:<52} {ns:>8.0} ns/frame  {:>7.4} % of a core per call",
        ns / 20e6 * 100.0
    );
}

fn tone(freqs: &[f32], amplitude: i16, seconds: u32) -> Vec<i16> {
    let mut out = vec![0; (RATE * seconds) as usize];
    ToneGenerator::new(RATE, freqs, amplitude).fill(&mut out);
    out
}

/// Speech-like audio: a gliding voiced fundamental with falling harmonics, shaped into
/// syllables (4 per second) with short pauses, plus a little noise.
fn speech_like(seconds: u32) -> Vec<i16> {
    let n = (RATE * seconds) as usize;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f64 / (1u64 << 24) as f64 - 0.5
    };
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            let f0 = 140.0 + 40.0 * (t * 1.3).sin();
            phase += std::f64::consts::TAU * f0 / f64::from(RATE);
            let voiced: f64 = (1..=20).map(|k| (phase * k as f64).sin() / k as f64).sum();
            let syllable = (t * 4.0 * std::f64::consts::PI).sin().abs();
            let v = 6000.0 * syllable * voiced + 300.0 * noise();
            v.clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Uniform white noise at about -30 dBFS RMS.
fn hiss(seconds: u32) -> Vec<i16> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    (0..RATE * seconds)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 48) as i16) / 18
        })
        .collect()
}

fn main() {
    let loads = [
        ("digital silence", vec![0i16; (RATE * 10) as usize]),
        (
            "a 440 Hz tone (the load benchmark's echo)",
            tone(&[440.0], 8000, 10),
        ),
        ("speech-like audio", speech_like(10)),
        ("white noise at -30 dBFS (line hiss)", hiss(10)),
        (
            "a held DTMF key (5: 770 + 1336 Hz)",
            tone(&[770.0, 1336.0], 8000, 10),
        ),
    ];
    println!("in-band DTMF detection, one 20 ms frame at 8 kHz:");
    for (name, audio) in &loads {
        let mut det = InBandDetector::new(RATE);
        report(
            &format!("  {name}"),
            time_per_frame(audio, |f| {
                black_box(det.push(f));
            }),
        );
    }
    println!("VAD (sensitivity 50), one 20 ms frame at 8 kHz:");
    for (name, audio) in &loads {
        let mut vad = Vad::new(RATE, 50);
        report(
            &format!("  {name}"),
            time_per_frame(audio, |f| {
                black_box(vad.push_frame(f));
            }),
        );
    }
}

//! Cost per 20 ms tick of conference mixing and of a bridged pair's resampling, on this
//! machine. `cargo bench -p media`. Each figure is the median of 7 runs of 1000 ticks.

use std::hint::black_box;
use std::time::Instant;

use media::conference::ConferenceMix;
use media::resample::Resampler;
use media::tone::ToneGenerator;

const TICKS: usize = 1000;
const RUNS: usize = 7;

/// Median µs per tick of `tick` (after 50 ticks of warm-up).
fn time_per_tick(mut tick: impl FnMut()) -> f64 {
    for _ in 0..50 {
        tick();
    }
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..TICKS {
                tick();
            }
            start.elapsed().as_secs_f64() * 1e6 / TICKS as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[RUNS / 2]
}

fn report(name: &str, us: f64) {
    // A tick is 20 ms: the share of one core the work takes.
    println!(
        "{name:<58} {us:>9.1} µs/tick  {:>6.2} % of a core",
        us / 200.0
    );
}

/// Participants at `rates` (cycled), each speaking a tone; the tick pushes every frame,
/// mixes, and reads every participant's mix and the recording.
fn conference(n: usize, rates: &[u32], mix_rate: u32) -> f64 {
    let Ok(mut c) = ConferenceMix::<usize>::new(mix_rate) else {
        return f64::NAN;
    };
    // One second of each one's tone, made beforehand: the tick only pushes frames of it.
    let voices: Vec<(usize, u32, Vec<i16>)> = (0..n)
        .map(|k| {
            let rate = rates[k % rates.len()];
            let _ = c.join(k, rate);
            let mut second = vec![0; rate as usize];
            ToneGenerator::new(rate, &[200.0 + 37.0 * k as f32], 2000).fill(&mut second);
            (k, rate, second)
        })
        .collect();
    let mut tick_no = 0usize;
    time_per_tick(|| {
        tick_no = (tick_no + 1) % 50;
        for (key, rate, second) in voices.iter() {
            let len = (*rate / 50) as usize;
            let frame = &second[tick_no * len..(tick_no + 1) * len];
            c.push(*key, frame, *rate);
        }
        c.mix();
        let mut acc = 0i64;
        for k in 0..n {
            if let Some(out) = c.mix_for(k) {
                acc += i64::from(out[0]);
            }
        }
        acc += i64::from(c.mix_all()[0]);
        black_box(acc);
    })
}

/// One bridged pair's tick: a's frame to b's rate and b's frame to a's rate.
fn bridged_pair(a: u32, b: u32) -> f64 {
    let (Ok(mut ab), Ok(mut ba)) = (Resampler::new(a, b), Resampler::new(b, a)) else {
        return f64::NAN;
    };
    let mut fa = vec![0i16; (a / 50) as usize];
    let mut fb = vec![0i16; (b / 50) as usize];
    ToneGenerator::new(a, &[1000.0], 8000).fill(&mut fa);
    ToneGenerator::new(b, &[1000.0], 8000).fill(&mut fb);
    let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
    time_per_tick(|| {
        to_b.clear();
        to_a.clear();
        ab.process(black_box(&fa), &mut to_b);
        ba.process(black_box(&fb), &mut to_a);
        black_box((&to_a, &to_b));
    })
}

fn main() {
    println!(
        "conference mixer, one tick (push every frame, mix, read every mix and the recording):"
    );
    for n in [5, 50] {
        report(
            &format!("  {n} participants at 8 kHz, mixed at 8 kHz"),
            conference(n, &[8000], 8000),
        );
        report(
            &format!("  {n} participants at 8 kHz, mixed at 16 kHz"),
            conference(n, &[8000], 16_000),
        );
        report(
            &format!("  {n} participants at 8/16/48 kHz, mixed at 16 kHz"),
            conference(n, &[8000, 16_000, 48_000], 16_000),
        );
    }
    println!("bridged pair, one tick (both directions resampled):");
    for (a, b) in [(8000, 16_000), (8000, 48_000), (16_000, 48_000)] {
        report(
            &format!("  {} kHz <-> {} kHz", a / 1000, b / 1000),
            bridged_pair(a, b),
        );
    }
}

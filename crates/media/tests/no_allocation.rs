//! The per-tick paths of resampling and conference mixing allocate nothing once warm: the
//! heap they hold at once beyond what was live before is measured exactly (0 bytes).

use media::conference::ConferenceMix;
use media::resample::Resampler;
use media::tone::ToneGenerator;

#[global_allocator]
static ALLOC: heapcount::Counting = heapcount::Counting;

/// The least heap `f` held at once over three runs: the counter is process-wide, so another
/// thread of the test harness allocating meanwhile can show once (seen in CI); an allocation
/// of `f`'s own shows in every run.
fn quiet_peak(mut f: impl FnMut()) -> usize {
    (0..3)
        .map(|_| heapcount::peak_during(&mut f).1)
        .min()
        .unwrap_or(usize::MAX)
}

#[test]
fn resampler_and_mixer_allocate_nothing_per_frame_after_warm_up() {
    // Every call ratio, 20 ms frames.
    for (from, to) in [
        (8000, 16_000),
        (16_000, 8000),
        (8000, 48_000),
        (48_000, 8000),
        (16_000, 48_000),
        (48_000, 16_000),
    ] {
        let Ok(mut r) = Resampler::new(from, to) else {
            panic!("{from}->{to}");
        };
        let mut frame = vec![0i16; (from / 50) as usize];
        let mut gen = ToneGenerator::new(from, &[1000.0], 8000);
        let mut out = Vec::new();
        for _ in 0..2 {
            gen.fill(&mut frame);
            out.clear();
            r.process(&frame, &mut out);
        }
        let peak = quiet_peak(|| {
            for _ in 0..100 {
                gen.fill(&mut frame);
                out.clear();
                r.process(&frame, &mut out);
            }
        });
        assert_eq!(peak, 0, "{from}->{to}");
    }

    // A conference of every rate, with a muted one and a coach at another rate.
    let Ok(mut c) = ConferenceMix::<u32>::new(16_000) else {
        panic!("mix rate");
    };
    let rates = [8000u32, 8000, 16_000, 48_000, 16_000, 48_000];
    let mut voices: Vec<(u32, u32, ToneGenerator, Vec<i16>)> = rates
        .iter()
        .enumerate()
        .map(|(k, &rate)| {
            let key = k as u32;
            assert!(c.join(key, rate).is_ok());
            let freq = 300.0 + 200.0 * k as f32;
            let gen = ToneGenerator::new(rate, &[freq], 4000);
            (key, rate, gen, vec![0; (rate / 50) as usize])
        })
        .collect();
    assert!(c.set_muted(1, true));
    assert!(c.set_coach(5, Some(0)));
    let mut tick = |c: &mut ConferenceMix<u32>| {
        for (key, rate, gen, frame) in voices.iter_mut() {
            gen.fill(frame);
            c.push(*key, frame, *rate);
        }
        c.mix();
        let mut n = c.mix_all().len();
        for k in 0..rates.len() as u32 {
            n += c.mix_for(k).map_or(0, <[i16]>::len);
        }
        n
    };
    for _ in 0..2 {
        tick(&mut c);
    }
    let mut n = 0;
    let peak = quiet_peak(|| n = (0..100).map(|_| tick(&mut c)).sum::<usize>());
    assert_eq!(n, 100 * (320 + 160 * 2 + 320 * 2 + 960 * 2));
    assert_eq!(peak, 0, "conference tick");
}

//! The per-tick paths of resampling, conference mixing and a listening call (receive, decode,
//! in-band DTMF detection, the recorder's tap, the outgoing packet) allocate nothing once
//! warm: the heap they hold at once beyond what was live before is measured exactly (0 bytes).

use media::conference::ConferenceMix;
use media::graph::{CallGraph, FrameTap, GraphConfig, MediaLeg};
use media::packets::Packets;
use media::resample::Resampler;
use media::tone::ToneGenerator;
use media::CodecKind;

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

/// A recorder stand-in that copies each frame into buffers it already holds.
struct CopyTap {
    heard: Vec<i16>,
    sent: Vec<i16>,
    frames: usize,
}

impl FrameTap for CopyTap {
    fn offer(&mut self, heard: Option<&[i16]>, sent: &[i16], _gap_frames: u32) -> bool {
        self.heard.clear();
        self.heard.extend_from_slice(heard.unwrap_or(&[]));
        self.sent.clear();
        self.sent.extend_from_slice(sent);
        self.frames += 1;
        true
    }
}

#[test]
fn a_listening_call_allocates_nothing_per_tick_after_warm_up() {
    let Ok(mut g) = CallGraph::new(&GraphConfig {
        codec: CodecKind::Pcmu,
        rtp_clock_rate: 8000,
        ssrc: 1,
        initial_sequence: 0,
        initial_timestamp: 0,
        payload_type: 0,
        telephone_event_pt: Some(101),
    }) else {
        panic!("graph");
    };
    g.set_digit_detection(true);
    g.set_tap(Some(Box::new(CopyTap {
        heard: Vec::with_capacity(160),
        sent: Vec::with_capacity(160),
        frames: 0,
    })));
    // Far-end audio that makes the DTMF detector run its filters (a loud two-tone chord that
    // is no key, with hiss), made beforehand: 400 packets of 20 ms.
    let mut gen = ToneGenerator::new(8000, &[1000.0, 1900.0], 6000);
    let mut pcm = vec![0i16; 160];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let packets: Vec<Vec<u8>> = (0..400u32)
        .map(|i| {
            gen.fill(&mut pcm);
            for s in pcm.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *s = s.saturating_add((seed >> 54) as i16 - 512);
            }
            let payload: Vec<u8> = pcm.iter().map(|&x| media::g711::ulaw_encode(x)).collect();
            let mut pkt = Vec::new();
            rtp::write(i == 0, 0, i as u16, i * 160, 7, &payload, &mut pkt);
            pkt
        })
        .collect();
    let mut out = Packets::new();
    let mut tick_no = 0usize;
    let mut tick = |g: &mut CallGraph, out: &mut Packets| {
        let now = tick_no as u64 * 20_000;
        g.on_rtp(now, &packets[tick_no % packets.len()]);
        out.clear();
        g.on_tick(now, out);
        while g.poll_event().is_some() {}
        tick_no += 1;
        out.len()
    };
    for _ in 0..100 {
        tick(&mut g, &mut out);
    }
    let mut sent = 0;
    let peak = quiet_peak(|| sent = (0..100).map(|_| tick(&mut g, &mut out)).sum::<usize>());
    assert_eq!(sent, 100, "one packet per tick");
    assert_eq!(peak, 0, "listening call tick");
}

use rtp::{ReceiveStats, Receiver, RtpPacket};

fn pkt(ssrc: u32, seq: u16, ts: u32) -> RtpPacket<'static> {
    RtpPacket {
        marker: false,
        payload_type: 0,
        sequence: seq,
        timestamp: ts,
        ssrc,
        payload: &[],
    }
}

/// Feeds sequence numbers with perfectly regular timing (20 ms, 160 ticks).
fn feed(r: &mut Receiver, ssrc: u32, seqs: &[u16]) {
    for &s in seqs {
        let ts = u32::from(s).wrapping_mul(160);
        r.on_packet(&pkt(ssrc, s, ts), u64::from(s) * 20_000);
    }
}

#[test]
fn empty() {
    let r = Receiver::new(8000);
    assert_eq!(r.stats(), ReceiveStats::default());
}

#[test]
fn in_order() {
    let mut r = Receiver::new(8000);
    feed(&mut r, 1, &(10..60).collect::<Vec<_>>());
    let s = r.stats();
    assert_eq!(s.packets_received, 50);
    assert_eq!(s.packets_lost, 0);
    assert_eq!(s.duplicates, 0);
    assert_eq!(s.ssrc_changes, 0);
    assert_eq!(s.jitter_rtp_units, 0.0);
}

#[test]
fn loss_gap() {
    let mut r = Receiver::new(8000);
    feed(&mut r, 1, &[1, 2, 3, 7, 8]);
    let s = r.stats();
    assert_eq!(s.packets_received, 5);
    assert_eq!(s.packets_lost, 3);
}

#[test]
fn reorder_is_not_loss() {
    let mut r = Receiver::new(8000);
    feed(&mut r, 1, &[1, 2, 4, 3, 5, 7, 6]);
    let s = r.stats();
    assert_eq!(s.packets_received, 7);
    assert_eq!(s.packets_lost, 0);
    assert_eq!(s.duplicates, 0);
    // A late packet arriving after a gap fills it.
    let mut r = Receiver::new(8000);
    feed(&mut r, 1, &[1, 5]);
    assert_eq!(r.stats().packets_lost, 3);
    feed(&mut r, 1, &[3]);
    assert_eq!(r.stats().packets_lost, 2);
}

#[test]
fn packet_before_the_first_one() {
    let mut r = Receiver::new(8000);
    feed(&mut r, 1, &[5, 4, 6]);
    let s = r.stats();
    assert_eq!(s.packets_received, 3);
    assert_eq!(s.packets_lost, 0);
    // Also across a wrap.
    let mut r = Receiver::new(8000);
    feed(&mut r, 1, &[0, 65535, 1]);
    let s = r.stats();
    assert_eq!(s.packets_received, 3);
    assert_eq!(s.packets_lost, 0);
}

#[test]
fn duplicates_counted_not_received() {
    let mut r = Receiver::new(8000);
    feed(&mut r, 1, &[1, 2, 2, 3, 2, 1, 4]);
    let s = r.stats();
    assert_eq!(s.packets_received, 4);
    assert_eq!(s.duplicates, 3);
    assert_eq!(s.packets_lost, 0);
}

#[test]
fn lost_never_negative() {
    let mut r = Receiver::new(8000);
    for _ in 0..10 {
        feed(&mut r, 1, &[1]);
    }
    let s = r.stats();
    assert_eq!(s.packets_received, 1);
    assert_eq!(s.duplicates, 9);
    assert_eq!(s.packets_lost, 0);
}

#[test]
fn sequence_wrap() {
    let mut r = Receiver::new(8000);
    let seqs: Vec<u16> = (65530u32..65546).map(|s| s as u16).collect();
    feed(&mut r, 1, &seqs);
    let s = r.stats();
    assert_eq!(s.packets_received, 16);
    assert_eq!(s.packets_lost, 0);
    // Gap across the wrap.
    let mut r = Receiver::new(8000);
    feed(&mut r, 1, &[65534, 65535, 2, 3]);
    assert_eq!(r.stats().packets_lost, 2);
    // Many cycles.
    let mut r = Receiver::new(8000);
    for i in 0..200_000u32 {
        if i % 1000 > 0 {
            r.on_packet(
                &pkt(1, i as u16, i.wrapping_mul(160)),
                u64::from(i) * 20_000,
            );
        }
    }
    let s = r.stats();
    assert_eq!(s.packets_received, 200_000 - 200 + 1 - 1);
    assert_eq!(s.packets_lost, 199);
}

#[test]
fn ssrc_change_resets_tracking() {
    let mut r = Receiver::new(8000);
    feed(&mut r, 1, &[100, 101, 103]);
    feed(&mut r, 2, &[40_000, 40_001, 40_002]);
    let s = r.stats();
    assert_eq!(s.ssrc_changes, 1);
    assert_eq!(s.packets_received, 6);
    assert_eq!(s.packets_lost, 1);
    feed(&mut r, 1, &[5]);
    assert_eq!(r.stats().ssrc_changes, 2);
    assert_eq!(r.stats().packets_received, 7);
}

#[test]
fn large_jump_needs_confirmation() {
    let mut r = Receiver::new(8000);
    feed(&mut r, 1, &[1, 2, 3]);
    // A single stray packet far away is ignored...
    feed(&mut r, 1, &[30_000]);
    feed(&mut r, 1, &[4]);
    let s = r.stats();
    assert_eq!(s.packets_received, 4);
    assert_eq!(s.packets_lost, 0);
    // ...two in a row mean the sender restarted its sequence.
    feed(&mut r, 1, &[50_000, 50_001, 50_002]);
    let s = r.stats();
    assert_eq!(s.packets_received, 6);
    assert_eq!(s.packets_lost, 0);
}

#[test]
fn jitter_follows_a8() {
    let mut r = Receiver::new(8000);
    // Packets every 160 ticks; arrivals alternate 20 ms late / on time by 10 ms (80 ticks).
    let mut expected = 0.0f64;
    for i in 0..50u32 {
        let late = if i % 2 == 1 { 10_000 } else { 0 };
        r.on_packet(&pkt(9, i as u16, i * 160), u64::from(i) * 20_000 + late);
        if i > 0 {
            expected += (80.0 - expected) / 16.0;
        }
    }
    let j = r.stats().jitter_rtp_units;
    assert!((j - expected).abs() < 1e-9, "{j} vs {expected}");
    assert!(j > 70.0 && j < 80.0);
}

#[test]
fn jitter_at_48k_and_timestamp_wrap() {
    let mut r = Receiver::new(48_000);
    let base = u32::MAX - 960 * 3;
    for i in 0..10u32 {
        r.on_packet(
            &pkt(3, i as u16, base.wrapping_add(i * 960)),
            1_000_000_000_000 + u64::from(i) * 20_000,
        );
    }
    assert!(r.stats().jitter_rtp_units < 1e-9);
}

#[test]
fn random_streams_never_panic_and_stay_consistent() {
    let mut seed = 0xdead_beef_cafe_f00du64;
    let mut next = move || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for clock in [0, 8000, 48_000, u32::MAX] {
        let mut r = Receiver::new(clock);
        let mut seq: u16 = next() as u16;
        let mut fed = 0u64;
        for _ in 0..20_000 {
            let roll = next() % 100;
            let s = match roll {
                0..=79 => {
                    seq = seq.wrapping_add(1);
                    seq
                }
                80..=89 => seq.wrapping_sub((next() % 120) as u16),
                90..=97 => {
                    seq = seq.wrapping_add((next() % 50) as u16);
                    seq
                }
                _ => next() as u16,
            };
            let ssrc = if next() % 500 == 0 { 2 } else { 1 };
            r.on_packet(&pkt(ssrc, s, next() as u32), next());
            fed += 1;
        }
        let st = r.stats();
        assert!(st.packets_received + st.duplicates <= fed);
        assert!(st.jitter_rtp_units.is_finite());
        assert!(st.jitter_rtp_units >= 0.0);
    }
}

//! A conference's audio, pure: every 20 ms tick each participant's received frame goes in
//! ([`ConferenceMix::push`]), [`ConferenceMix::mix`] runs, and each participant gets what it
//! should hear ([`ConferenceMix::mix_for`]): everyone else's audio, never its own, at its own
//! rate; the recording gets everyone ([`ConferenceMix::mix_all`]).
//!
//! Rules:
//! - **muted**: its audio reaches nobody (it still hears).
//! - **deaf** (hold): hears nothing (it is still heard unless muted).
//! - **coach** of `P`: hears everyone (not other coaches); only `P` hears it. The recording
//!   has it.
//! - **beep** ([`ConferenceMix::beep`]): a short tone ([`BEEP_HZ`], [`BEEP_MS`]) added to what
//!   everyone hears (but the one it is about, say the participant who just entered) and to
//!   the recording, counted in samples (virtual time: 20 ms per [`ConferenceMix::mix`]).
//!
//! Cost is O(n) per tick for n participants plus a constant per distinct rate: participants
//! are grouped by rate; a group's sum is taken at its own rate, resampled once up to the
//! conference's mix rate and added into the total; each group gets `total − its own sum`
//! resampled once back to its rate, and each member hears that plus its group's sum minus its
//! own frame. Sums are exact in f32 (integers below 2^24), so nobody hears even a trace of
//! itself, and the clipping (a soft knee, then saturation) is applied only at the end, per
//! listener. Audio from another rate than the listener's arrives later than same-rate audio by
//! two [`Resampler`] delays (7.2 ms for 8 kHz listeners mixed at 16 kHz). Coaches at another rate than their participant each have their own
//! resamplers (coaches are few).

use std::collections::HashMap;
use std::hash::Hash;

use crate::resample::{ResampleError, Resampler};

/// Samples below this magnitude pass unchanged; above, a tanh knee approaches full scale.
const KNEE: f32 = 24_576.0;

/// Soft clipping: linear up to [`KNEE`] (−2.5 dBFS), then a smooth curve that never reaches
/// beyond i16's range.
pub fn soft_clip(v: f32) -> i16 {
    let a = v.abs();
    if a <= KNEE {
        return crate::resample::to_i16(v);
    }
    if v.is_nan() {
        return 0;
    }
    let room = f32::from(i16::MAX) - KNEE;
    crate::resample::to_i16((KNEE + room * ((a - KNEE) / room).tanh()).copysign(v))
}

/// The conference beep's pitch: apart from the tones the tests send (500, 1000, 1500, 2000 Hz).
pub const BEEP_HZ: f32 = 1250.0;
/// How long a beep lasts.
pub const BEEP_MS: u32 = 250;
/// Its peak (about −14 dBFS), reached after a 5 ms ramp (no click).
const BEEP_LEVEL: f32 = 6_500.0;
const BEEP_RAMP_MS: u32 = 5;

/// When a participant's coming and going beeps for the others (SWML `beep`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Beeps {
    pub on_enter: bool,
    pub on_exit: bool,
}

/// A beep going into one output at `rate`: how far it got, out of how long (samples).
#[derive(Debug, Default, Clone, Copy)]
struct Beep {
    at: u32,
    len: u32,
}

impl Beep {
    /// From the start (a beep already sounding starts over).
    fn start(&mut self, rate: u32) {
        self.at = 0;
        self.len = rate / 1000 * BEEP_MS;
    }

    /// Adds this frame's part of the beep to `out` (samples at `rate`).
    fn add(&mut self, out: &mut [f32], rate: u32) {
        if self.at >= self.len || rate == 0 {
            return;
        }
        let ramp = (rate / 1000 * BEEP_RAMP_MS).max(1) as f32;
        let step = std::f32::consts::TAU * BEEP_HZ / rate as f32;
        for o in out.iter_mut() {
            if self.at >= self.len {
                break;
            }
            let edge = self.at.min(self.len - 1 - self.at) as f32;
            let gain = (edge / ramp).min(1.0);
            *o += BEEP_LEVEL * gain * (step * self.at as f32).sin();
            self.at += 1;
        }
    }
}

/// Samples in a 20 ms frame at `rate`.
fn frame_len(rate: u32) -> usize {
    (rate / 50) as usize
}

/// A rate a participant may have: whole samples per 20 ms, and convertible to the mix rate.
fn check_rate(rate: u32, mix_rate: u32) -> Result<(), ResampleError> {
    if rate == 0 {
        return Err(ResampleError::ZeroRate);
    }
    if !rate.is_multiple_of(50) {
        return Err(ResampleError::NotWholeFrames(rate));
    }
    Resampler::new(rate, mix_rate).map(|_| ())
}

struct Participant<K> {
    rate: u32,
    /// This tick's frame (zeros when nothing was pushed), `frame_len(rate)` samples.
    input: Vec<f32>,
    /// Whether `input` holds a frame pushed this tick.
    pushed: bool,
    muted: bool,
    deaf: bool,
    /// Whom this participant coaches, if anyone.
    coaching: Option<K>,
    /// A coach's frame at its participant's rate (when the rates differ), and at the mix
    /// rate for the recording.
    to_target: Option<Resampler>,
    to_mix: Option<Resampler>,
    /// Scratch for a coach's converted frame.
    coach_out: Vec<f32>,
    /// Coach whispers (and the beep) for this participant this tick, at its rate.
    whisper: Vec<f32>,
    beep: Beep,
    /// What it hears this tick.
    out: Vec<i16>,
}

impl<K> Participant<K> {
    fn new(rate: u32) -> Self {
        let n = frame_len(rate);
        Participant {
            rate,
            input: vec![0.0; n],
            pushed: false,
            muted: false,
            deaf: false,
            coaching: None,
            to_target: None,
            to_mix: None,
            coach_out: Vec::with_capacity(n),
            whisper: vec![0.0; n],
            beep: Beep::default(),
            out: vec![0; n],
        }
    }

    /// Audible to the room (not to a coach's participant only).
    fn in_room(&self) -> bool {
        self.pushed && !self.muted && self.coaching.is_none()
    }
}

/// The participants of one rate.
struct RateGroup {
    rate: u32,
    members: usize,
    /// The sum of its members heard by the room, at `rate`.
    sum: Vec<f32>,
    /// `rate → mix rate` and back (None when `rate` is the mix rate).
    up: Option<Resampler>,
    down: Option<Resampler>,
    /// `sum` at the mix rate.
    sum_mixed: Vec<f32>,
    /// Scratch: the others at the mix rate.
    others_mixed: Vec<f32>,
    /// Everyone else in the room (other groups), at `rate`.
    others: Vec<f32>,
}

impl RateGroup {
    fn new(rate: u32, mix_rate: u32) -> Result<Self, ResampleError> {
        let (up, down) = if rate == mix_rate {
            (None, None)
        } else {
            (
                Some(Resampler::new(rate, mix_rate)?),
                Some(Resampler::new(mix_rate, rate)?),
            )
        };
        let n = frame_len(rate);
        let m = frame_len(mix_rate);
        Ok(RateGroup {
            rate,
            members: 0,
            sum: vec![0.0; n],
            up,
            down,
            sum_mixed: Vec::with_capacity(m),
            others_mixed: Vec::with_capacity(m),
            others: Vec::with_capacity(n),
        })
    }
}

/// One conference's mixer. See the module docs.
pub struct ConferenceMix<K> {
    mix_rate: u32,
    participants: HashMap<K, Participant<K>>,
    groups: Vec<RateGroup>,
    /// The room at the mix rate (everyone heard by everyone).
    total: Vec<f32>,
    /// The recording: the room and the coaches, at the mix rate.
    all: Vec<f32>,
    all_out: Vec<i16>,
    /// The recording's beep (at the mix rate).
    all_beep: Beep,
    /// Coaches, for the whisper pass.
    coaches: Vec<K>,
}

impl<K: Copy + Eq + Hash> ConferenceMix<K> {
    /// A conference mixing at `mix_rate` (16000 keeps wideband participants wideband; 8000
    /// is cheapest when everyone is narrowband). The rate must be a multiple of 50.
    pub fn new(mix_rate: u32) -> Result<Self, ResampleError> {
        if mix_rate == 0 {
            return Err(ResampleError::ZeroRate);
        }
        if !mix_rate.is_multiple_of(50) {
            return Err(ResampleError::NotWholeFrames(mix_rate));
        }
        let m = frame_len(mix_rate);
        Ok(ConferenceMix {
            mix_rate,
            participants: HashMap::new(),
            groups: Vec::new(),
            total: vec![0.0; m],
            all: vec![0.0; m],
            all_out: vec![0; m],
            all_beep: Beep::default(),
            coaches: Vec::new(),
        })
    }

    /// The rate of [`ConferenceMix::mix_all`].
    pub fn mix_rate(&self) -> u32 {
        self.mix_rate
    }

    /// How many participants there are.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// No participants.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// Adds a participant whose audio is at `rate` (or changes its rate, keeping its flags).
    /// Refused: a rate that is not a whole number of samples per 20 ms or cannot be
    /// converted to the mix rate.
    pub fn join(&mut self, key: K, rate: u32) -> Result<(), ResampleError> {
        check_rate(rate, self.mix_rate)?;
        if !self.groups.iter().any(|g| g.rate == rate) {
            self.groups.push(RateGroup::new(rate, self.mix_rate)?);
        }
        match self.participants.get_mut(&key) {
            Some(p) if p.rate == rate => {}
            Some(p) => {
                let mut fresh = Participant::new(rate);
                fresh.muted = p.muted;
                fresh.deaf = p.deaf;
                fresh.coaching = p.coaching;
                *p = fresh;
                self.rewire_coaches();
            }
            None => {
                self.participants.insert(key, Participant::new(rate));
            }
        }
        Ok(())
    }

    /// Removes a participant (and whom it coached). False if it was not there.
    pub fn leave(&mut self, key: K) -> bool {
        let found = self.participants.remove(&key).is_some();
        if found {
            self.rewire_coaches();
        }
        found
    }

    /// Whether `key` takes part.
    pub fn contains(&self, key: K) -> bool {
        self.participants.contains_key(&key)
    }

    /// Muted: its audio reaches nobody. False if there is no such participant.
    pub fn set_muted(&mut self, key: K, muted: bool) -> bool {
        self.participants
            .get_mut(&key)
            .map(|p| p.muted = muted)
            .is_some()
    }

    /// A beep ([`BEEP_MS`] of [`BEEP_HZ`]) from the next [`ConferenceMix::mix`] on, heard by
    /// every participant but `except` (the one who just entered: the others hear it come in)
    /// and in the recording. A beep still sounding starts over.
    pub fn beep(&mut self, except: Option<K>) {
        for (key, p) in self.participants.iter_mut() {
            if Some(*key) != except {
                p.beep.start(p.rate);
            }
        }
        self.all_beep.start(self.mix_rate);
    }

    /// Deaf (hold): it hears nothing. False if there is no such participant.
    pub fn set_deaf(&mut self, key: K, deaf: bool) -> bool {
        self.participants
            .get_mut(&key)
            .map(|p| p.deaf = deaf)
            .is_some()
    }

    /// Makes `coach` the coach of `target` (Some) or an ordinary participant again (None).
    /// False if either is not there, or a participant would coach itself.
    pub fn set_coach(&mut self, coach: K, target: Option<K>) -> bool {
        if let Some(t) = target {
            if t == coach || !self.participants.contains_key(&t) {
                return false;
            }
        }
        let Some(p) = self.participants.get_mut(&coach) else {
            return false;
        };
        p.coaching = target;
        self.rewire_coaches();
        true
    }

    /// After a join, leave or coach change: the coach list and each coach's resamplers.
    fn rewire_coaches(&mut self) {
        let rates: HashMap<K, u32> = self
            .participants
            .iter()
            .map(|(k, p)| (*k, p.rate))
            .collect();
        self.coaches.clear();
        let mix_rate = self.mix_rate;
        for (key, p) in self.participants.iter_mut() {
            let target_rate = p.coaching.and_then(|t| rates.get(&t).copied());
            let Some(target_rate) = target_rate else {
                p.coaching = None;
                p.to_target = None;
                p.to_mix = None;
                continue;
            };
            self.coaches.push(*key);
            let keep = |r: &Option<Resampler>, to: u32| {
                r.as_ref()
                    .is_some_and(|r| r.from_rate() == p.rate && r.to_rate() == to)
            };
            if target_rate == p.rate {
                p.to_target = None;
            } else if !keep(&p.to_target, target_rate) {
                p.to_target = Resampler::new(p.rate, target_rate).ok();
            }
            if mix_rate == p.rate {
                p.to_mix = None;
            } else if !keep(&p.to_mix, mix_rate) {
                p.to_mix = Resampler::new(p.rate, mix_rate).ok();
            }
        }
    }

    /// This tick's frame of `key`'s audio at `rate` (20 ms; shorter is padded with silence,
    /// longer is cut). A rate other than the one it joined with changes its rate. False if
    /// there is no such participant or the rate is refused.
    pub fn push(&mut self, key: K, frame: &[i16], rate: u32) -> bool {
        let current = match self.participants.get(&key) {
            Some(p) => p.rate,
            None => return false,
        };
        if current != rate && self.join(key, rate).is_err() {
            return false;
        }
        let Some(p) = self.participants.get_mut(&key) else {
            return false;
        };
        for (slot, s) in p
            .input
            .iter_mut()
            .zip(frame.iter().chain(std::iter::repeat(&0)))
        {
            *slot = f32::from(*s);
        }
        p.pushed = true;
        true
    }

    /// Mixes this tick: afterwards [`ConferenceMix::mix_for`] and [`ConferenceMix::mix_all`]
    /// give its audio. The frames pushed are consumed (a participant who pushes nothing
    /// next tick is silent).
    pub fn mix(&mut self) {
        // Each rate's room sum, at its rate.
        for g in self.groups.iter_mut() {
            g.members = 0;
            g.sum.iter_mut().for_each(|s| *s = 0.0);
        }
        for p in self.participants.values() {
            let Some(g) = self.groups.iter_mut().find(|g| g.rate == p.rate) else {
                continue;
            };
            g.members += 1;
            if p.in_room() {
                for (s, x) in g.sum.iter_mut().zip(&p.input) {
                    *s += x;
                }
            }
        }
        // A rate nobody has any more goes (its filters' state with it).
        self.groups.retain(|g| g.members > 0);
        // The room at the mix rate: each rate's sum converted once.
        let m = self.total.len();
        self.total.iter_mut().for_each(|s| *s = 0.0);
        for g in self.groups.iter_mut() {
            g.sum_mixed.clear();
            match g.up.as_mut() {
                Some(up) => up.process_f32(&g.sum, &mut g.sum_mixed),
                None => g.sum_mixed.extend_from_slice(&g.sum),
            }
            g.sum_mixed.resize(m, 0.0);
            for (t, s) in self.total.iter_mut().zip(&g.sum_mixed) {
                *t += s;
            }
        }
        // Each rate hears the others: total minus its own sum, converted back once.
        for g in self.groups.iter_mut() {
            g.others_mixed.clear();
            g.others_mixed
                .extend(self.total.iter().zip(&g.sum_mixed).map(|(t, own)| t - own));
            g.others.clear();
            match g.down.as_mut() {
                Some(down) => down.process_f32(&g.others_mixed, &mut g.others),
                None => g.others.extend_from_slice(&g.others_mixed),
            }
            g.others.resize(g.sum.len(), 0.0);
        }
        // The recording starts from the room.
        self.all.copy_from_slice(&self.total);
        // Coaches: converted to their participant's rate (whispers) and to the mix rate.
        for p in self.participants.values_mut() {
            p.whisper.iter_mut().for_each(|s| *s = 0.0);
        }
        for i in 0..self.coaches.len() {
            let Some(&coach_key) = self.coaches.get(i) else {
                break;
            };
            let (target, mut whisper) = {
                let Some(c) = self.participants.get_mut(&coach_key) else {
                    continue;
                };
                let speaking = c.pushed && !c.muted;
                let silent = !speaking;
                let input = &mut c.input;
                if silent {
                    input.iter_mut().for_each(|s| *s = 0.0);
                }
                // Converted every tick (silence included) so the filters stay continuous.
                let mut at_mix = std::mem::take(&mut c.coach_out);
                at_mix.clear();
                match c.to_mix.as_mut() {
                    Some(r) => r.process_f32(input, &mut at_mix),
                    None => at_mix.extend_from_slice(input),
                }
                for (a, x) in self.all.iter_mut().zip(&at_mix) {
                    *a += x;
                }
                at_mix.clear();
                match c.to_target.as_mut() {
                    Some(r) => r.process_f32(input, &mut at_mix),
                    None => at_mix.extend_from_slice(input),
                }
                (c.coaching, at_mix)
            };
            if let Some(t) = target.and_then(|t| self.participants.get_mut(&t)) {
                for (w, x) in t.whisper.iter_mut().zip(&whisper) {
                    *w += x;
                }
            }
            whisper.clear();
            if let Some(c) = self.participants.get_mut(&coach_key) {
                c.coach_out = whisper;
            }
        }
        self.all_beep.add(&mut self.all, self.mix_rate);
        for (a, x) in self.all_out.iter_mut().zip(&self.all) {
            *a = soft_clip(*x);
        }
        // What each one hears: the other rates, its own rate's sum less itself, whispers.
        for p in self.participants.values_mut() {
            p.beep.add(&mut p.whisper, p.rate);
            let group = self.groups.iter().find(|g| g.rate == p.rate);
            match group {
                Some(g) if !p.deaf => {
                    let heard = g.others.iter().zip(&g.sum).zip(&p.whisper);
                    if p.in_room() {
                        for (o, (((a, b), w), own)) in p.out.iter_mut().zip(heard.zip(&p.input)) {
                            *o = soft_clip(a + b + w - own);
                        }
                    } else {
                        for (o, ((a, b), w)) in p.out.iter_mut().zip(heard) {
                            *o = soft_clip(a + b + w);
                        }
                    }
                }
                // Deaf (or, never, a rate without its group): silence.
                _ => p.out.iter_mut().for_each(|s| *s = 0),
            }
            p.pushed = false;
            p.input.iter_mut().for_each(|s| *s = 0.0);
        }
    }

    /// What `key` hears this tick (after [`ConferenceMix::mix`]): 20 ms at its rate.
    pub fn mix_for(&self, key: K) -> Option<&[i16]> {
        self.participants.get(&key).map(|p| &p.out[..])
    }

    /// Everyone this tick (the room and the coaches, not the muted), 20 ms at the mix rate:
    /// the conference's recording.
    pub fn mix_all(&self) -> &[i16] {
        &self.all_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{goertzel_dbfs, ToneGenerator};

    /// A participant's tone source at its rate.
    struct Voice {
        key: u32,
        rate: u32,
        gen: ToneGenerator,
        frame: Vec<i16>,
    }

    impl Voice {
        fn new(key: u32, rate: u32, freq: f32, amplitude: i16) -> Voice {
            Voice {
                key,
                rate,
                gen: ToneGenerator::new(rate, &[freq], amplitude),
                frame: vec![0; frame_len(rate)],
            }
        }
    }

    fn conference(mix_rate: u32, voices: &[Voice]) -> ConferenceMix<u32> {
        let Ok(mut c) = ConferenceMix::new(mix_rate) else {
            panic!("mix rate");
        };
        for v in voices {
            assert!(c.join(v.key, v.rate).is_ok());
        }
        c
    }

    /// Runs `ticks` ticks; returns what each voice heard (after 10 ticks of warm-up) and the
    /// recording.
    fn run(
        c: &mut ConferenceMix<u32>,
        voices: &mut [Voice],
        ticks: usize,
    ) -> (HashMap<u32, Vec<i16>>, Vec<i16>) {
        let mut heard: HashMap<u32, Vec<i16>> = HashMap::new();
        let mut all = Vec::new();
        for tick in 0..ticks + 10 {
            for v in voices.iter_mut() {
                v.gen.fill(&mut v.frame);
                assert!(c.push(v.key, &v.frame, v.rate));
            }
            c.mix();
            if tick >= 10 {
                for v in voices.iter() {
                    let out = c.mix_for(v.key).unwrap_or(&[]);
                    assert_eq!(out.len(), frame_len(v.rate));
                    heard.entry(v.key).or_default().extend_from_slice(out);
                }
                all.extend_from_slice(c.mix_all());
            }
        }
        (heard, all)
    }

    fn level(x: &[i16], rate: u32, freq: f32) -> f32 {
        goertzel_dbfs(x, rate, freq)
    }

    /// A tone of amplitude 8000 is at about -12.3 dBFS.
    const HEARD: f32 = -13.0;
    const ABSENT: f32 = -70.0;

    #[test]
    fn each_hears_the_others_never_itself() {
        let mut voices = vec![
            Voice::new(1, 8000, 500.0, 8000),
            Voice::new(2, 8000, 1000.0, 8000),
            Voice::new(3, 8000, 1500.0, 8000),
        ];
        let mut c = conference(8000, &voices);
        let (heard, all) = run(&mut c, &mut voices, 50);
        let freqs = [(1, 500.0), (2, 1000.0), (3, 1500.0)];
        for (listener, _) in freqs {
            let h = &heard[&listener];
            for (speaker, f) in freqs {
                let l = level(h, 8000, f);
                if speaker == listener {
                    assert!(l < ABSENT, "{listener} hears itself: {l}");
                } else {
                    assert!(l > HEARD, "{listener} misses {speaker}: {l}");
                }
            }
        }
        for (_, f) in freqs {
            assert!(level(&all, 8000, f) > HEARD);
        }
    }

    #[test]
    fn mute_deaf_and_coach() {
        let mut voices = vec![
            Voice::new(1, 8000, 500.0, 8000),
            Voice::new(2, 8000, 1000.0, 8000),
            Voice::new(3, 8000, 1500.0, 8000),
            Voice::new(4, 8000, 2000.0, 8000),
        ];
        let mut c = conference(8000, &voices);
        assert!(c.set_muted(1, true));
        assert!(c.set_deaf(2, true));
        // 4 coaches 3.
        assert!(c.set_coach(4, Some(3)));
        assert!(!c.set_coach(4, Some(4)));
        assert!(!c.set_coach(4, Some(99)));
        assert!(!c.set_muted(99, true));
        let (heard, all) = run(&mut c, &mut voices, 50);
        let l = |who: u32, f: f32| level(&heard[&who], 8000, f);
        // Muted 1 reaches nobody, nor the recording; it still hears 2 and 3 (not coach 4).
        for who in [2, 3, 4] {
            assert!(l(who, 500.0) < ABSENT, "{who} hears muted 1");
        }
        assert!(level(&all, 8000, 500.0) < ABSENT);
        assert!(l(1, 1000.0) > HEARD && l(1, 1500.0) > HEARD);
        assert!(l(1, 2000.0) < ABSENT, "1 hears the coach");
        // Deaf 2 hears nothing, is heard.
        assert!(heard[&2].iter().all(|&s| s == 0));
        assert!(l(3, 1000.0) > HEARD);
        // Only 3 hears its coach; the coach hears everyone unmuted.
        assert!(l(3, 2000.0) > HEARD);
        assert!(l(4, 1000.0) > HEARD && l(4, 1500.0) > HEARD);
        assert!(l(4, 2000.0) < ABSENT);
        assert!(level(&all, 8000, 2000.0) > HEARD, "recording has the coach");
        // Back to ordinary: everyone hears 4; a coach leaving its participant is harmless.
        assert!(c.set_coach(4, None));
        assert!(c.set_coach(1, Some(3)));
        assert!(c.leave(3));
        assert!(!c.leave(3));
        let (heard, _) = run(&mut c, &mut voices[..2], 20);
        assert!(level(&heard[&1], 8000, 1000.0) > HEARD);
    }

    #[test]
    fn mixed_rates() {
        // Six tones of 4000 stay under the clipping knee (which would add intermodulation).
        const QUIET_HEARD: f32 = HEARD - 6.5;
        let mut voices = vec![
            Voice::new(1, 8000, 500.0, 4000),
            Voice::new(2, 16_000, 1000.0, 4000),
            Voice::new(3, 48_000, 1500.0, 4000),
            Voice::new(4, 16_000, 2500.0, 4000),
            Voice::new(5, 48_000, 3000.0, 4000),
        ];
        let freqs = [
            (1, 500.0),
            (2, 1000.0),
            (3, 1500.0),
            (4, 2500.0),
            (5, 3000.0),
        ];
        for mix_rate in [8000, 16_000, 48_000] {
            let mut c = conference(mix_rate, &voices);
            // A wideband coach for the narrowband participant.
            assert!(c.join(6, 48_000).is_ok());
            assert!(c.set_coach(6, Some(1)));
            voices.push(Voice::new(6, 48_000, 2000.0, 4000));
            let (heard, all) = run(&mut c, &mut voices, 50);
            voices.pop();
            for v in voices.iter() {
                let h = &heard[&v.key];
                for (speaker, f) in freqs {
                    let l = level(h, v.rate, f);
                    if speaker == v.key {
                        assert!(l < ABSENT, "{mix_rate}: {} hears itself: {l}", v.key);
                    } else {
                        assert!(
                            l > QUIET_HEARD,
                            "{mix_rate}: {} misses {speaker}: {l}",
                            v.key
                        );
                    }
                }
                let whisper = level(h, v.rate, 2000.0);
                if v.key == 1 {
                    assert!(whisper > QUIET_HEARD, "{mix_rate}: coach to 1: {whisper}");
                } else {
                    assert!(whisper < ABSENT, "{mix_rate}: {} hears the coach", v.key);
                }
            }
            for (_, f) in freqs {
                assert!(
                    level(&all, mix_rate, f) > QUIET_HEARD,
                    "{mix_rate}: rec {f}"
                );
            }
            assert!(level(&all, mix_rate, 2000.0) > QUIET_HEARD);
        }
    }

    #[test]
    fn loud_input_is_soft_clipped() {
        let mut voices: Vec<Voice> = (0..6)
            .map(|k| Voice::new(k, 8000, 1000.0, i16::MAX))
            .collect();
        let mut c = conference(8000, &voices);
        let (heard, all) = run(&mut c, &mut voices, 10);
        for h in heard.values().chain([&all]) {
            let peak = h.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            assert!(peak > 30_000, "{peak}");
            // Never wrapped: the waveform keeps the sign of the sum.
            assert!(h.iter().any(|&s| s > 30_000) && h.iter().any(|&s| s < -30_000));
        }
        assert_eq!(soft_clip(1000.0), 1000);
        assert_eq!(soft_clip(-24_000.0), -24_000);
        assert_eq!(soft_clip(1e9), i16::MAX);
        assert_eq!(soft_clip(-1e9), -i16::MAX);
        assert_eq!(soft_clip(f32::NAN), 0);
        assert!(soft_clip(30_000.0) < 30_000 && soft_clip(30_000.0) > 28_000);
    }

    #[test]
    fn nobody_or_alone_is_silence() {
        let Ok(mut c) = ConferenceMix::<u32>::new(16_000) else {
            panic!("mix rate");
        };
        c.mix();
        assert!(c.is_empty());
        assert!(c.mix_all().iter().all(|&s| s == 0));
        assert_eq!(c.mix_all().len(), 320);
        assert_eq!(c.mix_for(1), None);
        assert!(!c.push(1, &[1; 160], 8000));
        let mut voices = vec![Voice::new(1, 8000, 1000.0, 8000)];
        assert!(c.join(1, 8000).is_ok());
        let (heard, all) = run(&mut c, &mut voices, 5);
        assert!(heard[&1].iter().all(|&s| s == 0));
        assert!(level(&all, 16_000, 1000.0) > HEARD);
    }

    /// Someone enters: for [`BEEP_MS`] the others hear the beep over the conference, the one
    /// who entered does not; then it is gone. The recording has it. Virtual time: 20 ms a mix.
    #[test]
    fn a_beep_is_heard_by_the_others_for_its_length() {
        let mut voices = vec![
            Voice::new(1, 8000, 500.0, 8000),
            Voice::new(2, 16_000, 1000.0, 8000),
            Voice::new(3, 8000, 1500.0, 8000),
        ];
        let mut c = conference(16_000, &voices);
        // Before: no beep anywhere.
        let (heard, all) = run(&mut c, &mut voices, 20);
        for v in &voices {
            assert!(level(&heard[&v.key], v.rate, BEEP_HZ) < ABSENT, "{}", v.key);
        }
        assert!(level(&all, 16_000, BEEP_HZ) < ABSENT);
        c.beep(Some(3));
        let beep_ticks = (BEEP_MS / 20) as usize;
        let mut during: HashMap<u32, Vec<i16>> = HashMap::new();
        let mut all_during = Vec::new();
        for _ in 0..beep_ticks {
            for v in voices.iter_mut() {
                v.gen.fill(&mut v.frame);
                assert!(c.push(v.key, &v.frame, v.rate));
            }
            c.mix();
            for v in &voices {
                let out = c.mix_for(v.key).unwrap_or(&[]);
                during.entry(v.key).or_default().extend_from_slice(out);
            }
            all_during.extend_from_slice(c.mix_all());
        }
        for v in &voices {
            let l = level(&during[&v.key], v.rate, BEEP_HZ);
            if v.key == 3 {
                assert!(l < ABSENT, "the one who entered hears no beep: {l}");
            } else {
                assert!(l > -20.0, "{} misses the beep: {l}", v.key);
            }
            // The conference goes on under it.
            let other = if v.key == 1 { 1000.0 } else { 500.0 };
            assert!(level(&during[&v.key], v.rate, other) > HEARD, "{}", v.key);
        }
        assert!(level(&all_during, 16_000, BEEP_HZ) > -20.0);
        // Over: run() skips 10 ticks, then nothing of it is left.
        let (heard, all) = run(&mut c, &mut voices, 20);
        for v in &voices {
            assert!(level(&heard[&v.key], v.rate, BEEP_HZ) < ABSENT, "{}", v.key);
        }
        assert!(level(&all, 16_000, BEEP_HZ) < ABSENT);
        // Nobody to spare: everyone hears it; an unknown key spares nobody.
        c.beep(None);
        c.beep(Some(99));
        c.mix();
        for v in &voices {
            assert!(c.mix_for(v.key).is_some_and(|o| o.iter().any(|&s| s != 0)));
        }
    }

    #[test]
    fn odd_input_never_panics() {
        assert!(ConferenceMix::<u32>::new(0).is_err());
        assert!(ConferenceMix::<u32>::new(8001).is_err());
        let Ok(mut c) = ConferenceMix::<u32>::new(8000) else {
            panic!("mix rate");
        };
        assert!(c.join(1, 0).is_err());
        assert!(c.join(1, 8001).is_err());
        assert!(c.join(1, 8000).is_ok());
        assert!(c.join(2, 16_000).is_ok());
        // Short, long and empty frames; a rate change mid-call; a bad rate refused.
        assert!(c.push(1, &[], 8000));
        assert!(c.push(2, &[7; 5000], 16_000));
        c.mix();
        assert_eq!(c.mix_for(1).map(<[i16]>::len), Some(160));
        assert!(c.push(1, &[3; 7], 48_000));
        assert!(!c.push(2, &[3; 7], 12_345));
        c.mix();
        assert_eq!(c.mix_for(1).map(<[i16]>::len), Some(960));
        assert_eq!(c.mix_for(2).map(<[i16]>::len), Some(320));
        assert_eq!(c.len(), 2);
        // The 16 kHz participant left: its rate's filters go.
        assert!(c.leave(2));
        c.mix();
        assert_eq!(c.groups.len(), 1);
        assert!(c.contains(1) && !c.contains(2));
    }
}

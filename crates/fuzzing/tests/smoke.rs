//! The fuzz targets on stable: each runs over its checked-in seed corpus
//! (`fuzz/corpus/<target>/`, which also keeps every crash input found so far) and then over
//! mutations of it (bit flips, byte edits, cut, repeated and spliced ranges) from a fixed seed,
//! for at most `FUZZ_SMOKE_ITERS` inputs (default 3000) or `FUZZ_SMOKE_SECS` seconds (default 4)
//! per target. A failing input is written to `target/fuzz-smoke/<target>-<n>` and its bytes are
//! printed, so it can be replayed with `cargo +nightly fuzz run <target> <file>`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that mean something to at least one of the parsers.
const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\0",
    b"\xff",
    b"\xc3\xa9",
    b"=",
    b":",
    b";",
    b",",
    b"/",
    b" ",
    b"${",
    b"%{",
    b"}",
    b"\"",
    b"'",
    b"[",
    b"]",
    b"{",
    b"-1",
    b"0",
    b"65535",
    b"4294967296",
    b"99999999999999999999",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                input.drain(a..b);
            }
            4 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let chunk = input[a..b].to_vec();
                let at = rng.below(len + 1);
                for _ in 0..=rng.below(3) {
                    input.splice(at..at, chunk.iter().copied());
                }
            }
            5 => {
                let token = INTERESTING[rng.below(INTERESTING.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            6 if !others.is_empty() => {
                let other = &others[rng.below(others.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(256)).min(other.len());
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[a..b].iter().copied());
                }
            }
            7 if len > 0 => input.truncate(rng.below(len)),
            _ => {}
        }
    }
}

fn run_one(name: &str, target: fuzzing::Target, input: &[u8], n: usize) {
    let outcome = std::panic::catch_unwind(|| target(input));
    if let Err(panic) = outcome {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-smoke");
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{name}-{n}"));
        let _ = std::fs::write(&file, input);
        eprintln!(
            "{name}: input {n} failed (saved to {}): {:?}",
            file.display(),
            String::from_utf8_lossy(input)
        );
        std::panic::resume_unwind(panic);
    }
}

fn smoke(name: &str) {
    let target = fuzzing::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a known target");
    let corpus = seeds(name);
    assert!(!corpus.is_empty(), "{name}: empty seed corpus");
    for (n, input) in corpus.iter().enumerate() {
        run_one(name, target, input, n);
    }
    let iters = env_or("FUZZ_SMOKE_ITERS", 3000) as usize;
    let deadline = Instant::now() + Duration::from_secs(env_or("FUZZ_SMOKE_SECS", 4));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let mut done = 0;
    while done < iters && Instant::now() < deadline {
        let mut input = corpus[rng.below(corpus.len())].clone();
        mutate(&mut rng, &mut input, &corpus);
        run_one(name, target, &input, corpus.len() + done);
        done += 1;
    }
    eprintln!("{name}: {} seeds, {done} mutated inputs", corpus.len());
}

macro_rules! smoke_tests {
    ($($name:ident),+ $(,)?) => {
        $(#[test]
        fn $name() {
            smoke(stringify!($name));
        })+

        #[test]
        fn every_target_has_a_smoke_test() {
            let tested = [$(stringify!($name)),+];
            for (name, _) in fuzzing::TARGETS {
                assert!(tested.contains(name), "{name} has no smoke test");
            }
        }
    };
}

smoke_tests!(
    sdp_parse,
    sdp_negotiate,
    rtp_packet,
    rtcp_packet,
    udptl_packet,
    swml_document,
    swml_expr,
    call_command,
    sip_message,
    sip_fields,
    audio_decode,
);

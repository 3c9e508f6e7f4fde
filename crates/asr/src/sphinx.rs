//! The embedded engine: Debian's libpocketsphinx 5prealpha (and libsphinxbase), opened with
//! dlopen by soname at run time because the -dev packages (headers, unversioned .so) are not
//! installable here. Only the handful of C functions below are declared, with the signatures of
//! the 5prealpha headers (`ps_get_hyp` takes two arguments there, not 0.8's three).
//!
//! Decoders are expensive to create (the acoustic model loads each time), so the engine keeps
//! idle decoders in a pool and a recognition borrows one; each recognition installs its own
//! JSGF search. 8 kHz audio is upsampled to the model's 16 kHz with a half-band interpolator,
//! which recognised flite's 8 kHz speech reliably, rather than re-tuning the front end.

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use libloading::Library;
use tracing::{debug, info};

use crate::grammar;
use crate::{AsrError, RecognitionRequest, Recognizer, SpeechEngine, Transcript};

/// Where Debian installs the US English model.
pub const DEFAULT_MODEL_DIR: &str = "/usr/share/pocketsphinx/model/en-us";
/// Idle decoders kept for reuse; more concurrent recognitions create (and later free) extras.
const POOL_MAX: usize = 4;
/// The acoustic model's sample rate.
const MODEL_RATE: u32 = 16_000;
/// Search name every recognition installs (replacing the previous one on the decoder).
const SEARCH: &CStr = c"dialtone";
/// The dictionary a grammar decoder starts with: none (an empty file).
const GRAMMAR_DICT: &CStr = c"/dev/null";

type CmdLnParseR =
    unsafe extern "C" fn(*mut c_void, *const c_void, i32, *const *const c_char, i32) -> *mut c_void;
type CmdLnFreeR = unsafe extern "C" fn(*mut c_void) -> c_int;
type PsArgs = unsafe extern "C" fn() -> *const c_void;
type PsInit = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type PsFree = unsafe extern "C" fn(*mut c_void) -> c_int;
type PsSetJsgfString = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> c_int;
type PsSetSearch = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;
type PsSetLmFile = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> c_int;
type PsAddWord = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, c_int) -> c_int;
type PsUtt = unsafe extern "C" fn(*mut c_void) -> c_int;
type PsProcessRaw = unsafe extern "C" fn(*mut c_void, *const i16, usize, c_int, c_int) -> c_int;
type PsGetHyp = unsafe extern "C" fn(*mut c_void, *mut i32) -> *const c_char;
type PsGetProb = unsafe extern "C" fn(*mut c_void) -> i32;
type PsGetLogmath = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type LogmathExp = unsafe extern "C" fn(*mut c_void, c_int) -> f64;
type PsGetNFrames = unsafe extern "C" fn(*mut c_void) -> c_int;

/// The loaded libraries and the functions taken from them.
struct Lib {
    cmd_ln_parse_r: CmdLnParseR,
    cmd_ln_free_r: CmdLnFreeR,
    ps_args: PsArgs,
    ps_init: PsInit,
    ps_free: PsFree,
    ps_set_jsgf_string: PsSetJsgfString,
    ps_set_search: PsSetSearch,
    ps_set_lm_file: PsSetLmFile,
    ps_add_word: PsAddWord,
    ps_start_utt: PsUtt,
    ps_end_utt: PsUtt,
    ps_process_raw: PsProcessRaw,
    ps_get_hyp: PsGetHyp,
    ps_get_prob: PsGetProb,
    ps_get_logmath: PsGetLogmath,
    logmath_exp: LogmathExp,
    ps_get_n_frames: PsGetNFrames,
    // Keep the libraries mapped as long as the function pointers above live.
    _sphinxbase: Library,
    _pocketsphinx: Library,
}

fn sym<T: Copy>(lib: &Library, name: &str) -> Result<T, AsrError> {
    // SAFETY: the caller names a function whose C signature matches `T` (5prealpha headers).
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| AsrError::Unavailable(format!("{name}: {e}")))
}

impl Lib {
    fn load() -> Result<Lib, AsrError> {
        // SAFETY: loading Debian's libraries runs their (trivial) initialisers only.
        let base = unsafe { Library::new("libsphinxbase.so.3") }
            .map_err(|e| AsrError::Unavailable(format!("libsphinxbase.so.3: {e}")))?;
        // SAFETY: as above.
        let ps = unsafe { Library::new("libpocketsphinx.so.3") }
            .map_err(|e| AsrError::Unavailable(format!("libpocketsphinx.so.3: {e}")))?;
        Ok(Lib {
            cmd_ln_parse_r: sym(&base, "cmd_ln_parse_r")?,
            cmd_ln_free_r: sym(&base, "cmd_ln_free_r")?,
            logmath_exp: sym(&base, "logmath_exp")?,
            ps_args: sym(&ps, "ps_args")?,
            ps_init: sym(&ps, "ps_init")?,
            ps_free: sym(&ps, "ps_free")?,
            ps_set_jsgf_string: sym(&ps, "ps_set_jsgf_string")?,
            ps_set_search: sym(&ps, "ps_set_search")?,
            ps_set_lm_file: sym(&ps, "ps_set_lm_file")?,
            ps_add_word: sym(&ps, "ps_add_word")?,
            ps_start_utt: sym(&ps, "ps_start_utt")?,
            ps_end_utt: sym(&ps, "ps_end_utt")?,
            ps_process_raw: sym(&ps, "ps_process_raw")?,
            ps_get_hyp: sym(&ps, "ps_get_hyp")?,
            ps_get_prob: sym(&ps, "ps_get_prob")?,
            ps_get_logmath: sym(&ps, "ps_get_logmath")?,
            ps_get_n_frames: sym(&ps, "ps_get_n_frames")?,
            _sphinxbase: base,
            _pocketsphinx: ps,
        })
    }
}

/// One pocketsphinx decoder (owned; freed on drop).
struct Decoder {
    ps: *mut c_void,
    lib: Arc<Lib>,
    /// Words given to a grammar decoder so far (it starts with an empty dictionary).
    known: HashSet<String>,
}

/// The pronunciation dictionary (`cmudict-en-us.dict`), read once for every decoder: a
/// grammar decoder starts with none of it and is given the words its grammar uses, where one
/// loaded with the whole dictionary held ~14 MiB of it (docs/benchmarks.md, "AI turn
/// latency": the memory per agent).
struct Pronunciations(HashMap<String, Vec<Box<str>>>);

impl Pronunciations {
    /// Entries are `word PHONES`, alternates `word(2) PHONES`.
    fn parse(text: &str) -> Pronunciations {
        let mut words: HashMap<String, Vec<Box<str>>> = HashMap::new();
        for line in text.lines() {
            let Some((word, phones)) = line.trim().split_once(char::is_whitespace) else {
                continue;
            };
            let word = word.split('(').next().unwrap_or(word);
            let phones = phones.split_whitespace().collect::<Vec<_>>().join(" ");
            if !word.is_empty() && !phones.is_empty() {
                words
                    .entry(word.to_string())
                    .or_default()
                    .push(phones.into());
            }
        }
        Pronunciations(words)
    }

    /// Phones of the first pronunciation.
    fn phone_count(&self, word: &str) -> Option<usize> {
        let first = self.0.get(word)?.first()?;
        Some(first.split(' ').count())
    }
}

// SAFETY: a decoder is used by one thread at a time (it moves between the pool and one
// recognizer); pocketsphinx keeps no thread-local state.
unsafe impl Send for Decoder {}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: `ps` came from ps_init and is freed exactly once.
        unsafe { (self.lib.ps_free)(self.ps) };
    }
}

/// Where the model lives and how the decoder logs.
#[derive(Debug, Clone)]
pub struct PocketsphinxConfig {
    /// Directory holding `en-us/` (acoustic model) and `cmudict-en-us.dict`.
    pub model_dir: PathBuf,
}

impl Default for PocketsphinxConfig {
    fn default() -> Self {
        PocketsphinxConfig {
            model_dir: PathBuf::from(DEFAULT_MODEL_DIR),
        }
    }
}

/// The embedded engine. Construction loads the libraries, the dictionary and one decoder, so a
/// missing library or model is reported once, up front.
pub struct Pocketsphinx {
    lib: Arc<Lib>,
    hmm: CString,
    dict: CString,
    /// Every dictionary word's pronunciations.
    words: Arc<Pronunciations>,
    pool: Arc<Mutex<Vec<Decoder>>>,
    /// The statistical language model of free-form transcription (`en-us.lm.bin`), if there.
    lm: Option<CString>,
}

impl Pocketsphinx {
    pub fn new(cfg: PocketsphinxConfig) -> Result<Pocketsphinx, AsrError> {
        let hmm_path = cfg.model_dir.join("en-us");
        let dict_path = cfg.model_dir.join("cmudict-en-us.dict");
        if !hmm_path.join("mdef").is_file() {
            return Err(AsrError::Unavailable(format!(
                "no acoustic model at {}",
                hmm_path.display()
            )));
        }
        let text = std::fs::read_to_string(&dict_path).map_err(|e| {
            AsrError::Unavailable(format!("dictionary {}: {e}", dict_path.display()))
        })?;
        let words = Pronunciations::parse(&text);
        let cstr = |p: PathBuf| {
            CString::new(p.to_string_lossy().into_owned())
                .map_err(|_| AsrError::Unavailable("model path contains NUL".into()))
        };
        let lm_path = cfg.model_dir.join("en-us.lm.bin");
        let lm = if lm_path.is_file() {
            Some(cstr(lm_path)?)
        } else {
            None
        };
        let engine = Pocketsphinx {
            lib: Arc::new(Lib::load()?),
            hmm: cstr(hmm_path)?,
            dict: cstr(dict_path)?,
            lm,
            words: Arc::new(words),
            pool: Arc::new(Mutex::new(Vec::new())),
        };
        let first = engine.new_decoder(GRAMMAR_DICT)?;
        if let Ok(mut pool) = engine.pool.lock() {
            pool.push(first);
        }
        info!(words = engine.words.0.len(), "pocketsphinx loaded");
        Ok(engine)
    }

    /// Whether `word` (normalised) is in the pronunciation dictionary.
    pub fn knows(&self, word: &str) -> bool {
        self.words.0.contains_key(word)
    }

    /// A decoder whose dictionary is the file `dict` ([`GRAMMAR_DICT`]: none; grammar words
    /// are added as needed by [`Pocketsphinx::teach`]).
    fn new_decoder(&self, dict: &CStr) -> Result<Decoder, AsrError> {
        let args: [&CStr; 6] = [
            c"-hmm",
            self.hmm.as_c_str(),
            c"-dict",
            dict,
            // pocketsphinx logs verbosely to stderr otherwise; failures surface as null returns.
            c"-logfn",
            c"/dev/null",
        ];
        let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        let lib = &self.lib;
        // SAFETY: argv holds `argc` valid C strings that outlive the call; ps_args() is the
        // decoder's static argument table.
        let config = unsafe {
            (lib.cmd_ln_parse_r)(
                std::ptr::null_mut(),
                (lib.ps_args)(),
                argv.len() as i32,
                argv.as_ptr(),
                1,
            )
        };
        if config.is_null() {
            return Err(AsrError::Unavailable(
                "pocketsphinx rejected its arguments".into(),
            ));
        }
        // SAFETY: config is valid; ps_init takes its own reference, so ours is released after.
        let ps = unsafe { (lib.ps_init)(config) };
        // SAFETY: our reference from cmd_ln_parse_r.
        unsafe { (lib.cmd_ln_free_r)(config) };
        if ps.is_null() {
            return Err(AsrError::Unavailable(
                "pocketsphinx failed to initialise".into(),
            ));
        }
        Ok(Decoder {
            ps,
            lib: self.lib.clone(),
            known: HashSet::new(),
        })
    }

    fn take_decoder(&self) -> Result<Decoder, AsrError> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        match pooled {
            Some(d) => Ok(d),
            None => self.new_decoder(GRAMMAR_DICT),
        }
    }

    /// Gives a grammar decoder the pronunciations of `words` it does not have yet.
    fn teach<'w>(
        &self,
        dec: &mut Decoder,
        words: impl Iterator<Item = &'w str>,
    ) -> Result<(), AsrError> {
        for word in words {
            if dec.known.contains(word) {
                continue;
            }
            let Some(variants) = self.words.0.get(word) else {
                continue;
            };
            for (i, phones) in variants.iter().enumerate() {
                let name = if i == 0 {
                    word.to_string()
                } else {
                    format!("{word}({})", i + 1)
                };
                let (Ok(name), Ok(phones)) = (CString::new(name), CString::new(&**phones)) else {
                    continue;
                };
                // SAFETY: valid decoder and C strings; `update` 0: the grammar set next sees it.
                let rc =
                    unsafe { (dec.lib.ps_add_word)(dec.ps, name.as_ptr(), phones.as_ptr(), 0) };
                if rc < 0 && i == 0 {
                    return Err(AsrError::Engine(format!("the word {word} was refused")));
                }
            }
            dec.known.insert(word.to_string());
        }
        Ok(())
    }
}

impl SpeechEngine for Pocketsphinx {
    fn name(&self) -> &str {
        "pocketsphinx"
    }

    fn start(&self, req: &RecognitionRequest) -> Result<Box<dyn Recognizer>, AsrError> {
        let upsample = match req.sample_rate {
            8_000 => true,
            MODEL_RATE => false,
            r => {
                return Err(AsrError::Engine(format!(
                    "sample rate {r} Hz not supported (8000 or 16000)"
                )))
            }
        };
        let phrases = grammar::phrases(req, &|w| self.knows(w));
        let source = grammar::jsgf(&phrases, req.digits_allowed).ok_or(AsrError::EmptyGrammar)?;
        let source = CString::new(source).map_err(|_| AsrError::EmptyGrammar)?;
        let mut dec = self.take_decoder()?;
        let digits = req
            .digits_allowed
            .then_some(grammar::DIGIT_WORDS.as_slice());
        let used = phrases
            .iter()
            .flatten()
            .map(String::as_str)
            .chain(digits.into_iter().flatten().copied());
        self.teach(&mut dec, used)?;
        let lib = &dec.lib;
        // SAFETY: valid decoder and C strings; the search replaces the previous one by name.
        let rc = unsafe { (lib.ps_set_jsgf_string)(dec.ps, SEARCH.as_ptr(), source.as_ptr()) };
        if rc < 0 {
            return Err(AsrError::Engine("grammar rejected".into()));
        }
        // SAFETY: as above.
        if unsafe { (lib.ps_set_search)(dec.ps, SEARCH.as_ptr()) } < 0
            || unsafe { (lib.ps_start_utt)(dec.ps) } < 0
        {
            return Err(AsrError::Engine("could not start the utterance".into()));
        }
        debug!(phrases = phrases.len(), "recognition started");
        Ok(Box::new(SphinxRecognizer {
            dec: Some(dec),
            pool: self.pool.clone(),
            up: upsample.then(Upsampler::new),
            scratch: Vec::new(),
            words: self.words.clone(),
            levels: Vec::new(),
            level_acc: (0.0, 0),
            rate: req.sample_rate,
            last_partial: String::new(),
            failed: None,
        }))
    }
}

/// The embedded default for whole-call transcripts: pocketsphinx with its US English language
/// model, on a decoder of its own (the model is large: loaded per transcript, freed after).
/// Its accuracy on telephone audio is low (docs/streaming.md "Transcription").
impl crate::Transcriber for Pocketsphinx {
    fn name(&self) -> &str {
        "pocketsphinx (language model)"
    }

    fn transcribe(&self, pcm: &[i16], rate: u32, _language: &str) -> Result<String, AsrError> {
        let lm = self.lm.as_ref().ok_or_else(|| {
            AsrError::Unavailable("no language model (en-us.lm.bin) for free-form speech".into())
        })?;
        let upsample = match rate {
            8_000 => true,
            MODEL_RATE => false,
            r => {
                return Err(AsrError::Engine(format!(
                    "sample rate {r} Hz not supported (8000 or 16000)"
                )))
            }
        };
        let dec = self.new_decoder(&self.dict)?;
        let lib = &dec.lib;
        // SAFETY: valid decoder and C strings; the search is added by name, then selected.
        let rc = unsafe { (lib.ps_set_lm_file)(dec.ps, LM_SEARCH.as_ptr(), lm.as_ptr()) };
        if rc < 0 || unsafe { (lib.ps_set_search)(dec.ps, LM_SEARCH.as_ptr()) } < 0 {
            return Err(AsrError::Unavailable(
                "the language model did not load".into(),
            ));
        }
        let mut up = upsample.then(Upsampler::new);
        let mut scratch = Vec::new();
        let mut texts = Vec::new();
        for piece in crate::transcription_pieces(pcm, rate) {
            let data: &[i16] = match up.as_mut() {
                Some(u) => {
                    scratch.clear();
                    u.process(piece, &mut scratch);
                    &scratch
                }
                None => piece,
            };
            // SAFETY: valid decoder; `data` readable for its length; one utterance per piece.
            unsafe {
                if (lib.ps_start_utt)(dec.ps) < 0 {
                    return Err(AsrError::Engine("could not start the utterance".into()));
                }
                let rc = (lib.ps_process_raw)(dec.ps, data.as_ptr(), data.len(), 0, 1);
                (lib.ps_end_utt)(dec.ps);
                if rc < 0 {
                    return Err(AsrError::Engine("decoding failed".into()));
                }
            }
            texts.push(SphinxRecognizer::hyp(&dec).0);
        }
        Ok(crate::join_pieces(texts))
    }
}

/// The name of the language-model search.
const LM_SEARCH: &CStr = c"transcript";

struct SphinxRecognizer {
    dec: Option<Decoder>,
    pool: Arc<Mutex<Vec<Decoder>>>,
    up: Option<Upsampler>,
    scratch: Vec<i16>,
    words: Arc<Pronunciations>,
    /// Energy of each 10 ms of the audio pushed, for the voiced duration.
    levels: Vec<f64>,
    /// The 10 ms block in progress: energy sum and samples.
    level_acc: (f64, u32),
    rate: u32,
    last_partial: String,
    failed: Option<String>,
}

impl SphinxRecognizer {
    fn hyp(dec: &Decoder) -> (String, i32) {
        let mut score = 0i32;
        // SAFETY: valid decoder; the returned string is owned by it and copied at once.
        let p = unsafe { (dec.lib.ps_get_hyp)(dec.ps, &mut score) };
        if p.is_null() {
            return (String::new(), score);
        }
        // SAFETY: non-null NUL-terminated string from pocketsphinx.
        let text = unsafe { CStr::from_ptr(p) }
            .to_string_lossy()
            .trim()
            .to_string();
        (text, score)
    }
}

impl Recognizer for SphinxRecognizer {
    fn push(&mut self, pcm: &[i16]) {
        let block = self.rate / 100;
        for &x in pcm {
            self.level_acc.0 += f64::from(x) * f64::from(x);
            self.level_acc.1 += 1;
            if self.level_acc.1 >= block {
                self.levels.push(self.level_acc.0 / f64::from(block.max(1)));
                self.level_acc = (0.0, 0);
            }
        }
        let Some(dec) = self.dec.as_ref() else {
            return;
        };
        let data: &[i16] = match self.up.as_mut() {
            Some(up) => {
                self.scratch.clear();
                up.process(pcm, &mut self.scratch);
                &self.scratch
            }
            None => pcm,
        };
        // SAFETY: valid decoder, `data` readable for its length.
        let rc = unsafe { (dec.lib.ps_process_raw)(dec.ps, data.as_ptr(), data.len(), 0, 0) };
        if rc < 0 && self.failed.is_none() {
            self.failed = Some("decoding failed".into());
        }
    }

    fn partial(&mut self) -> Option<String> {
        let dec = self.dec.as_ref()?;
        let (text, _) = Self::hyp(dec);
        if text.is_empty() || text == self.last_partial {
            return None;
        }
        self.last_partial = text.clone();
        Some(text)
    }

    fn finish(mut self: Box<Self>) -> Result<Transcript, AsrError> {
        let Some(dec) = self.dec.take() else {
            return Err(AsrError::Engine("recognizer already finished".into()));
        };
        // SAFETY: valid decoder with an utterance in progress.
        unsafe { (dec.lib.ps_end_utt)(dec.ps) };
        let (text, score) = Self::hyp(&dec);
        // SAFETY: valid decoder; the logmath belongs to it.
        let (posterior, frames) = unsafe {
            let lm = (dec.lib.ps_get_logmath)(dec.ps);
            let prob = (dec.lib.ps_get_prob)(dec.ps);
            let post = if lm.is_null() {
                1.0
            } else {
                (dec.lib.logmath_exp)(lm, prob)
            };
            (post, (dec.lib.ps_get_n_frames)(dec.ps))
        };
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < POOL_MAX {
                pool.push(dec);
            }
        }
        if let Some(e) = self.failed.take() {
            return Err(AsrError::Engine(e));
        }
        let phones: usize = text
            .split_whitespace()
            .map(|w| self.words.phone_count(w).unwrap_or(3))
            .sum();
        let voiced_ms = voiced_ms(&self.levels);
        let confidence = if text.is_empty() {
            0.0
        } else {
            confidence(posterior, voiced_ms, phones)
        };
        debug!(%text, score, frames, posterior, voiced_ms, phones, confidence, "recognised");
        Ok(Transcript { text, confidence })
    }
}

impl Drop for SphinxRecognizer {
    fn drop(&mut self) {
        // Abandoned mid-utterance: end it so the decoder is clean for the next user.
        if let Some(dec) = self.dec.take() {
            // SAFETY: valid decoder.
            unsafe { (dec.lib.ps_end_utt)(dec.ps) };
            if let Ok(mut pool) = self.pool.lock() {
                if pool.len() < POOL_MAX {
                    pool.push(dec);
                }
            }
        }
    }
}

/// Voiced audio in `levels` (energies of 10 ms blocks): blocks within [`VOICED_RANGE_DB`] of
/// the loudest, and above an absolute floor.
fn voiced_ms(levels: &[f64]) -> u32 {
    let peak = levels.iter().copied().fold(0.0f64, f64::max);
    let floor = (peak * 10f64.powf(-VOICED_RANGE_DB / 10.0)).max(VOICED_FLOOR_ENERGY);
    10 * levels.iter().filter(|&&e| e >= floor).count() as u32
}

/// Blocks quieter than the loudest by more than this are pauses.
const VOICED_RANGE_DB: f64 = 30.0;
/// -60 dBFS: below is silence whatever the peak.
const VOICED_FLOOR_ENERGY: f64 = 32768.0 * 32768.0 * 1e-6;
/// Typical spoken duration of one phone.
const MS_PER_PHONE: f64 = 80.0;

/// Confidence heuristic (0..1). A grammar decoder forces any speech onto the closest phrase
/// and its lattice posterior (ps_get_prob through logmath) stays near 1, so the posterior is
/// combined with how well the recognised words' expected duration (their dictionary phones
/// at [`MS_PER_PHONE`]) matches the voiced audio: speech outside the grammar comes out as a
/// few words covering much more speech (or the reverse). Within a factor of [`RATIO_OK`] the
/// score is [`MAX_CONFIDENCE`], falling to 0 at a factor of [`RATIO_ZERO`].
pub(crate) fn confidence(posterior: f64, voiced_ms: u32, phones: usize) -> f32 {
    let post = if posterior.is_finite() {
        posterior.clamp(0.0, 1.0)
    } else {
        0.0
    };
    if phones == 0 || voiced_ms == 0 {
        return 0.0;
    }
    let expected = phones as f64 * MS_PER_PHONE;
    let off = (f64::from(voiced_ms) / expected).ln().abs();
    let (ok, zero) = (RATIO_OK.ln(), RATIO_ZERO.ln());
    let fit = 1.0 - ((off - ok) / (zero - ok)).clamp(0.0, 1.0);
    (post * fit * MAX_CONFIDENCE) as f32
}

/// A grammar decoder is never certain.
pub const MAX_CONFIDENCE: f64 = 0.95;
const RATIO_OK: f64 = 1.8;
const RATIO_ZERO: f64 = 4.0;

/// 2x interpolator (8 → 16 kHz): zero-stuffing then a windowed-sinc low-pass at 4 kHz,
/// streaming (keeps its history across calls).
struct Upsampler {
    taps: Vec<f32>,
    hist: Vec<f32>,
}

const UP_TAPS: usize = 32;

impl Upsampler {
    fn new() -> Upsampler {
        // Low-pass at a quarter of the output rate; gain 2 restores the zero-stuffed level.
        let n = UP_TAPS as f32;
        let taps = (0..UP_TAPS)
            .map(|i| {
                let x = i as f32 - (n - 1.0) / 2.0;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    (std::f32::consts::PI * x / 2.0).sin() / (std::f32::consts::PI * x / 2.0)
                };
                let w = 0.54 - 0.46 * (2.0 * std::f32::consts::PI * i as f32 / (n - 1.0)).cos();
                sinc * w
            })
            .collect::<Vec<f32>>();
        Upsampler {
            taps,
            hist: vec![0.0; UP_TAPS],
        }
    }

    fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        for &s in input {
            for v in [f32::from(s), 0.0] {
                self.hist.rotate_left(1);
                if let Some(last) = self.hist.last_mut() {
                    *last = v;
                }
                let acc: f32 = self.hist.iter().zip(&self.taps).map(|(h, t)| h * t).sum();
                out.push(acc.clamp(-32768.0, 32767.0) as i16);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampler_doubles_and_keeps_a_low_tone() {
        let mut up = Upsampler::new();
        let tone: Vec<i16> = (0..800)
            .map(|i| {
                ((i as f32 * 2.0 * std::f32::consts::PI * 500.0 / 8000.0).sin() * 10_000.0) as i16
            })
            .collect();
        let mut out = Vec::new();
        up.process(&tone, &mut out);
        assert_eq!(out.len(), 1600);
        let peak = out[400..]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        assert!((9_000..=11_000).contains(&peak), "peak {peak}");
    }

    #[test]
    fn pronunciations_keep_every_variant_and_count_phones() {
        let d = Pronunciations::parse("read R EH D\nread(2) R IY D\nhello  HH AH L OW\n\nbroken\n");
        assert_eq!(d.0["read"].len(), 2);
        assert_eq!(&*d.0["read"][1], "R IY D");
        assert_eq!(d.phone_count("hello"), Some(4));
        assert_eq!(d.phone_count("broken"), None);
    }

    /// A grammar decoder starts with no dictionary and holds the words its grammars used, and
    /// recognition still works on it (crates/asr/tests hears real speech through it).
    #[test]
    fn a_grammar_decoder_learns_only_its_grammars_words() {
        let engine = Pocketsphinx::new(PocketsphinxConfig::default()).expect("model installed");
        let request = |hints: &[&str], digits: bool| RecognitionRequest {
            language: "en-US".into(),
            hints: hints.iter().map(|h| h.to_string()).collect(),
            sample_rate: 8000,
            digits_allowed: digits,
        };
        let known = |engine: &Pocketsphinx| -> HashSet<String> {
            let pool = engine.pool.lock().unwrap();
            pool.iter().flat_map(|d| d.known.iter().cloned()).collect()
        };
        let mut rec = engine
            .start(&request(&["weather in paris"], false))
            .unwrap();
        rec.push(&[0i16; 1600]);
        rec.finish().unwrap();
        let mut expected: HashSet<String> = ["weather", "in", "paris"]
            .iter()
            .chain(grammar::YES_NO_WORDS.iter())
            .map(|w| w.to_string())
            .collect();
        assert_eq!(known(&engine), expected);
        let mut rec = engine.start(&request(&[], true)).unwrap();
        rec.push(&[0i16; 1600]);
        rec.finish().unwrap();
        expected.extend(grammar::DIGIT_WORDS.iter().map(|w| w.to_string()));
        assert_eq!(known(&engine), expected);
    }

    #[test]
    fn voiced_duration_ignores_pauses() {
        let mut levels = vec![0.0; 50];
        levels.extend(std::iter::repeat_n(1e8, 30));
        levels.extend(std::iter::repeat_n(1e3, 20));
        assert_eq!(voiced_ms(&levels), 300);
        assert_eq!(voiced_ms(&[]), 0);
    }

    #[test]
    fn confidence_bounds() {
        // "yes please": 7 phones, ~560 ms expected.
        assert!((confidence(1.0, 600, 7) - 0.95).abs() < 1e-6);
        assert_eq!(confidence(1.0, 3000, 7), 0.0);
        assert_eq!(confidence(1.0, 100, 7), 0.0);
        assert_eq!(confidence(f64::NAN, 600, 7), 0.0);
        assert_eq!(confidence(1.0, 600, 0), 0.0);
        let mid = confidence(1.0, 1500, 7);
        assert!(mid > 0.0 && mid < 0.95, "{mid}");
        assert!(confidence(0.4, 600, 7) <= 0.4);
    }
}

"""Text to speech under abuse (issue 10, docs/security.md): caps on the text (422), and long text synthesised
sentence by sentence so its audio starts at once and the server's memory stays small.

The far end is sipp answering with RTP pointed at the test's RtpSink (as in test_playback.py); speech is told
from silence by its level in 100 ms windows; the reference duration of a text comes from the `flite` program
(the same engine and voice, synthesised whole)."""
import subprocess
import time
import wave

import pytest

from media_sink import ULAW, RtpSink, free_rtp_range, rms_db, windows
from test_calls import wait_status

FROM = "+15105550100"
HOLD = {"version": "1.0.0", "sections": {"main": [{"sleep": 60000}]}}
SENTENCES = [
    "Thank you for calling the support line of the example company.",
    "Your call is important to us, and it will be answered in the order it was received.",
    "While you wait, you can visit our web site, where most questions are answered.",
    "Please have your account number ready, so that we can help you more quickly!",
    "Did you know that you can also reach us by email at any time of the day?",
]


def long_text(chars):
    out = []
    i = 0
    while sum(len(s) + 1 for s in out) < chars:
        out.append(SENTENCES[i % len(SENTENCES)])
        i += 1
    return " ".join(out)[:chars].rsplit(" ", 1)[0] + "."


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


@pytest.fixture
def sink():
    s = RtpSink()
    yield s
    s.close()


@pytest.fixture
def node(start_dialtone):
    lo, hi = free_rtp_range(20)
    return start_dialtone({"DIALTONE_RTP_PORTS": f"{lo}-{hi}", "DIALTONE_LOG": "info"})


@pytest.fixture
def far(sipp, sink):
    return sipp("uas_rtp_sink.xml", keys={"rtp_sink": sink.port, "pt": 0, "codec": "PCMU"})


def answered_call(d, far):
    leg = d.sdk().calling.dial(from_=FROM, to=far.uri("svc"), swml=HOLD)
    wait_status(d, leg["id"], "answered")
    return leg["id"]


def speech_after(sink, t0, timeout):
    """Arrival time of the first packet after t0 that is not silence."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p in sink.snapshot():
            if p[0] >= t0 and rms_db([ULAW[b] for b in p[4]]) > -45:
                return p[0]
        time.sleep(0.02)
    return None


def test_over_cap_text_is_refused_with_422(node, far):
    cid = answered_call(node, far)
    r = node.post({"command": "calling.play", "id": cid, "params": {
        "play": [{"type": "tts", "params": {"text": "a" * 3001}}]}})
    assert r.status_code == 422, r.text
    item = r.json()["errors"][0]
    assert item["code"] == "invalid_parameter" and item["attribute"] == "play.0.params.text", item
    assert "3000" in item["message"], item
    r = node.post({"command": "calling.play", "id": cid, "params": {
        "play": [{"type": "tts", "params": {"text": long_text(2900)}}] * 4}})
    assert r.status_code == 422 and r.json()["errors"][0]["attribute"] == "play", r.text
    node.post({"command": "calling.end", "id": cid, "params": {"reason": "hangup"}})


def test_a_long_say_starts_at_once_with_little_memory(node, far, sink):
    cid = answered_call(node, far)
    text = long_text(2990)
    assert 2900 < len(text) <= 3000
    pid = node.proc.pid
    before, hwm_before = vm_kib(pid, "VmRSS"), vm_kib(pid, "VmHWM")
    t_play = time.time()
    r = node.post({"command": "calling.play", "id": cid, "params": {
        "control_id": "long", "play": [{"type": "tts", "params": {"text": text}}]}})
    assert r.status_code == 200, r.text
    first = speech_after(sink, t_play, timeout=5)
    assert first is not None, "no speech within 5 s"
    # Speech keeps coming while the later sentences are synthesised.
    time.sleep(6)
    win = windows([ULAW[b] for p in sink.snapshot() if p[0] > first for b in p[4]])
    speaking = sum(1 for w in win if rms_db(w) > -45) / max(1, len(win))
    peak = vm_kib(pid, "VmHWM")
    print(f"3,000-character say: speech {first - t_play:.2f} s after calling.play; "
          f"RSS before {before // 1024} MiB (peak so far {hwm_before // 1024} MiB), peak {peak // 1024} MiB; speech in {speaking:.0%} of 6 s")
    assert first - t_play < 1.0, f"speech began {first - t_play:.2f} s after calling.play"
    assert speaking > 0.5, f"speech in only {speaking:.0%} of the windows"
    assert peak - before < 100 * 1024, f"RSS grew {(peak - before) // 1024} MiB"
    r = node.post({"command": "calling.end", "id": cid, "params": {"reason": "hangup"}})
    assert r.status_code == 200


def test_the_whole_text_plays_sentence_after_sentence(node, far, sink, tmp_path):
    text = " ".join(SENTENCES)
    ref = tmp_path / "ref.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(ref)], check=True, timeout=30)
    with wave.open(str(ref)) as w:
        expected = w.getnframes() / w.getframerate()
    cid = answered_call(node, far)
    t_play = time.time()
    r = node.post({"command": "calling.play", "id": cid, "params": {
        "control_id": "whole", "play": [{"type": "tts", "params": {"text": text}},
                                        {"type": "silence", "params": {"duration": 2}}]}})
    assert r.status_code == 200, r.text
    first = speech_after(sink, t_play, timeout=5)
    assert first is not None
    time.sleep(expected + 2.5)
    samples = [ULAW[b] for p in sink.snapshot() if p[0] >= first for b in p[4]]
    loud = [i for i, w in enumerate(windows(samples)) if rms_db(w) > -45]
    span = (loud[-1] - loud[0] + 1) / 10 if loud else 0
    print(f"{len(text)} characters: {span:.1f} s of speech on the call, flite alone {expected:.1f} s")
    # Every sentence was spoken: the speech lasts about as long as the text synthesised whole.
    assert abs(span - expected) < 0.2 * expected, (span, expected)
    node.post({"command": "calling.end", "id": cid, "params": {"reason": "hangup"}})


def envelope(samples, rate, ms=10):
    """RMS per `ms` window, normalised to its peak."""
    import numpy as np
    x = np.asarray(samples, dtype=np.float64)
    n = int(rate * ms / 1000)
    frames = x[:len(x) // n * n].reshape(-1, n)
    env = np.sqrt((frames ** 2).mean(axis=1))
    return env / max(env.max(), 1e-9)


def best_match(heard, reference):
    """The best normalised correlation of `reference`'s envelope against `heard`'s at any offset."""
    import numpy as np
    best = -1.0
    for lag in range(0, max(1, len(heard) - len(reference) + 1)):
        part = heard[lag:lag + len(reference)]
        if len(part) < len(reference):
            break
        if part.std() == 0:
            continue  # silence: no correlation to speak of
        c = np.corrcoef(part, reference)[0, 1]
        best = max(best, float(c))
    return best


def spanish_or_english(samples, rate, text, tmp_path):
    """How well the loudness envelope of `samples` follows, somewhere, `espeak-ng -v es` saying `text` (`es`) and
    flite's English voice saying it (`en`): a correlation each."""
    refs = {"es": ["espeak-ng", "-v", "es", "-w", str(tmp_path / "ref-es.wav"), text],
            "en": ["flite", "-voice", "slt", "-t", text, "-o", str(tmp_path / "ref-en.wav")]}
    heard = envelope(samples, rate)
    match = {}
    for name, command in refs.items():
        subprocess.run(command, check=True, timeout=30)
        with wave.open(str(tmp_path / f"ref-{name}.wav")) as w:
            data = w.readframes(w.getnframes())
            pcm = [int.from_bytes(data[i:i + 2], "little", signed=True) for i in range(0, len(data), 2)]
            match[name] = best_match(heard, envelope(pcm, w.getframerate()))
    print(f"envelope correlation with espeak-ng es: {match['es']:.2f}, with flite: {match['en']:.2f}")
    return match


def spoken_in_spanish(samples, rate, text, tmp_path):
    match = spanish_or_english(samples, rate, text, tmp_path)
    return match["es"] > 0.8 and match["es"] > match["en"] + 0.2


def test_another_language_is_spoken_by_espeak(node, far, sink, tmp_path):
    """A `tts` item in `es-ES` is spoken by eSpeak NG's Spanish voice, not flite's English one: what the far end
    receives follows the envelope of `espeak-ng -v es` saying the text, and not that of flite saying it."""
    text = "Las palabras traducidas están aquí, muchas gracias por llamar."
    cid = answered_call(node, far)
    t_play = time.time()
    r = node.post({"command": "calling.play", "id": cid, "params": {
        "control_id": "es", "play": [{"type": "tts", "params": {"text": text, "language": "es-ES"}},
                                     {"type": "silence", "params": {"duration": 1}}]}})
    assert r.status_code == 200, r.text
    first = speech_after(sink, t_play, timeout=5)
    assert first is not None, "no speech"
    time.sleep(6)
    heard = [ULAW[b] for p in sink.snapshot() if p[0] >= first - 0.2 for b in p[4]]
    assert spoken_in_spanish(heard, 8000, text, tmp_path)
    node.post({"command": "calling.end", "id": cid, "params": {"reason": "hangup"}})

"""The receive path under a bad network, on a real call: sipp plays a pcap the test wrote, in which RTP
packets of a rising staircase of tones (a new frequency every 10 packets) arrive reordered, duplicated and
some never; the far end's side of the call is recorded and the recording must still be one continuous
staircase of the right length, never stepping down (the jitter buffer put packets back in order, dropped
duplicates, concealed the lost ones)."""
import math
import struct

from test_calls import dial, sipp_done, wait_hook
from test_collect import ulaw
from test_record import fetch_wav, record_events

PTIME = 0.02


def write_rtp_pcap(path, packets):
    """packets: (send_time_s, seq, timestamp, payload) in the order they go on the wire."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for t, seq, ts, payload in packets:
        rtp = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x1234ABCD) + payload
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\x00" * 6 + b"\x00" * 6 + b"\x08\x00" + ip
        sec = int(t)
        out.append(struct.pack("<IIII", sec, int(round((t - sec) * 1e6)), len(frame), len(frame)) + frame)
    with open(path, "wb") as f:
        f.write(b"".join(out))


STEP_FRAMES = 10


def step_freq(group):
    return 500 + 70 * group


def staircase(seconds):
    """Continuous-phase tone whose frequency rises by 70 Hz every STEP_FRAMES packets."""
    out, phase = [], 0.0
    for i in range(int(8000 * seconds)):
        phase += 2 * math.pi * step_freq(i // (160 * STEP_FRAMES)) / 8000
        out.append(int(8000 * math.sin(phase)))
    return out


def impaired_tone_packets(seconds, lost, swapped, duplicated):
    pcm = staircase(seconds)
    frames = [bytes(ulaw(s) for s in pcm[i:i + 160]) for i in range(0, len(pcm), 160)]
    wire = []
    for n, payload in enumerate(frames):
        if n in lost:
            continue
        t = n * PTIME
        if n in swapped:          # n goes out just after n + 1
            t += PTIME + 0.005
        elif n - 1 in swapped:
            t -= PTIME - 0.002
        wire.append((t, 1000 + n, 160 * n, payload))
        if n in duplicated:
            wire.append((t + 0.008, 1000 + n, 160 * n, payload))
    wire.sort(key=lambda p: p[0])
    return wire, len(frames)


def level_db(chunk):
    import math
    rms = math.sqrt(sum(s * s for s in chunk) / max(1, len(chunk)))
    return 20 * math.log10(max(rms, 1) / 32768)


def test_reordered_lost_and_duplicated_packets_still_record_a_continuous_tone(start_dialtone, sipp, hooks,
                                                                             tmp_path):
    lost = {30, 61, 62, 100, 131}
    # Each swap crosses a frequency step: played as received, the staircase would step down.
    swapped = {9, 49, 89, 129}
    duplicated = {20, 55, 90, 120}
    wire, n_frames = impaired_tone_packets(3.0, lost, swapped, duplicated)
    assert len(wire) == n_frames - len(lost) + len(duplicated)
    write_rtp_pcap(tmp_path / "stream.pcap", wire)
    far = sipp("uas_stream_pcap.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.record", "id": call_id,
                "params": {"control_id": "jb", "status_url": hooks.url("/rec"),
                           "record": {"audio": {"format": "wav", "direction": "speak",
                                                "initial_timeout": 5, "end_silence_timeout": 1}}}})
    assert r.status_code == 200, r.text
    evs = record_events(hooks, call_id, "finished", timeout=15)
    finished = [e["params"] for e in evs if e["params"]["state"] == "finished"]
    assert finished, evs
    w, samples = fetch_wav(d, finished[0]["url"])
    rate = w.getframerate()
    win = int(rate * PTIME)
    levels = [level_db(samples[i:i + win]) for i in range(0, len(samples) - win + 1, win)]
    loud = [i for i, lv in enumerate(levels) if lv > -30]
    assert loud, levels
    first, last = loud[0], loud[-1]
    span = (last - first + 1) * PTIME
    # Duplicates add nothing and reordering loses nothing: 3 s of tone (150 frames), give or take
    # the concealment fading out at the end of a lost pair.
    assert 2.9 <= span <= 3.1, (span, first, last)
    # Continuous: no silent 20 ms window inside the tone (lost frames are concealed, not dropped).
    gaps = [i for i in range(first, last + 1) if levels[i] <= -30]
    assert not gaps, (gaps, [round(levels[i]) for i in gaps])
    # In order: each 20 ms frame's strongest step frequency never goes down, and every step is heard.
    from audio_check import goertzel_db
    groups = math.ceil(n_frames / STEP_FRAMES)
    heard = []
    for i in range(first, last + 1):
        chunk = list(samples[i * win:(i + 1) * win])
        heard.append(max(range(groups), key=lambda g: goertzel_db(chunk, step_freq(g), rate)))
    downs = [(i, heard[i - 1], heard[i]) for i in range(1, len(heard)) if heard[i] < heard[i - 1]]
    assert not downs, (downs, heard)
    assert sorted(set(heard)) == list(range(groups)), heard
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)

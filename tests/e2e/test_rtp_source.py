"""RTP source checks (issue 10, finding 5: RTP hijack). A real sipp call is up and our audio flows to the far
end's RTP port (a socket of the test's, which talks for a second and then goes silent). Once the far end has
been silent for over a second, a stranger on another loopback address (127.0.0.2) sends valid RTP with the
call's payload type to our RTP port.

By default (`rtp_latch = "sdp-address"`) the stranger gets none of the call's audio, the far end keeps getting
all of it, the rejections are counted in the call's media_stats event and warned about with the call id. With
`DIALTONE_RTP_LATCH=any` (the operator's opt-in) the old behaviour is back: once the far end is silent for a
second, the stranger takes the call's audio."""
import json
import socket
import sqlite3
import struct
import threading
import time

import pytest

from media_sink import RtpSink
from test_calls import check_invite, dial, sipp_done, wait_hook, wait_status

STRANGER_IP = "127.0.0.2"


def rtp_packet(seq, ssrc, pt=0):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc) + b"\xff" * 160


class Sender:
    """Sends 50 packets/s of PCMU silence from `sock` to `to` until stopped; counts what comes back."""

    def __init__(self, sock, to, ssrc, seconds=None):
        self.sock, self.to, self.ssrc, self.seconds = sock, to, ssrc, seconds
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        start = time.time()
        seq = 0
        while not self.stop.is_set():
            if self.seconds is not None and time.time() - start > self.seconds:
                return
            try:
                self.sock.sendto(rtp_packet(seq, self.ssrc), self.to)
            except OSError:
                return
            seq += 1
            time.sleep(0.02)


def received_rtp(sock, seconds):
    """Packets that arrive on `sock` within `seconds`."""
    sock.settimeout(0.1)
    got = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            data, _ = sock.recvfrom(2048)
        except socket.timeout:
            continue
        except OSError:
            break
        if len(data) >= 12 and data[0] >> 6 == 2:
            got += 1
    return got


def media_stats(d, call_id, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        db = sqlite3.connect(str(d.data_dir / "dialtone.db"))
        try:
            rows = db.execute("SELECT detail FROM call_events WHERE call_id = ? AND kind = 'media_stats'",
                              (call_id,)).fetchall()
        finally:
            db.close()
        if rows:
            return json.loads(rows[0][0])
        time.sleep(0.1)
    raise AssertionError("no media_stats event")


def run_hijack(d, sipp, hooks):
    """One call with a talking-then-silent far end and a stranger; what each side received."""
    sink = RtpSink()
    far = sipp("uas_rtp_sink.xml", keys={"rtp_sink": sink.port, "pt": 0, "codec": "PCMU"})
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    our_port = check_invite(far.received("INVITE")[0], d)
    assert sink.wait_first(5) is not None, "no audio reached the far end"
    # The far end talks for one second from its RTP socket (symmetric RTP), then is silent; the stranger
    # starts once it has been silent for more than a second (the finding's window) and keeps sending.
    talker = Sender(sink.sock, ("127.0.0.1", our_port), ssrc=0x1111, seconds=1.0)
    talker.t.join()
    time.sleep(1.5)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind((STRANGER_IP, 0))
    hostile = Sender(stranger, ("127.0.0.1", our_port), ssrc=0x2222)
    try:
        t0 = time.time()
        stolen = received_rtp(stranger, 3.0)
        t1 = time.time()
    finally:
        hostile.stop.set()
        hostile.t.join()
    at_far_end = sink.count_between(t0, t1)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    wait_status(d, call_id, "ended", timeout=5)
    stranger.close()
    sink.close()
    return call_id, stolen, at_far_end, t1 - t0


def test_a_stranger_on_another_address_gets_none_of_the_calls_audio(start_dialtone, sipp, hooks):
    d = start_dialtone()
    call_id, stolen, at_far_end, secs = run_hijack(d, sipp, hooks)
    assert stolen == 0, f"the stranger on {STRANGER_IP} received {stolen} of the call's packets"
    assert at_far_end >= 0.85 * 50 * secs, f"the far end got {at_far_end} packets in {secs:.1f} s"
    stats = media_stats(d, call_id)
    assert stats["packets_rejected"] >= 120, stats  # ~150 sent in 3 s
    # The far end's second of audio was taken; the stranger's packets never reached the call.
    assert 35 <= stats["packets_received"] <= 60, stats
    log = d.log_path.read_text()
    warns = [l for l in log.splitlines() if "did not advertise dropped" in l and call_id in l]
    assert warns, "no warning naming the call"
    assert len(warns) <= 5, f"{len(warns)} warnings in 3 s: not rate-limited"
    assert STRANGER_IP in warns[0], warns[0]


def test_rtp_latch_any_is_the_old_opt_in_behaviour(start_dialtone, sipp, hooks):
    d = start_dialtone({"DIALTONE_RTP_LATCH": "any"})
    call_id, stolen, at_far_end, secs = run_hijack(d, sipp, hooks)
    # Once the far end has been silent for a second the stranger takes the audio.
    assert stolen > 50, f"with rtp_latch=any the stranger got only {stolen} packets"
    assert media_stats(d, call_id)["packets_rejected"] == 0


@pytest.mark.parametrize("value", ["sdp", "ANY"])
def test_a_bad_rtp_latch_value_stops_the_start(tmp_path, value):
    import subprocess
    from conftest import BINARY, Dialtone
    d = Dialtone(tmp_path, {"DIALTONE_RTP_LATCH": value})
    out = subprocess.run([BINARY, "serve"], env=d.env, capture_output=True, timeout=20, text=True)
    assert out.returncode != 0
    assert "rtp_latch" in out.stdout + out.stderr, out.stderr[-500:]

"""calling.transfer to a SIP destination: the call leaves its flow, the destination is dialled as a
new call (parent_id = the transferred call), the caller hears ringback until it answers, then the two
calls' audio is bridged — checked by content: a 1 kHz tone sent by the first far end is heard by the
second. Either side hanging up ends the other."""
import math
import socket
import struct
import threading
import time

import requests

from test_calls import RtpSink, dial, get_call, rtp, sipp_done, wait_hook, wait_status
from audio_check import goertzel_db, ulaw_decode
from test_collect import ulaw as ulaw_encode

SWML_HOLD = {"version": "1.0.0", "sections": {"main": [{"answer": {}}, {"sleep": -1}]}}


def send_tone(sock, dest, freq, seconds, stop):
    """Paced PCMU RTP of a sine at `freq` from `sock` to `dest`."""
    seq, ts, ssrc, n = 1000, 5000, 0x1234ABCD, 0
    start = time.time()
    while not stop.is_set() and n < seconds * 50:
        payload = bytes(ulaw_encode(int(12000 * math.sin(2 * math.pi * freq * (n * 160 + i) / 8000)))
                        for i in range(160))
        hdr = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
        sock.sendto(hdr + payload, dest)
        seq, ts, n = seq + 1, ts + 160, n + 1
        delay = start + n * 0.02 - time.time()
        if delay > 0:
            time.sleep(delay)


def tone_db(packets, freq):
    samples = [ulaw_decode(b) for p in packets for b in rtp(p[2])["payload"]]
    return goertzel_db(samples, freq, 8000) if samples else -200


def post(d, body):
    return requests.post(d.base + "/api/calling/calls", json=body, auth=(d.project, d.token), timeout=10)


def test_transfer_to_sip_bridges_audio_and_hangs_up_together(start_dialtone, sipp, hooks):
    sink_a, sink_b = RtpSink(), RtpSink()
    try:
        far_a = sipp("uas_rtp_sink.xml", keys={"rtp_sink": sink_a.port, "pt": 0, "codec": "PCMU"})
        far_b = sipp("uas_rtp_sink.xml", keys={"rtp_sink": sink_b.port, "pt": 0, "codec": "PCMU"})
        d = start_dialtone()
        call_a = dial(d, far_a.uri("alice"), hooks.url(), timeout=5)["id"]
        wait_hook(hooks, call_a, "answered")
        sink_a.wait_first()
        dialtone_a = sink_a.packets[0][1]  # dialtone's RTP address for call A (symmetric RTP)

        stop = threading.Event()
        talker = threading.Thread(target=send_tone, args=(sink_a.sock, dialtone_a, 1000, 8, stop), daemon=True)
        talker.start()
        t_transfer = time.time()
        r = post(d, {"command": "calling.transfer", "id": call_a, "params": {"dest": far_b.uri("bob")}})
        assert r.status_code == 200, r.text

        sink_b.wait_first(timeout=5)
        t_b = sink_b.packets[0][0]
        deadline = time.time() + 3
        while time.time() < deadline and len(sink_b.packets) < 60:
            time.sleep(0.05)
        # Skip the first 200 ms (the bridge starts a tick or two after the far leg answers).
        heard = [p for p in sink_b.packets if t_b + 0.2 < p[0] <= t_b + 1.2]
        assert len(heard) >= 45, len(heard)
        assert tone_db(heard, 1000) > -12, tone_db(heard, 1000)
        assert tone_db(heard, 1000) - tone_db(heard, 440) > 20

        # The far leg is a call of its own, child of the transferred one.
        listing = requests.get(d.base + "/api/calling/calls", auth=(d.project, d.token), timeout=5).json()["data"]
        children = [c for c in listing if c["parent_id"] == call_a]
        assert len(children) == 1, listing
        assert children[0]["to"] == far_b.uri("bob") and children[0]["status"] == "answered", children[0]
        assert children[0]["direction"] == "outbound"
        # Its states go to the transferred call's status_url: created_by "connect", with its parent
        # (ambiguity register A19, docs/call-lifecycle.md).
        child_answered = wait_hook(hooks, children[0]["id"], "answered")
        p = child_answered["params"]
        assert p["created_by"] == "connect", p
        assert p["parent"]["call_id"] == call_a and p["parent"]["device_type"] == "sip", p
        assert p["parent"]["node_id"] == p["node_id"], p
        assert p["direction"] == "outbound", p
        parent_answered = hooks.parse(next(e for e in hooks.for_call(call_a)
                                           if hooks.parse(e)["params"]["call_state"] == "answered"))
        assert parent_answered["params"]["created_by"] == "dial", parent_answered
        assert "parent" not in parent_answered["params"], parent_answered

        # The first call hears no tone of its own (its flow stopped), and hangs up with the far leg.
        stop.set()
        d.sdk().calling.end(children[0]["id"], reason="hangup")
        sipp_done(far_b)
        sipp_done(far_a)
        wait_status(d, call_a, "ended", timeout=5)
        assert get_call(d, call_a)["end_reason"] == "hangup"
    finally:
        sink_a.close()
        sink_b.close()


def test_caller_hears_ringback_until_the_far_leg_answers(start_dialtone, sipp, hooks):
    sink_a = RtpSink()
    try:
        far_a = sipp("uas_rtp_sink.xml", keys={"rtp_sink": sink_a.port, "pt": 0, "codec": "PCMU"})
        far_b = sipp("uas_cancel.xml")  # rings forever
        d = start_dialtone()
        call_a = dial(d, far_a.uri("alice"), hooks.url(), timeout=5)["id"]
        wait_hook(hooks, call_a, "answered")
        sink_a.wait_first()
        r = post(d, {"command": "calling.transfer", "id": call_a, "params": {"dest": far_b.uri("bob")}})
        assert r.status_code == 200, r.text
        t0 = time.time()
        while time.time() < t0 + 1.6:
            time.sleep(0.05)
        ringing = [p for p in sink_a.packets if t0 + 0.3 < p[0] <= t0 + 1.5]
        assert tone_db(ringing, 440) > -25 and tone_db(ringing, 480) > -25, (tone_db(ringing, 440), tone_db(ringing, 480))
        # Hanging up the transferred call cancels the far leg.
        d.sdk().calling.end(call_a, reason="hangup")
        sipp_done(far_b)
        sipp_done(far_a)
        listing = requests.get(d.base + "/api/calling/calls", auth=(d.project, d.token), timeout=5).json()["data"]
        child = next(c for c in listing if c["parent_id"] == call_a)
        wait_status(d, child["id"], ("canceled", "ended"), timeout=5)
    finally:
        sink_a.close()

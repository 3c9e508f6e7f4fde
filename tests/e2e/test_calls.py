"""Real outbound calls: the official SignalWire SDK dials through the real `dialtone serve` to sipp far ends
(tests/e2e/sipp/*.xml), with a real webhook receiver for calling.call.state and real RTP sockets.

The contract asserted is docs/call-lifecycle.md (statuses, end reasons, SIP outcome mapping, webhooks) and
shared/spec/calling-events.md §3 (the calling.call.state payload). Every wait polls with a deadline.
"""
import base64
import json
import re
import socket
import struct
import threading
import time

import pathlib

import pytest
import requests

from audio_check import ulaw_decode
from sipp_peer import digest_ok
from webhooks import Webhooks

# The call's document: answer, then hold the call until someone hangs up (swml.md §6.31 `sleep: -1`).
# A document that runs off its end hangs the call up (swml.md §2.9): see test_document_end_hangs_up.
SWML = {"version": "1.0.0", "sections": {"main": [{"answer": {}}, {"sleep": -1}]}}
SWML_JSON = json.dumps(SWML).encode()
ALL_EVENTS = ["created", "ringing", "answered", "ended"]
FROM = "+15105550100"
E164 = "+15551234567"
SCENARIOS = pathlib.Path(__file__).parent / "sipp"


# ---------------------------------------------------------------- helpers

def dial(d, to, status_url=None, events=ALL_EVENTS, **extras):
    """client.calling.dial through the SDK; extras (timeout, send_digits, username, password) go in
    `extras=` because the SDK's dial() has no named parameter for them."""
    client = d.sdk()
    leg = client.calling.dial(from_=FROM, to=to, swml=SWML, status_url=status_url, status_events=events,
                              extras=extras or None)
    assert leg["id"] and leg["to"] == to and leg["from"] == FROM, leg
    assert leg["direction"] == "outbound-api" and leg["source"] == "realtime_api", leg
    assert leg["status"] in ("queued", "initiated", "created", "ringing", "answered"), leg
    return leg


def get_call(d, call_id):
    r = requests.get(f"{d.base}/api/calling/calls/{call_id}", auth=(d.project, d.token), timeout=5)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def wait_status(d, call_id, statuses, timeout=10):
    """Poll GET /api/calling/calls/{id} until its status is one of `statuses`."""
    statuses = (statuses,) if isinstance(statuses, str) else tuple(statuses)
    deadline = time.time() + timeout
    leg = None
    while time.time() < deadline:
        leg = get_call(d, call_id)
        if leg["status"] in statuses:
            return leg
        time.sleep(0.05)
    raise AssertionError(f"call {call_id} never reached {statuses}; last: {leg}")


def wait_hook(hooks, call_id, state, timeout=10):
    ev = hooks.wait_state(call_id, state, timeout)
    assert ev is not None, (f"no {state!r} webhook for {call_id} within {timeout}s; "
                            f"got {hooks.states(call_id)}; attempts {[(a['status'], a['body'][:200]) for a in hooks.attempts]}")
    return ev


def check_state_events(d, hooks, call_id, expected_states, end_reason, device_type="sip", to=None):
    """Every delivered calling.call.state for the call: in order, exactly `expected_states`, validly signed,
    with the calling-events §3 payload."""
    events = hooks.for_call(call_id)
    states = [hooks.parse(e)["params"]["call_state"] for e in events]
    assert states == expected_states, states
    node_ids = set()
    for e in events:
        assert hooks.signature_ok(e), ("bad signature", e["headers"], e["body"][:300])
        assert e["path"] == "/status"
        ctype = {k.lower(): v for k, v in e["headers"].items()}.get("content-type", "")
        assert ctype.startswith("application/json"), ctype
        body = hooks.parse(e)
        assert body["event_type"] == "calling.call.state", body
        assert body["project_id"] == d.project, body
        assert str(body["event_channel"]).startswith("swml:"), body
        assert isinstance(body["timestamp"], (int, float)) and body["timestamp"] > 1.6e9, body
        assert body.get("space_id"), body
        p = body["params"]
        assert p["call_id"] == call_id and p["direction"] == "outbound", p
        assert p.get("node_id"), p
        node_ids.add(p["node_id"])
        assert p.get("created_by", "dial") == "dial", p
        dev = p["device"]
        assert dev["type"] == device_type, dev
        if device_type == "sip":
            assert dev["params"]["to"] == to and dev["params"]["from"], dev
        else:
            assert dev["params"]["to_number"] == to and dev["params"]["from_number"] == FROM, dev
        assert isinstance(p.get("start_time"), int), p
        if p["call_state"] == "ended":
            assert p["end_reason"] == end_reason, p
            assert isinstance(p.get("end_time"), int) and p["end_time"] >= p["start_time"], p
        else:
            assert p["end_reason"] is None, p
        if p["call_state"] == "answered":
            assert isinstance(p.get("answer_time"), int) and p["answer_time"] >= p["start_time"], p
    assert len(node_ids) == 1, node_ids


def check_invite(inv, d, transport="UDP"):
    """What dialtone put in its INVITE: its advertised address, an SDP offer from its RTP range."""
    lo, hi = d.rtp_range
    via = inv.header("Via")
    assert via and via.upper().startswith(f"SIP/2.0/{transport} 127.0.0.1"), via
    contact = inv.header("Contact")
    assert contact and "127.0.0.1" in contact, contact
    frm = inv.header("From")
    assert "15105550100" in frm and "tag=" in frm, frm
    assert (inv.header("Content-Type") or "").startswith("application/sdp")
    sdp = inv.body.replace("\r", "")
    assert "c=IN IP4 127.0.0.1" in sdp, sdp
    mline = next(l for l in sdp.split("\n") if l.startswith("m=audio "))
    port = int(mline.split()[1])
    assert lo <= port <= hi and port % 2 == 0, (mline, d.rtp_range)
    assert "0" in mline.split()[3:], mline
    return port


def sipp_done(peer, timeout=15):
    rc = peer.wait(timeout)
    assert rc == 0, f"sipp {peer.scenario} exit {rc}; ladder {peer.arrows()}\n{peer.stderr()[-2000:]}"


# ---------------------------------------------------------------- 1. answer, we hang up (UDP and TCP)

@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dial_answered_then_sdk_end_sends_bye(start_dialtone, sipp, hooks, transport):
    far = sipp("uas.xml", transport=transport)
    d = start_dialtone()
    to = far.uri("service")
    leg = dial(d, to, hooks.url(), timeout=2)
    call_id = leg["id"]
    assert leg["type"] == "relay_sip_call", leg

    wait_hook(hooks, call_id, "answered")
    assert hooks.states(call_id) == ["created", "ringing", "answered"]
    live = get_call(d, call_id)
    assert live["status"] == "answered" and live["id"] == call_id, live

    t_end = time.time()
    ended_leg = d.sdk().calling.end(call_id, reason="hangup")
    assert ended_leg["id"] == call_id
    sipp_done(far)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"], far.arrows()
    inv = far.received("INVITE")[0]
    assert inv.request_uri.startswith(f"sip:service@127.0.0.1:{far.port}"), inv.request_uri
    check_invite(inv, d, transport.upper())
    bye = far.received("BYE")[0]
    assert bye.header("Call-ID") == inv.header("Call-ID")
    assert bye.when - t_end < 1.0, f"BYE {bye.when - t_end:.2f}s after calling.end"

    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ALL_EVENTS, "hangup", to=to)
    final = wait_status(d, call_id, "ended", timeout=5)
    assert isinstance(final["duration"], int) and final["duration"] >= 0, final
    assert isinstance(final["duration_ms"], int) and final["duration_ms"] >= 0, final
    assert final["end_reason"] == "hangup", final


# ---------------------------------------------------------------- 2. rings 3 s, answers, far end hangs up

def test_rings_three_seconds_then_far_end_hangs_up(start_dialtone, sipp, hooks):
    far = sipp("uas_ring_answer_bye.xml")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=10)["id"]

    wait_hook(hooks, call_id, "ringing", timeout=5)
    ringing = wait_status(d, call_id, "ringing", timeout=2)
    assert ringing["status"] == "ringing"
    wait_hook(hooks, call_id, "answered", timeout=8)
    sipp_done(far)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "< 200", "> ACK", "< BYE", "> 200"], far.arrows()
    wait_hook(hooks, call_id, "ended", timeout=5)
    check_state_events(d, hooks, call_id, ALL_EVENTS, "hangup", to=to)

    by_state = {hooks.parse(e)["params"]["call_state"]: e for e in hooks.for_call(call_id)}
    rang = by_state["answered"]["t"] - by_state["ringing"]["t"]
    assert 2.5 <= rang <= 6, f"answered {rang:.2f}s after ringing; the far end rang 3 s"
    p_ans = hooks.parse(by_state["answered"])["params"]
    p_end = hooks.parse(by_state["ended"])["params"]
    assert 2500 <= p_ans["answer_time"] - p_ans["start_time"] <= 6000, p_ans
    assert 700 <= p_end["end_time"] - p_end["answer_time"] <= 3000, p_end
    final = wait_status(d, call_id, "ended", timeout=5)
    assert 700 <= final["duration_ms"] <= 3000 and final["end_reason"] == "hangup", final
    assert final["duration"] in (0, 1, 2, 3), final


# ---------------------------------------------------------------- 3. busy and decline

@pytest.mark.parametrize("scenario,code,reason", [("uas_busy.xml", "486", "busy"), ("uas_decline.xml", "603", "decline")])
def test_rejected_call_is_acked_and_ended(start_dialtone, sipp, hooks, scenario, code, reason):
    far = sipp(scenario)
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=5)["id"]
    sipp_done(far)
    assert far.arrows_dedup() == ["> INVITE", "< 180", f"< {code}", "> ACK"], far.arrows()
    ack = far.received("ACK")[0]
    inv = far.received("INVITE")[0]
    assert ack.header("CSeq").split()[0] == inv.header("CSeq").split()[0], "the ACK of a non-2xx reuses the CSeq number"
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ["created", "ringing", "ended"], reason, to=to)
    final = wait_status(d, call_id, "ended", timeout=5)
    assert final["end_reason"] == reason, final


# ---------------------------------------------------------------- 4. never answers: ring timeout → CANCEL

def test_ring_timeout_cancels_and_ends_no_answer(start_dialtone, sipp, hooks):
    far = sipp("uas_cancel.xml")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=2)["id"]
    wait_hook(hooks, call_id, "ringing", timeout=5)
    sipp_done(far, timeout=12)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "> CANCEL", "< 200", "< 487", "> ACK"], far.arrows()
    inv, cancel = far.received("INVITE")[0], far.received("CANCEL")[0]
    waited = cancel.when - inv.when
    assert 1.8 <= waited <= 4.0, f"CANCEL {waited:.2f}s after the INVITE with timeout=2"
    assert cancel.header("Call-ID") == inv.header("Call-ID")
    assert cancel.header("CSeq").split()[0] == inv.header("CSeq").split()[0], "CANCEL reuses the INVITE's CSeq number"
    assert cancel.header("Via").split(";branch=")[1].split(";")[0] == inv.header("Via").split(";branch=")[1].split(";")[0]
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ["created", "ringing", "ended"], "noAnswer", to=to)
    final = wait_status(d, call_id, "ended", timeout=5)
    assert final["end_reason"] == "noAnswer" and final["duration"] in (0, None), final


# ---------------------------------------------------------------- 5. canceled by the API while ringing

def test_update_canceled_while_ringing_sends_cancel(start_dialtone, sipp, hooks):
    far = sipp("uas_cancel.xml")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=30)["id"]
    wait_hook(hooks, call_id, "ringing", timeout=5)
    assert get_call(d, call_id)["status"] == "ringing"
    t0 = time.time()
    updated = d.sdk().calling.update(id=call_id, status="canceled")
    assert updated["id"] == call_id, updated
    sipp_done(far, timeout=10)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "> CANCEL", "< 200", "< 487", "> ACK"], far.arrows()
    assert far.received("CANCEL")[0].when - t0 < 2.0, "CANCEL promptly after update status=canceled"
    final = wait_status(d, call_id, "canceled", timeout=5)
    assert final["end_reason"] == "cancel", final
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ["created", "ringing", "ended"], "cancel", to=to)
    # A canceled call cannot be canceled again.
    r = d.post({"command": "update", "params": {"id": call_id, "status": "canceled"}})
    assert r.status_code == 422, r.text


# ---------------------------------------------------------------- 6. digest auth

@pytest.mark.parametrize("challenge", [401, 407])
@pytest.mark.parametrize("where", ["dial", "trunk"])
def test_digest_challenge_answered_with_credentials(start_dialtone, sipp, hooks, challenge, where):
    far = sipp(f"uas_auth_{challenge}.xml")
    if where == "dial":
        d = start_dialtone()
        to = far.uri("service")
        call_id = dial(d, to, hooks.url(), timeout=5, username="alice", password="secret")["id"]
        device = "sip"
    else:
        d = start_dialtone({"DIALTONE_DEFAULT_TRUNK": f"sip:alice:secret@127.0.0.1:{far.port}"})
        to = E164
        call_id = dial(d, to, hooks.url(), timeout=5)["id"]
        device = "phone"
    wait_hook(hooks, call_id, "answered", timeout=8)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    arrows = far.arrows_dedup()
    assert arrows == ["> INVITE", f"< {challenge}", "> ACK", "> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"], arrows
    header = "Authorization" if challenge == 401 else "Proxy-Authorization"
    first, second = far.received("INVITE")[0], far.received("INVITE")[-1]
    assert first.header(header) is None
    auth = second.header(header)
    assert auth and 'username="alice"' in auth and 'realm="dialtone-test"' in auth, auth
    assert digest_ok(auth, "INVITE", "secret"), f"digest does not verify with the password: {auth}"
    if second.header("Call-ID") == first.header("Call-ID"):
        assert int(second.header("CSeq").split()[0]) > int(first.header("CSeq").split()[0])
    assert "secret" not in d.log_path.read_text(), "the SIP password is never logged"
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ALL_EVENTS, "hangup", device_type=device, to=to)
    leg = get_call(d, call_id)
    assert "password" not in leg and "username" not in leg, leg


def test_digest_wrong_password_fails_with_error(start_dialtone, sipp, hooks):
    far = sipp("uas_auth_401.xml")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=5, username="alice", password="wrong")["id"]
    wait_hook(hooks, call_id, "ended", timeout=8)
    sipp_done(far)  # the scenario expects the 403 to be ACKed
    assert far.arrows_dedup() == ["> INVITE", "< 401", "> ACK", "> INVITE", "< 403", "> ACK"], far.arrows()
    assert len({m.text for m in far.received("INVITE")}) == 2, "no third attempt after a rejected digest"
    check_state_events(d, hooks, call_id, ["created", "ended"], "error", to=to)
    final = wait_status(d, call_id, "failed", timeout=5)
    assert final["end_reason"] == "error", final


def test_challenge_without_credentials_fails_with_error(start_dialtone, sipp, hooks):
    far = sipp("uas_auth_407.xml")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "ended", timeout=8)
    assert far.wait_for("ACK") is not None, far.arrows()
    assert far.arrows_dedup() == ["> INVITE", "< 407", "> ACK"], far.arrows()
    check_state_events(d, hooks, call_id, ["created", "ended"], "error", to=to)
    wait_status(d, call_id, "failed", timeout=5)


# ---------------------------------------------------------------- 7. E.164 through the default trunk

def test_e164_goes_to_the_default_trunk(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone({"DIALTONE_DEFAULT_TRUNK": f"sip:127.0.0.1:{far.port}"})
    leg = dial(d, E164, hooks.url(), timeout=5)
    call_id = leg["id"]
    assert leg["type"] == "relay_pstn_call", leg
    wait_hook(hooks, call_id, "answered")
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    inv = far.received("INVITE")[0]
    ruri = inv.request_uri
    assert ruri.split(";")[0] in (f"sip:15551234567@127.0.0.1:{far.port}", f"sip:+15551234567@127.0.0.1:{far.port}"), ruri
    to_hdr = inv.header("To")
    assert "15551234567" in to_hdr, to_hdr
    check_invite(inv, d)
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ALL_EVENTS, "hangup", device_type="phone", to=E164)


def test_e164_without_a_trunk_is_not_routable(start_dialtone):
    d = start_dialtone()
    r = d.post({"command": "dial", "params": {"from": FROM, "to": E164, "swml": SWML}})
    assert r.status_code == 422, r.text
    assert any(e.get("code") == "not_routable" for e in r.json()["errors"]), r.text


# ---------------------------------------------------------------- 8. RTP: pacing, continuity, DTMF

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux


class RtpSink:
    """The far end's RTP port: a UDP socket the test binds; records (arrival, source, packet). Arrival is
    the kernel's receive timestamp (SO_TIMESTAMPNS), so the pacing checks measure the sender, not how
    promptly this thread got scheduled."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.packets = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(16))
            except OSError:
                return
            arrival = time.time()
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                    sec, nsec = struct.unpack("qq", raw[:16])
                    arrival = sec + nsec / 1e9
            self.packets.append((arrival, addr, data))

    def wait_first(self, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline and not self.packets:
            time.sleep(0.01)
        assert self.packets, "no RTP within 5 s of the answer"
        return self.packets[0][0]

    def close(self):
        self.sock.close()


def rtp(data):
    assert len(data) >= 12, data
    b0, b1 = data[0], data[1]
    cc = b0 & 0x0F
    seq, ts, ssrc = struct.unpack("!HII", data[2:12])
    return {"v": b0 >> 6, "x": (b0 >> 4) & 1, "cc": cc, "m": b1 >> 7, "pt": b1 & 0x7F, "seq": seq, "ts": ts,
            "ssrc": ssrc, "payload": data[12 + 4 * cc:]}


@pytest.fixture
def rtp_sink():
    s = RtpSink()
    yield s
    s.close()


def alaw_decode(a):
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


@pytest.mark.parametrize("pt,codec", [(0, "PCMU"), (8, "PCMA")])
def test_rtp_is_paced_continuous_silence_in_the_answered_codec(start_dialtone, sipp, hooks, rtp_sink, pt, codec):
    far = sipp("uas_rtp_sink.xml", keys={"rtp_sink": rtp_sink.port, "pt": pt, "codec": codec})
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    t_first = rtp_sink.wait_first()
    while time.time() < t_first + 2.3:
        time.sleep(0.05)
    window = [p for p in rtp_sink.packets if p[0] <= t_first + 2.0]
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    wait_status(d, call_id, "ended", timeout=5)

    offered_port = check_invite(far.received("INVITE")[0], d)
    sources = {p[1] for p in window}
    assert sources == {("127.0.0.1", offered_port)}, (sources, offered_port)
    pk = [rtp(p[2]) for p in window]
    n = len(pk)
    rate = (n - 1) / (window[-1][0] - window[0][0])
    assert 90 <= n <= 110, f"{n} packets in 2 s"
    assert 45 <= rate <= 55, f"{rate:.1f} packets/s"
    assert {p["v"] for p in pk} == {2}
    assert {p["pt"] for p in pk} == {pt}, {p["pt"] for p in pk}
    assert len({p["ssrc"] for p in pk}) == 1
    for a, b in zip(pk, pk[1:]):
        assert (b["seq"] - a["seq"]) % 65536 == 1, (a["seq"], b["seq"])
        assert (b["ts"] - a["ts"]) % 2**32 == 160, (a["ts"], b["ts"])
    assert pk[0]["m"] == 1 and not any(p["m"] for p in pk[1:]), [p["m"] for p in pk[:5]]
    assert all(len(p["payload"]) == 160 for p in pk), {len(p["payload"]) for p in pk}
    decode = ulaw_decode if codec == "PCMU" else alaw_decode
    samples = [decode(b) for p in pk for b in p["payload"]]
    assert max(abs(s) for s in samples) <= 16, "silence"
    # Arrival spacing: no gap of more than 3 packet times, no burst faster than real time over 10 packets.
    times = [p[0] for p in window]
    assert max(b - a for a, b in zip(times, times[1:])) < 0.1
    assert all(times[i + 10] - times[i] >= 0.15 for i in range(len(times) - 10))

    # Media stops with the call.
    stopped_at = time.time()
    while time.time() < stopped_at + 0.6:
        time.sleep(0.05)
    late = [p for p in rtp_sink.packets if p[0] > stopped_at + 0.1]
    assert not late, f"{len(late)} RTP packets after the call ended"


def test_dial_codecs_limit_the_offer(start_dialtone, sipp, hooks, rtp_sink):
    far = sipp("uas_rtp_sink.xml", keys={"rtp_sink": rtp_sink.port, "pt": 8, "codec": "PCMA"})
    d = start_dialtone()
    leg = d.sdk().calling.dial(from_=FROM, to=far.uri("service"), swml=SWML, status_url=hooks.url(),
                               status_events=["answered", "ended"], codecs="PCMA", extras={"timeout": 5})
    call_id = leg["id"]
    wait_hook(hooks, call_id, "answered")
    rtp_sink.wait_first()
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    sdp = far.received("INVITE")[0].body
    mline = next(l for l in sdp.split("\n") if l.startswith("m=audio "))
    pts = mline.split()[3:]
    assert "8" in pts and "0" not in pts, mline
    assert "PCMA/8000" in sdp and "PCMU/8000" not in sdp, sdp
    assert {rtp(p[2])["pt"] for p in rtp_sink.packets} == {8}


def test_send_digits_as_rfc4733_events(start_dialtone, sipp, hooks, rtp_sink):
    far = sipp("uas_rtp_sink.xml", keys={"rtp_sink": rtp_sink.port, "pt": 0, "codec": "PCMU"})
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5, send_digits="12")["id"]
    wait_hook(hooks, call_id, "answered")
    offer = far.received("INVITE")[0].body
    assert "telephone-event/8000" in offer, offer
    t_first = rtp_sink.wait_first()

    def digits_sent_and_audio_back():
        pk = [rtp(p[2]) for p in list(rtp_sink.packets)]
        ended = {p["payload"][0] for p in pk if p["pt"] == 101 and len(p["payload"]) >= 4 and p["payload"][1] & 0x80}
        last = max((i for i, p in enumerate(pk) if p["pt"] == 101), default=None)
        return {1, 2} <= ended and last is not None and sum(p["pt"] == 0 for p in pk[last + 1:]) >= 5

    deadline = t_first + 8
    while time.time() < deadline and not digits_sent_and_audio_back():
        time.sleep(0.05)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)

    pk = [rtp(p[2]) for p in rtp_sink.packets]
    dtmf = [p for p in pk if p["pt"] == 101]
    assert dtmf, f"no PT 101 packets; PTs seen {sorted({p['pt'] for p in pk})}"
    assert {p["pt"] for p in pk} == {0, 101}, {p["pt"] for p in pk}
    assert len({p["ssrc"] for p in pk}) == 1, "DTMF goes in the audio stream (same SSRC)"
    for a, b in zip(pk, pk[1:]):
        assert (b["seq"] - a["seq"]) % 65536 == 1, (a, b)
    # Group the events by their RTP timestamp (constant for all packets of one event).
    groups = []
    for p in dtmf:
        ev, flags, duration = p["payload"][0], p["payload"][1], struct.unpack("!H", p["payload"][2:4])[0]
        if not groups or groups[-1]["ts"] != p["ts"]:
            groups.append({"ts": p["ts"], "event": ev, "packets": []})
        g = groups[-1]
        assert ev == g["event"], "one event per timestamp"
        g["packets"].append({"end": bool(flags & 0x80), "duration": duration, "m": p["m"]})
    assert [g["event"] for g in groups] == [1, 2], [(g["event"], len(g["packets"])) for g in groups]
    for g in groups:
        ps = g["packets"]
        assert ps[0]["m"] == 1 and not any(p["m"] for p in ps[1:]), ("marker on the first packet of an event", ps)
        assert ps[-1]["end"], ("the event ends with the E bit", ps)
        ends = [p for p in ps if p["end"]]
        assert len({p["duration"] for p in ends}) == 1, ("retransmitted end packets repeat the final duration", ps)
        durs = [p["duration"] for p in ps]
        assert durs == sorted(durs) and durs[-1] >= 400, durs  # >= 50 ms of tone
    assert groups[1]["ts"] > groups[0]["ts"]
    last_dtmf = max(i for i, p in enumerate(pk) if p["pt"] == 101)
    assert any(p["pt"] == 0 for p in pk[last_dtmf + 1:]), "audio resumes after the digits"
    wait_hook(hooks, call_id, "ended")


# ---------------------------------------------------------------- 9. webhook retries and durability

def test_webhook_5xx_is_retried_in_order(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    hooks.fail_next(1, 500)
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), events=["answered", "ended"], timeout=5)["id"]
    wait_hook(hooks, call_id, "answered", timeout=8)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    wait_hook(hooks, call_id, "ended")
    attempts = hooks.for_call(call_id, attempts=True)
    seen = [(hooks.parse(a)["params"]["call_state"], a["status"]) for a in attempts]
    assert seen == [("answered", 500), ("answered", 200), ("ended", 200)], seen
    first, retry = attempts[0], attempts[1]
    assert retry["t"] - first["t"] >= 0.15, "retried after the configured 200 ms backoff"
    assert hooks.parse(retry)["params"] == hooks.parse(first)["params"], "the retry is the same event"
    assert hooks.signature_ok(first) and hooks.signature_ok(retry)
    check_state_events(d, hooks, call_id, ["answered", "ended"], "hangup", to=to)


def test_webhook_retries_are_bounded_and_do_not_block_later_events(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()  # backoff 200,400: three attempts in all
    hooks.fail_next(3, 503)
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), events=["answered", "ended"], timeout=5)["id"]
    wait_status(d, call_id, "answered", timeout=8)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    wait_hook(hooks, call_id, "ended")
    seen = [(hooks.parse(a)["params"]["call_state"], a["status"]) for a in hooks.for_call(call_id, attempts=True)]
    assert seen == [("answered", 503)] * 3 + [("ended", 200)], seen
    t = [a["t"] for a in hooks.for_call(call_id, attempts=True)]
    assert t[1] - t[0] >= 0.15 and t[2] - t[1] >= 0.3, ("backoff 200 ms then 400 ms", [b - a for a, b in zip(t, t[1:])])


def test_webhook_4xx_is_not_retried(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    hooks.fail_next(1, 404)
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), events=["answered", "ended"], timeout=5)["id"]
    wait_status(d, call_id, "answered", timeout=8)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    wait_hook(hooks, call_id, "ended")
    seen = [(hooks.parse(a)["params"]["call_state"], a["status"]) for a in hooks.for_call(call_id, attempts=True)]
    assert seen == [("answered", 404), ("ended", 200)], seen


def test_pending_webhooks_survive_kill_and_live_calls_end_with_error(start_dialtone, sipp, tmp_path):
    # The receiver's port is reserved but nothing listens yet: every delivery is a connection error.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    down_port = s.getsockname()[1]
    s.close()
    status_url = f"http://127.0.0.1:{down_port}/status"
    d = start_dialtone({"DIALTONE_WEBHOOK_BACKOFF_MS": "5000,5000"})

    live_far = sipp("uas.xml")
    live_id = dial(d, live_far.uri("service"), status_url, events=["answered", "ended"], timeout=5)["id"]
    wait_status(d, live_id, "answered", timeout=8)

    end_far = sipp("uas.xml")
    ended_to = end_far.uri("service")
    ended_id = dial(d, ended_to, status_url, events=["ended"], timeout=5)["id"]
    wait_status(d, ended_id, "answered", timeout=8)
    d.sdk().calling.end(ended_id, reason="hangup")
    wait_status(d, ended_id, "ended", timeout=5)

    d.proc.kill()  # kill -9 while one call is live and two webhooks are pending
    d.proc.wait(5)
    d.log.close()
    sipp_done(end_far)  # it got its BYE before the kill

    hooks = Webhooks("test-signing-key", port=down_port)
    try:
        d.env["DIALTONE_WEBHOOK_BACKOFF_MS"] = "200,400"
        d.start()
        got = hooks.wait_state(ended_id, "ended", timeout=15)
        assert got is not None, f"the pending ended webhook was lost across the restart; got {hooks.json()}"
        assert got["params"]["end_reason"] == "hangup", got
        live_ended = hooks.wait_state(live_id, "ended", timeout=10)
        assert live_ended is not None, f"no ended webhook for the call live at the kill; got {hooks.json()}"
        assert live_ended["params"]["end_reason"] == "error", live_ended
        live_states = hooks.states(live_id)
        assert live_states.index("answered") < live_states.index("ended"), live_states  # per-call order kept
        assert all(hooks.signature_ok(e) for e in hooks.events)
        assert set(hooks.states(ended_id)) == {"ended"}, hooks.states(ended_id)

        ended_leg = get_call(d, ended_id)
        assert ended_leg["status"] == "ended" and ended_leg["end_reason"] == "hangup", ended_leg
        live_leg = get_call(d, live_id)
        assert live_leg["status"] == "ended", live_leg
        assert live_leg["end_reason"] == "error", live_leg
        listing = requests.get(f"{d.base}/api/calling/calls?status=ended&limit=10", auth=(d.project, d.token),
                               timeout=5).json()
        assert {ended_id, live_id} <= {c["id"] for c in listing["data"]}, listing
        # The dead call is over: commands on it are refused.
        r = d.post({"command": "calling.end", "id": live_id, "params": {"reason": "hangup"}})
        assert r.status_code in (404, 422), r.text
    finally:
        hooks.stop()


# ---------------------------------------------------------------- 10. broken far ends

@pytest.mark.parametrize("scenario", ["uas_no_sdp.xml", "uas_no_common_codec.xml"])
def test_unusable_answer_is_acked_byed_and_fails_with_error(start_dialtone, sipp, hooks, scenario):
    far = sipp(scenario)
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=5)["id"]
    sipp_done(far, timeout=12)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"], far.arrows()
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ["created", "ringing", "ended"], "error", to=to)
    final = wait_status(d, call_id, ("failed", "ended"), timeout=5)
    assert final["status"] == "failed", f"never answered (no usable SDP), so failed per call-lifecycle.md: {final}"
    assert final["end_reason"] == "error", final


# ---------------------------------------------------------------- more of the outcome table

def test_calling_end_reason_after_answer_is_recorded(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    d.sdk().calling.end(call_id, reason="busy")
    sipp_done(far)
    assert far.arrows_dedup()[-2:] == ["> BYE", "< 200"], far.arrows()
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ALL_EVENTS, "busy", to=to)
    final = wait_status(d, call_id, "ended", timeout=5)
    assert final["end_reason"] == "busy", final


def test_update_completed_hangs_up_and_ending_is_delivered_when_asked(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), events=ALL_EVENTS + ["ending"], timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    # Canceling is only for calls not yet answered.
    r = d.post({"command": "update", "params": {"id": call_id, "status": "canceled"}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "cannot_cancel_in_progress", r.text
    assert get_call(d, call_id)["status"] == "answered"
    d.sdk().calling.update(id=call_id, status="completed")
    sipp_done(far)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"], far.arrows()
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ["created", "ringing", "answered", "ending", "ended"], "hangup", to=to)
    wait_status(d, call_id, "ended", timeout=5)
    r = d.post({"command": "update", "params": {"id": call_id, "status": "completed"}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "cannot_update_completed", r.text


def test_calling_end_before_answer_cancels(start_dialtone, sipp, hooks):
    far = sipp("uas_cancel.xml")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=30)["id"]
    wait_hook(hooks, call_id, "ringing", timeout=5)
    r = d.post({"command": "update", "params": {"id": call_id, "status": "completed"}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_state", r.text
    d.sdk().calling.end(call_id)  # no reason given: call-lifecycle.md says the end reason is then `cancel`
    sipp_done(far, timeout=10)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "> CANCEL", "< 200", "< 487", "> ACK"], far.arrows()
    wait_status(d, call_id, "canceled", timeout=5)
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ["created", "ringing", "ended"], "cancel", to=to)


def test_404_fails_with_not_found(start_dialtone, sipp, hooks):
    far = sipp("uas_not_found.xml")
    d = start_dialtone()
    to = far.uri("nobody")
    call_id = dial(d, to, hooks.url(), timeout=5)["id"]
    sipp_done(far)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "< 404", "> ACK"], far.arrows()
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ["created", "ringing", "ended"], "not_found", to=to)
    final = wait_status(d, call_id, "failed", timeout=5)
    assert final["end_reason"] == "not_found", final


def test_183_early_media_is_ringing(start_dialtone, sipp, hooks):
    far = sipp("uas_early_media.xml")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered", timeout=5)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    assert far.arrows_dedup() == ["> INVITE", "< 100", "< 183", "< 200", "> ACK", "> BYE", "< 200"], far.arrows()
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ALL_EVENTS, "hangup", to=to)


def test_far_end_bye_over_tcp(start_dialtone, sipp, hooks):
    """Test 2's far end over TCP (the BYE comes from sipp on the connection dialtone opened)."""
    far = sipp("uas_ring_answer_bye.xml", transport="tcp")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), events=["answered", "ended"], timeout=10)["id"]
    sipp_done(far)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "< 200", "> ACK", "< BYE", "> 200"], far.arrows()
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ["answered", "ended"], "hangup", to=to)
    wait_status(d, call_id, "ended", timeout=5)


def test_status_url_credentials_become_basic_auth_and_are_not_signed(start_dialtone, sipp, hooks):
    far = sipp("uas_busy.xml")
    d = start_dialtone()
    to = far.uri("service")
    url = f"http://hookuser:hookpass@127.0.0.1:{hooks.port}/status"
    call_id = dial(d, to, url, events=["ended"], timeout=5)["id"]
    sipp_done(far)
    wait_hook(hooks, call_id, "ended")
    [e] = hooks.for_call(call_id)
    h = {k.lower(): v for k, v in e["headers"].items()}
    assert h.get("authorization") == "Basic " + base64.b64encode(b"hookuser:hookpass").decode(), h
    assert hooks.signature_ok(e), "signed over the URL without its credentials"
    check_state_events(d, hooks, call_id, ["ended"], "busy", to=to)


def test_concurrent_calls_get_their_own_rtp_ports(start_dialtone, sipp, hooks):
    fars = [sipp("uas.xml") for _ in range(3)]
    d = start_dialtone()
    ids = [dial(d, f.uri("service"), hooks.url(), events=["answered", "ended"], timeout=5)["id"] for f in fars]
    for call_id in ids:
        wait_hook(hooks, call_id, "answered")
    ports = [check_invite(f.received("INVITE")[0], d) for f in fars]
    assert len(set(ports)) == 3, ports
    call_ids = {f.received("INVITE")[0].header("Call-ID") for f in fars}
    assert len(call_ids) == 3, call_ids
    for call_id in ids:
        d.sdk().calling.end(call_id, reason="hangup")
    for f in fars:
        sipp_done(f)
    for call_id in ids:
        wait_hook(hooks, call_id, "ended")
        check_state_events(d, hooks, call_id, ["answered", "ended"], "hangup",
                           to=get_call(d, call_id)["to"])


# ---------------------------------------------------------------- the call's SWML document from a URL

def dial_url(d, to, url, status_url, **extras):
    client = d.sdk()
    leg = client.calling.dial(from_=FROM, to=to, url=url, status_url=status_url, status_events=ALL_EVENTS,
                              extras=extras or None)
    assert leg["url"] == url, leg
    return leg


def test_swml_url_is_fetched_on_answer_with_a_signed_post(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    swml = Webhooks("test-signing-key")
    try:
        swml.reply = (SWML_JSON, "application/json")
        to = far.uri("service")
        call_id = dial_url(d, to, swml.url("/swml?app=1"), hooks.url(), timeout=5,
                           custom_variables={"ticket_id": "T-8841"})["id"]
        wait_hook(hooks, call_id, "answered")
        deadline = time.time() + 5
        while time.time() < deadline and not swml.attempts:
            time.sleep(0.05)
        assert len(swml.attempts) == 1, swml.attempts
        f = swml.attempts[0]
        assert f["method"] == "POST" and f["path"] == "/swml?app=1", f
        assert swml.signature_ok(f), "the SWML fetch is signed over the full URL with its query"
        answered_at = [m.when for m in far.ladder() if not m.from_dialtone and m.kind == "200"][0]
        assert f["t"] >= answered_at - 0.05, "the document is fetched when the call is answered"
        body = json.loads(f["body"])
        assert set(body) >= {"call", "vars", "envs", "params"}, body
        assert body["vars"] == {} and body["params"] == {}, body
        assert body["envs"].get("ticket_id") == "T-8841", body
        c = body["call"]
        assert c["call_id"] == call_id and c["direction"] == "outbound" and c["type"] == "sip", c
        assert c["to"] == to and c["from"] == FROM and c["project_id"] == d.project, c
        assert c.get("node_id") and c.get("segment_id") and isinstance(c.get("headers"), list), c
        # A valid document: the call stays up until we hang up.
        assert get_call(d, call_id)["status"] == "answered"
        d.sdk().calling.end(call_id, reason="hangup")
        sipp_done(far)
        wait_hook(hooks, call_id, "ended")
        check_state_events(d, hooks, call_id, ALL_EVENTS, "hangup", to=to)
        assert len(swml.attempts) == 1
    finally:
        swml.stop()


def test_swml_url_unavailable_uses_fallback_then_errors(start_dialtone, sipp, hooks):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    far1, far2 = sipp("uas.xml"), sipp("uas.xml")
    d = start_dialtone()
    swml = Webhooks("test-signing-key")
    try:
        swml.reply = (SWML_JSON, "application/json")
        # 1. url unreachable, fallback_url good: the call stays up on the fallback's document.
        to1 = far1.uri("service")
        id1 = dial_url(d, to1, f"http://127.0.0.1:{closed}/swml", hooks.url(), timeout=5,
                       fallback_url=swml.url("/fallback"))["id"]
        wait_hook(hooks, id1, "answered")
        deadline = time.time() + 5
        while time.time() < deadline and not swml.attempts:
            time.sleep(0.05)
        assert [a["path"] for a in swml.attempts] == ["/fallback"], swml.attempts
        assert swml.signature_ok(swml.attempts[0])
        assert get_call(d, id1)["status"] == "answered"
        d.sdk().calling.end(id1, reason="hangup")
        sipp_done(far1)
        wait_hook(hooks, id1, "ended")
        check_state_events(d, hooks, id1, ALL_EVENTS, "hangup", to=to1)
        # 2. no document anywhere: answered, then hung up with end_reason error.
        to2 = far2.uri("service")
        id2 = dial_url(d, to2, f"http://127.0.0.1:{closed}/swml", hooks.url(), timeout=5)["id"]
        sipp_done(far2)
        assert far2.arrows_dedup() == ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"], far2.arrows()
        wait_hook(hooks, id2, "ended")
        check_state_events(d, hooks, id2, ALL_EVENTS, "error", to=to2)
        final = wait_status(d, id2, "ended", timeout=5)
        assert final["end_reason"] == "error", final
    finally:
        swml.stop()


@pytest.mark.parametrize("code,phrase,status,reason", [
    (480, "Temporarily Unavailable", "ended", "noAnswer"),
    (408, "Request Timeout", "ended", "noAnswer"),
    (600, "Busy Everywhere", "ended", "busy"),
    (607, "Unwanted", "ended", "decline"),
    (608, "Rejected", "ended", "decline"),
    (484, "Address Incomplete", "failed", "not_found"),
    (604, "Does Not Exist Anywhere", "failed", "not_found"),
    (488, "Not Acceptable Here", "failed", "error"),
    (500, "Server Internal Error", "failed", "error"),
])
def test_final_response_mapping(start_dialtone, sipp, hooks, tmp_path, code, phrase, status, reason):
    """The SIP outcome table of call-lifecycle.md, one final response at a time."""
    template = (SCENARIOS / "uas_reject.xml").read_text()
    assert "SIP/2.0 480 Temporarily Unavailable" in template
    scenario = tmp_path / f"uas_reject_{code}.xml"
    scenario.write_text(template.replace("SIP/2.0 480 Temporarily Unavailable", f"SIP/2.0 {code} {phrase}"))
    far = sipp(str(scenario))
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), events=["ringing", "ended"], timeout=5)["id"]
    sipp_done(far)
    assert far.arrows_dedup() == ["> INVITE", "< 180", f"< {code}", "> ACK"], far.arrows()
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ["ringing", "ended"], reason, to=to)
    final = wait_status(d, call_id, ("ended", "failed", "canceled"), timeout=5)
    assert (final["status"], final["end_reason"]) == (status, reason), final


def test_answer_racing_our_cancel_is_acked_and_byed_and_stays_canceled(start_dialtone, sipp, hooks):
    far = sipp("uas_cancel_race.xml")
    d = start_dialtone()
    to = far.uri("service")
    call_id = dial(d, to, hooks.url(), timeout=30)["id"]
    wait_hook(hooks, call_id, "ringing", timeout=5)
    d.sdk().calling.update(id=call_id, status="canceled")
    sipp_done(far)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "> CANCEL", "< 200", "< 200", "> ACK", "> BYE", "< 200"], far.arrows()
    wait_hook(hooks, call_id, "ended")
    final = wait_status(d, call_id, ("canceled", "ended", "failed"), timeout=5)
    assert (final["status"], final["end_reason"]) == ("canceled", "cancel"), final
    states = hooks.states(call_id)
    assert states[-1] == "ended" and "answered" not in states, states
    check_state_events(d, hooks, call_id, ["created", "ringing", "ended"], "cancel", to=to)


def test_document_end_hangs_up(start_dialtone, sipp, hooks):
    """swml.md §2.9: when `main` runs off its end the engine hangs up (normal clearing, `hangup`)."""
    far = sipp("uas.xml")
    d = start_dialtone()
    to = far.uri("service")
    client = d.sdk()
    call_id = client.calling.dial(from_=FROM, to=to, status_url=hooks.url(), status_events=ALL_EVENTS,
                                  swml={"version": "1.0.0", "sections": {"main": [{"answer": {}}]}},
                                  extras={"timeout": 5})["id"]
    sipp_done(far)
    assert far.arrows_dedup() == ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"], far.arrows()
    wait_hook(hooks, call_id, "ended")
    check_state_events(d, hooks, call_id, ALL_EVENTS, "hangup", to=to)
    final = wait_status(d, call_id, "ended", timeout=5)
    assert final["end_reason"] == "hangup", final


# ---------------------------------------------------------------- commands not built yet

def test_commands_not_built_answer_501_naming_them_on_a_live_call(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    leg = dial(d, far.uri("service"), hooks.url(), timeout=5)
    call_id = leg["id"]
    wait_hook(hooks, call_id, "answered")
    # What is not built: refused, naming the command and what of it is missing.
    speak = {"control_id": "p9", "direction": "speak", "play": [{"type": "silence", "params": {"duration": 1}}]}
    for command, params, named in [("calling.play", speak, "direction speak")]:
        r = d.post({"command": command, "id": call_id, "params": params})
        assert r.status_code == 501, (command, r.status_code, r.text)
        err = r.json()["errors"][0]
        assert command in err["message"] and named in err["message"], err
    # Live transcription and translation and the sidecar are built: with none running, their
    # stops are 422 invalid_state (docs/ai.md).
    for command in ["calling.live_translate", "calling.live_transcribe"]:
        r = d.post({"command": command, "id": call_id, "params": {"action": "stop"}})
        assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_state", r.text
    r = d.post({"command": "calling.ai_sidecar.stop", "id": call_id, "params": {}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_state", r.text
    # A message for an AI agent is built: with no agent on the call it is 422 invalid_state (docs/ai.md).
    r = d.post({"command": "calling.ai_message", "id": call_id, "params": {"role": "user", "message_text": "hi"}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_state", r.text
    # A fax stop is built: with no such fax it is 422 does_not_exist (docs/fax.md).
    r = d.post({"command": "calling.receive_fax.stop", "id": call_id, "params": {"control_id": "f1"}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "does_not_exist", r.text
    # The call is untouched by the refused commands.
    assert get_call(d, call_id)["status"] == "answered"
    d.sdk().calling.end(call_id, reason="hangup")
    wait_hook(hooks, call_id, "ended")
    sipp_done(far)


# ---------------------------------------------------------------- wideband codecs on the wire

@pytest.mark.parametrize("codecs,pt,rtpmap,evclock,ts_step", [
    ("G722,PCMU", 9, "G722/8000", 8000, 160),      # G.722's RTP clock is 8000 (RFC 3551)
    ("OPUS", 111, "opus/48000/2", 48000, 960),
])
def test_wideband_codecs_are_offered_and_sent_paced(start_dialtone, sipp, hooks, rtp_sink, codecs, pt, rtpmap,
                                                    evclock, ts_step):
    far = sipp("uas_rtp_sink_wideband.xml",
               keys={"rtp_sink": rtp_sink.port, "pt": pt, "codec": rtpmap, "evclock": evclock})
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5, codecs=codecs)["id"]
    wait_hook(hooks, call_id, "answered")
    t_first = rtp_sink.wait_first()
    while time.time() < t_first + 1.3:
        time.sleep(0.05)
    window = [p for p in rtp_sink.packets if p[0] <= t_first + 1.0]
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    offer = far.received("INVITE")[0].body
    assert f"a=rtpmap:{pt} {rtpmap}" in offer, offer
    pk = [rtp(p[2]) for p in window]
    assert 45 <= len(pk) <= 55, f"{len(pk)} packets in 1 s"
    assert {p["pt"] for p in pk} == {pt}
    for a, b in zip(pk, pk[1:]):
        assert (b["seq"] - a["seq"]) % 65536 == 1
        assert (b["ts"] - a["ts"]) % 2**32 == ts_step, (a["ts"], b["ts"])
    sizes = {len(p["payload"]) for p in pk}
    if pt == 9:
        assert sizes == {160}, sizes  # 20 ms of G.722 at 64 kbit/s
    else:
        assert all(0 < s < 200 for s in sizes), sizes  # Opus frames of encoded silence


# ---------------------------------------------------------------- garbage RTP from the far end

def test_garbage_rtp_is_counted_and_the_call_carries_on(start_dialtone, sipp, hooks, rtp_sink):
    far = sipp("uas_rtp_sink.xml", keys={"rtp_sink": rtp_sink.port, "pt": 0, "codec": "PCMU"})
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    rtp_sink.wait_first()
    port = check_invite(far.received("INVITE")[0], d)
    junk = [b"", b"\x00", b"\xff" * 11, b"hello world, not RTP", bytes(range(256)) * 4,
            b"\x40" + b"\x00" * 20,            # RTP version 1
            b"\x80\xc8" + b"\x00" * 30,        # RTCP sender report on the RTP port
            b"\xa0\x00" + b"\x00" * 10]        # padding bit with no room for padding
    for i in range(200):
        rtp_sink.sock.sendto(junk[i % len(junk)], ("127.0.0.1", port))
    t0 = time.time()
    while time.time() < t0 + 1.2:
        time.sleep(0.05)
    after = [p for p in rtp_sink.packets if t0 + 0.1 < p[0] <= t0 + 1.1]
    assert 45 <= len(after) <= 55, f"{len(after)} RTP packets in the second after the garbage"
    assert get_call(d, call_id)["status"] == "answered"
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    wait_hook(hooks, call_id, "ended")
    log = re.sub(r"\x1b\[[0-9;]*m", "", d.log_path.read_text())
    counts = [int(n) for n in re.findall(r"media stats .*garbage=(\d+)", log)]
    assert counts and counts[-1] >= 150, counts  # a few may race the first tick


# ---------------------------------------------------------------- to_script

def test_dial_to_a_script_runs_both_ends_with_rtp_between_them(start_dialtone, hooks):
    d = start_dialtone()
    probe = Webhooks("unused")
    origin = {"version": "1.0.0", "sections": {"main": [{"play": {"url": "silence:1.5"}}, {"hangup": {}}]}}
    # The destination end proves it ran by calling our server, then holds until the origin hangs up.
    script = {"version": "1.0.0", "sections": {"main": [
        {"request": {"url": probe.url("/script-end-ran"), "method": "GET"}},
        {"play": {"url": "ring:10:us"}}]}}
    r = d.post({"command": "dial", "params": {"from": FROM, "to_script": script, "swml": origin,
                                              "status_url": hooks.url(), "status_events": ALL_EVENTS}})
    assert r.status_code == 200, r.text
    call_id = r.json()["id"]
    t0 = time.time()
    wait_hook(hooks, call_id, "answered")
    wait_hook(hooks, call_id, "ended", timeout=10)
    assert 1.2 <= time.time() - t0 <= 6, time.time() - t0
    assert [a["path"] for a in probe.attempts] == ["/script-end-ran"], probe.attempts
    probe.stop()
    listing = requests.get(f"{d.base}/api/calling/calls", auth=(d.project, d.token), timeout=5).json()["data"]
    child = next(c for c in listing if c["parent_id"] == call_id)
    final = wait_status(d, child["id"], "ended", timeout=5)
    assert final["end_reason"] == "hangup", final
    assert get_call(d, call_id)["end_reason"] == "hangup"
    # Real RTP flowed between the two ends: each received the other's packets.
    deadline = time.time() + 5
    while time.time() < deadline:
        log = re.sub(r"\x1b\[[0-9;]*m", "", d.log_path.read_text())
        received = [int(n) for n in re.findall(r"media stats .*?received=(\d+)", log)]
        if len(received) >= 2:
            break
        time.sleep(0.1)
    assert len(received) >= 2 and min(received) >= 50, received


def test_to_script_with_a_to_is_refused_with_422(start_dialtone):
    d = start_dialtone()
    script = {"version": "1.0.0", "sections": {"main": [{"play": {"url": "silence:1"}}]}}
    r = d.post({"command": "dial", "params": {"from": FROM, "to": "sip:bob@127.0.0.1:9", "to_script": script,
                                              "swml": SWML}})
    assert r.status_code == 422, r.text
    item = r.json()["errors"][0]
    assert item["code"] == "incompatible_parameters" and item["attribute"] == "to_script", r.text
    bad = d.post({"command": "dial", "params": {"from": FROM, "to_script": "version: 1.0.0\nsections: {}",
                                                "swml": SWML}})
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["code"] == "relay_script_main_section_missing", bad.text
    listing = requests.get(f"{d.base}/api/calling/calls", auth=(d.project, d.token), timeout=5).json()
    assert listing["data"] == [], "refused dials leave no call behind"

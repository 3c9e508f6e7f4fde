"""Interop with a real softphone nobody on the team wrote: baresip 1.0 (tests/e2e/baresip_peer.py).

The codec matrix: PCMU, PCMA, G.722 and Opus, each inbound (baresip dials dialtone; an inbound route's
SWML answers) and outbound (dialtone dials baresip through the SDK with the default codec preference
list), baresip restricted to the one codec. Every cell runs the same SWML, which checks each feature
by content:

  - audio dialtone -> baresip: `prompt` plays a 1 kHz tone; baresip's sndfile recording of what it
    heard must hold 1 kHz;
  - audio baresip -> dialtone: baresip sends a 440 Hz tone; `record_call` (stereo, left = the far end)
    must hold 440 Hz in its left channel;
  - DTMF baresip -> dialtone: baresip `sndcode 123#` (RFC 4733) barges into the prompt, whose result
    must be the digits 123 with the terminator #;
  - DTMF dialtone -> baresip: SWML `send_digits 456` must arrive as baresip CALL_DTMF_START events.

The script reports its variables with a `request` to the test's webhook receiver, and the codec on
the wire is read from the SDP baresip received.  docs/interop.md is the matrix these tests fill.
"""
import json
import math
import re
import shutil
import time

import pytest
import requests

from audio_check import goertzel_db
from baresip_peer import BaresipPeer
from media_sink import HttpPeer, free_rtp_range, tone_wav
from test_record import fetch_wav

pytestmark = pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip-core is not installed")

FROM = "+15105550100"
NUMBER = "+15551230000"
OUR_TONE = 1000     # what dialtone plays
THEIR_TONE = 440    # what baresip sends
# How baresip's log names the codec it set for the call ("audio: Set audio decoder: PCMU 8000Hz 1ch").
BARESIP_CODEC = {"PCMU": "PCMU 8000Hz 1ch", "PCMA": "PCMA 8000Hz 1ch", "G722": "G722 16000Hz 1ch",
                 "OPUS": "opus 48000Hz 2ch"}


def doc(*steps):
    return {"version": "1.0.0", "sections": {"main": list(steps)}}


def matrix_doc(hooks, tone_url, inbound):
    steps = [{"answer": {}}] if inbound else []
    steps += [
        {"record_call": {"format": "wav", "stereo": True, "direction": "both"}},
        {"prompt": {"play": [tone_url], "max_digits": 4, "terminators": "#", "digit_timeout": 3,
                    "initial_timeout": 5}},
        {"send_digits": {"digits": "456"}},
        {"play": {"url": "silence:1.5"}},
        {"stop_record_call": {}},
        {"request": {"url": hooks.url("/vars"), "method": "POST",
                     "body": {"result": "${prompt_result}", "value": "${prompt_value}",
                              "term": "${prompt_digit_terminator}", "url": "${record_call_url}",
                              "sent": "${send_digits_result}"}}},
        {"hangup": {}},
    ]
    return doc(*steps)


def reported(hooks, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in hooks.events:
            if e["path"] == "/vars":
                return hooks.parse(e)
        time.sleep(0.05)
    raise AssertionError(f"the script reported nothing; got {[e['path'] for e in hooks.events]}")


def tone_share(samples, rate, freq, win_s=0.1, min_rms=300):
    """(windows where freq dominates, voiced windows): freq holds > -3 dB of a voiced window's power."""
    n = int(rate * win_s)
    hit = voiced = 0
    for i in range(0, len(samples) - n + 1, n):
        w = samples[i:i + n]
        if math.sqrt(sum(x * x for x in w) / n) < min_rms:
            continue
        voiced += 1
        if goertzel_db(w, freq, rate) > -3:
            hit += 1
    return hit, voiced


@pytest.fixture
def media():
    p = HttpPeer()
    p.route("/tone1k.wav", tone_wav(OUR_TONE, 4.0, 8000), "audio/wav")
    yield p
    p.stop()


@pytest.fixture
def baresip(tmp_path, request):
    """Factory: baresip(codecs=["PCMU"], ...) -> a started BaresipPeer; killed at teardown, its log printed
    when the test failed."""
    peers = []

    def start(**kw):
        p = BaresipPeer(tmp_path / f"baresip{len(peers)}", **kw)
        peers.append(p)
        return p.start()

    yield start
    for p in peers:
        p.kill()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for p in peers:
            print(f"==== {p.describe()}")


def start_node(start_dialtone, tmp_path, swml=None, extra_env=None, routes=None):
    """A node whose inbound route for NUMBER runs `swml`, or with `routes` ({number: swml})."""
    routes = dict(routes or {})
    if swml is not None:
        routes[NUMBER] = swml
    text = "".join(f"[[inbound_routes]]\ndestination = \"{n}\"\nswml = '''\n{json.dumps(s)}\n'''\n"
                   for n, s in routes.items())
    cfg = tmp_path / "dialtone.toml"
    cfg.write_text(text)
    lo, hi = free_rtp_range(20)
    d = start_dialtone({"DIALTONE_CONFIG": str(cfg), "DIALTONE_RTP_PORTS": f"{lo}-{hi}", **(extra_env or {})})
    d.sip_port = int(d.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
    return d


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
@pytest.mark.parametrize("codec", ["PCMU", "PCMA", "G722", "OPUS"])
def test_codec_matrix_audio_and_dtmf_both_ways(start_dialtone, tmp_path, baresip, hooks, media, codec, direction):
    peer = baresip(codecs=[codec], tone=THEIR_TONE, seconds=15)
    swml = matrix_doc(hooks, media.url("/tone1k.wav"), inbound=direction == "inbound")
    if direction == "inbound":
        d = start_node(start_dialtone, tmp_path, swml)
        peer.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    else:
        d = start_node(start_dialtone, tmp_path)
        leg = d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=swml, status_url=hooks.url(),
                                   status_events=["answered", "ended"])
        assert leg["id"], leg
    peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    # Let baresip hear about 1.5 s of the prompt's tone, then press the keys (RFC 4733).
    time.sleep(1.5)
    peer.ctrl.cmd("sndcode 123#")
    got = reported(hooks, timeout=15)
    assert got["result"] == "match_digits" and got["value"] == "123" and got["term"] == "#", got
    assert got["sent"] == "success", got
    digits = [peer.ctrl.wait_event("CALL_DTMF_START", timeout=5)["param"] for _ in range(3)]
    assert digits == ["4", "5", "6"], digits
    peer.ctrl.wait_event("CALL_CLOSED", timeout=10)
    assert len(peer.ctrl.events_of("CALL_DTMF_START")) == 3, "each digit once"

    # The codec on the wire, both ways, as baresip set it up (it offered/accepted only that one).
    log = peer.log()
    for way in ("decoder", "encoder"):
        set_ = [l for l in log.splitlines() if f"Set audio {way}:" in l]
        assert set_ and all(BARESIP_CODEC[codec] in l for l in set_), set_

    # What baresip heard: our 1 kHz tone.
    rate, _, heard = peer.heard()
    hit, voiced = tone_share(heard, rate, OUR_TONE)
    assert hit >= 8, f"baresip heard {hit} windows of {OUR_TONE} Hz out of {voiced} voiced ({codec}, {direction})"
    assert tone_share(heard, rate, THEIR_TONE)[0] == 0, "the check tells the tones apart (no echo of baresip's)"

    # What dialtone heard: baresip's 440 Hz in the far end's (left) channel of record_call.
    w, samples = fetch_wav(d, got["url"])
    assert w.getnchannels() == 2, w.getnchannels()
    left = list(samples[0::2])
    hit, voiced = tone_share(left, w.getframerate(), THEIR_TONE)
    assert hit >= 15, f"dialtone recorded {hit} windows of {THEIR_TONE} Hz out of {voiced} voiced"
    assert hit >= 0.8 * voiced, (hit, voiced)
    assert tone_share(left, w.getframerate(), OUR_TONE)[0] == 0, "our own tone is not in the far end's channel"



# ---------------------------------------------------------------- codec preference (the `codecs` setting)

def codec_set(peer, timeout=5):
    """The codec baresip set its encoder to, from its log ("audio: Set audio encoder: PCMU 8000Hz 1ch")."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(r"Set audio encoder: (\S+ \d+Hz \d+ch)", peer.log())
        if m:
            return m.group(1)
        time.sleep(0.1)
    raise AssertionError(f"baresip set no encoder:\n{peer.log()}")


@pytest.mark.parametrize("setting,expect", [(None, "PCMU"), ("OPUS,G722,PCMU", "OPUS"), ("G722,PCMA", "G722")])
def test_inbound_answer_picks_our_preference_among_baresips_codecs(start_dialtone, tmp_path, baresip, setting, expect):
    # baresip offers all four, Opus first; the answer follows our list, not the offer's order.
    swml = doc({"answer": {}}, {"play": {"url": "silence:3"}}, {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, swml, extra_env={"DIALTONE_CODECS": setting} if setting else None)
    peer = baresip(codecs=["OPUS", "G722", "PCMA", "PCMU"], tone=THEIR_TONE, seconds=15, wav_codec=expect)
    peer.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    assert codec_set(peer) == BARESIP_CODEC[expect]
    # baresip offers telephone-event only at 8 kHz (PT 101, events 0-15), also beside Opus: the
    # answer takes that one and echoes its event list.
    answer = sent_sdp_answers(d)
    assert len(answer) == 1, answer
    assert "a=rtpmap:101 telephone-event/8000" in answer[0] and "a=fmtp:101 0-15\r\n" in answer[0], answer[0]
    peer.ctrl.cmd("hangup", check=False)


def test_outbound_default_offer_lets_a_g722_only_phone_answer(start_dialtone, tmp_path, baresip, hooks):
    # The default list offers G.722 and Opus too, so a wideband-only phone answers rather than 488.
    d = start_node(start_dialtone, tmp_path)
    peer = baresip(codecs=["G722"], tone=THEIR_TONE, seconds=15)
    leg = d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=doc({"play": {"url": "silence:2"}}, {"hangup": {}}),
                               status_url=hooks.url(), status_events=["answered", "ended"])
    assert hooks.wait_state(leg["id"], "answered", timeout=10), hooks.states(leg["id"])
    assert codec_set(peer) == BARESIP_CODEC["G722"]


# ---------------------------------------------------------------- hold (issue 15 item 2)

def rtp_received(peer):
    """Packets baresip has received from dialtone so far (its audio_debug RTCP member line, "rcvd=N")."""
    data = peer.ctrl.cmd("audio_debug")["data"]
    got = re.findall(r"\brcvd=(\d+)", data)
    assert got, data
    return sum(int(n) for n in got)


def sent_sdp_answers(d):
    """Bodies of the 200 OKs to INVITEs dialtone sent, from its SIP trace (the raw messages it logs)."""
    out = []
    for line in d.log_path.read_text(errors="replace").splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)  # the text log is coloured
        if "udp send" in line and "SIP/2.0 200 OK" in line and "INVITE" in line and "application/sdp" in line:
            m = re.search(r'raw_message="(.*)"', line)
            if m:
                out.append(m.group(1).encode().decode("unicode_escape"))
    return out


def held_call(start_dialtone, tmp_path, baresip, hooks, direction):
    """A PCMU call between dialtone (playing a ring) and baresip, up for 1 s, dialtone sending."""
    swml = doc({"play": {"url": "ring:10:us"}}, {"hangup": {}})
    peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=15)
    if direction == "inbound":
        d = start_node(start_dialtone, tmp_path, doc({"answer": {}}, *swml["sections"]["main"]))
        peer.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    else:
        d = start_node(start_dialtone, tmp_path)
        d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=swml, status_url=hooks.url(),
                             status_events=["answered", "ended"])
    peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    time.sleep(1.0)
    assert rtp_received(peer) >= 25, "dialtone sends RTP before the hold"
    return d, peer


def re_invite(d, peer, command):
    """baresip re-INVITEs (`hold`: a=sendonly, `resume`: a=sendrecv); dialtone's SDP answer to it."""
    n = len(sent_sdp_answers(d))
    peer.ctrl.cmd(command)
    deadline = time.time() + 5
    while time.time() < deadline and len(sent_sdp_answers(d)) <= n:
        time.sleep(0.1)
    answers = sent_sdp_answers(d)
    assert len(answers) == n + 1, (command, answers)
    return answers[-1]


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_baresip_hold_and_resume_are_answered_recvonly_then_sendrecv(start_dialtone, tmp_path, baresip, hooks,
                                                                      direction):
    d, peer = held_call(start_dialtone, tmp_path, baresip, hooks, direction)
    answer = re_invite(d, peer, "hold")
    assert "a=recvonly" in answer and "a=sendrecv" not in answer, answer
    time.sleep(1.0)
    answer = re_invite(d, peer, "resume")
    assert "a=sendrecv" in answer, answer
    time.sleep(0.3)
    before = rtp_received(peer)
    time.sleep(1.0)
    assert rtp_received(peer) - before >= 40, "dialtone sends again after the resume"
    assert not peer.ctrl.events_of("CALL_CLOSED"), "the call stayed up"
    peer.ctrl.cmd("hangup", check=False)
    peer.ctrl.wait_event("CALL_CLOSED", timeout=5)


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_baresip_hold_stops_dialtone_sending(start_dialtone, tmp_path, baresip, hooks, direction):
    d, peer = held_call(start_dialtone, tmp_path, baresip, hooks, direction)
    answer = re_invite(d, peer, "hold")
    assert "a=recvonly" in answer, answer
    time.sleep(0.5)  # packets already on their way
    before = rtp_received(peer)
    time.sleep(2.0)
    during_hold = rtp_received(peer) - before
    peer.ctrl.cmd("hangup", check=False)
    # RFC 3264 §6.1: nothing is sent on a recvonly stream.
    assert during_hold <= 2, f"dialtone sent {during_hold} RTP packets in 2 s of hold"


# ---------------------------------------------------------------- RTCP

def test_rtcp_reports_go_both_ways_and_give_a_round_trip(start_dialtone, tmp_path, baresip, hooks):
    """dialtone sends SR/RR + SDES every ~5 s from its RTP port + 1 and reads baresip's reports: after
    ~12 s both sides have reported, baresip's report blocks about our stream gave a round-trip time, and
    the call's media_stats event carries it."""
    from test_rtp_source import media_stats
    peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=20)
    d = start_node(start_dialtone, tmp_path)
    leg = d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=doc({"play": {"url": "ring:20:us"}}),
                               status_url=hooks.url(), status_events=["answered", "ended"])
    peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    time.sleep(12)
    debug = peer.ctrl.cmd("audio_debug")["data"]
    # While the call is up, GET /calls/{id} carries its live statistics.
    live = get_call(d, leg["id"])
    assert live["status"] == "answered", live
    assert live["held"] is False, live
    check_media_stats(live, final=False)
    peer.ctrl.cmd("hangup", check=False)
    peer.ctrl.wait_event("CALL_CLOSED", timeout=5)
    rtcp = media_stats(d, leg["id"])["rtcp"]
    assert rtcp["reports_sent"] >= 2, (rtcp, debug)
    assert rtcp["reports_received"] >= 1, (rtcp, debug)
    # Loopback: a few ms, plus up to a tick of ours and baresip's scheduling on a loaded machine.
    assert rtcp["rtt_ms"] is not None and rtcp["rtt_ms"] < 250, (rtcp, debug)
    assert rtcp["remote_packets_lost"] == 0, rtcp
    # baresip got ours too: its RTCP member for us carries a round trip (from our report blocks
    # about its stream) and the packet count of our SR (psent).
    member = re.search(r"RTT=([\d.]+)ms.*?psent=(\d+)", debug, re.S)
    assert member and float(member.group(1)) > 0 and int(member.group(2)) > 100, debug
    # After the hang-up: the final statistics, at least what the live ones said.
    final = wait_final_stats(d, leg["id"])
    assert "held" not in final, final
    stats = check_media_stats(final, final=True)
    assert stats["packets_sent"] >= live["media_stats"]["packets_sent"], (stats, live)
    assert stats["rtcp_reports_sent"] == rtcp["reports_sent"], (stats, rtcp)
    assert stats["rtt_ms"] == rtcp["rtt_ms"], (stats, rtcp)


def get_call(d, call_id):
    r = requests.get(f"{d.base}/api/calling/calls/{call_id}", auth=(d.project, d.token), timeout=5)
    r.raise_for_status()
    return r.json()


def wait_final_stats(d, call_id, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        leg = get_call(d, call_id)
        # The final counters are stored just before the call's end is.
        if (leg.get("media_stats") or {}).get("final") and leg.get("status") == "ended":
            return leg
        time.sleep(0.1)
    raise AssertionError(f"no final media_stats: {leg}")


def check_media_stats(leg, final):
    """Plausible statistics of a PCMU call of several seconds with baresip on loopback."""
    s = leg.get("media_stats")
    assert s is not None, leg
    assert s["final"] is final, s
    assert s["packets_sent"] > 200 and s["packets_received"] > 200, s
    assert s["packets_lost"] == 0, s
    assert 0 <= s["jitter_ms"] < 50, s
    assert s["rtcp_received"] is True and s["rtcp_reports_received"] >= 1, s
    assert s["rtcp_reports_sent"] >= 1, s
    assert s["rtt_ms"] is not None and 0 <= s["rtt_ms"] < 1000, s
    assert s["remote_packets_lost"] == 0 and s["remote_fraction_lost"] == 0, s
    assert s["remote_jitter_ms"] is not None and 0 <= s["remote_jitter_ms"] < 50, s
    return s


# ---------------------------------------------------------------- hold during operations (issue 15 item 4)

@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_hold_keeps_the_recording_and_the_collect_and_resumes_cleanly(start_dialtone, tmp_path, baresip, hooks,
                                                                      direction):
    """A PCMU call records itself (record_call) and collects digits (prompt) while baresip holds
    it (re-INVITE sendonly) for ~2.5 s and resumes: nothing is sent while held, GET /calls/{id} says
    `held` then not, the keys pressed after the resume end the collect, the recording spans the whole
    call (hold included) and after the resume holds baresip's tone in its far-end channel and the
    tone we played after it in the other."""
    media = HttpPeer()
    media.route("/tone1k-2s.wav", tone_wav(OUR_TONE, 2.0, 8000), "audio/wav")
    try:
        _hold_during_operations(start_dialtone, tmp_path, baresip, hooks, media, direction)
    finally:
        media.stop()


def _hold_during_operations(start_dialtone, tmp_path, baresip, hooks, media, direction):
    steps = [{"answer": {}}] if direction == "inbound" else []
    swml = doc(
        *steps,
        {"record_call": {"format": "wav", "stereo": True, "direction": "both"}},
        {"prompt": {"play": ["silence:1"], "max_digits": 4, "terminators": "#", "digit_timeout": 3,
                    "initial_timeout": 20}},
        {"play": {"url": media.url("/tone1k-2s.wav")}},
        {"stop_record_call": {}},
        {"request": {"url": hooks.url("/vars"), "method": "POST",
                     "body": {"result": "${prompt_result}", "value": "${prompt_value}",
                              "term": "${prompt_digit_terminator}", "url": "${record_call_url}"}}},
        {"hangup": {}},
    )
    peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=25)
    if direction == "inbound":
        d = start_node(start_dialtone, tmp_path, swml)
        peer.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    else:
        d = start_node(start_dialtone, tmp_path)
        d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=swml, status_url=hooks.url(),
                             status_events=["answered", "ended"])
    peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    t_up = time.time()
    r = requests.get(f"{d.base}/api/calling/calls?limit=1", auth=(d.project, d.token), timeout=5)
    r.raise_for_status()
    call_id = r.json()["data"][0]["id"]
    time.sleep(1.0)
    assert get_call(d, call_id)["held"] is False

    answer = re_invite(d, peer, "hold")
    assert "a=recvonly" in answer, answer
    time.sleep(0.5)  # packets already on their way
    assert get_call(d, call_id)["held"] is True
    before = rtp_received(peer)
    time.sleep(2.0)
    during_hold = rtp_received(peer) - before
    assert during_hold <= 2, f"dialtone sent {during_hold} RTP packets in 2 s of hold"

    answer = re_invite(d, peer, "resume")
    assert "a=sendrecv" in answer, answer
    t_resumed = time.time()
    time.sleep(0.5)
    assert get_call(d, call_id)["held"] is False
    before = rtp_received(peer)
    time.sleep(1.0)
    assert rtp_received(peer) - before >= 40, "dialtone sends again after the resume"

    # The collect that ran through the hold takes the keys pressed after it.
    peer.ctrl.cmd("sndcode 123#")
    got = reported(hooks, timeout=10)
    t_reported = time.time()
    assert got["result"] == "match_digits" and got["value"] == "123" and got["term"] == "#", got
    peer.ctrl.wait_event("CALL_CLOSED", timeout=10)
    assert len(peer.ctrl.events_of("CALL_CLOSED")) == 1

    # The recording: one file from the answer to stop_record_call, the hold included.
    w, samples = fetch_wav(d, got["url"])
    rate = w.getframerate()
    assert w.getnchannels() == 2
    seconds = w.getnframes() / rate
    spanned = t_reported - t_up
    assert spanned - 1.0 <= seconds <= spanned + 0.5, (seconds, spanned)
    # After the resume: baresip's 440 Hz on the far end's (left) channel, our 1 kHz on the other.
    after = int((t_resumed - t_up + 0.5) * rate) * 2
    left, right = list(samples[after::2]), list(samples[after + 1::2])
    hit, voiced = tone_share(left, rate, THEIR_TONE)
    assert hit >= 15 and hit >= 0.8 * voiced, f"{hit} windows of {THEIR_TONE} Hz of {voiced} voiced after resume"
    hit, voiced = tone_share(right, rate, OUR_TONE)
    assert hit >= 10, f"{hit} windows of our {OUR_TONE} Hz of {voiced} voiced after resume"
    # (baresip 1.0's sndfile stops its decode dump at its hold and does not start it again at
    # the resume, so what it heard afterwards is shown by its RTP count above, not by its dump.)

    final = wait_final_stats(d, call_id)
    assert "held" not in final, final
    assert final["media_stats"]["packets_received"] > 200, final


# ---------------------------------------------------------------- directions on a first INVITE and `inactive`

def test_a_first_offer_already_sendonly_then_sendrecv_then_inactive(start_dialtone, tmp_path, sipp):
    """sipp calls with a first INVITE that is already `a=sendonly` (answered `a=recvonly`: dialtone sends
    nothing), re-INVITEs `a=sendrecv` (answered `a=sendrecv`: ~2.5 s of RTP) and then `a=inactive`
    (answered `a=inactive`: nothing again). The RTP that reaches sipp's port is one ~2.5 s burst."""
    from test_calls import RtpSink
    sink = RtpSink()
    d = start_node(start_dialtone, tmp_path, doc({"answer": {}}, {"play": {"url": "ring:9:us"}}, {"hangup": {}}))
    caller = sipp("inbound_uac_directions.xml", keys={"rtp_sink": sink.port},
                  extra=("-s", NUMBER, f"127.0.0.1:{d.sip_port}"))
    assert caller.wait(25) == 0, caller.describe()
    answers = sent_sdp_answers(d)
    dirs = [next(a for a in ("sendrecv", "sendonly", "recvonly", "inactive") if f"a={a}" in s) for s in answers]
    assert dirs == ["recvonly", "sendrecv", "inactive"], answers
    times = [p[0] for p in sink.packets]
    assert 80 <= len(times) <= 150, f"{len(times)} packets; expected only the 2.5 s sendrecv window"
    assert times[-1] - times[0] < 3.0, f"RTP spread over {times[-1] - times[0]:.1f} s, not one window"

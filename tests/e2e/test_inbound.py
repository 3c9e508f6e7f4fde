"""Inbound calls routed by configuration ([[inbound_routes]] in a TOML file named by DIALTONE_CONFIG), with sipp
as the CALLER (tests/e2e/sipp/inbound_uac_*.xml) whose SDP offer points dialtone's RTP at a UDP socket of the
test, a real HTTP server for SWML documents and WAV files, and the `hooks` webhook receiver.

The contract is docs/swml-runtime.md "Inbound calls" and README "Configuration". Every wait polls with a deadline.
"""
import json
import time

import pytest
import requests

from media_sink import HttpPeer, RtpSink, describe, free_rtp_range, labels, major_runs, signature_ok, tone_wav
from test_playback import wait_until

KEY = "test-signing-key"
NUMBER = "+15551230000"
CALLER = "+15105550199"


def doc(*steps):
    return {"version": "1.0.0", "sections": {"main": list(steps)}}


@pytest.fixture
def media():
    p = HttpPeer()
    p.route("/tone1k.wav", tone_wav(1000, 1.0, 16000), "audio/wav")
    p.route("/tone440.wav", tone_wav(440, 1.0, 8000), "audio/wav")
    yield p
    p.stop()


@pytest.fixture
def sinks():
    made = []

    def make():
        s = RtpSink()
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def route_toml(destination, swml=None, url=None, status_url=None):
    out = ["[[inbound_routes]]", f'destination = "{destination}"']
    if swml is not None:
        out.append(f"swml = '''\n{json.dumps(swml)}\n'''")
    if url is not None:
        out.append(f'url = "{url}"')
    if status_url is not None:
        out.append(f'status_url = "{status_url}"')
    return "\n".join(out) + "\n"


def start_node(start_dialtone, tmp_path, routes):
    cfg = tmp_path / "dialtone.toml"
    cfg.write_text("\n".join(routes))
    lo, hi = free_rtp_range(20)
    d = start_dialtone({"DIALTONE_CONFIG": str(cfg), "DIALTONE_RTP_PORTS": f"{lo}-{hi}"})
    d.rtp_range = (lo, hi)
    d.sip_port = int(d.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
    return d


def call_in(sipp, d, user, scenario="inbound_uac_wait_bye.xml", sink=None):
    keys = {"rtp_sink": sink.port} if sink else None
    return sipp(scenario, keys=keys, extra=("-s", user, f"127.0.0.1:{d.sip_port}"))


def list_calls(d):
    r = requests.get(f"{d.base}/api/calling/calls", auth=(d.project, d.token), timeout=5)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()["data"]


def tones(sink):
    """The tone segments the sink heard, in order: [(label, seconds)], silence and boundaries left out."""
    samples, _ = sink.timeline()
    return [(l, n / 10) for l, _, n in major_runs(labels(samples)) if l in ("1k", "440", "ring") and n >= 3]


def user_of(uri):
    u = uri.split(":", 1)[1] if uri.startswith(("sip:", "sips:", "tel:")) else uri
    return u.split("@", 1)[0].split(";", 1)[0]


# ---------------------------------------------------------------- 9. inline document on a listed number

def test_inbound_inline_document_plays_and_hangs_up(start_dialtone, tmp_path, sipp, sinks, media):
    swml = doc({"answer": {}}, {"play": {"url": media.url("/tone1k.wav")}}, {"play": {"url": "ring:2:us"}}, {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, [route_toml(NUMBER, swml=swml)])
    sink = sinks()
    caller = call_in(sipp, d, NUMBER, sink=sink)
    rc = caller.wait(15)
    assert rc == 0, caller.describe()
    arrows = caller.arrows_dedup()
    assert arrows[0] == "< INVITE" and "> 200" in arrows and arrows[-2:] == ["> BYE", "< 200"], arrows
    got = tones(sink)
    samples, _ = sink.timeline()
    assert [l for l, _ in got] == ["1k", "ring"], describe(labels(samples))
    assert 0.8 <= got[0][1] <= 1.2 and 1.8 <= got[1][1] <= 2.2, got
    calls = wait_until(lambda: [c for c in list_calls(d) if c.get("status") == "ended"], 5,
                       lambda: f"an ended call in {list_calls(d)}")
    assert len(calls) == 1 and len(list_calls(d)) == 1, list_calls(d)
    leg = calls[0]
    assert leg["direction"] == "inbound", leg
    assert leg["to"] == NUMBER and leg["from"] == CALLER, leg
    assert leg["end_reason"] == "hangup", leg
    assert 2500 <= leg["duration_ms"] <= 4500, leg  # 1 s of tone + 2 s of ring


# ---------------------------------------------------------------- 10. url document + status webhooks

def test_inbound_url_document_fetch_and_state_webhooks(start_dialtone, tmp_path, sipp, sinks, media, hooks):
    doc_url = media.route("/inbound-doc", json.dumps(doc({"answer": {}}, {"play": {"url": media.url("/tone1k.wav")}},
                                                         {"hangup": {}})), "application/json")
    d = start_node(start_dialtone, tmp_path, [route_toml(NUMBER, url=doc_url, status_url=hooks.url("/istatus"))])
    sink = sinks()
    caller = call_in(sipp, d, NUMBER, sink=sink)
    assert caller.wait(15) == 0, caller.describe()
    reqs = media.hits("/inbound-doc")
    assert len(reqs) == 1 and reqs[0]["method"] == "POST", reqs
    assert signature_ok(reqs[0], KEY), reqs[0]["headers"]
    body = json.loads(reqs[0]["body"])
    call = body["call"]
    assert call["direction"] == "inbound", call
    assert user_of(call["to"]) == NUMBER, call
    assert CALLER in call["from"], call
    assert call.get("call_id"), call
    assert [l for l, _ in tones(sink)] == ["1k"], tones(sink)

    cid = call["call_id"]

    def states():
        out = []
        for e in hooks.events:
            j = hooks.parse(e)
            if e["path"] == "/istatus" and j.get("event_type") == "calling.call.state" and j["params"].get("call_id") == cid:
                out.append((e, j))
        return out

    wait_until(lambda: any(j["params"]["call_state"] == "ended" for _, j in states()), 8,
               lambda: f"an ended webhook; got {[j for _, j in states()]} / all {[hooks.parse(e) for e in hooks.events]}")
    got = states()
    assert [j["params"]["call_state"] for _, j in got] == ["created", "ringing", "answered", "ended"], [j for _, j in got]
    for e, j in got:
        assert hooks.signature_ok(e), e["headers"]
        assert j["params"]["direction"] == "inbound", j
        assert j["project_id"] == d.project, j
    assert got[-1][1]["params"]["end_reason"] == "hangup", got[-1][1]


# ---------------------------------------------------------------- 11. nobody takes the number

def test_inbound_unknown_destination_is_404(start_dialtone, tmp_path, sipp, media):
    d = start_node(start_dialtone, tmp_path, [route_toml(NUMBER, swml=doc({"answer": {}}, {"hangup": {}}))])
    caller = call_in(sipp, d, "+15550000000", scenario="inbound_uac_404.xml")
    assert caller.wait(10) == 0, caller.describe()
    arrows = caller.arrows_dedup()
    assert "> 404" in arrows and "> 200" not in arrows and "> 180" not in arrows, arrows


# ---------------------------------------------------------------- 12. the * route

def test_inbound_star_route_catches_unlisted_numbers(start_dialtone, tmp_path, sipp, sinks, media):
    listed = doc({"answer": {}}, {"play": {"url": media.url("/tone440.wav")}}, {"hangup": {}})
    other = doc({"answer": {}}, {"play": {"url": media.url("/tone1k.wav")}}, {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, [route_toml(NUMBER, swml=listed), route_toml("*", swml=other)])

    sink = sinks()
    caller = call_in(sipp, d, "+15559999999", sink=sink)
    assert caller.wait(15) == 0, caller.describe()
    assert [l for l, _ in tones(sink)] == ["1k"], tones(sink)

    # the listed number still gets its own route (called without the leading +: it is optional)
    sink2 = sinks()
    caller2 = call_in(sipp, d, NUMBER.lstrip("+"), sink=sink2)
    assert caller2.wait(15) == 0, caller2.describe()
    assert [l for l, _ in tones(sink2)] == ["440"], tones(sink2)
    assert all(c["direction"] == "inbound" for c in list_calls(d)), list_calls(d)


# ---------------------------------------------------------------- answering: auto_answer and early media

def _first_run_start(sink, lab):
    samples, t0 = sink.timeline()
    for l, i, n in major_runs(labels(samples)):
        if l == lab and n >= 3:
            return t0 + i * 0.1
    return None


def test_inbound_play_without_answer_auto_answers_first(start_dialtone, tmp_path, sipp, sinks, media):
    d = start_node(start_dialtone, tmp_path,
                   [route_toml(NUMBER, swml=doc({"play": {"url": media.url("/tone1k.wav")}}, {"hangup": {}}))])
    sink = sinks()
    caller = call_in(sipp, d, NUMBER, sink=sink)
    assert caller.wait(15) == 0, caller.describe()
    ok = [m for m in caller.ladder() if m.from_dialtone and m.kind == "200" and "INVITE" in (m.header("CSeq") or "")]
    assert ok, caller.arrows()
    start = _first_run_start(sink, "1k")
    assert start is not None, tones(sink)
    assert start >= ok[0].when - 0.1, f"the tone started {ok[0].when - start:.2f}s before the 200 OK"
    assert [l for l, _ in tones(sink)] == ["1k"], tones(sink)


def test_inbound_early_media_play_before_answer(start_dialtone, tmp_path, sipp, sinks, media):
    swml = doc({"play": {"url": "ring:2:us", "auto_answer": False}}, {"answer": {}},
               {"play": {"url": media.url("/tone1k.wav")}}, {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, [route_toml(NUMBER, swml=swml)])
    sink = sinks()
    caller = call_in(sipp, d, NUMBER, sink=sink)
    rc = caller.wait(12)
    assert rc == 0, f"sipp rc={rc} (None: still waiting after 12 s), ladder {caller.arrows_dedup()}, heard {tones(sink)}"
    ladder = caller.ladder()
    arrows = caller.arrows_dedup()
    assert "> 183" in arrows and arrows.index("> 183") < arrows.index("> 200"), arrows
    early = next(m for m in ladder if m.from_dialtone and m.kind == "183")
    assert "m=audio" in early.body, early.text
    ok = next(m for m in ladder if m.from_dialtone and m.kind == "200" and "INVITE" in (m.header("CSeq") or ""))
    ring, one_k = _first_run_start(sink, "ring"), _first_run_start(sink, "1k")
    assert ring is not None and one_k is not None, tones(sink)
    assert ring < ok.when - 1.5, f"ring started {ok.when - ring:.2f}s before the 200 OK (expected ~2 s of early media)"
    assert one_k >= ok.when - 0.1, "the 1 kHz play should come after the answer"
    assert [l for l, _ in tones(sink)] == ["ring", "1k"], tones(sink)


def test_inbound_invite_without_sdp_is_488(start_dialtone, tmp_path, sipp):
    d = start_node(start_dialtone, tmp_path, [route_toml(NUMBER, swml=doc({"answer": {}}, {"hangup": {}}))])
    caller = call_in(sipp, d, NUMBER, scenario="inbound_uac_no_sdp.xml")
    assert caller.wait(10) == 0, caller.describe()
    arrows = caller.arrows_dedup()
    assert "> 488" in arrows and "> 200" not in arrows, arrows

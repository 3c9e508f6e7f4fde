"""Events and parameters that must do something (issue 9, parts 5 and 6), on real calls: sipp far ends and
callers, the official SDK, a real webhook receiver.

- SWML `answer.max_duration` hangs the call up on time, `end_reason: "max_duration"` (outbound and inbound).
- SWML `answer.codecs` picks the codec of an inbound call's answer.
- Inbound calls' `calling.call.state` say `created_by: "receive"`.
- SWML `user_event` and REST `calling.user_event` reach the call's status_url as signed
  `calling.call.user_event` webhooks (docs/call-lifecycle.md "User events").
- Stopping a continuous collect sends one final `state: "finished"` event; stopping a single one sends nothing
  (ambiguity register A13).
"""
import pytest
import time

from test_calls import FROM, dial, get_call, sipp_done, wait_hook, wait_status
from test_inbound import CALLER, NUMBER, call_in, doc, list_calls, media, route_toml, sinks, start_node  # noqa: F401
from test_playback import wait_until

ALL = ["created", "ringing", "answered", "ended"]


def events_of(hooks, call_id, event_type):
    return [hooks.parse(e) for e in hooks.events
            if hooks.parse(e).get("event_type") == event_type and hooks.parse(e)["params"].get("call_id") == call_id]


# ---------------------------------------------------------------- answer.max_duration

def test_answer_max_duration_hangs_up_an_outbound_call_on_time(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    swml = {"version": "1.0.0", "sections": {"main": [{"answer": {"max_duration": 2}}, {"sleep": -1}]}}
    call_id = d.sdk().calling.dial(from_=FROM, to=far.uri("service"), swml=swml, status_url=hooks.url(),
                                   status_events=ALL, extras={"timeout": 5})["id"]
    answered = wait_hook(hooks, call_id, "answered")
    ended = wait_hook(hooks, call_id, "ended", timeout=10)
    sipp_done(far)
    assert far.arrows_dedup()[-2:] == ["> BYE", "< 200"], far.arrows()
    p = ended["params"]
    assert p["end_reason"] == "max_duration", p
    lasted_ms = p["end_time"] - answered["params"]["answer_time"]
    assert 1900 <= lasted_ms <= 3000, lasted_ms
    final = wait_status(d, call_id, "ended", timeout=5)
    assert final["end_reason"] == "max_duration", final
    assert 1900 <= final["duration_ms"] <= 3000, final


def test_answer_max_duration_on_an_inbound_call_counts_from_the_answer(start_dialtone, tmp_path, sipp, sinks, hooks):
    # The document rings 1.5 s as early media before answering: the limit starts at the answer, not at the INVITE.
    swml = doc({"play": {"url": "ring:1.5:us", "auto_answer": False}}, {"answer": {"max_duration": 2}},
               {"play": {"url": "ring:20:us"}})
    d = start_node(start_dialtone, tmp_path, [route_toml(NUMBER, swml=swml, status_url=hooks.url("/istatus"))])
    caller = call_in(sipp, d, NUMBER, sink=sinks())
    assert caller.wait(15) == 0, caller.describe()
    assert caller.arrows_dedup()[-2:] == ["> BYE", "< 200"], caller.arrows()
    calls = wait_until(lambda: [c for c in list_calls(d) if c.get("status") == "ended"], 5,
                       lambda: f"an ended call in {list_calls(d)}")
    leg = calls[0]
    assert leg["end_reason"] == "max_duration", leg
    assert 1900 <= leg["duration_ms"] <= 3000, leg
    ended = wait_hook(hooks, leg["id"], "ended")
    assert ended["params"]["end_reason"] == "max_duration", ended
    # Inbound calls were received (ambiguity register A19).
    states = [hooks.parse(e)["params"] for e in hooks.for_call(leg["id"])
              if hooks.parse(e)["event_type"] == "calling.call.state"]
    assert [s["call_state"] for s in states] == ALL, states
    assert all(s["created_by"] == "receive" and s["direction"] == "inbound" and "parent" not in s
               for s in states), states


# ---------------------------------------------------------------- answer.codecs

def test_answer_codecs_choose_the_inbound_codec(start_dialtone, tmp_path, sipp, sinks):
    swml = doc({"answer": {"codecs": "PCMA"}}, {"play": {"url": "silence:1"}}, {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, [route_toml(NUMBER, swml=swml)])
    sink = sinks()
    caller = call_in(sipp, d, NUMBER, scenario="inbound_uac_pcmu_pcma.xml", sink=sink)
    assert caller.wait(15) == 0, caller.describe()
    ok = caller.received("200")
    assert ok, caller.describe()
    body = ok[0].body.replace("\r", "")
    mline = next(l for l in body.split("\n") if l.startswith("m=audio "))
    assert mline.split()[3] == "8", body  # PCMA, though the caller listed PCMU first
    assert "PCMA/8000" in body and "PCMU/8000" not in body, body
    pts = {p[3] for p in sink.packets}
    assert pts and pts <= {8, 101}, pts


def test_answer_codecs_the_caller_did_not_offer_fail_the_answer(start_dialtone, tmp_path, sipp, sinks, media):
    # G722 is not in the caller's offer: that answer fails (answer_result=failed), the call is not answered
    # by it, and the script goes on — here to an answer without codecs.
    swml = doc({"answer": {"codecs": "G722"}},
               {"request": {"url": media.url("/after?r=${answer_result}"), "method": "GET"}},
               {"answer": {}}, {"play": {"url": "silence:0.5"}}, {"hangup": {}})
    media.route("/after", "ok", "text/plain")
    d = start_node(start_dialtone, tmp_path, [route_toml(NUMBER, swml=swml)])
    caller = call_in(sipp, d, NUMBER, scenario="inbound_uac_pcmu_pcma.xml", sink=sinks())
    assert caller.wait(15) == 0, caller.describe()
    hits = media.hits("/after")
    assert [h["full_path"] for h in hits] == ["/after?r=failed"], hits
    oks = caller.received("200")
    assert len({m.text for m in oks if "INVITE" in m.text}) == 1, oks  # one answer, from the second `answer`
    body = oks[0].body.replace("\r", "")
    assert next(l for l in body.split("\n") if l.startswith("m=audio ")).split()[3] == "0", body


@pytest.mark.parametrize("preference,expected_pt", [(None, "0"), ("PCMA,PCMU", "8")])
def test_without_answer_codecs_our_preference_list_picks(start_dialtone, tmp_path, sipp, sinks, preference,
                                                         expected_pt):
    # The caller lists PCMU then PCMA; the operator's `codecs` list decides (default PCMU first).
    swml = doc({"answer": {}}, {"play": {"url": "silence:0.5"}}, {"hangup": {}})
    settings = [f'codecs = "{preference}"'] if preference else []
    d = start_node(start_dialtone, tmp_path, settings + [route_toml(NUMBER, swml=swml)])
    caller = call_in(sipp, d, NUMBER, scenario="inbound_uac_pcmu_pcma.xml", sink=sinks())
    assert caller.wait(15) == 0, caller.describe()
    body = caller.received("200")[0].body.replace("\r", "")
    mline = next(l for l in body.split("\n") if l.startswith("m=audio "))
    assert mline.split()[3] == expected_pt, body


@pytest.mark.parametrize("pt,codec,ts_step", [("9", "G722/8000", 160), ("111", "opus/48000/2", 960)])
def test_wideband_only_callers_are_answered_with_their_codec(start_dialtone, tmp_path, sipp, sinks, pt, codec,
                                                            ts_step):
    # A G.722-only or Opus-only caller was refused with 488 when answers took only PCMU/PCMA.
    swml = doc({"answer": {}}, {"play": {"url": "silence:1"}}, {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, [route_toml(NUMBER, swml=swml)])
    sink = sinks()
    caller = sipp("inbound_uac_one_codec.xml", keys={"rtp_sink": sink.port, "pt": pt, "codec": codec},
                  extra=("-s", NUMBER, f"127.0.0.1:{d.sip_port}"))
    assert caller.wait(15) == 0, caller.describe()
    body = caller.received("200")[0].body.replace("\r", "")
    mline = next(l for l in body.split("\n") if l.startswith("m=audio "))
    assert mline.split()[3:] == [pt, "101"], body
    assert f"a=rtpmap:{pt} {codec}" in body, body
    packets = [p for p in sink.packets if p[3] == int(pt)]
    assert len(packets) >= 30, len(sink.packets)
    steps = {(b[2] - a[2]) % 2**32 for a, b in zip(packets, packets[1:])}
    assert ts_step in steps, steps


# ---------------------------------------------------------------- user_event

def test_swml_and_rest_user_events_reach_the_status_url_signed(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    swml = {"version": "1.0.0", "sections": {"main": [
        {"set": {"stage": "menu"}},
        {"user_event": {"event": {"kind": "progress", "stage": "${stage}", "n": 1}}},
        {"sleep": -1}]}}
    client = d.sdk()
    # status_events without "ended" etc.: user events are not call states, they are delivered anyway.
    call_id = client.calling.dial(from_=FROM, to=far.uri("service"), swml=swml, status_url=hooks.url("/ev"),
                                  status_events=["answered"], extras={"timeout": 5})["id"]
    got = wait_until(lambda: events_of(hooks, call_id, "calling.call.user_event"), 10,
                     lambda: f"a user event; got {[hooks.parse(e) for e in hooks.events]}")
    ev = got[0]
    assert ev["params"]["event"] == {"kind": "progress", "stage": "menu", "n": 1}, ev
    assert ev["params"]["node_id"] and ev["params"]["segment_id"], ev
    assert ev["project_id"] == d.project and ev["event_channel"].startswith("swml:") and ev.get("space_id"), ev
    # The SDK's user_event: same webhook, the object as sent.
    client.calling.user_event(call_id, event={"from": "sdk", "items": [1, 2, {"x": None}]})
    got = wait_until(lambda: events_of(hooks, call_id, "calling.call.user_event")[1:], 10,
                     lambda: f"a second user event; got {[hooks.parse(e) for e in hooks.events]}")
    assert got[0]["params"]["event"] == {"from": "sdk", "items": [1, 2, {"x": None}]}, got
    raw = [e for e in hooks.events if hooks.parse(e).get("event_type") == "calling.call.user_event"]
    assert len(raw) == 2 and all(hooks.signature_ok(e) and e["path"] == "/ev" for e in raw), raw
    client.calling.end(call_id, reason="hangup")
    sipp_done(far)
    # Also kept in the call's record of events; nothing else went to the status_url but the asked-for state.
    kinds = [hooks.parse(e)["event_type"] for e in hooks.events]
    assert kinds.count("calling.call.state") == 1, kinds


def test_user_event_without_status_url_is_accepted(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"))["id"]
    wait_status(d, call_id, "answered")
    r = d.post({"command": "calling.user_event", "id": call_id, "params": {"event": {"a": 1}}})
    assert r.status_code == 200, r.text
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


# ---------------------------------------------------------------- collect.stop (A13)

def test_stopping_a_continuous_collect_sends_one_finished_event(start_dialtone, sipp, hooks):
    far = sipp("uas_dtmf.xml")  # presses 1 2 3 # from 1.5 s after the answer, 700 ms apart
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "keys", "continuous": True, "digits": {"max": 1},
                           "initial_timeout": 10, "start_input_timers": True, "status_url": hooks.url("/collect")}})
    assert r.status_code == 200, r.text
    # A single collect stopped before any input reports nothing.
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "single", "digits": {"max": 5}, "status_url": hooks.url("/collect")}})
    assert r.status_code == 200, r.text
    r = d.post({"command": "calling.collect.stop", "id": call_id, "params": {"control_id": "single"}})
    assert r.status_code == 200, r.text

    def collected():
        return events_of(hooks, call_id, "calling.call.collect")

    wait_until(lambda: collected()[3:], 10, lambda: f"four results; got {collected()}")
    results = [e["params"] for e in collected()]
    assert [p["control_id"] for p in results] == ["keys"] * 4, results
    assert all(p["state"] == "collecting" for p in results), results
    assert [p["result"]["params"]["digits"] for p in results[:3]] == ["1", "2", "3"], results
    r = d.post({"command": "calling.collect.stop", "id": call_id, "params": {"control_id": "keys"}})
    assert r.status_code == 200, r.text
    # Queued before the API answered: it is the very next event for the call.
    final = wait_until(lambda: collected()[4:], 5, lambda: f"the final event; got {collected()}")
    assert len(final) == 1, final
    p = final[0]["params"]
    assert p["control_id"] == "keys" and p["state"] == "finished" and p["result"] == {"type": "finished"}, p
    assert p["node_id"], p
    r = d.post({"command": "calling.collect.stop", "id": call_id, "params": {"control_id": "keys"}})
    assert r.status_code == 422, r.text
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    time.sleep(0.3)
    assert len(collected()) == 5, collected()
    assert all(e["path"] == "/collect" and hooks.signature_ok(e) for e in hooks.events
               if hooks.parse(e).get("event_type") == "calling.call.collect")
    assert get_call(d, call_id)["status"] == "ended"

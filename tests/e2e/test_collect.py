"""calling.collect for digits on a real call: the far end (sipp) presses keys as RFC 4733 events from the
pcaps Debian's sip-tester ships; results arrive as calling.call.collect webhooks (calling-events.md §6)."""
import time

from test_calls import dial, get_call, sipp_done, wait_hook


def collect_events(hooks, call_id, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        evs = [hooks.parse(e) for e in hooks.events]
        evs = [e for e in evs if e.get("event_type") == "calling.call.collect" and e["params"]["call_id"] == call_id]
        if evs:
            return evs
        time.sleep(0.05)
    return []


def test_collect_digits_until_the_terminator(start_dialtone, sipp, hooks):
    far = sipp("uas_dtmf.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "pin", "digits": {"max": 6, "terminators": "#", "digit_timeout": 3},
                           "initial_timeout": 5, "start_input_timers": True, "status_url": hooks.url("/collect")}})
    assert r.status_code == 200, r.text
    evs = collect_events(hooks, call_id, timeout=10)
    assert len(evs) == 1, evs
    p = evs[0]["params"]
    assert p["control_id"] == "pin" and p["node_id"], p
    assert p["result"] == {"type": "digit", "params": {"digits": "123", "terminator": "#"}}, p
    assert all(hooks.signature_ok(e) for e in hooks.events)
    # A second collect with the same control_id is fine once the first has ended; stop answers it.
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "pin", "digits": {"max": 1}}})
    assert r.status_code == 200, r.text
    r = d.post({"command": "calling.collect.stop", "id": call_id, "params": {"control_id": "pin"}})
    assert r.status_code == 200, r.text
    r = d.post({"command": "calling.collect.stop", "id": call_id, "params": {"control_id": "pin"}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "control_id_not_found", r.text
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_collect_no_input_and_speech_is_not_built(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    t0 = time.time()
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "c1", "digits": {"max": 4}, "initial_timeout": 1,
                           "start_input_timers": True, "status_url": hooks.url("/collect")}})
    assert r.status_code == 200, r.text
    evs = collect_events(hooks, call_id, timeout=5)
    assert [e["params"]["result"] for e in evs] == [{"type": "no_input"}], evs
    assert 0.8 <= time.time() - t0 <= 3
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "c2", "speech": {"end_silence_timeout": 1}}})
    assert r.status_code == 501 and "speech" in r.json()["errors"][0]["message"], r.text
    assert get_call(d, call_id)["status"] == "answered"
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)

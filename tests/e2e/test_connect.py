"""SWML `connect` (swml.md §6.6) between real softphones: a baresip caller dials dialtone, whose inbound
SWML connects it to one or more baresips (or sipp far ends that are busy). Audio is checked by content:
every baresip sends its own tone and records what it heard, so the caller must hear the tone of the far
end that was bridged (and no other), and that far end the caller's. RFC 4733 digits cross the bridge.
After the far end hangs up, the caller's script goes on with `connect_result`.
"""
import time

import pytest

from test_interop import NUMBER, baresip, doc, start_node, tone_share  # noqa: F401

CALLER_TONE = 440


def reported(hooks, path="/vars", timeout=30):
    return hooks.wait_on(path, timeout=timeout)[0]


def connect_states(hooks):
    return [e["params"]["connect_state"] for e in hooks.on("/connect")]


def report_step(hooks):
    return {"request": {"url": hooks.url("/vars"), "method": "POST",
                        "body": {"result": "${connect_result}", "reason": "${connect_failed_reason}",
                                 "rv": "${return_value}"}}}


def heard(peer, freq):
    rate, _, samples = peer.heard()
    return tone_share(samples, rate, freq)


def test_connect_to_one_phone_bridges_audio_and_digits_then_the_script_goes_on(start_dialtone, tmp_path, baresip,
                                                                                hooks):
    far = baresip(codecs=["PCMU"], tone=1000, seconds=7, user="bob")
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=25, user="alice")
    swml = doc({"connect": {"to": far.uri(), "status_url": hooks.url("/connect")}},
               report_step(hooks), {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    far.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    time.sleep(2.0)
    caller.ctrl.cmd("sndcode 73#")
    digits = [far.ctrl.wait_event("CALL_DTMF_START", timeout=5)["param"] for _ in range(3)]
    assert digits == ["7", "3", "#"], digits
    # The far end's WAV ends after 7 s: it hangs up, the caller's script reports and hangs up.
    got = reported(hooks)
    assert got["result"] == "connected" and got["rv"] == "connected", got
    caller.ctrl.wait_event("CALL_CLOSED", timeout=10)
    hit, voiced = heard(caller, 1000)
    assert hit >= 40, f"the caller heard {hit} windows of the far end's 1 kHz out of {voiced} voiced"
    hit, voiced = heard(far, CALLER_TONE)
    assert hit >= 40, f"the far end heard {hit} windows of the caller's {CALLER_TONE} Hz out of {voiced}"
    assert connect_states(hooks) == ["connecting", "connected", "disconnected"], connect_states(hooks)


def test_parallel_the_second_to_answer_first_wins_and_the_others_are_cancelled(start_dialtone, tmp_path, baresip,
                                                                                hooks):
    tones = [700, 1000, 1400]
    fars = [baresip(codecs=["PCMU"], tone=t, seconds=6, user=f"far{i}", answermode="manual")
            for i, t in enumerate(tones)]
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=25, user="alice")
    swml = doc({"connect": {"parallel": [{"to": f.uri()} for f in fars], "status_url": hooks.url("/connect")}},
               report_step(hooks), {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    for f in fars:
        f.ctrl.wait_event("CALL_INCOMING", timeout=10)
    time.sleep(1.0)
    fars[1].ctrl.cmd("accept")
    fars[1].ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    for i in (0, 2):
        fars[i].ctrl.wait_event("CALL_CLOSED", timeout=10)
        assert not fars[i].ctrl.events_of("CALL_ESTABLISHED"), f"far{i} was cancelled, never answered"
    got = reported(hooks)
    assert got["result"] == "connected", got
    caller.ctrl.wait_event("CALL_CLOSED", timeout=10)
    hit, voiced = heard(caller, 1000)
    assert hit >= 30, f"the caller heard {hit} windows of far1's tone out of {voiced}"
    for other in (700, 1400):
        assert heard(caller, other)[0] == 0, f"the caller heard {other} Hz of a cancelled leg"


def test_serial_a_busy_far_end_then_one_that_answers(start_dialtone, tmp_path, baresip, sipp, hooks):
    busy = sipp("uas_busy.xml")
    far = baresip(codecs=["PCMU"], tone=1000, seconds=5, user="bob")
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=25, user="alice")
    swml = doc({"connect": {"serial": [{"to": busy.uri("busy")}, {"to": far.uri()}],
                            "status_url": hooks.url("/connect")}},
               report_step(hooks), {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    far.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
    got = reported(hooks)
    assert got["result"] == "connected", got
    caller.ctrl.wait_event("CALL_CLOSED", timeout=10)
    assert heard(caller, 1000)[0] >= 20


def test_every_destination_failing_sets_connect_failed_reason(start_dialtone, tmp_path, baresip, sipp, hooks):
    busy = sipp("uas_busy.xml")
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=25, user="alice")
    swml = doc({"connect": {"to": busy.uri("busy"), "status_url": hooks.url("/connect"),
                            "result": {"case": {"failed": [report_step(hooks), {"hangup": {}}]}}}},
               {"hangup": {"reason": "busy"}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    got = reported(hooks)
    assert (got["result"], got["reason"], got["rv"]) == ("failed", "busy", "failed"), got
    assert connect_states(hooks) == ["connecting", "failed"], connect_states(hooks)


@pytest.mark.parametrize("to", ["queue:support", "hello", "/public/room"])
def test_a_destination_that_cannot_be_dialled_fails_the_step_not_the_call(start_dialtone, tmp_path, baresip, hooks,
                                                                           to):
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=25, user="alice")
    swml = doc({"answer": {}}, {"connect": {"to": to}}, report_step(hooks), {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    got = reported(hooks)
    assert (got["result"], got["reason"]) == ("failed", "error"), got


def test_calling_disconnect_parts_the_bridge_and_both_calls_go_on(start_dialtone, tmp_path, baresip, hooks):
    """REST `calling.disconnect` on the caller of a connect: the bridge comes apart without hanging up
    either call; the caller's script goes on (`connect_result = connected`), the far end stays up on its
    own. A second disconnect is 422 (not bridged)."""
    import requests
    far = baresip(codecs=["PCMU"], tone=1000, seconds=20, user="bob")
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=25, user="alice")
    swml = doc({"connect": {"to": far.uri(), "status_url": hooks.url("/connect")}},
               report_step(hooks), {"play": {"url": "silence:30"}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    far.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    time.sleep(1.0)
    calls = requests.get(f"{d.base}/api/calling/calls", auth=(d.project, d.token), timeout=5).json()["data"]
    parent = next(c for c in calls if c.get("parent_id") is None)
    child = next(c for c in calls if c.get("parent_id") == parent["id"])
    r = d.post({"command": "calling.disconnect", "id": parent["id"], "params": {}})
    assert r.status_code == 200, r.text
    got = reported(hooks)
    assert got["result"] == "connected", got
    time.sleep(1.5)
    assert not far.ctrl.events_of("CALL_CLOSED") and not caller.ctrl.events_of("CALL_CLOSED"), "both stay up"
    r = requests.get(f"{d.base}/api/calling/calls/{child['id']}", auth=(d.project, d.token), timeout=5)
    assert r.json()["status"] == "answered", r.text
    assert connect_states(hooks) == ["connecting", "connected", "disconnected"], connect_states(hooks)
    again = d.post({"command": "calling.disconnect", "id": parent["id"], "params": {}})
    assert again.status_code == 422, again.text
    # The far end, on its own now, is ended like any call.
    end = d.post({"command": "calling.end", "id": child["id"], "params": {"reason": "hangup"}})
    assert end.status_code == 200, end.text
    far.ctrl.wait_event("CALL_CLOSED", timeout=10)
    time.sleep(0.5)
    assert not caller.ctrl.events_of("CALL_CLOSED"), "the caller's call outlives its former far end"


def test_confirm_rejects_the_first_answer_and_accepts_the_next(start_dialtone, tmp_path, baresip, hooks):
    """`confirm` runs on each answered far leg before it is bridged: far0's script hangs up (that leg
    fails, dialling goes on), far1's runs to its end (accepted, bridged). The caller hears far1's tone,
    never far0's; far0 answered and was hung up."""
    far0 = baresip(codecs=["PCMU"], tone=700, seconds=10, user="far0")
    far1 = baresip(codecs=["PCMU"], tone=1000, seconds=8, user="far1")
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=30, user="alice")
    swml = doc({"connect": {"serial": [
        {"to": far0.uri(), "confirm": [{"play": {"url": "silence:0.5"}}, {"hangup": {}}]},
        {"to": far1.uri(), "confirm": [{"play": {"url": "silence:0.5"}}], "confirm_timeout": 5},
    ], "status_url": hooks.url("/connect")}}, report_step(hooks), {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    far0.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    far0.ctrl.wait_event("CALL_CLOSED", timeout=10)
    far1.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    got = reported(hooks)
    assert got["result"] == "connected", got
    caller.ctrl.wait_event("CALL_CLOSED", timeout=10)
    assert heard(caller, 1000)[0] >= 30, "the caller heard the accepted far end"
    assert heard(caller, 700)[0] == 0, "the rejected far end was never bridged"
    assert connect_states(hooks) == ["connecting", "connected", "disconnected"], connect_states(hooks)


def test_a_confirm_past_confirm_timeout_fails_that_leg(start_dialtone, tmp_path, baresip, hooks):
    far = baresip(codecs=["PCMU"], tone=1000, seconds=20, user="bob")
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=30, user="alice")
    swml = doc({"connect": {"to": far.uri(), "timeout": 5, "confirm_timeout": 2,
                            "confirm": [{"sleep": 30000}]}}, report_step(hooks), {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    far.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    got = reported(hooks, timeout=15)
    assert got["result"] == "failed", got
    far.ctrl.wait_event("CALL_CLOSED", timeout=5)


def test_record_call_of_a_bridged_call_holds_both_parties(start_dialtone, tmp_path, baresip, hooks):
    """record_call on the caller's leg, then connect: the stereo recording's one channel is what the
    caller said (its tone), the other what it heard through the bridge (the far end's tone)."""
    from test_record import fetch_wav
    far = baresip(codecs=["PCMU"], tone=1000, seconds=6, user="bob")
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=25, user="alice")
    swml = doc({"answer": {}},
               {"record_call": {"format": "wav", "stereo": True, "direction": "both"}},
               {"connect": {"to": far.uri()}},
               {"stop_record_call": {}},
               {"request": {"url": hooks.url("/vars"), "method": "POST",
                            "body": {"result": "${connect_result}", "url": "${record_call_url}"}}},
               {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    got = reported(hooks)
    assert got["result"] == "connected", got
    caller.ctrl.wait_event("CALL_CLOSED", timeout=10)
    time.sleep(0.5)
    w, samples = fetch_wav(d, got["url"])
    assert w.getnchannels() == 2
    left, right = list(samples[0::2]), list(samples[1::2])
    rate = w.getframerate()
    said, _ = tone_share(left, rate, CALLER_TONE)
    bridged, _ = tone_share(right, rate, 1000)
    assert said >= 30, f"{said} windows of the caller's {CALLER_TONE} Hz on the caller's channel"
    assert bridged >= 30, f"{bridged} windows of the far end's 1 kHz on the heard channel"
    # Each channel holds its own party only.
    assert tone_share(left, rate, 1000)[0] <= 3 and tone_share(right, rate, CALLER_TONE)[0] <= 3


def test_session_timeout_we_refresh_with_update_when_the_answer_says_uac(start_dialtone, tmp_path, baresip, sipp,
                                                                          hooks):
    """`session_timeout` (RFC 4028): the B-leg INVITE carries `Session-Expires: 4` and `Supported: timer`; the
    far end's 200 makes us the refresher (`refresher=uac`), so dialtone sends a bodyless UPDATE every half
    interval (2 s) with `Session-Expires: 4;refresher=uac`, and the call stays up past the interval."""
    far = sipp("uas_session_timer_uac.xml")
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=30, user="alice")
    swml = doc({"connect": {"to": far.uri("timer"), "session_timeout": 4}}, report_step(hooks), {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    invite = far.wait_for("INVITE", timeout=10)
    assert invite is not None, far.arrows()
    assert invite.header("Session-Expires") == "4", invite.text
    assert "timer" in ",".join(invite.headers("Supported")), invite.text
    deadline = time.time() + 8
    while time.time() < deadline and len(far.received("UPDATE")) < 2:
        time.sleep(0.2)
    updates = far.received("UPDATE")
    assert len(updates) >= 2, far.arrows()
    ack = far.received("ACK")[-1]
    # The first refresh at half the interval (2 s after the answer; the ACK follows it at once).
    assert 1.5 <= updates[0].when - ack.when <= 3.0, (ack.when, updates[0].when)
    assert updates[0].header("Session-Expires") == "4;refresher=uac", updates[0].text
    assert updates[0].body.strip() == "", "a refresh carries no new offer"
    assert not far.received("BYE"), "the refreshed session did not expire"
    caller.ctrl.cmd("hangup")
    assert far.wait(10) == 0, far.arrows()


def test_session_timeout_422_is_retried_with_min_se_and_an_unrefreshed_session_ends(start_dialtone, tmp_path,
                                                                                     baresip, sipp, hooks):
    """A 422 with `Min-SE: 6` to `session_timeout: 3`: the INVITE goes again (same Call-ID) with
    `Session-Expires: 6` and `Min-SE: 6`. The 200 makes the far end the refresher (`refresher=uas`) and it
    never refreshes: dialtone sends BYE min(32, 6/3) = 2 s before the expiry, i.e. ~4 s after the answer,
    and the caller's script goes on (`connect_result = connected`)."""
    far = sipp("uas_session_timer_422_uas.xml")
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=30, user="alice")
    swml = doc({"connect": {"to": far.uri("timer"), "session_timeout": 3}}, report_step(hooks), {"hangup": {}})
    d = start_node(start_dialtone, tmp_path, swml)
    caller.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.sip_port}")
    got = reported(hooks, timeout=20)
    assert got["result"] == "connected", got
    assert far.wait(10) == 0, far.arrows()
    invites = far.received("INVITE")
    assert [i.header("Session-Expires") for i in invites] == ["3", "6"], [i.text for i in invites]
    assert invites[0].header("Min-SE") is None and invites[1].header("Min-SE") == "6", invites[1].text
    assert invites[0].header("Call-ID") == invites[1].header("Call-ID")
    bye = far.received("BYE")[0]
    ack = far.received("ACK")[-1]
    assert 3.5 <= bye.when - ack.when <= 5.0, (ack.when, bye.when)
    assert not far.received("UPDATE"), "the far end was the refresher"

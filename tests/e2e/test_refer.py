"""Blind transfer by SIP REFER (calling-api.md §6.31 `calling.refer`, swml.md §6.30 `sip_refer`) with real
softphones: dialtone calls baresip A and REFERs it to baresip B; A (which obeys REFER) dials B, B answers,
A reports the progress in NOTIFY `message/sipfrag` (100 then 200), dialtone answers each NOTIFY 200 and
reports `calling.call.refer` (state success, codes 202 / 200) and, for SWML, the `sip_refer_*` variables.
Also: a REFER that is not to a sip: URI and a REFER of a PSTN leg are 422, and a REFER the far end sends
us is declined 603 (docs/connect.md, "REFER").
"""
import time

import pytest
import requests

from test_interop import FROM, baresip, doc, start_node  # noqa: F401




def wait_answered(d, call_id, timeout=15):
    deadline = time.time() + timeout
    leg = None
    while time.time() < deadline:
        leg = requests.get(f"{d.base}/api/calling/calls/{call_id}", auth=(d.project, d.token), timeout=5).json()
        if leg["status"] == "answered":
            return leg
        time.sleep(0.1)
    raise AssertionError(f"call not answered: {leg}")


def dial(d, to, swml, status_url=None):
    params = {"from": FROM, "to": to, "swml": swml}
    if status_url:
        params["status_url"] = status_url
    r = d.post({"command": "dial", "params": params})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def check_refer_event(ev, call_id, to):
    assert ev["event_type"] == "calling.call.refer", ev
    p = ev["params"]
    assert p["call_id"] == call_id and p["sip_refer_to"] == to, p
    assert p["state"] == "success", p
    assert p["sip_refer_response_code"] == "202", p
    assert p["sip_notify_response_code"] == "200", p


def test_swml_sip_refer_transfers_baresip_a_to_baresip_b(start_dialtone, tmp_path, baresip, hooks):
    a = baresip(codecs=["PCMU"], seconds=30, user="alice")
    b = baresip(codecs=["PCMU"], seconds=30, user="bob")
    d = start_node(start_dialtone, tmp_path)
    swml = doc({"sip_refer": {"to_uri": b.uri(), "status_url": hooks.url("/refer")}},
               {"request": {"url": hooks.url("/vars"), "method": "POST",
                            "body": {"result": "${sip_refer_result}", "to": "${sip_refer_to}",
                                     "code": "${sip_refer_response_code}",
                                     "to_code": "${sip_refer_to_response_code}", "rv": "${return_value}"}}},
               {"hangup": {}})
    call_id = dial(d, a.uri(), swml)
    a.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    # A obeys: it calls B, who answers (the call B gets is A's).
    est = b.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    assert "alice" in est.get("peeruri", "alice"), est
    check_refer_event(hooks.wait_on("/refer")[0], call_id, b.uri())
    got = hooks.wait_on("/vars")[0]
    assert got == {"result": "success", "to": b.uri(), "code": "202", "to_code": "200", "rv": "success"}, got


def test_rest_calling_refer_transfers_and_reports_to_status_url(start_dialtone, tmp_path, baresip, hooks):
    a = baresip(codecs=["PCMU"], seconds=30, user="alice")
    b = baresip(codecs=["PCMU"], seconds=30, user="bob")
    d = start_node(start_dialtone, tmp_path)
    call_id = dial(d, a.uri(), doc({"play": {"url": "silence:30"}}))
    wait_answered(d, call_id)
    r = d.post({"command": "calling.refer", "id": call_id,
                "params": {"device": {"type": "sip", "params": {"to": b.uri(), "from": "sip:dialtone@127.0.0.1"}},
                           "status_url": hooks.url("/refer")}})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == call_id and r.json()["status"] == "answered", r.json()
    est = b.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    assert "alice" in est.get("peeruri", "alice"), est
    check_refer_event(hooks.wait_on("/refer")[0], call_id, b.uri())


def check_422(r, needle):
    assert r.status_code == 422, (r.status_code, r.text)
    body = r.json()
    assert body["errors"] and body["errors"][0]["code"], body
    assert needle in r.text, r.text


def test_refer_to_a_non_sip_target_and_of_a_pstn_leg_are_422(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone({"DIALTONE_DEFAULT_TRUNK": f"sip:127.0.0.1:{far.port}"})
    # A phone number through the trunk: a PSTN leg.
    call_id = dial(d, "+15551234567", doc({"play": {"url": "silence:30"}}), hooks.url())
    wait_answered(d, call_id)
    bad = d.post({"command": "calling.refer", "id": call_id,
                  "params": {"device": {"type": "sip", "params": {"to": "tel:+15551230000"}}}})
    check_422(bad, "sip")
    pstn = d.post({"command": "calling.refer", "id": call_id,
                   "params": {"device": {"type": "sip", "params": {"to": "sip:bob@127.0.0.1:9"}}}})
    check_422(pstn, "invalid_state")
    assert "PSTN" in pstn.text, pstn.text
    end = d.post({"command": "calling.end", "id": call_id, "params": {"reason": "hangup"}})
    assert end.status_code == 200, end.text


def test_a_refer_from_the_far_end_is_declined_603(start_dialtone, tmp_path, baresip, hooks):
    a = baresip(codecs=["PCMU"], seconds=30, user="alice")
    b = baresip(codecs=["PCMU"], seconds=30, user="bob")
    d = start_node(start_dialtone, tmp_path)
    call_id = dial(d, a.uri(), doc({"play": {"url": "silence:30"}}))
    a.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    wait_answered(d, call_id)
    a.ctrl.cmd(f"transfer {b.uri()}")
    # baresip sees the refusal (TRANSFER_FAILED, "call: transfer failed: 603 Decline").
    a.ctrl.wait_event("TRANSFER_FAILED", timeout=10)
    assert "transfer failed: 603" in a.log(), a.log()[-2000:]
    time.sleep(1.0)
    # Nobody calls B; our 603 says why. (baresip's own menu hangs the call up after a failed transfer.)
    assert not b.ctrl.events_of("CALL_INCOMING") and not b.ctrl.events_of("CALL_ESTABLISHED"), \
        "dialtone does not act on the far end's REFER"
    log = d.log_path.read_text()
    assert "SIP/2.0 603 Decline" in log and "Warning: 399 dialtone" in log, "603 with a Warning on the wire"
    end = d.post({"command": "calling.end", "id": call_id, "params": {"reason": "hangup"}})
    assert end.status_code in (200, 404, 422), end.text


def test_sip_refer_on_an_inbound_call_transfers_the_caller(start_dialtone, tmp_path, baresip, hooks):
    """The caller's leg (dialtone answered it): the REFER goes the other way in that dialog. The route's
    destination is a SIP user, not a phone number: a call to a number is a PSTN leg (422 / failed)."""
    import json
    from media_sink import free_rtp_range
    a = baresip(codecs=["PCMU"], seconds=30, user="alice")
    b = baresip(codecs=["PCMU"], seconds=30, user="bob")
    swml = doc({"answer": {}}, {"sip_refer": {"to_uri": b.uri(), "status_url": hooks.url("/refer")}},
               {"request": {"url": hooks.url("/vars"), "method": "POST",
                            "body": {"result": "${sip_refer_result}", "to_code": "${sip_refer_to_response_code}"}}},
               {"hangup": {}})
    cfg = tmp_path / "dialtone.toml"
    cfg.write_text(f"[[inbound_routes]]\ndestination = \"desk\"\nswml = '''\n{json.dumps(swml)}\n'''\n")
    lo, hi = free_rtp_range(20)
    d = start_dialtone({"DIALTONE_CONFIG": str(cfg), "DIALTONE_RTP_PORTS": f"{lo}-{hi}"})
    sip_port = int(d.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
    a.ctrl.cmd(f"dial sip:desk@127.0.0.1:{sip_port}")
    a.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    est = b.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    assert "alice" in est.get("peeruri", "alice"), est
    ev = hooks.wait_on("/refer")[0]
    assert ev["params"]["state"] == "success" and ev["params"]["sip_notify_response_code"] == "200", ev
    assert hooks.wait_on("/vars")[0] == {"result": "success", "to_code": "200"}


@pytest.mark.parametrize("credentials", ["good", "none"])
def test_a_challenged_refer_is_answered_with_its_own_credentials(start_dialtone, sipp, hooks, credentials):
    """sipp challenges the REFER (401). With the REFER's username/password it is re-sent with a digest
    (verified by sipp), then 202 and NOTIFYs 100/200: success. Without credentials the REFER fails
    (state failed, code 401) and the call goes on: the stack's dialog is not ended by the challenge."""
    from test_calls import sipp_done
    far = sipp("uas_refer_auth.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), doc({"play": {"url": "silence:30"}}))
    wait_answered(d, call_id)
    target = {"to": "sip:queue@127.0.0.1:9"}
    if credentials == "good":
        target.update(username="alice", password="secret")
    r = d.post({"command": "calling.refer", "id": call_id,
                "params": {"device": {"type": "sip", "params": target}, "status_url": hooks.url("/refer")}})
    assert r.status_code == 200, r.text
    ev = hooks.wait_on("/refer", timeout=20)[0]["params"]
    if credentials == "good":
        assert ev["state"] == "success" and ev["sip_refer_response_code"] == "202", ev
        assert ev["sip_notify_response_code"] == "200", ev
    else:
        assert ev["state"] == "failed", ev
        assert "sip_notify_response_code" not in ev, ev
    leg = requests.get(f"{d.base}/api/calling/calls/{call_id}", auth=(d.project, d.token), timeout=5).json()
    assert leg["status"] == "answered", leg
    end = d.post({"command": "calling.end", "id": call_id, "params": {"reason": "hangup"}})
    assert end.status_code == 200, end.text
    sipp_done(far)
    refers = far.received("REFER")
    assert refers[0].header("Refer-To") == "<sip:queue@127.0.0.1:9>", refers[0].header("Refer-To")
    if credentials == "good":
        assert len(refers) == 2 and refers[1].header("Authorization").startswith("Digest "), refers
        assert 'username="alice"' in refers[1].header("Authorization")
    else:
        assert len(refers) == 1, refers

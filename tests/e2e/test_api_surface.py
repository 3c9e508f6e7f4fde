"""The Calling API surface of the real binary, driven by the official SignalWire SDK and raw HTTP."""
import time
import uuid

import pytest
import requests

SWML = {"version": "1.0.0", "sections": {"main": [{"answer": {}}, {"hangup": {}}]}}


def test_sdk_dial_is_accepted_and_an_unreachable_far_end_fails_the_call(dialtone):
    client = dialtone.sdk()
    # Nothing listens on this port: the INVITE cannot be delivered over TCP, the call fails.
    leg = client.calling.dial(from_="+15105550100", to="sip:alice@127.0.0.1:9;transport=tcp", swml=SWML)
    assert leg["status"] in ("queued", "initiated", "created", "failed"), leg
    deadline = time.time() + 15
    while time.time() < deadline:
        r = requests.get(f"{dialtone.base}/api/calling/calls/{leg['id']}", auth=(dialtone.project, dialtone.token), timeout=5)
        if r.json()["status"] in ("failed", "ended"):
            break
        time.sleep(0.1)
    got = r.json()
    assert got["status"] == "failed" and got["end_reason"] == "error", got


def test_sdk_validation_errors_surface_the_422_body(dialtone):
    client = dialtone.sdk()
    with pytest.raises(Exception) as exc:
        client.calling.dial(from_="+15105550100", to="not-a-destination", swml=SWML)
    assert "422" in str(exc.value) or "422" in repr(exc.value.__dict__)
    r = dialtone.post({"command": "dial", "params": {"from": "+15105550100", "to": "+1415555", "url": "ftp://x", "timeout": 0}})
    assert r.status_code == 422
    attrs = {e["attribute"]: e["code"] for e in r.json()["errors"]}
    assert attrs["url"] == "not_an_http_url"
    assert attrs["timeout"] == "invalid_parameter"


def test_commands_on_unknown_calls_are_404_and_end_reason_is_validated(dialtone):
    client = dialtone.sdk()
    call_id = str(uuid.uuid4())
    r = dialtone.post({"command": "calling.end", "id": call_id, "params": {"reason": "hangup"}})
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "not_found"
    r = dialtone.post({"command": "calling.end", "id": call_id, "params": {"reason": "sideways"}})
    assert r.status_code == 422 and r.json()["errors"][0]["attribute"] == "reason"
    with pytest.raises(Exception) as exc:
        client.calling.end(call_id, reason="hangup")
    assert "404" in str(exc.value) or "404" in repr(exc.value.__dict__)


def test_auth_bad_json_unknown_command_and_oversize(dialtone):
    assert dialtone.post({"command": "dial", "params": {}}, auth=(dialtone.project, "wrong")).status_code == 401
    assert dialtone.post({"command": "dial", "params": {}}, auth=(str(uuid.uuid4()), dialtone.token)).status_code == 401
    r = requests.post(dialtone.base + "/api/calling/calls", data=b"{not json", auth=(dialtone.project, dialtone.token),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "bad_request"
    r = dialtone.post({"command": "calling.teleport", "id": str(uuid.uuid4()), "params": {}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_command_attempted"
    big = {"command": "dial", "params": {"from": "+15105550100", "to": "+14155550100", "swml": "x" * (2 * 1024 * 1024)}}
    assert dialtone.post(big).status_code == 413
    # The server is still healthy after all of it.
    assert requests.get(dialtone.base + "/api/calling/calls", auth=(dialtone.project, dialtone.token), timeout=5).status_code == 200


def test_collect_without_digits_or_speech_is_400_and_sdk_record_alias_is_accepted(dialtone):
    call_id = str(uuid.uuid4())
    r = dialtone.post({"command": "calling.collect", "id": call_id, "params": {"control_id": "c1"}})
    assert r.status_code == 400
    # `params.audio` (what the SDK sends) is accepted; the unknown call then answers 404.
    r = dialtone.post({"command": "calling.record", "id": call_id, "params": {"audio": {"format": "wav"}}})
    assert r.status_code == 404


def test_operator_listing(dialtone):
    r = requests.get(dialtone.base + "/api/calling/calls?status=ended&limit=10", auth=(dialtone.project, dialtone.token), timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["data"] == [] and body["links"]["next"] is None
    r = requests.get(dialtone.base + f"/api/calling/calls/{uuid.uuid4()}", auth=(dialtone.project, dialtone.token), timeout=5)
    assert r.status_code == 404


def test_credentials_are_generated_saved_and_reused(tmp_path):
    from conftest import Dialtone
    d = Dialtone(tmp_path)
    for key in ("DIALTONE_PROJECT_ID", "DIALTONE_API_TOKEN", "DIALTONE_SIGNING_KEY"):
        d.env.pop(key)
    d.proc = None
    import subprocess, time
    log = open(tmp_path / "first.log", "w")
    p = subprocess.Popen([__import__("conftest").BINARY, "serve"], env=d.env, stdout=log, stderr=log)
    try:
        deadline = time.time() + 15
        text = ""
        while time.time() < deadline and "DIALTONE_API_TOKEN=" not in text:
            time.sleep(0.1)
            text = (tmp_path / "first.log").read_text()
        project = text.split("DIALTONE_PROJECT_ID=")[1].split()[0]
        token = text.split("DIALTONE_API_TOKEN=")[1].split()[0]
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                r = requests.get(d.base + "/api/calling/calls", auth=(project, token), timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert r.status_code == 200
        saved = (d.data_dir / "credentials.toml").read_text()
        assert project in saved and token in saved
    finally:
        p.terminate()
        p.wait(10)

"""The OpenAPI 3.1 document at /api/openapi.json (README "Operator endpoints") against what the official SDK really
sends: the SDK talks to dialtone through a recording HTTP proxy while it drives a real call (sipp far end) through
every calling command it has; each request body it sent must validate against the served document, and the
document itself must be a valid OpenAPI 3.1 document."""
import http.server
import json
import pathlib
import re
import threading

import jsonschema
import pytest
import requests
from openapi_spec_validator import validate as validate_spec

from test_calls import ALL_EVENTS, SWML, wait_hook

UUID = "5f0c3a52-8a7e-4e43-9b0c-1f0a3b9d2e11"
# The validators' 422 codes (crates/api/src/validate/codes.rs): the request is malformed, not refused by the call's state.
SHAPE_CODES = set(re.findall(r'"([a-z_0-9]+)";', (pathlib.Path(__file__).parents[2] / "crates/api/src/validate/codes.rs").read_text()))


class RecordingProxy:
    """Forwards every request to `target` and keeps (method, path, body bytes, status) of each."""

    def __init__(self, target):
        self.seen = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                r = requests.request(self.command, target + self.path, data=body or None, headers=headers, timeout=10)
                proxy.seen.append((self.command, self.path, body, r.status_code, r.content))
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = _forward

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def sdk_via(d, proxy):
    from signalwire.rest import RestClient
    return RestClient(project=d.project, token=d.token, host=f"127.0.0.1:{proxy.port}")


def drive_every_command(client, call_id, far_uri):
    """Each calling method of the SDK once, with the parameters its signature offers. Errors (404 once the call
    ended, 501 for what is not built) are expected; 400/422 are checked by the test."""
    from signalwire.rest._base import SignalWireRestError
    c = client.calling
    steps = [
        lambda: c.play(call_id, play=[{"type": "silence", "duration": 1}], control_id="p1", volume=0.0,
                       direction="both", loop=1),
        lambda: c.play_pause(call_id, control_id="p1"),
        lambda: c.play_resume(call_id, control_id="p1"),
        lambda: c.play_volume(call_id, control_id="p1", volume=-3.0),
        lambda: c.play_stop(call_id, control_id="p1"),
        lambda: c.record(call_id, control_id="r1", audio={"format": "wav", "direction": "both"}),
        lambda: c.record_pause(call_id, control_id="r1"),
        lambda: c.record_resume(call_id, control_id="r1"),
        lambda: c.record_stop(call_id, control_id="r1"),
        lambda: c.collect(call_id, control_id="c1", initial_timeout=5.0, digits={"max": 2, "digit_timeout": 2.0},
                          partial_results=False, continuous=False),
        lambda: c.collect_start_input_timers(call_id, control_id="c1"),
        lambda: c.collect_stop(call_id, control_id="c1"),
        lambda: c.detect(call_id, detect={"type": "digit", "params": {}}, control_id="d1", timeout=5.0),
        lambda: c.detect_stop(call_id, control_id="d1"),
        lambda: c.denoise(call_id),
        lambda: c.denoise_stop(call_id),
        lambda: c.user_event(call_id, event={"hello": "world"}),
        lambda: c.tap(call_id, tap={"type": "audio", "params": {"direction": "both"}},
                      device={"type": "ws", "params": {"uri": "wss://tap.example/ws"}}, control_id="t1"),
        lambda: c.tap_stop(call_id, control_id="t1"),
        lambda: c.stream(call_id, url="wss://stream.example/ws", control_id="s1", codec="PCMU", track="both_tracks"),
        lambda: c.stream_stop(call_id, control_id="s1"),
        lambda: c.transcribe(call_id, control_id="x1"),
        lambda: c.transcribe_stop(call_id, control_id="x1"),
        lambda: c.ai_message(call_id, role="system", message_text="hi"),
        lambda: c.ai_hold(call_id, timeout="30", prompt="wait"),
        lambda: c.ai_unhold(call_id, prompt="back"),
        lambda: c.ai_stop(call_id, control_id="a1"),
        lambda: c.live_transcribe(call_id, action="stop"),
        lambda: c.live_translate(call_id, action="stop"),
        lambda: c.send_fax_stop(call_id, control_id="f1"),
        lambda: c.receive_fax_stop(call_id, control_id="f2"),
        lambda: c.refer(call_id, device={"type": "sip", "params": {"to": far_uri}}),
        lambda: c.transfer(call_id, dest="https://app.example/swml"),
        lambda: c.transfer(call_id, dest={"version": "1.0.0", "sections": {"main": [{"sleep": 1000}]}}),
        lambda: c.update(id=UUID, status="completed"),
        lambda: c.disconnect(call_id),
        lambda: c.end(call_id, reason="hangup"),
    ]
    for step in steps:
        try:
            step()
        except SignalWireRestError:
            pass


def test_every_request_the_sdk_sends_validates_against_the_served_document(start_dialtone, sipp, hooks):
    d = start_dialtone()
    # Served without credentials, and a valid OpenAPI 3.1 document.
    r = requests.get(d.base + "/api/openapi.json", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text[:200]
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    validate_spec(doc)
    request_schema = {"$ref": "#/components/schemas/CallRequest", "components": doc["components"]}
    validator = jsonschema.Draft202012Validator(request_schema)
    responses = doc["paths"]["/api/calling/calls"]["post"]["responses"]

    def response_validator(status):
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})

    proxy = RecordingProxy(d.base)
    try:
        client = sdk_via(d, proxy)
        far = sipp("uas.xml")
        leg = client.calling.dial(from_="+15105550100", to=far.uri("service"), swml=SWML, status_url=hooks.url(),
                                  status_events=ALL_EVENTS, codecs=["PCMU", "PCMA"], caller_id="+15105550100",
                                  fallback_url="https://fallback.example/swml", url_method="POST")
        wait_hook(hooks, leg["id"], "answered")
        drive_every_command(client, leg["id"], far.uri("service"))
        client.calling.dial(from_="+15105550100", to="sip:nobody@127.0.0.1:9", url="https://app.example/swml",
                            extras={"timeout": 5})
    finally:
        proxy.stop()

    posts = [(json.loads(body), status, reply) for method, path, body, status, reply in proxy.seen
             if method == "POST" and path == "/api/calling/calls"]
    sent = {b["command"] for b, _, _ in posts}
    missing = {f"calling.{m}" for m in ("play", "play.pause", "play.resume", "play.volume", "play.stop", "record",
                                        "record.pause", "record.resume", "record.stop", "collect",
                                        "collect.start_input_timers", "collect.stop", "detect", "detect.stop",
                                        "denoise", "denoise.stop", "user_event", "tap", "tap.stop", "stream",
                                        "stream.stop", "transcribe", "transcribe.stop", "ai_message", "ai_hold",
                                        "ai_unhold", "ai.stop", "live_transcribe", "live_translate",
                                        "send_fax.stop", "receive_fax.stop", "refer", "disconnect", "end")}
    missing |= {"dial", "update", "calling.transfer"}
    assert missing <= sent, sorted(missing - sent)
    problems = []
    for body, status, reply in posts:
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            problems.append((body["command"], [f"{list(e.path)}: {e.message}" for e in errors][:3], body))
        # The server and the document agree: nothing the SDK sends is refused as malformed (a 422 about the
        # call's state, e.g. a control_id whose playback already ended, is not about the request's shape).
        codes = {e.get("code") for e in json.loads(reply or b"{}").get("errors", [])} if status == 422 else set()
        if status == 400 or codes & SHAPE_CODES:
            problems.append((body["command"], f"answered {status}: {reply[:300]!r}", body))
        # And what the server answered is what the document says for that status.
        if str(status) not in responses:
            problems.append((body["command"], f"undocumented status {status}", body))
        else:
            bad = [e.message for e in response_validator(status).iter_errors(json.loads(reply))]
            if bad:
                problems.append((body["command"], f"{status} reply: {bad[:2]}", reply[:300].decode()))
    assert not problems, json.dumps(problems, indent=1)[:4000]
    # A body the validators refuse is refused by the document too (the document is not vacuous).
    for bad in ({"command": "calling.play", "id": UUID, "params": {}},
                {"command": "calling.end", "params": {}},
                {"command": "dial", "params": {"from": "+15105550100", "to": "+15551230000", "timeout": "x"}},
                {"command": "calling.nothing", "params": {}}):
        assert list(validator.iter_errors(bad)), bad
        assert d.post(bad).status_code == 422, bad

"""The egress policy against the real binary (docs/security.md, "Egress").

Every URL a user or a document supplies goes through one policy: the call's status_url webhooks, SWML
`request`, audio for `play`, SWML documents fetched by `execute`/`transfer`. Only loopback traffic: the
"refused" targets are loopback receivers that `public-only` mode (or a deny entry) forbids, and each test
checks they received nothing while the call went on; the witness that proves the script went on listens
on 127.0.0.2, which `DIALTONE_EGRESS_ALLOW` lets through.
"""
import http.server
import io
import json
import re
import socket
import threading
import time
import urllib.parse
import wave

import requests

FROM = "+15105550100"


def silence_wav(seconds=0.3, rate=8000):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(rate * seconds))
    return buf.getvalue()


class Receiver:
    """An HTTP server on `host` that records every request. `/audio.wav` answers a WAV, `/doc` a SWML
    document, `/redirect?to=U` a 302 to U; anything else 200 with an empty body."""

    def __init__(self, host="127.0.0.1", doc=None):
        self.host = host
        self.seen = []
        self.lock = threading.Lock()
        wav = silence_wav()
        doc_bytes = json.dumps(doc or {"version": "1.0.0", "sections": {"main": [{"set": {"from_doc": "yes"}}]}}).encode()
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with me.lock:
                    me.seen.append({"method": self.command, "path": self.path, "body": body})
                parsed = urllib.parse.urlparse(self.path)
                query = urllib.parse.parse_qs(parsed.query)
                if parsed.path == "/redirect" and "to" in query:
                    self.send_response(302)
                    self.send_header("Location", query["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                payload, ctype = b"", "text/plain"
                if parsed.path == "/audio.wav":
                    payload, ctype = wav, "audio/wav"
                elif parsed.path == "/doc":
                    payload, ctype = doc_bytes, "application/json"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://{self.host}:{self.port}{path}"

    def name_url(self, path):
        """The same receiver by name: the policy decides when the name resolves."""
        assert self.host == "127.0.0.1"
        return f"http://localhost:{self.port}{path}"

    def paths(self):
        with self.lock:
            return [s["path"] for s in self.seen]

    def wait_path(self, prefix, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            hits = [p for p in self.paths() if p.startswith(prefix)]
            if hits:
                return hits
            time.sleep(0.05)
        raise AssertionError(f"no request to {prefix} within {timeout}s; saw {self.paths()}")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def flow(victim, witness):
    """The origin's document: each user-supplied URL points at `victim` (by address or by name);
    after each step the script reports to `witness` how the step ended, so the test sees the script
    go on."""
    return {"version": "1.0.0", "sections": {"main": [
        {"request": {"url": victim.name_url("/request"), "method": "POST", "body": {"secret": "loopback-only"},
                     "timeout": 3}},
        {"request": {"url": witness.url("/after-request?r=${request_result}"), "method": "GET"}},
        {"play": {"url": victim.url("/audio.wav"), "status_url": witness.url("/play-events")}},
        {"request": {"url": witness.url("/after-play"), "method": "GET"}},
        {"execute": {"dest": victim.name_url("/doc")}},
        {"request": {"url": witness.url("/after-execute?d=${from_doc}"), "method": "GET"}},
        {"hangup": {}}]}}


def hold():
    return {"version": "1.0.0", "sections": {"main": [{"play": {"url": "ring:20:us"}}]}}


def dial(d, victim, witness):
    r = d.post({"command": "dial", "params": {
        "from": FROM, "to_script": hold(), "swml": flow(victim, witness),
        # By name: a literal loopback status_url would be refused up front (422, see below).
        "status_url": victim.name_url("/status"), "status_events": ["created", "answered", "ended"]}})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def wait_ended(d, call_id, timeout=20):
    deadline = time.time() + timeout
    leg = None
    while time.time() < deadline:
        leg = requests.get(f"{d.base}/api/calling/calls/{call_id}", auth=(d.project, d.token), timeout=5).json()
        if leg["status"] == "ended":
            return leg
        time.sleep(0.1)
    raise AssertionError(f"call not ended: {leg}")


def log_text(d):
    return re.sub(r"\x1b\[[0-9;]*m", "", d.log_path.read_text())


def failed_webhooks(d, want, timeout=10):
    deadline = time.time() + timeout
    rows = []
    while time.time() < deadline:
        r = requests.get(d.base + "/api/calling/webhooks/failed?limit=50", auth=(d.project, d.token), timeout=5)
        assert r.status_code == 200, r.text
        rows = r.json()["data"]
        if len(rows) >= want:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"expected {want} given-up webhooks, have {rows}")


def play_states(witness):
    out = []
    with witness.lock:
        for s in witness.seen:
            if s["path"] == "/play-events" and s["body"]:
                j = json.loads(s["body"])
                if j.get("event_type") == "calling.call.play":
                    out.append(j["params"]["state"])
    return out


def test_public_only_refuses_every_user_url_and_the_call_goes_on(start_dialtone):
    victim = Receiver("127.0.0.1")
    witness = Receiver("127.0.0.2")
    try:
        d = start_dialtone({"DIALTONE_EGRESS_MODE": "public-only", "DIALTONE_EGRESS_ALLOW": "127.0.0.2"})
        call_id = dial(d, victim, witness)
        # The script went on past each refused step, each failing as an unreachable URL would.
        assert witness.wait_path("/after-request") == ["/after-request?r=failed"]
        witness.wait_path("/after-play")
        assert witness.wait_path("/after-execute") == ["/after-execute?d="]
        wait_ended(d, call_id)
        assert "error" in play_states(witness), witness.paths()
        # The webhooks to the refused status_url were given up at once, and the operator sees why.
        rows = failed_webhooks(d, 3)
        assert {r["url"] for r in rows} == {victim.name_url("/status")}, rows
        assert all(r["attempts"] == 1 and "refused in public-only mode" in r["last_error"] for r in rows), rows
        # Nothing reached the refused receiver.
        time.sleep(0.5)
        assert victim.paths() == []
        log = log_text(d)
        for purpose in ("webhook", "swml request", "audio", "swml fetch"):
            assert re.search(rf'outbound request refused.*purpose="?{purpose}"?.*rule="?public-only', log) or \
                re.search(rf'purpose="?{purpose}"?.*rule="?public-only"?.*outbound request refused', log), purpose
        # The API still answers.
        r = requests.get(d.base + "/api/calling/calls", auth=(d.project, d.token), timeout=5)
        assert r.status_code == 200
    finally:
        victim.stop()
        witness.stop()


def test_default_mode_lets_the_same_calls_through(start_dialtone):
    victim = Receiver("127.0.0.1")
    witness = Receiver("127.0.0.2")
    try:
        d = start_dialtone()
        call_id = dial(d, victim, witness)
        assert witness.wait_path("/after-request") == ["/after-request?r=success"]
        witness.wait_path("/after-play")
        assert witness.wait_path("/after-execute") == ["/after-execute?d=yes"]
        wait_ended(d, call_id)
        assert "finished" in play_states(witness), play_states(witness)
        victim.wait_path("/status")
        paths = victim.paths()
        for p in ("/request", "/audio.wav", "/doc", "/status"):
            assert p in paths, paths
        assert "outbound request refused" not in log_text(d)
    finally:
        victim.stop()
        witness.stop()


def test_a_redirect_to_a_denied_address_is_not_followed(start_dialtone):
    front = Receiver("127.0.0.1")
    secret = Receiver("127.0.0.3")
    try:
        d = start_dialtone({"DIALTONE_EGRESS_DENY": "127.0.0.3/32"})
        hop = urllib.parse.quote(secret.url("/secret"), safe="")
        doc = {"version": "1.0.0", "sections": {"main": [
            {"request": {"url": front.url(f"/redirect?to={hop}"), "method": "GET", "timeout": 3}},
            {"request": {"url": front.url("/after-request?r=${request_result}"), "method": "GET"}},
            {"play": {"url": front.url(f"/redirect?to={hop}"), "status_url": front.url("/play-events")}},
            {"execute": {"dest": front.url(f"/redirect?to={hop}")}},
            {"request": {"url": front.url("/done"), "method": "GET"}},
            {"hangup": {}}]}}
        r = d.post({"command": "dial", "params": {"from": FROM, "to_script": hold(), "swml": doc}})
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        assert front.wait_path("/after-request") == ["/after-request?r=failed"]
        front.wait_path("/done")
        wait_ended(d, call_id)
        assert "error" in play_states(front)
        # The allowed server was asked three times; the denied one never.
        assert len([p for p in front.paths() if p.startswith("/redirect")]) == 3, front.paths()
        assert secret.paths() == []
        assert len(re.findall(r"outbound request refused.*egress.deny entry 127.0.0.3/32", log_text(d))) >= 3
    finally:
        front.stop()
        secret.stop()


def test_a_deny_entry_for_the_receivers_address_refuses_webhooks(start_dialtone):
    victim = Receiver("127.0.0.1")
    try:
        d = start_dialtone({"DIALTONE_EGRESS_DENY": "127.0.0.1/32"})
        doc = {"version": "1.0.0", "sections": {"main": [{"hangup": {}}]}}
        r = d.post({"command": "dial", "params": {
            "from": FROM, "to_script": hold(), "swml": doc,
            "status_url": victim.name_url("/status"), "status_events": ["created", "answered", "ended"]}})
        assert r.status_code == 200, r.text
        wait_ended(d, r.json()["id"])
        rows = failed_webhooks(d, 3)
        assert all("egress.deny entry 127.0.0.1/32" in row["last_error"] for row in rows), rows
        assert victim.paths() == []
    finally:
        victim.stop()


def test_bad_egress_configuration_stops_the_start(tmp_path):
    import subprocess
    from conftest import BINARY, Dialtone
    d = Dialtone(tmp_path, {"DIALTONE_EGRESS_MODE": "wide-open"})
    p = subprocess.run([BINARY, "serve"], env=d.env, capture_output=True, timeout=20)
    assert p.returncode != 0
    assert b"egress" in p.stderr + p.stdout


def wait_answered(d, call_id, timeout=10):
    deadline = time.time() + timeout
    leg = None
    while time.time() < deadline:
        leg = requests.get(f"{d.base}/api/calling/calls/{call_id}", auth=(d.project, d.token), timeout=5).json()
        if leg["status"] == "answered":
            return leg
        time.sleep(0.05)
    raise AssertionError(f"call not answered: {leg}")


def test_rest_urls_refused_up_front_are_422_and_by_name_fail_like_unreachable(start_dialtone):
    victim = Receiver("127.0.0.1")
    witness = Receiver("127.0.0.2")
    try:
        d = start_dialtone({"DIALTONE_EGRESS_MODE": "public-only", "DIALTONE_EGRESS_ALLOW": "127.0.0.2"})
        holding = {"version": "1.0.0", "sections": {"main": [{"answer": {}}, {"sleep": -1}]}}
        # A literal address the policy refuses: a 422 naming the attribute, in SignalWire's error shape.
        r = d.post({"command": "dial", "params": {"from": FROM, "to_script": hold(), "swml": holding,
                                                  "status_url": victim.url("/status")}})
        assert r.status_code == 422, r.text
        err = r.json()["errors"][0]
        assert (err["code"], err["attribute"], err["type"]) == ("url_is_unsafe", "status_url", "validation_error"), err
        assert "public-only" in err["message"], err
        r = d.post({"command": "dial", "params": {"from": FROM, "to_script": hold(), "swml": holding,
                                                  "status_url": witness.url("/status")}})
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        wait_answered(d, call_id)
        play = lambda url: d.post({"command": "calling.play", "id": call_id, "params": {
            "control_id": "p1", "status_url": witness.url("/play-events"),
            "play": [{"type": "audio", "params": {"url": url}}]}})
        r = play(victim.url("/audio.wav"))
        assert r.status_code == 422 and r.json()["errors"][0]["attribute"] == "play.0.params.url", r.text
        # By name the API cannot tell; the node refuses when the name resolves: a play error event.
        r = play(victim.name_url("/audio.wav"))
        assert r.status_code == 200, r.text
        deadline = time.time() + 10
        while "error" not in play_states(witness) and time.time() < deadline:
            time.sleep(0.05)
        assert "error" in play_states(witness), witness.paths()
        assert wait_answered(d, call_id)["status"] == "answered"
        r = d.post({"command": "calling.end", "id": call_id, "params": {"reason": "hangup"}})
        assert r.status_code == 200, r.text
        wait_ended(d, call_id)
        assert victim.paths() == []
    finally:
        victim.stop()
        witness.stop()

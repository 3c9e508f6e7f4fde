"""Abuse and fault resistance (issue 10, docs/security.md), against the real binary on loopback: idle and
half-sent connections, hostile SIP requests and SDP, the list cursor, the data files' modes. Each test shows the
node keeps serving a well-behaved client while (or after) it is attacked."""
import os
import re
import resource
import socket
import stat
import time
import uuid

import requests

from conftest import Dialtone


def http_get_calls(d, timeout=5):
    return requests.get(d.base + "/api/calling/calls", auth=(d.project, d.token), timeout=timeout)


def start_with_soft_fd_limit(tmp_path, soft, extra_env):
    """Starts dialtone with a low soft RLIMIT_NOFILE (as many systems have by default); the server must raise it."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, old[1]), old[1]))
    try:
        d = Dialtone(tmp_path, extra_env)
        d.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)
    return d


def open_from(ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((ip, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def test_idle_connections_do_not_stop_the_api(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2200
    if hard < want:
        import pytest
        pytest.skip(f"hard RLIMIT_NOFILE {hard} < {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    d = start_with_soft_fd_limit(tmp_path, 1024, {
        "DIALTONE_HTTP_HEADER_TIMEOUT_MS": "3000",
        "DIALTONE_HTTP_REQUEST_TIMEOUT_MS": "4000",
        "DIALTONE_HTTP_IDLE_TIMEOUT_MS": "5000",
    })
    held = []
    try:
        sip_port = int(d.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
        # 1,200 HTTP sockets from eight loopback addresses: partial headers, a trickled body, or nothing at all.
        for i in range(1200):
            ip = f"127.0.0.{2 + i % 8}"
            try:
                s = open_from(ip, d.http_port)
            except OSError:
                continue  # refused by a cap is fine
            kind = i % 3
            try:
                if kind == 0:
                    s.sendall(b"GET /api/calling/calls HTTP/1.1\r\nHost: x\r\n")
                elif kind == 1:
                    s.sendall(b"POST /api/calling/calls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 100000\r\n\r\n{")
            except OSError:
                pass
            held.append(s)
        # 300 idle SIP TCP connections.
        for i in range(300):
            try:
                held.append(open_from(f"127.0.0.{2 + i % 8}", sip_port))
            except OSError:
                pass
        # A normal client from 127.0.0.1 is answered promptly while all of that is open.
        t0 = time.time()
        r = http_get_calls(d, timeout=5)
        assert r.status_code == 200
        assert time.time() - t0 < 2.0
        # Trickle more body bytes: the request time limit still ends it.
        for s in held[1::3][:50]:
            try:
                s.sendall(b" ")
            except OSError:
                pass
        # The server closes the hostile sockets (header/request/first-data limits).
        deadline = time.time() + 15
        open_left = list(held)
        while open_left and time.time() < deadline:
            still = []
            for s in open_left:
                s.settimeout(0.01)
                try:
                    data = s.recv(4096)
                    if data:
                        still.append(s)  # an error response; the close follows
                except socket.timeout:
                    still.append(s)
                except OSError:
                    pass
            open_left = still
            time.sleep(0.2)
        assert not open_left, f"{len(open_left)} hostile sockets still open"
        assert http_get_calls(d).status_code == 200
        log = re.sub(r"\x1b\[[0-9;]*m", "", d.log_path.read_text())
        assert "open file limit" in log and f"soft={hard}" in log, "soft fd limit not raised to the hard one"
    finally:
        for s in held:
            s.close()
        d.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_per_peer_cap_leaves_room_for_others(tmp_path):
    d = Dialtone(tmp_path, {"DIALTONE_HTTP_MAX_CONNECTIONS_PER_PEER": "20"}).start()
    held = []
    try:
        for _ in range(60):
            held.append(open_from("127.0.0.3", d.http_port))
        time.sleep(0.3)
        refused = 0
        for s in held:
            s.settimeout(0.05)
            try:
                if s.recv(1) == b"":
                    refused += 1
            except socket.timeout:
                pass
            except OSError:
                refused += 1
        assert refused >= 40, refused
        assert http_get_calls(d).status_code == 200
    finally:
        for s in held:
            s.close()
        d.stop()


def test_sip_tcp_limits_come_from_the_configuration(tmp_path):
    """The per-peer cap on silent SIP/TCP connections and the first-data timeout are the
    operator's settings: 4 per peer, 1 s."""
    d = Dialtone(tmp_path, {"DIALTONE_SIP_TCP_MAX_SILENT_PER_PEER": "4",
                            "DIALTONE_SIP_TCP_FIRST_DATA_TIMEOUT_MS": "1000"}).start()
    held = []
    try:
        for _ in range(10):
            held.append(open_from("127.0.0.5", int(d.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])))
        time.sleep(0.3)
        closed_at_once = sum(1 for s in held if closed_by_server(s, 0.05))
        assert closed_at_once >= 6, closed_at_once
        time.sleep(1.5)
        assert all(closed_by_server(s, 0.05) for s in held)
    finally:
        for s in held:
            s.close()
        d.stop()


def closed_by_server(sock, wait):
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def sip_request(sock, port, method, cseq, max_forwards="70", body=b"", extra=""):
    mine = sock.getsockname()[1]
    call_id = uuid.uuid4().hex
    head = (f"{method} sip:+15551230000@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{mine};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"Max-Forwards: {max_forwards}\r\n"
            f"From: <sip:+15105550199@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:+15551230000@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq}\r\n"
            f"Contact: <sip:caller@127.0.0.1:{mine}>\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    sock.sendto(head, ("127.0.0.1", port))
    deadline = time.time() + 5
    while time.time() < deadline:
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            data, _ = sock.recvfrom(65536)
        except socket.timeout:
            break
        first = data.split(b"\r\n", 1)[0].decode(errors="replace")
        if not first.startswith("SIP/2.0 1"):
            return first
    return ""


def test_hostile_sip_requests(tmp_path):
    d = Dialtone(tmp_path, {"DIALTONE_LOG": "info", "DIALTONE_INBOUND_URL": "http://127.0.0.1:9/none"}).start()
    try:
        port = int(d.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        assert sip_request(u, port, "OPTIONS", "1 OPTIONS", max_forwards="0").startswith("SIP/2.0 483")
        assert sip_request(u, port, "INVITE", "1 INVITE", max_forwards="0").startswith("SIP/2.0 483")
        assert sip_request(u, port, "INVITE", "1 BYE").startswith("SIP/2.0 400")
        assert sip_request(u, port, "OPTIONS", "2 INVITE").startswith("SIP/2.0 400")
        # An offer whose only media is a multicast group: no usable media, 488.
        sdp = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 239.1.2.3/16\r\nt=0 0\r\n"
               b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
        got = sip_request(u, port, "INVITE", "1 INVITE", body=sdp, extra="Content-Type: application/sdp\r\n")
        assert got.startswith("SIP/2.0 488"), got
        # A flood of well-formed requests: answered, and raw SIP stays out of an INFO log.
        before = d.log_path.stat().st_size
        for i in range(200):
            assert sip_request(u, port, "OPTIONS", f"{i + 10} OPTIONS").startswith("SIP/2.0 200")
        log = d.log_path.read_text()
        assert "raw_message" not in log and "OPTIONS sip:" not in log
        assert d.log_path.stat().st_size - before < 20_000
        assert http_get_calls(d).status_code == 200
    finally:
        d.stop()


def test_malformed_cursor_is_400(dialtone):
    for cursor in ["garbage", "12", "x:y", "12:not-a-uuid", "%00%ff"]:
        r = requests.get(dialtone.base + "/api/calling/calls?cursor=" + cursor,
                         auth=(dialtone.project, dialtone.token), timeout=5)
        assert r.status_code == 400, (cursor, r.status_code, r.text)
        err = r.json()["errors"][0]
        assert err["attribute"] == "cursor" and err["type"] == "validation_error"
    assert http_get_calls(dialtone).status_code == 200


def test_data_files_are_owner_only(tmp_path):
    # No credentials configured: they are generated and saved in the data dir.
    d = Dialtone(tmp_path)
    for k in ["DIALTONE_PROJECT_ID", "DIALTONE_API_TOKEN", "DIALTONE_SIGNING_KEY"]:
        d.env.pop(k)
    d.log = open(d.log_path, "a")
    import subprocess
    from conftest import BINARY
    d.proc = subprocess.Popen([BINARY, "serve"], env=d.env, stdout=d.log, stderr=d.log)
    try:
        deadline = time.time() + 20
        while time.time() < deadline and not (d.data_dir / "dialtone.db").exists():
            time.sleep(0.05)
        time.sleep(0.5)
        assert stat.S_IMODE(os.stat(d.data_dir).st_mode) == 0o700
        names = [p.name for p in d.data_dir.iterdir()]
        assert "credentials.toml" in names and "dialtone.db" in names, names
        for p in d.data_dir.iterdir():
            if p.is_file():
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p.name, oct(p.stat().st_mode))
    finally:
        d.stop()


class HangingReceiver:
    """Accepts HTTP connections and never answers."""

    def __init__(self):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.running = True
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)

    def url(self):
        return f"http://127.0.0.1:{self.port}/hang"

    def close(self):
        self.running = False
        self.sock.close()
        for c in self.held:
            c.close()


UNREACHABLE = "sip:nobody@127.0.0.1:1;transport=tcp"  # connection refused: the call fails at once


def dial_failing(d, status_url):
    r = d.post({"command": "dial", "params": {
        "from": "+15105550100", "to": UNREACHABLE, "status_url": status_url,
        "status_events": ["created", "ringing", "answered", "ended"],
        "swml": {"version": "1.0.0", "sections": {"main": [{"hangup": {}}]}}}})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_a_hanging_webhook_receiver_delays_no_other(start_dialtone, hooks):
    hang = HangingReceiver()
    try:
        # Default webhook timeout (10 s) and per-destination limit; more calls to the hanging receiver than the
        # node has delivery slots in all.
        d = start_dialtone({"DIALTONE_WEBHOOK_BACKOFF_MS": "60000"})
        for _ in range(24):
            dial_failing(d, hang.url())
        time.sleep(1.0)
        t0 = time.time()
        healthy = [dial_failing(d, hooks.url()) for _ in range(3)]
        for call_id in healthy:
            ev = hooks.wait_state(call_id, "ended", 5)
            assert ev is not None, f"healthy receiver's webhook late: {hooks.states(call_id)}"
        assert time.time() - t0 < 4.0, time.time() - t0
        assert len(hang.held) <= 4, f"hanging destination took {len(hang.held)} connections"
        assert http_get_calls(d).status_code == 200
    finally:
        hang.close()


def test_given_up_webhooks_are_listed_for_the_operator(start_dialtone, hooks):
    d = start_dialtone()
    hooks.fail_next(1, 404)  # a 4xx is given up at once
    call_id = dial_failing(d, hooks.url())
    deadline = time.time() + 10
    rows = []
    while time.time() < deadline:
        r = requests.get(d.base + "/api/calling/webhooks/failed", auth=(d.project, d.token), timeout=5)
        assert r.status_code == 200, r.text
        rows = r.json()["data"]
        if rows:
            break
        time.sleep(0.1)
    assert rows and rows[0]["call_id"] == call_id and rows[0]["last_error"] == "HTTP 404", rows
    assert rows[0]["url"] == hooks.url() and rows[0]["attempts"] == 1
    r = requests.get(d.base + "/api/calling/webhooks/failed", timeout=5)
    assert r.status_code == 401
    r = requests.get(d.base + "/api/calling/webhooks/failed?limit=0", auth=(d.project, d.token), timeout=5)
    assert r.status_code == 422 and r.json()["errors"][0]["attribute"] == "limit"

"""A real HTTP webhook receiver for the call tests (after shared/peers/webhook_receiver.py).

  hooks = Webhooks(signing_key)              threaded HTTP server on a free 127.0.0.1 port (or `port=`)
  hooks.url("/status")                       the status_url to give to dial
  hooks.attempts                             every POST in arrival order: {path, headers, body, url, t, status}
  hooks.events                               the attempts answered 2xx (the deliveries that counted)
  hooks.fail_next(n, status=500)             answer the next n POSTs with `status` (then 200 again)
  hooks.states(call_id)                      ["created", "ringing", ...] delivered for that call, in order
  hooks.wait_state(call_id, "ended", 10)     poll until delivered; returns the event's JSON or None
  hooks.signature_ok(event)                  both SignalWire signature headers are right
  hooks.stop() / Webhooks(key, port=p)       to take the receiver down and bring it back on the same port
  hooks.reply = (b'{...}', "application/json")  answer 2xx POSTs/GETs with this body (a SWML document server)
  hooks.delay = 5.0                          a slow receiver: hold each request this long before reading it
  hooks.arrived                              (time, path) of every request as it arrived (before any delay)
"""
import hashlib
import hmac
import http.server
import json
import socket
import threading
import time


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Webhooks:
    def __init__(self, key, port=None):
        self.key = key.encode()
        self.attempts = []
        self.lock = threading.Lock()
        self._fail = []  # statuses to answer the next POSTs with
        self.reply = None  # (body bytes, content type) for 2xx answers
        self.delay = 0.0  # seconds each request is held before it is read and answered
        self.arrived = []
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                with hooks.lock:
                    hooks.arrived.append((time.time(), self.path))
                    delay = hooks.delay
                if delay:
                    time.sleep(delay)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hooks.lock:
                    status = hooks._fail.pop(0) if hooks._fail else 200
                    hooks.attempts.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                           "body": body, "url": f"http://127.0.0.1:{hooks.port}{self.path}",
                                           "t": time.time(), "status": status})
                    reply = hooks.reply if 200 <= status < 300 else None
                self.send_response(status)
                if reply:
                    self.send_header("Content-Type", reply[1])
                    self.send_header("Content-Length", str(len(reply[0])))
                    self.end_headers()
                    self.wfile.write(reply[0])
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            do_GET = do_POST

            def log_message(self, *a):
                pass

        self.port = port or _free_port()
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path="/status"):
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_next(self, n, status=500):
        with self.lock:
            self._fail.extend([status] * n)

    @property
    def events(self):
        with self.lock:
            return [a for a in self.attempts if 200 <= a["status"] < 300]

    @staticmethod
    def parse(e):
        return json.loads(e["body"])

    def json(self):
        return [self.parse(e) for e in self.events]

    def on(self, path):
        """The parsed bodies delivered to `path` (hooks.url(path)), in order."""
        return [self.parse(e) for e in self.events if e["path"] == path]

    def wait_on(self, path, count=1, timeout=30):
        """The first `count` bodies delivered to `path`, waiting for them."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.on(path)
            if len(got) >= count:
                return got[:count]
            time.sleep(0.05)
        raise AssertionError(f"{len(self.on(path))} of {count} on {path}; got {[e['path'] for e in self.events]}")

    def for_call(self, call_id, attempts=False):
        src = list(self.attempts) if attempts else self.events
        return [e for e in src if self.parse(e).get("params", {}).get("call_id") == call_id]

    def states(self, call_id):
        return [self.parse(e)["params"]["call_state"] for e in self.for_call(call_id)]

    def wait_state(self, call_id, state, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in self.for_call(call_id):
                j = self.parse(e)
                if j["params"].get("call_state") == state:
                    return j
            time.sleep(0.05)
        return None

    def signature_ok(self, e):
        h = {k.lower(): v for k, v in e["headers"].items()}
        msg = e["url"].encode() + e["body"]
        return (h.get("x-signalwire-signature") == hmac.new(self.key, msg, hashlib.sha1).hexdigest() and
                h.get("x-signalwire-sha256-signature") == hmac.new(self.key, msg, hashlib.sha256).hexdigest())

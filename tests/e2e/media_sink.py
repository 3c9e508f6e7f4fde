"""Helpers for the playback / inbound end-to-end tests: hear what dialtone sends, serve it audio and SWML.

  sink = RtpSink()                     UDP socket on 127.0.0.1 (a far end's RTP port); records every packet
  sink.wait_first(5)                   arrival time of the first packet (or None)
  sink.timeline()                      (samples, t_wall_of_sample0): PCMU decoded and placed by RTP timestamp
  sink.between(t0, t1)                 decoded samples of the packets that arrived in [t0, t1] (wall clock)
  labels(samples)                      one label per 100 ms window: "silence", "1k", "440", "ring", "tone", "sound"
  runs(labels)                         [(label, first_window, n_windows)] of consecutive equal labels
  HttpPeer()                           a real HTTP server: peer.route(path, body, ctype, status); peer.requests
  tone_wav(freqs, secs, rate, amp)     a 16-bit mono WAV (bytes) of the sum of sines
  signature_ok(req, key)               both SignalWire signature headers of a recorded request are right
  free_rtp_range(n)                    a random even base in 40000-49000 with n free UDP ports
"""
import hashlib
import hmac
import http.server
import io
import math
import random
import socket
import struct
import threading
import time
import wave

from audio_check import goertzel_db, ulaw_decode

RATE = 8000
WIN = 800  # 100 ms at 8 kHz
ULAW = [ulaw_decode(b) for b in range(256)]


def free_rtp_range(n=20):
    for _ in range(300):
        base = random.randrange(40000, 49000 - n, 2)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base, base + n - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free RTP range")


def tone_wav(freqs, secs, rate=8000, amp=0.4):
    freqs = freqs if isinstance(freqs, (list, tuple)) else [freqs]
    n = int(secs * rate)
    a = amp * 32767 / len(freqs)
    frames = b"".join(struct.pack("<h", int(sum(a * math.sin(2 * math.pi * f * i / rate) for f in freqs)))
                      for i in range(n))
    b = io.BytesIO()
    w = wave.open(b, "wb")
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(frames)
    w.close()
    return b.getvalue()


class RtpSink:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.packets = []  # (arrival, seq, ts, pt, payload, marker, ssrc)
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, _ = self.sock.recvfrom(4096)
            except OSError:
                return
            if len(data) < 12:
                continue
            cc = data[0] & 0x0F
            seq, ts, ssrc = struct.unpack("!HII", data[2:12])
            with self.lock:
                self.packets.append((time.time(), seq, ts, data[1] & 0x7F, data[12 + 4 * cc:], data[1] >> 7, ssrc))

    def close(self):
        self.sock.close()

    def snapshot(self, pt=0):
        with self.lock:
            return [p for p in self.packets if p[3] == pt]

    def wait_first(self, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            pk = self.snapshot()
            if pk:
                return pk[0][0]
            time.sleep(0.02)
        return None

    def timeline(self, pt=0):
        """All PCMU audio so far, each packet placed at its RTP timestamp offset (gaps stay 0).
        Returns (samples, wall-clock time of sample 0)."""
        pk = self.snapshot(pt)
        if not pk:
            return [], None
        ts0 = pk[0][2]
        offs = [((p[2] - ts0) & 0xFFFFFFFF, p) for p in pk]
        offs = [(o if o < 0x80000000 else o - 0x100000000, p) for o, p in offs]
        lo = min(o for o, _ in offs)
        end = max(o + len(p[4]) for o, p in offs) - lo
        out = [0] * end
        for o, p in offs:
            o -= lo
            out[o:o + len(p[4])] = [ULAW[b] for b in p[4]]
        # wall clock of sample 0: the first packet's arrival minus its offset
        t0 = pk[0][0] - (offs[0][0] - lo) / RATE
        return out, t0

    def between(self, t0, t1, pt=0):
        out = []
        for p in self.snapshot(pt):
            if t0 <= p[0] <= t1:
                out.extend(ULAW[b] for b in p[4])
        return out

    def count_between(self, t0, t1, pt=0):
        return sum(1 for p in self.snapshot(pt) if t0 <= p[0] <= t1)


def rms_db(x):
    if not x:
        return -200.0
    r = math.sqrt(sum(v * v for v in x) / len(x))
    return 20 * math.log10(r / 32768) if r > 0 else -200.0


def label(win):
    """What a 100 ms window sounds like."""
    if rms_db(win) < -50:
        return "silence"
    g440, g480, g1k = goertzel_db(win, 440), goertzel_db(win, 480), goertzel_db(win, 1000)
    if g440 > -6 and g480 > -6:
        return "ring"
    if g1k > -3:
        return "1k"
    if g440 > -3:
        return "440"
    if max(goertzel_db(win, f) for f in (600, 700)) > -3:
        return "tone"
    return "sound"


def windows(samples, size=WIN):
    return [samples[i:i + size] for i in range(0, len(samples) - size + 1, size)]


def labels(samples):
    return [label(w) for w in windows(samples)]


def runs(labs):
    out = []
    for i, l in enumerate(labs):
        if out and out[-1][0] == l:
            out[-1][2] += 1
        else:
            out.append([l, i, 1])
    return [tuple(r) for r in out]


def major_runs(labs):
    """runs() without the single boundary windows (a 100 ms window straddling two segments sounds like
    neither), adjacent equal runs merged again."""
    out = []
    for l, i, n in runs(labs):
        if n == 1 and l == "sound":
            continue
        if out and out[-1][0] == l:
            out[-1][2] = i + n - out[-1][1]
        else:
            out.append([l, i, n])
    return [tuple(r) for r in out]


def max_tone_share_db(win, lo=100, hi=3600, step=20):
    """The largest single-frequency share of the window's power (a pure tone is ~0 dB, speech well below)."""
    return max(goertzel_db(win, f) for f in range(lo, hi, step))


def describe(labs):
    return " ".join(f"{l}x{n}@{i / 10:.1f}s" for l, i, n in runs(labs))


class HttpPeer:
    """A real threaded HTTP server answering configured paths; records every request."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        self.lock = threading.Lock()
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?", 1)[0]
                with peer.lock:
                    peer.requests.append({"method": self.command, "path": path, "full_path": self.path,
                                          "headers": dict(self.headers), "body": body, "t": time.time(),
                                          "url": f"http://127.0.0.1:{peer.port}{self.path}"})
                    route = peer.routes.get(path)
                if callable(route):
                    route = route()
                status, ctype, data = route if route else (404, "text/plain", b"not found")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _any

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def route(self, path, body, ctype="application/octet-stream", status=200):
        if isinstance(body, str):
            body = body.encode()
        self.routes[path] = (status, ctype, body)
        return self.url(path)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path, method=None):
        with self.lock:
            return [r for r in self.requests if r["path"] == path and (method is None or r["method"] == method)]

    def wait_hit(self, path, method=None, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            h = self.hits(path, method)
            if h:
                return h[0]
            time.sleep(0.02)
        return None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def signature_ok(req, key):
    h = {k.lower(): v for k, v in req["headers"].items()}
    msg = req["url"].encode() + req["body"]
    k = key.encode()
    return (h.get("x-signalwire-signature") == hmac.new(k, msg, hashlib.sha1).hexdigest() and
            h.get("x-signalwire-sha256-signature") == hmac.new(k, msg, hashlib.sha256).hexdigest())

"""sipp as the far end of a test: one foreground process per test, its SIP ladder read from -trace_msg.

  peer = Sipp("uas.xml", tmp_path, transport="udp", keys={"rtp_sink": 40000})   (a name in tests/e2e/sipp/ or an absolute path)
  peer.uri("service")                 sip:service@127.0.0.1:<port>[;transport=tcp]
  peer.wait(15)                       exit code (0 = the scenario passed); kills sipp on timeout
  peer.ladder()                       [Msg] in log order; m.from_dialtone, m.kind ("INVITE", "200"), m.header()
  peer.arrows()                       ["> INVITE", "< 180", ...]  (> = dialtone sent it, < = sipp sent it)
  peer.kill()                         idempotent, always called by the fixture in teardown
"""
import datetime
import hashlib
import os
import random
import socket
import subprocess
import time

SCENARIOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipp")
SEPARATOR = "----------------------------------------------- "


def _bindable(port, kind):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_sip_port():
    """A port free for both UDP and TCP on 127.0.0.1 (sipp binds one or the other, dialtone both)."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if _bindable(port, socket.SOCK_DGRAM):
            return port
    raise RuntimeError("no free port")


def free_media_port():
    """An even UDP port with port+1..port+3 free too (sipp binds the audio port and port+2 for video)."""
    for _ in range(500):
        port = random.randrange(40000, 59990, 2)
        if all(_bindable(p, socket.SOCK_DGRAM) for p in range(port, port + 4)):
            return port
    raise RuntimeError("no free media port")


class Msg:
    def __init__(self, from_dialtone, when, text, transport):
        self.from_dialtone = from_dialtone
        self.when = when
        self.text = text
        self.transport = transport
        self.start_line = text.split("\n", 1)[0].strip()

    @property
    def kind(self):
        parts = self.start_line.split()
        if not parts:
            return ""
        return parts[1] if parts[0] == "SIP/2.0" else parts[0]

    @property
    def request_uri(self):
        parts = self.start_line.split()
        return parts[1] if parts and parts[0] != "SIP/2.0" else None

    def header(self, name):
        values = self.headers(name)
        return values[0] if values else None

    COMPACT = {"via": "v", "contact": "m", "from": "f", "to": "t", "call-id": "i", "content-type": "c",
               "content-length": "l", "supported": "k", "subject": "s"}

    def headers(self, name):
        """All values of a header (also in its compact form), in order."""
        names = {name.lower()}
        if name.lower() in self.COMPACT:
            names.add(self.COMPACT[name.lower()])
        head = self.text.split("\n\n", 1)[0]
        out = []
        for line in head.split("\n")[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                if k.strip().lower() in names:
                    out.append(v.strip())
        return out

    @property
    def body(self):
        parts = self.text.split("\n\n", 1)
        return parts[1] if len(parts) == 2 else ""

    def __repr__(self):
        return f"<{'>' if self.from_dialtone else '<'} {self.start_line}>"


def parse_ladder(text):
    out = []
    for block in text.split(SEPARATOR):
        lines = block.replace("\r\n", "\n").split("\n")
        if len(lines) < 3:
            continue
        try:
            when = datetime.datetime.strptime(lines[0].strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        what = lines[1]
        if "message received" in what:
            from_dialtone = True
        elif "message sent" in what:
            from_dialtone = False
        else:
            continue
        transport = what.split()[0]
        rest = lines[2:]
        while rest and not rest[0].strip():
            rest.pop(0)
        if not rest:
            continue
        out.append(Msg(from_dialtone, when, "\n".join(rest).strip("\n") + "\n", transport))
    return out


class Sipp:
    def __init__(self, scenario, workdir, transport="udp", keys=None, extra=(), timeout_s=25):
        self.scenario = scenario
        self.transport = transport
        self.port = free_sip_port()
        self.media_port = free_media_port()
        tag = f"{os.path.splitext(os.path.basename(scenario))[0]}-{self.port}"
        self.log = os.path.join(str(workdir), f"sipp-{tag}.log")
        self.errlog = os.path.join(str(workdir), f"sipp-{tag}.stderr")
        cmd = ["sipp", "-sf", os.path.join(SCENARIOS, scenario),
               "-i", "127.0.0.1", "-p", str(self.port), "-mp", str(self.media_port),
               "-m", "1", "-nostdin", "-trace_msg", "-message_file", self.log,
               "-timeout", f"{timeout_s}s", "-timeout_error",
               "-t", "t1" if transport == "tcp" else "u1"]
        for k, v in (keys or {}).items():
            cmd += ["-key", k, str(v)]
        cmd += list(extra)
        self.cmd = cmd
        self._err = open(self.errlog, "w")
        self.proc = subprocess.Popen(cmd, cwd=str(workdir), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._err)
        kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sipp exited early ({self.proc.returncode}): {self.stderr()}")
            if not _bindable(self.port, kind):
                return
            time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"sipp did not bind {transport} port {self.port}")

    def uri(self, user="service"):
        uri = f"sip:{user}@127.0.0.1:{self.port}"
        return uri + ";transport=tcp" if self.transport == "tcp" else uri

    @property
    def hostport(self):
        return f"127.0.0.1:{self.port}"

    def wait(self, timeout=15):
        """The exit code once sipp ends on its own; None (and sipp killed) if it did not within `timeout`."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self._err.closed:
            self._err.close()

    def text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stderr(self):
        try:
            with open(self.errlog, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def ladder(self):
        return parse_ladder(self.text())

    def arrows(self):
        return [f"{'>' if m.from_dialtone else '<'} {m.kind}" for m in self.ladder()]

    def arrows_dedup(self):
        """arrows() without retransmissions (a message identical to the previous one from the same side)."""
        out, last = [], {True: None, False: None}
        for m in self.ladder():
            if last[m.from_dialtone] == m.text:
                continue
            last[m.from_dialtone] = m.text
            out.append(f"{'>' if m.from_dialtone else '<'} {m.kind}")
        return out

    def received(self, kind):
        """Messages dialtone sent to sipp of this kind ("INVITE", "ACK", "200" ...)."""
        return [m for m in self.ladder() if m.from_dialtone and m.kind == kind]

    def wait_for(self, kind, timeout=10):
        """Poll the trace until dialtone has sent a `kind` message; returns it or None."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.received(kind)
            if got:
                return got[0]
            time.sleep(0.05)
        return None

    def describe(self):
        return f"sipp {self.scenario} rc={self.proc.poll()} cmd={' '.join(self.cmd)}\nstderr:\n{self.stderr()}\nmessages:\n{self.text()}"


def digest_ok(header, method, password):
    """Check an RFC 2617 digest (MD5, qop=auth or none) in an (Proxy-)Authorization header value."""
    if not header or not header.startswith("Digest"):
        return False
    params = {}
    for part in header[len("Digest"):].split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    try:
        user, realm, nonce, uri, response = (params[k] for k in ("username", "realm", "nonce", "uri", "response"))
    except KeyError:
        return False
    h = lambda s: hashlib.md5(s.encode()).hexdigest()
    ha1 = h(f"{user}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    if "qop" in params:
        expected = h(f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:{params['qop']}:{ha2}")
    else:
        expected = h(f"{ha1}:{nonce}:{ha2}")
    return expected == response

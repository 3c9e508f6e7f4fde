#!/usr/bin/env python3
"""Load benchmark: N concurrent outbound calls held answered with RTP flowing both ways.

Starts the release binary and one sipp UAS (built-in `uas` scenario with -rtp_echo, so every call
answers, echoes dialtone's RTP back, and waits for our BYE). Fires `dial` commands at a target
rate, measures API latency, call setup rate (dial accepted -> answered), then samples the server's
CPU and memory with all N calls up, and hangs everything up.

  python3 bench/dial_load.py --calls 100 500 1000 --rate 200
  python3 bench/dial_load.py --calls 500 1000 --play     # each call loops a cached prompt
  python3 bench/dial_load.py --calls 500 1000 --listen   # + recording, DTMF detection, VAD
  python3 bench/dial_load.py --calls 500 --listen --prompt speech   # the prompt is speech (flite)

With --play, every call runs SWML that plays the same WAV prompt (served by this script, so
dialtone fetches it once and plays it from its cache) in a loop. RTP send jitter is read from
the server's own "media tick timing" reports: how late each 2 ms phase of the 20 ms tick (a
tenth of the calls each) started against its absolute schedule (p50/p99 over the hold window),
and how long its work took.

With --listen, once every call is answered the script sends it `calling.record` (stereo WAV,
both directions, initial/end-silence timeouts of 3600 s so the recorder's VAD runs on every
frame but never ends the recording during the hold) and `calling.collect` for digits (timers
not started), which turns on in-band (Goertzel) DTMF detection on every frame of the far end's
audio. --listen implies --play: sipp only echoes what dialtone sends, and with a silent call
every frame the far end "says" would be digital silence, which the DTMF detector skips without
running its filters (zero energy) — the tone keeps the receive path doing its full work. So the
comparison for a --listen run is a --play run; --listen-only record|collect sends just one of
the two commands, to split the cost. It also reports the server's CPU by thread
(recorder thread, media shards, the rest), the recorded audio written per second against real
time (the recorder thread keeping up), and RSS growth over the hold. The recordings are written
into the server's temporary data dir, deleted with it when the run ends.

With --bridge, --calls counts legs: half of them are dialled (to the first sipp) and each runs
`answer, connect` to a second sipp UAS (`-rtp_echo` too), so every bridged pair is two legs with
RTP both ways on each (what the far ends echo crosses the bridge: no leg has a source of its own,
so the audio is the silence dialtone sends, echoed round; G.711 coding costs the same for any
content). With --conference SIZE every dialled call runs `join_conference` of room `bench-<i //
SIZE>` (SIZE participants per conference; the mixer converts and sums every participant every
tick whatever the audio). Compare either with --play at the same leg count, run right after.

Only loopback is used. Results are printed as a Markdown table for docs/benchmarks.md.
"""
import argparse, base64, io, json, math, os, re, shutil, signal, socket, statistics, struct, subprocess, sys, tempfile, threading, time, wave
import http.client, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = "0b0e9d6c-5f5c-4d51-9a4c-6c2f3e1d0a11"
TOKEN = "bench-token"


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, binary, rtp_lo, rtp_hi):
        self.rtp_lo, self.rtp_hi = rtp_lo, rtp_hi
        self.http = free_port()
        self.sip = free_port(socket.SOCK_DGRAM)
        self.dir = tempfile.mkdtemp(prefix="dialtone-bench-")
        env = dict(os.environ,
                   DIALTONE_HTTP_LISTEN=f"127.0.0.1:{self.http}",
                   DIALTONE_SIP_LISTEN=f"127.0.0.1:{self.sip}",
                   DIALTONE_RTP_PORTS=f"{rtp_lo}-{rtp_hi}",
                   DIALTONE_DATA_DIR=self.dir, DIALTONE_PROJECT_ID=PROJECT,
                   DIALTONE_API_TOKEN=TOKEN, DIALTONE_SIGNING_KEY="bench-key",
                   DIALTONE_LOG="warn,node::shard=info", DIALTONE_LOG_FORMAT="json",
                   # No call cap but the RTP range: the benchmark sizes the range for its calls.
                   DIALTONE_MAX_CALLS="0")
        self.local = threading.local()
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=self.log)
        auth = base64.b64encode(f"{PROJECT}:{TOKEN}".encode()).decode()
        self.headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
        for _ in range(200):
            try:
                self.get("/api/calling/calls?limit=1")
                return
            except Exception:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("server did not start")

    def get(self, path):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", headers=self.headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def post(self, body):
        """One command over this thread's kept-alive connection (as the SDK's HTTP session
        would: no TCP handshake per request); a dropped connection is made again once."""
        data = json.dumps(body).encode()
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.http, timeout=30)
                conn.connect()
                # http.client sends the headers and the body in two writes: no Nagle wait between.
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = time.perf_counter()
            try:
                conn.request("POST", "/api/calling/calls", body=data, headers=self.headers)
                r = conn.getresponse()
                raw = r.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
                continue
            dt = time.perf_counter() - t
            if r.status >= 400:
                raise RuntimeError(f"HTTP {r.status}: {raw[:200]!r}")
            return json.loads(raw), dt

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick

    def thread_cpu(self):
        """CPU seconds (user+system) by thread group: the thread name without its number."""
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        base = f"/proc/{self.proc.pid}/task"
        for tid in os.listdir(base):
            try:
                with open(f"{base}/{tid}/stat") as f:
                    stat = f.read()
            except OSError:  # the thread ended meanwhile
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat.rsplit(")", 1)[1].split()
            out[tid] = (re.sub(r"[-_]?\d+$", "", name), (int(fields[11]) + int(fields[12])) / tick)
        return out

    def recorded_bytes(self):
        """Bytes of every recording file in the data dir so far (a writer flushes once per second of audio)."""
        total, files = 0, 0
        for dirpath, _, names in os.walk(os.path.join(self.dir, "recordings")):
            for n in names:
                if n.endswith(".wav"):
                    try:
                        total += os.path.getsize(os.path.join(dirpath, n))
                        files += 1
                    except OSError:
                        pass
        return total, files

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def tick_reports(server):
    """Every "media tick timing" report the server's shards have logged so far."""
    out = []
    with open(server.log_path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            fields = rec.get("fields", {})
            if fields.get("message") != "media tick timing":
                continue
            out.append(fields)
    return out


def speech_wav():
    """A few seconds of real speech from flite (Debian `flite`), as a WAV file's bytes."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "speech.wav")
        subprocess.run(["flite", "-t", "Thank you for calling. Please say or press the number of the "
                        "department you want, or stay on the line and somebody will be with you shortly.",
                        "-o", out], check=True)
        with open(out, "rb") as f:
            return f.read()


def udp_counters():
    """The host's UDP counters (/proc/net/snmp): datagrams in and out, receive-buffer drops."""
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Udp:")]
    c = dict(zip(rows[0][1:], map(int, rows[1][1:])))
    return c["InDatagrams"], c["OutDatagrams"], c["RcvbufErrors"]


def socket_drops():
    """Receive-buffer drops of every open UDP socket on the host by local port (/proc/net/udp's
    last column): tells the far end's overflows from the server's."""
    out = {}
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            cols = line.split()
            port = int(cols[1].rsplit(":", 1)[1], 16)
            out[port] = out.get(port, 0) + int(cols[-1])
    return out


class SyscallCount:
    """Counts the server's system calls over an interval (`perf stat -e raw_syscalls:sys_enter`,
    Debian linux-perf; needs access to tracepoints)."""

    def __init__(self, pid, seconds):
        self.proc = subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", str(pid),
                                      "--", "sleep", str(seconds)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def result(self):
        _, err = self.proc.communicate()
        for line in err.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[2] == "raw_syscalls:sys_enter" and f[0].isdigit():
                return int(f[0])
        return None


class WireCapture:
    """tcpdump on lo of the API's HTTP port and the far end's SIP port, for on-the-wire timing:
    each dial's POST (its first packet), its response, and its INVITE (matched by the dial's
    unique `from` number)."""

    def __init__(self, http_port, sip_port, path):
        self.path = path
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-s", "2000", "-B", "16384", "-U", "-w", path,
                                      f"tcp port {http_port} or udp port {sip_port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.http_port, self.sip_port = http_port, sip_port
        time.sleep(1)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def packets(self):
        """(time, proto, src port, dst port, payload) of every captured IPv4 packet."""
        with open(self.path, "rb") as f:
            data = f.read()
        if len(data) < 24:
            return
        magic, = struct.unpack("<I", data[:4])
        order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
        link = struct.unpack(order + "I", data[20:24])[0]
        off = 24
        while off + 16 <= len(data):
            sec, frac, incl, _ = struct.unpack(order + "IIII", data[off:off + 16])
            pkt = data[off + 16:off + 16 + incl]
            off += 16 + incl
            t = sec + frac / (1e9 if nano else 1e6)
            ip = pkt[14:] if link == 1 else pkt[16:] if link == 113 else pkt[4:] if link == 0 else pkt
            if len(ip) < 20 or ip[0] >> 4 != 4:
                continue
            ihl, proto = (ip[0] & 15) * 4, ip[9]
            l4 = ip[ihl:]
            if proto == 6 and len(l4) >= 20:
                sport, dport = struct.unpack(">HH", l4[:4])
                yield t, "tcp", sport, dport, l4[(l4[12] >> 4) * 4:]
            elif proto == 17 and len(l4) >= 8:
                sport, dport = struct.unpack(">HH", l4[:4])
                yield t, "udp", sport, dport, l4[8:]

    def timings(self):
        """Per dial (seconds): API latency on the wire, POST -> INVITE, POST -> 200 OK; and the
        200 OKs per second while the dials were being sent."""
        post_at, reply_at, invite_at, ok_at, index_of_port, started_at = {}, {}, {}, {}, {}, {}
        for t, proto, sport, dport, payload in self.packets():
            if not payload:
                continue
            if proto == "tcp" and dport == self.http_port:
                # A kept-alive connection carries one dial after another, its headers and body
                # in two packets: a dial starts at its headers; the latest dial on the
                # connection is the one the next response answers.
                if payload.startswith(b"POST "):
                    started_at[sport] = t
                m = re.search(rb'"from": "\+1510(\d{7})"', payload)
                if m:
                    i = int(m.group(1))
                    index_of_port[sport] = i
                    post_at.setdefault(i, started_at.pop(sport, t))
            elif proto == "tcp" and sport == self.http_port and dport in index_of_port:
                reply_at.setdefault(index_of_port.pop(dport), t)
            elif proto == "udp" and dport == self.sip_port and payload.startswith(b"INVITE "):
                m = re.search(rb"From:[^\r\n]*sip:\+1510(\d{7})@", payload)
                if m:
                    invite_at.setdefault(int(m.group(1)), t)
            elif proto == "udp" and sport == self.sip_port and payload.startswith(b"SIP/2.0 200") \
                    and re.search(rb"CSeq: *\d+ INVITE", payload):
                m = re.search(rb"From:[^\r\n]*sip:\+1510(\d{7})@", payload)
                if m:
                    ok_at.setdefault(int(m.group(1)), t)
        api = sorted(reply_at[i] - post_at[i] for i in reply_at if i in post_at)
        invite = sorted(invite_at[i] - post_at[i] for i in invite_at if i in post_at)
        answer = sorted(ok_at[i] - post_at[i] for i in ok_at if i in post_at)
        rate = 0.0
        if post_at:
            first, last = min(post_at.values()), max(post_at.values())
            n = sum(1 for t in ok_at.values() if first <= t <= last)
            rate = n / (last - first) if last > first else 0.0
        return api, invite, answer, rate


class Prompt:
    """Serves one WAV prompt and counts its GETs: a 2 s 440 Hz tone (8 kHz 16-bit), or with
    `speech` a spoken sentence (flite)."""

    def __init__(self, speech=False):
        if speech:
            body = speech_wav()
        else:
            buf = io.BytesIO()
            w = wave.open(buf, "wb")
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
            w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(16000)))
            w.close()
            body = buf.getvalue()
        prompt = self
        self.gets = 0

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                prompt.gets += 1
                if self.headers.get("If-None-Match") == '"prompt-1"':
                    self.send_response(304)
                    self.send_header("ETag", '"prompt-1"')
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"prompt-1"')
                self.send_header("Cache-Control", "max-age=3600")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_port}/prompt.wav"

    def stop(self):
        self.srv.shutdown()


def rtp_counts(server):
    """(legs, legs that sent no packet, legs that received none) over the answered calls."""
    legs = silent_tx = silent_rx = 0
    cursor = None
    while True:
        q = "/api/calling/calls?status=answered&limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = server.get(q)
        for c in page["data"]:
            stats = c.get("media_stats") or c.get("stats") or {}
            legs += 1
            silent_tx += not stats.get("packets_sent")
            silent_rx += not stats.get("packets_received")
        nxt = page["links"]["next"]
        if not nxt:
            return legs, silent_tx, silent_rx
        cursor = nxt.split("cursor=")[-1]


def count_status(server, status):
    n, cursor = 0, None
    while True:
        q = f"/api/calling/calls?status={status}&limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = server.get(q)
        n += len(page["data"])
        nxt = page["links"]["next"]
        if not nxt:
            return n
        cursor = nxt.split("cursor=")[-1]


RECORD = {"control_id": "bench-rec",
          "record": {"audio": {"format": "wav", "stereo": True, "direction": "both",
                               "initial_timeout": 3600, "end_silence_timeout": 3600}}}
COLLECT = {"control_id": "bench-dtmf", "digits": {"max": 20, "digit_timeout": 3600},
           "initial_timeout": 3600, "start_input_timers": False}
# A stereo 16-bit recording of an 8 kHz (PCMU) call.
RECORD_BYTES_PER_S = 8000 * 2 * 2


def command_all(server, ids, command, params):
    """Sends `command` to every call from 32 threads; returns (latencies, errors)."""
    latencies, errors = [], []
    lock = threading.Lock()

    def one(cid):
        try:
            _, dt = server.post({"command": command, "id": cid, "params": params})
        except urllib.error.HTTPError as e:
            with lock:
                errors.append(f"{command}: HTTP {e.code} {e.read()[:200]!r}")
            return
        except Exception as e:
            with lock:
                errors.append(f"{command}: {e!r}")
            return
        with lock:
            latencies.append(dt)

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(one, ids))
    return latencies, errors


def cpu_by_group(before, after, wall):
    """% of one core per thread group between two thread_cpu() samples."""
    out = {}
    for tid, (group, secs) in after.items():
        prev = before.get(tid, (group, 0.0))[1]
        out[group] = out.get(group, 0.0) + 100 * (secs - prev) / wall
    return out


def start_server(binary, rtp_lo, rtp_hi):
    """A free port can be taken before the server binds it (another process's ephemeral
    port): try fresh ports a few times."""
    for attempt in range(3):
        try:
            return Server(binary, rtp_lo, rtp_hi)
        except RuntimeError:
            if attempt == 2:
                raise


class LeanEcho:
    """bench/rtp-echo (recvmmsg/sendmmsg on one socket) as the far end's RTP: sipp answers the
    SIP side with an SDP that names this program's port instead of echoing RTP itself."""

    def __init__(self, directory):
        binary = os.path.join(ROOT, "target/release/rtp-echo")
        if not os.path.exists(binary):
            raise SystemExit("--echo lean needs `cargo build --release -p rtp-echo` first")
        self.log = open(os.path.join(directory, "rtp-echo.log"), "w+")
        # A 4 MiB receive buffer holds what 1,000 calls send while the echo naps (1 ms) or waits for a core.
        self.proc = subprocess.Popen([binary, "--bind", "127.0.0.1:0", "--rcvbuf", str(4 << 20)], stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().split()
        if line[:1] != ["listening"]:
            raise RuntimeError(f"rtp-echo did not start: {line}")
        self.port = int(line[1].rsplit(":", 1)[1])
        with open(os.path.join(ROOT, "bench/sipp/uas_echo_elsewhere.xml")) as f:
            scenario = f.read().replace("@ECHO_PORT@", str(self.port))
        self.scenario = os.path.join(directory, "uas_echo_elsewhere.xml")
        with open(self.scenario, "w") as f:
            f.write(scenario)

    def stop(self):
        """Stops the echo and returns its counters line."""
        self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out = ""
        self.log.close()
        return out.strip()


def process_cpu(pid):
    """CPU seconds (user + system) of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_uas(server, name, hold, echo=None):
    port = free_port(socket.SOCK_DGRAM)
    log = open(os.path.join(server.dir, f"{name}.log"), "w")
    media = ["-sf", echo.scenario] if echo else ["-sn", "uas", "-rtp_echo"]
    proc = subprocess.Popen(["sipp", *media, "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port(socket.SOCK_DGRAM)),
                             "-nostdin", "-max_socket", "4096", "-timeout", str(hold + 120)],
                            stdout=log, stderr=log)
    return port, proc, log


def stop_uas(proc, log):
    """Ends a sipp UAS from start_uas (SIGINT, then kill) and closes its log."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    log.close()


def run(binary, calls, rate, hold, play, listen, bridge=False, conference=None, speech=False, syscalls=False,
        wire=False, lean=False):
    server = start_server(binary, 20000, 20000 + 2 * calls + 200)
    echo = LeanEcho(server.dir) if lean else None
    uases = [start_uas(server, "sipp", hold, echo)]
    if bridge:
        uases.append(start_uas(server, "sipp-b", hold, echo))
    prompt = Prompt(speech) if play or listen else None
    try:
        # The far end's processes (sipp, and the lean echo), whose CPU the run reports.
        peers = [u[1].pid for u in uases] + ([echo.proc.pid] if echo else [])
        return measure(server, prompt, [u[0] for u in uases], calls, rate, hold, listen, bridge, conference, syscalls,
                       wire, "rtp-echo" if echo else "sipp -rtp_echo", peers)
    finally:
        # Whatever happened, no sipp, echo, server or data dir (with its recordings) is left behind.
        for _, sipp, uas_log in uases:
            stop_uas(sipp, uas_log)
        if echo:
            print(f"rtp-echo ({calls} calls): {echo.stop()}", file=sys.stderr)
        server.stop()
        if prompt:
            prompt.stop()


def measure(server, prompt, uas_ports, calls, rate, hold, listen, bridge=False, conference=None, syscalls=False,
            wire=False, echo="sipp -rtp_echo", peers=()):
    time.sleep(0.5)
    uas_port = uas_ports[0]
    steps = [{"answer": {}}, {"sleep": 600000}]
    if prompt:
        steps = [{"answer": {}}, {"label": "again"}, {"play": {"url": prompt.url}}, {"goto": {"label": "again", "max": 100}}]
    legs = calls
    if bridge:
        # Each dialled call is bridged to a second leg: `calls` legs are calls / 2 dials.
        steps = [{"answer": {}}, {"connect": {"to": f"sip:bench-b@127.0.0.1:{uas_ports[1]}", "timeout": 60}}]
        calls = calls // 2
    body = {"command": "dial", "params": {"from": "+15105550100", "to": f"sip:bench@127.0.0.1:{uas_port}",
                                          "swml": {"version": "1.0.0", "sections": {"main": steps}},
                                          "timeout": 60}}

    def body_of(i):
        if wire:
            # A unique caller number per dial: the capture matches its POST to its INVITE.
            return {"command": "dial", "params": dict(body["params"], **{"from": f"+1510{i:07d}"})}
        if not conference:
            return body
        room = [{"join_conference": {"name": f"bench-{i // conference}", "max_participants": max(conference, 2)}}]
        return {"command": "dial", "params": dict(body["params"], swml={"version": "1.0.0", "sections": {"main": room}})}
    latencies, ids = [], []
    lock = threading.Lock()
    capture = WireCapture(server.http, uas_port, os.path.join(server.dir, "wire.pcap")) if wire else None
    cpu0, t0 = server.cpu_seconds(), time.perf_counter()

    errors = []

    def one(i):
        try:
            out, dt = server.post(body_of(i))
        except Exception as e:  # a refused dial is a result, not a crash of the bench
            with lock:
                errors.append(repr(e))
            return
        with lock:
            latencies.append(dt)
            ids.append(out["id"])

    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(calls):
            target = t0 + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
    fired = time.perf_counter() - t0
    deadline = time.time() + 120
    answered = 0
    while time.time() < deadline:
        answered = count_status(server, "answered")
        if answered >= legs:
            break
        time.sleep(0.2)
    setup_time = time.perf_counter() - t0
    wire_api, wire_invite, wire_answer, wire_rate = [], [], [], 0.0
    if capture:
        time.sleep(0.5)
        capture.stop()
        wire_api, wire_invite, wire_answer, wire_rate = capture.timings()
    # With --listen: every call (all answered now) is recorded and collects digits.
    rec_lat, col_lat, cmd_errors = [], [], []
    if listen:
        e1 = e2 = []
        if listen in ("both", "record"):
            rec_lat, e1 = command_all(server, ids, "calling.record", RECORD)
        if listen in ("both", "collect"):
            col_lat, e2 = command_all(server, ids, "calling.collect", COLLECT)
        cmd_errors = e1 + e2
    # Steady state: all calls up, RTP flowing both ways (and, with --listen, recorded).
    time.sleep(1)
    c1, w1, th1 = server.cpu_seconds(), time.perf_counter(), server.thread_cpu()
    peer1 = sum(process_cpu(p) for p in peers)
    rss1 = server.rss_mib()
    bytes1, _ = server.recorded_bytes()
    n_reports = len(tick_reports(server))
    udp1, sock1 = udp_counters(), socket_drops()
    counting = SyscallCount(server.proc.pid, hold) if syscalls else None
    time.sleep(hold)
    c2, w2, th2 = server.cpu_seconds(), time.perf_counter(), server.thread_cpu()
    peer2 = sum(process_cpu(p) for p in peers)
    udp2, sock2 = udp_counters(), socket_drops()
    sock_drops = {p: d - sock1.get(p, 0) for p, d in sock2.items() if d > sock1.get(p, 0)}
    server_drops = sum(d for p, d in sock_drops.items() if server.rtp_lo <= p <= server.rtp_hi)
    n_syscalls = counting.result() if counting else None
    bytes2, rec_files = server.recorded_bytes()
    reports = tick_reports(server)[n_reports:]
    rss = server.rss_mib()
    # RTP both ways on every leg: each answered call's live packet counters (the API's media
    # stats), summed over the hold; a leg that sent or received nothing is counted.
    rtp = rtp_counts(server)
    cpu_pct = 100 * (c2 - c1) / (w2 - w1)
    groups = cpu_by_group(th1, th2, w2 - w1)
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda cid: server.post({"command": "calling.end", "id": cid, "params": {"reason": "hangup"}}), ids))
    prompt_gets = prompt.gets if prompt else 0
    if errors:
        print(f"{len(errors)} dials failed, e.g. {errors[0]}", file=sys.stderr)
    if cmd_errors:
        print(f"{len(cmd_errors)} record/collect commands failed, e.g. {cmd_errors[0]}", file=sys.stderr)
    lat = sorted(latencies) or [float("nan")]
    p = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]
    calls = legs
    return {
        "calls": calls, "answered": answered, "fire_s": fired, "setup_rate": answered / setup_time if setup_time else 0,
        "p50_ms": p(0.50), "p99_ms": p(0.99), "cpu_pct": cpu_pct, "cpu_pct_per_call": cpu_pct / max(answered, 1),
        "rss_mib": rss, "rss_kib_per_call": 1024 * rss / max(answered, 1), "rss_growth_mib": rss - rss1,
        "tick_late_p50_us": max((r["tick_late_p50_us"] for r in reports), default=None),
        "tick_late_p99_us": max((r["tick_late_p99_us"] for r in reports), default=None),
        "tick_late_max_us": max((r["tick_late_max_us"] for r in reports), default=None),
        "tick_work_p99_us": max((r["tick_work_p99_us"] for r in reports), default=None),
        "tick_work_p50_us": max((r.get("tick_work_p50_us", 0) for r in reports), default=None),
        "tick_reports": len(reports), "rtp_legs": rtp[0], "rtp_no_tx": rtp[1], "rtp_no_rx": rtp[2], "prompt_gets": prompt_gets,
        "playing": prompt is not None, "listen": listen,
        "cmd_ok": len(rec_lat) + len(col_lat), "cmd_sent": {"both": 2, "record": 1, "collect": 1}.get(listen, 0) * len(ids),
        "rec_p50_ms": pct(rec_lat, 0.50), "rec_p99_ms": pct(rec_lat, 0.99),
        "col_p50_ms": pct(col_lat, 0.50), "col_p99_ms": pct(col_lat, 0.99),
        "cpu_recorder": groups.get("recorder", 0.0),
        "cpu_shards": groups.get("media-shard", 0.0),
        "cpu_other": cpu_pct - groups.get("recorder", 0.0) - groups.get("media-shard", 0.0),
        "rec_files": rec_files,
        # Host-wide over the hold: every datagram of the run crosses loopback once out and once
        # in, so the server's packets (in + out) are about (in + out) / 2 of the host's.
        "udp_datagrams": (udp2[0] - udp1[0] + udp2[1] - udp1[1]) / 2,
        "udp_rcvbuf_drops": udp2[2] - udp1[2],
        # Of those, the ones at the server's RTP sockets; the rest were the far end's.
        "server_socket_drops": server_drops,
        "far_end_drops": sum(sock_drops.values()) - server_drops,
        "syscalls": n_syscalls,
        "wire_n": len(wire_api), "wire_invites": len(wire_invite), "wire_answers": len(wire_answer),
        "wire_answer_rate": wire_rate, "wire_answer_p50_ms": pct(wire_answer, 0.50),
        "wire_answer_p99_ms": pct(wire_answer, 0.99),
        "wire_api_p50_ms": pct(wire_api, 0.50), "wire_api_p99_ms": pct(wire_api, 0.99),
        "wire_invite_p50_ms": pct(wire_invite, 0.50), "wire_invite_p99_ms": pct(wire_invite, 0.99),
        "echo": echo, "peer_cpu_pct": 100 * (peer2 - peer1) / (w2 - w1),
        "rec_realtime_pct": 100 * (bytes2 - bytes1) / ((w2 - w1) * RECORD_BYTES_PER_S * max(answered, 1)),
    }


def pct(values, q):
    v = sorted(values)
    return 1000 * v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def raise_fd_limit():
    """1000 calls need over 1000 sockets in dialtone and in sipp (children inherit this)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def main():
    raise_fd_limit()
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, nargs="+", default=[100, 500, 1000])
    ap.add_argument("--rate", type=float, default=200.0, help="dials per second")
    ap.add_argument("--hold", type=float, default=12.0, help="seconds to measure with all calls up (>= 10 to get tick reports)")
    ap.add_argument("--play", action="store_true", help="every call loops a cached WAV prompt")
    ap.add_argument("--listen", action="store_true",
                    help="every call is also recorded (stereo WAV, VAD on) and collects digits (in-band DTMF detection); implies --play")
    ap.add_argument("--listen-only", choices=["record", "collect"],
                    help="with --listen: send only calling.record or only calling.collect (to split the cost)")
    ap.add_argument("--bridge", action="store_true",
                    help="--calls counts legs: half are dialled and each `connect`s to a second sipp (bridged pairs)")
    ap.add_argument("--conference", type=int, metavar="SIZE",
                    help="every call joins a conference of SIZE participants (--calls / SIZE conferences)")
    ap.add_argument("--prompt", choices=["tone", "speech"], default="tone",
                    help="what --play/--listen calls play (and sipp echoes back): a 440 Hz tone, or a spoken sentence (flite)")
    ap.add_argument("--syscalls", action="store_true",
                    help="count the server's system calls over the hold (perf stat) and report them per packet")
    ap.add_argument("--wire", action="store_true",
                    help="capture the API and SIP on lo (tcpdump) and report each dial's API latency and POST -> INVITE on the wire")
    ap.add_argument("--echo", choices=["sipp", "lean"], default="sipp",
                    help="the far end's RTP echo: sipp's own (-rtp_echo) or bench/rtp-echo (batched, one thread; sipp only answers)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/dialtone"))
    a = ap.parse_args()
    listen = (a.listen_only or "both") if a.listen else None
    rows = [run(a.binary, n, a.rate, a.hold, a.play, listen, a.bridge, a.conference, a.prompt == "speech", a.syscalls,
                a.wire, a.echo == "lean")
            for n in a.calls]
    mode = {"both": "play + record + collect", "record": "play + record", "collect": "play + collect"}.get(
        listen, "play" if a.play else "silent")
    if a.bridge:
        mode = "bridged pairs (--calls = legs)"
    if a.conference:
        mode = f"conferences of {a.conference}"
    print(f"mode: {mode}, prompt: {a.prompt}, far end's RTP: {rows[0]['echo'] if rows else a.echo}")
    print()
    print("| concurrent calls | answered | setup rate (calls/s) | API p50 (ms) | API p99 (ms) | CPU (% of one core) | CPU per call (%) | RSS (MiB) | RSS per call (KiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['calls']} | {r['answered']} | {r['setup_rate']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['cpu_pct']:.0f} | {r['cpu_pct_per_call']:.3f} | {r['rss_mib']:.0f} | {r['rss_kib_per_call']:.0f} |")
    print()
    print("| concurrent calls | playing | tick lateness p50 (µs) | p99 (µs) | max (µs) | tick work p50 (µs) | tick work p99 (µs) | shard reports | prompt GETs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['calls']} | {'yes' if r['playing'] else 'no'} | {r['tick_late_p50_us']} | {r['tick_late_p99_us']} | {r['tick_late_max_us']} | {r['tick_work_p50_us']} | {r['tick_work_p99_us']} | {r['tick_reports']} | {r['prompt_gets']} |")
    print()
    for r in rows:
        print(f"RTP at the end of the hold ({r['calls']}): {r['rtp_legs']} answered legs, {r['rtp_no_tx']} sent no packet, "
              f"{r['rtp_no_rx']} received none")
    print()
    print("JSON:", json.dumps(rows))
    print()
    print("Server CPU by thread over the hold (% of one core):")
    print()
    print("| concurrent calls | recorder thread | media shards | other threads | RSS growth over hold (MiB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['calls']} | {r['cpu_recorder']:.1f} | {r['cpu_shards']:.1f} | {r['cpu_other']:.1f} | {r['rss_growth_mib']:+.1f} |")
    print()
    print("| concurrent calls | server packets over hold (in + out) | UDP receive-buffer drops on the host (either end) | drops (% of packets) | system calls | system calls per packet | far end's CPU: sipp (+ rtp-echo) (% of one core) | drops at the server's / the far end's sockets |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        pk = max(r["udp_datagrams"], 1)
        sc = r["syscalls"]
        print(f"| {r['calls']} | {r['udp_datagrams']:.0f} | {r['udp_rcvbuf_drops']} | {100 * r['udp_rcvbuf_drops'] / pk:.2f} | "
              f"{sc if sc is not None else '–'} | {f'{sc / pk:.2f}' if sc is not None else '–'} | {r['peer_cpu_pct']:.1f} | "
              f"{r['server_socket_drops']} / {r['far_end_drops']} |")
    if a.wire:
        print()
        print("| concurrent calls | dials timed on the wire | INVITEs matched | API p50 / p99 on the wire (ms) | POST -> INVITE p50 / p99 (ms) | 200 OKs matched | POST -> 200 OK p50 / p99 (ms) | 200 OKs per second while dialling |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['calls']} | {r['wire_n']} | {r['wire_invites']} | {r['wire_api_p50_ms']:.2f} / {r['wire_api_p99_ms']:.2f} | "
                  f"{r['wire_invite_p50_ms']:.2f} / {r['wire_invite_p99_ms']:.2f} | {r['wire_answers']} | "
                  f"{r['wire_answer_p50_ms']:.1f} / {r['wire_answer_p99_ms']:.1f} | {r['wire_answer_rate']:.0f} |")
    if a.listen:
        print()
        print("| concurrent calls | record + collect OK | record p50 / p99 (ms) | collect p50 / p99 (ms) | WAV files | audio written (% of real time) |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['calls']} | {r['cmd_ok']} / {r['cmd_sent']} | {r['rec_p50_ms']:.1f} / {r['rec_p99_ms']:.1f} | {r['col_p50_ms']:.1f} / {r['col_p99_ms']:.1f} | {r['rec_files']} | {r['rec_realtime_pct']:.0f} |")

if __name__ == "__main__":
    sys.exit(main())

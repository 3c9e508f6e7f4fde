#!/usr/bin/env python3
"""rustpbx side of the dialtone load comparison (bench/dial_load.py shape).

Copied from the workplace's verified toolkit (shared/bench-anchors/rustpbx, written for this
comparison; not rustpbx code), with `listen` added: on answer, besides the looped prompt, each call
is recorded (`record.start`, `separate_legs`: a stereo WAV, like dialtone's) and collects digits
(`dtmf.collect`). rustpbx has no in-band DTMF detector (its collect taps RFC 2833 events only),
so its listening call does less work than dialtone's, which runs Goertzel detection on every frame.

Per call count N: starts rustpbx (release binary, temp config/data dir, loopback only), one sipp
UAS (`sipp -sn uas -rtp_echo`, the same flags dial_load.py uses), opens one RWI WebSocket
(/rwi/v1), and sends `call.originate` to sip:bench@127.0.0.1:<uas port> at --rate per second.
rustpbx places each call itself (UAC, it owns the RTP endpoint: its MediaBridge A leg); sipp
answers and echoes every RTP packet back. With --play, on each `call_answered` event the driver
sends `media.play` {file: a 2 s 440 Hz 8 kHz WAV, looped: true}: rustpbx reads the WAV and sends
it as 20 ms PCMU frames for the whole hold (dialtone's `--play`). Without --play the call is held
answered with nothing played: rustpbx then sends no RTP, only RTCP (~2 packets/s per call; its
comfort-noise default produced no packets on these originated legs), whereas dialtone's silent mode
sends 50 silence frames/s per call — so only --play is a like-for-like comparison.

Once every call is answered: 1 s settle, then rustpbx's utime+stime from /proc/<pid>/stat over
a --hold s window (% of one core), RSS (VmRSS) after the window, CPU by thread name. Then (calls
still up, CPU window closed) RTP is sampled for 2 s with tcpdump on lo: packets from rustpbx's RTP
port range to sipp (sent) and back (echo received), as packets/s. Then every call is hung up
(`call.hangup`), sipp and rustpbx are stopped (by pid), the temp dir is removed.

Only 127.0.0.1 is used. Prints a Markdown table.
"""
import argparse, json, math, os, re, resource, shutil, signal, socket, struct, subprocess, sys, tempfile, threading, time, wave, base64
import urllib.request

TOKEN = "bench-rwi-token"


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class WS:
    """Minimal RFC 6455 text client (stdlib only): masked sends, unmasked receives."""

    def __init__(self, port, path, token):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: rwi-v1\r\n"
               f"Authorization: Bearer {token}\r\n\r\n")
        self.s.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise RuntimeError("websocket closed during handshake")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        if b" 101" not in head.split(b"\r\n")[0]:
            raise RuntimeError("websocket upgrade refused: " + head.decode(errors="replace"))
        self.s.settimeout(None)
        self.buf = bytearray(rest)
        self.pos = 0
        self.lock = threading.Lock()

    def _frame(self, op, data):
        hdr = bytearray([0x80 | op])
        n = len(data)
        if n < 126:
            hdr.append(0x80 | n)
        elif n < 65536:
            hdr.append(0x80 | 126)
            hdr += struct.pack(">H", n)
        else:
            hdr.append(0x80 | 127)
            hdr += struct.pack(">Q", n)
        mask = os.urandom(4)
        hdr += mask
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
        with self.lock:
            self.s.sendall(bytes(hdr) + body)

    def send(self, obj):
        self._frame(0x1, json.dumps(obj).encode())

    def _read(self, n):
        while len(self.buf) - self.pos < n:
            chunk = self.s.recv(262144)
            if not chunk:
                raise EOFError
            if self.pos:
                del self.buf[:self.pos]
                self.pos = 0
            self.buf += chunk
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
            if op == 0x9:
                self._frame(0xA, payload)
                continue
            if op == 0x8:
                raise EOFError
            if op == 0xA:
                continue
            msg += payload
            if b0 & 0x80:
                return msg.decode()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def write_prompt(path):
    """The same prompt as dial_load.py: 2 s of 440 Hz, amplitude 8000, 8 kHz 16-bit mono."""
    w = wave.open(path, "wb")
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(16000)))
    w.close()


class Rustpbx:
    def __init__(self, binary, rtp_lo, rtp_hi, log_level, sip_workers=None):
        self.http = free_port()
        self.sip = free_port(socket.SOCK_DGRAM)
        self.rtp = (rtp_lo, rtp_hi)
        self.dir = tempfile.mkdtemp(prefix="rustpbx-bench-")
        cfg = f"""
http_addr = "127.0.0.1:{self.http}"
log_level = "{log_level}"
database_url = "sqlite://{self.dir}/rustpbx.sqlite3"
rtp_start_port = {rtp_lo}
rtp_end_port = {rtp_hi}
external_ip = "127.0.0.1"

[ami]
allows = ["127.0.0.1"]

[proxy]
modules = ["call"]
addr = "127.0.0.1"
udp_port = {self.sip}
media_proxy = "all"
{f"sip_worker_threads = {sip_workers}" if sip_workers else ""}
generated_dir = "{self.dir}/config"

[callrecord]
type = "local"
root = "{self.dir}/cdr"

[rwi]
max_connections = 100
max_calls_per_connection = 100000
originate_rate_limit = 100000

[[rwi.tokens]]
token = "{TOKEN}"
scopes = ["call.control", "media.stream", "record.control"]
"""
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write(cfg)
        self.log_path = os.path.join(self.dir, "rustpbx.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "--conf", os.path.join(self.dir, "config.toml")], cwd=self.dir,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rustpbx exited rc={self.proc.returncode}; log: {self.tail()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.http}/ami/v1/health", timeout=2).read()
                return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("rustpbx did not start; log: " + self.tail())

    def tail(self, n=2000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def thread_cpu(self):
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        base = f"/proc/{self.proc.pid}/task"
        for tid in os.listdir(base):
            try:
                with open(f"{base}/{tid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat.rsplit(")", 1)[1].split()
            out[tid] = (re.sub(r"[-_]?\d+$", "", name), (int(fields[11]) + int(fields[12])) / tick)
        return out

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self, keep_log_to=None):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if keep_log_to:
            shutil.copy(self.log_path, keep_log_to)
        shutil.rmtree(self.dir, ignore_errors=True)


def udp_rcvbuf_errors():
    """System-wide UDP RcvbufErrors (datagrams dropped because a socket's receive buffer was full)."""
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def rtp_sample(port_lo, port_hi, secs=2.0):
    """RTP packets/s on lo over ~secs: from the server's RTP ports (sent) and to them (echoed back).

    One tcpdump writes the headers to a pcap; rates are counted between the first and last
    packet's timestamps, so tcpdump's start-up and stop time do not matter."""
    if not shutil.which("tcpdump"):
        return None
    fd, path = tempfile.mkstemp(suffix=".pcap")
    os.close(fd)
    p = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-p", "-s", "64", "-B", "65536", "-w", path,
                          f"udp and (src portrange {port_lo}-{port_hi} or dst portrange {port_lo}-{port_hi})"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    e0, t0 = udp_rcvbuf_errors(), time.perf_counter()
    time.sleep(secs + 0.5)
    rcvbuf_errs = (udp_rcvbuf_errors() - e0) / (time.perf_counter() - t0)
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    drop = re.search(r"(\d+) packets? dropped by kernel", err)
    sent = echoed = 0
    t_first = t_last = None
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    if len(data) < 24:
        return {"sent": float("nan"), "echoed": float("nan"), "dropped": -1, "window_s": 0}
    magic = struct.unpack("<I", data[:4])[0]
    nano = magic == 0xA1B23C4D
    link = struct.unpack("<I", data[20:24])[0]
    l2 = {1: 14, 113: 16, 276: 20, 0: 4, 12: 0, 101: 0}.get(link, 14)
    off = 24
    while off + 16 <= len(data):
        ts, frac, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        t = ts + frac / (1e9 if nano else 1e6)
        ip = pkt[l2:]
        if len(ip) < 28 or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 0x0F) * 4
        sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
        t_first = t if t_first is None else t_first
        t_last = t
        if port_lo <= sport <= port_hi:
            sent += 1
        elif port_lo <= dport <= port_hi:
            echoed += 1
    span = (t_last - t_first) if t_first is not None else 0
    if span <= 0:
        return {"sent": 0.0, "echoed": 0.0, "dropped": int(drop.group(1)) if drop else -1, "window_s": 0}
    return {"sent": sent / span, "echoed": echoed / span, "dropped": int(drop.group(1)) if drop else -1, "window_s": span,
            "udp_rcvbuf_errors_per_s": rcvbuf_errs}


def run(binary, calls, rate, hold, play, log_level, keep_logs, sip_workers=None, listen=False):
    rtp_lo = 20000
    rtp_hi = rtp_lo + 4 * calls + 400
    server = Rustpbx(binary, rtp_lo, rtp_hi, log_level, sip_workers)
    uas_port = free_port(socket.SOCK_DGRAM)
    media_port = free_port(socket.SOCK_DGRAM)
    uas_log = open(os.path.join(server.dir, "sipp.log"), "w")
    sipp = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-mp", str(media_port),
                             "-rtp_echo", "-nostdin", "-max_socket", "4096", "-timeout", str(int(hold + 120))],
                            stdout=uas_log, stderr=uas_log)
    prompt = os.path.join(server.dir, "prompt.wav")
    write_prompt(prompt)
    ws = None
    try:
        time.sleep(0.5)
        ws = WS(server.http, "/rwi/v1", TOKEN)
        return measure(server, ws, uas_port, calls, rate, hold, play, prompt, listen)
    finally:
        if ws:
            ws.close()
        if sipp.poll() is None:
            sipp.send_signal(signal.SIGINT)
            try:
                sipp.wait(10)
            except subprocess.TimeoutExpired:
                sipp.kill()
                sipp.wait()
        uas_log.close()
        server.stop(keep_log_to=os.path.join(keep_logs, f"rustpbx-{calls}{'-play' if play else ''}.log") if keep_logs else None)


def measure(server, ws, uas_port, calls, rate, hold, play, prompt, listen=False):
    lock = threading.Lock()
    state = {"answered": set(), "hangup": set(), "orig_fail": [], "play_ok": 0, "play_fail": [], "hangup_ok": 0,
             "other_fail": [], "t_answer": {}, "events": {}}
    done = threading.Event()
    all_answered = threading.Event()
    plays_done = threading.Event()
    sent_at = {}

    def reader():
        while True:
            try:
                msg = json.loads(ws.recv())
            except (EOFError, OSError):
                return
            except ValueError:
                continue
            et = msg.get("event_type") or msg.get("type")
            cid = msg.get("call_id")
            with lock:
                state["events"][et] = state["events"].get(et, 0) + 1
                if et == "call_answered" and cid and cid not in state["answered"]:
                    state["answered"].add(cid)
                    state["t_answer"][cid] = time.perf_counter()
                    if play:
                        ws.send({"action": "media.play", "action_id": f"play-{cid}",
                                 "params": {"call_id": cid, "source": {"type": "file", "uri": prompt, "looped": True}}})
                    if listen:
                        rec = os.path.join(server.dir, f"rec-{cid}.wav")
                        ws.send({"action": "record.start", "action_id": f"rec-{cid}",
                                 "params": {"call_id": cid, "mode": "separate_legs", "storage": {"path": rec}}})
                        ws.send({"action": "dtmf.collect", "action_id": f"dtmf-{cid}",
                                 "params": {"call_id": cid, "max_digits": 20, "timeout_ms": 3_600_000}})
                    if len(state["answered"]) >= calls:
                        all_answered.set()
                elif et == "call_hangup" and cid:
                    state["hangup"].add(cid)
                elif et == "command_completed" and msg.get("action") == "media.play":
                    state["play_ok"] += 1
                    if state["play_ok"] >= calls:
                        plays_done.set()
                elif et == "command_completed" and msg.get("action") == "call.hangup":
                    state["hangup_ok"] += 1
                elif et == "command_failed":
                    key = {"call.originate": "orig_fail", "media.play": "play_fail",
                           "record.start": "rec_fail", "dtmf.collect": "dtmf_fail"}.get(msg.get("action"), "other_fail")
                    state.setdefault(key, [])
                    state[key].append(msg.get("error"))

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    ids = [f"bench-{calls}-{i}" for i in range(calls)]
    t0 = time.perf_counter()
    for i, cid in enumerate(ids):
        target = t0 + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent_at[cid] = time.perf_counter()
        ws.send({"action": "call.originate", "action_id": f"orig-{cid}",
                 "params": {"call_id": cid, "destination": f"sip:bench@127.0.0.1:{uas_port}",
                            "caller_id": "sip:+15105550100@127.0.0.1", "timeout_secs": 60}})
    fired = time.perf_counter() - t0
    all_answered.wait(120)
    setup_time = time.perf_counter() - t0
    if play:
        plays_done.wait(30)
    with lock:
        answered = len(state["answered"])
        setup = sorted(state["t_answer"][c] - sent_at[c] for c in state["t_answer"] if c in sent_at)
    # Steady state: all calls up, RTP flowing both ways.
    time.sleep(1)
    c1, w1, th1 = server.cpu_seconds(), time.perf_counter(), server.thread_cpu()
    rss1 = server.rss_mib()
    time.sleep(hold)
    c2, w2, th2 = server.cpu_seconds(), time.perf_counter(), server.thread_cpu()
    rss = server.rss_mib()
    with lock:
        up_at_end = answered - len(state["hangup"] & state["answered"])
    cpu_pct = 100 * (c2 - c1) / (w2 - w1)
    groups = {}
    for tid, (g, secs) in th2.items():
        groups[g] = groups.get(g, 0.0) + 100 * (secs - th1.get(tid, (g, 0.0))[1]) / (w2 - w1)
    rtp = rtp_sample(*server.rtp)
    for cid in ids:
        ws.send({"action": "call.hangup", "action_id": f"bye-{cid}", "params": {"call_id": cid}})
    deadline = time.time() + 20
    while time.time() < deadline:
        with lock:
            if state["hangup_ok"] + len(state["other_fail"]) >= calls:
                break
        time.sleep(0.2)
    time.sleep(1)
    with lock:
        st = {k: (len(v) if isinstance(v, (set, list)) else v) for k, v in state.items() if k not in ("t_answer", "events")}
        fails = (state["orig_fail"][:1] + state["play_fail"][:1] + state["other_fail"][:1]
                 + state.get("rec_fail", [])[:1] + state.get("dtmf_fail", [])[:1])
        events = dict(state["events"])
    # What the recordings hold once the calls ended (their own files, or the recorder's folder).
    rec_bytes = 0
    for root, _, files in os.walk(server.dir):
        rec_bytes += sum(os.path.getsize(os.path.join(root, f)) for f in files if f.endswith(".wav") and f != "prompt.wav")
    p = lambda q: 1000 * setup[min(len(setup) - 1, int(q * len(setup)))] if setup else float("nan")
    return {"calls": calls, "answered": answered, "up_at_end": up_at_end, "fire_s": fired,
            "setup_rate": answered / setup_time if setup_time else 0.0,
            "setup_p50_ms": p(0.5), "setup_p99_ms": p(0.99),
            "cpu_pct": cpu_pct, "cpu_per_call": cpu_pct / max(answered, 1), "rss_mib": rss,
            "rss_kib_per_call": 1024 * rss / max(answered, 1), "rss_growth": rss - rss1,
            "threads": groups, "rtp": rtp, "state": st, "fails": fails, "events": events, "play": play,
            "listen": listen, "rec_bytes": rec_bytes}


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, nargs="+", default=[200, 500])
    ap.add_argument("--rate", type=float, default=200.0, help="originates per second")
    ap.add_argument("--hold", type=float, default=15.0, help="CPU measurement window, seconds")
    ap.add_argument("--play", action="store_true", help="every call loops a 2 s WAV prompt (media.play looped)")
    ap.add_argument("--listen", action="store_true", help="with --play: also record.start (stereo) and dtmf.collect on every call")
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "rustpbx/target/release/rustpbx"))
    ap.add_argument("--log-level", default="warn")
    ap.add_argument("--sip-workers", type=int, default=None,
                    help="[proxy] sip_worker_threads (rustpbx default on this 2-vCPU box: 1; originated calls' media runs there)")
    ap.add_argument("--keep-logs", default=None, help="copy rustpbx's log of each run into this dir")
    ap.add_argument("--json", default=None, help="append one JSON line per run to this file")
    a = ap.parse_args()
    if a.keep_logs:
        os.makedirs(a.keep_logs, exist_ok=True)
    rows = []
    for n in a.calls:
        r = run(a.binary, n, a.rate, a.hold, a.play or a.listen, a.log_level, a.keep_logs, a.sip_workers, a.listen)
        r["sip_workers"] = a.sip_workers
        rows.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(dict(r, system="rustpbx", ts=time.time())) + "\n")
        time.sleep(2)
    print(f"system: rustpbx ({a.binary}), mode: {'play (looped 2 s WAV)' if a.play else 'silent (nothing played: RTCP only)'}, hold {a.hold:.0f} s, rate {a.rate:.0f}/s, sip_worker_threads {a.sip_workers or 'default'}")
    print()
    print("| concurrent calls | answered | up at end | setup rate (calls/s) | setup p50/p99 (ms) | CPU (% of one core) | CPU per call (%) | RSS (MiB) | RSS per call (KiB) | RTP sent (pkt/s) | RTP echoed back (pkt/s) | UDP rcvbuf drops (/s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rtp = r["rtp"] or {}
        print(f"| {r['calls']} | {r['answered']} | {r['up_at_end']} | {r['setup_rate']:.0f} | {r['setup_p50_ms']:.0f} / {r['setup_p99_ms']:.0f} | {r['cpu_pct']:.0f} | {r['cpu_per_call']:.3f} | {r['rss_mib']:.0f} | {r['rss_kib_per_call']:.0f} | {rtp.get('sent', float('nan')):.0f} | {rtp.get('echoed', float('nan')):.0f} | {rtp.get('udp_rcvbuf_errors_per_s', float('nan')):.0f} |")
    print()
    print("CPU by thread name over the hold (% of one core):")
    for r in rows:
        top = sorted(r["threads"].items(), key=lambda kv: -kv[1])[:6]
        print(f"- {r['calls']}: " + ", ".join(f"{k} {v:.1f}" for k, v in top))
    for r in rows:
        if r["fails"]:
            print(f"- {r['calls']}: failures e.g. {r['fails']}; counts {r['state']}")


if __name__ == "__main__":
    sys.exit(main())

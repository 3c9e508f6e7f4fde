#!/usr/bin/env python3
"""Load benchmark: N concurrent outbound calls held answered with RTP flowing both ways.

Starts the release binary and one sipp UAS (built-in `uas` scenario with -rtp_echo, so every call
answers, echoes dialtone's RTP back, and waits for our BYE). Fires `dial` commands at a target
rate, measures API latency, call setup rate (dial accepted -> answered), then samples the server's
CPU and memory with all N calls up, and hangs everything up.

  python3 bench/dial_load.py --calls 100 500 1000 --rate 200

Only loopback is used. Results are printed as a Markdown table for docs/benchmarks.md.
"""
import argparse, base64, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.request
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
        self.http = free_port()
        self.sip = free_port(socket.SOCK_DGRAM)
        self.dir = tempfile.mkdtemp(prefix="dialtone-bench-")
        env = dict(os.environ,
                   DIALTONE_HTTP_LISTEN=f"127.0.0.1:{self.http}",
                   DIALTONE_SIP_LISTEN=f"127.0.0.1:{self.sip}",
                   DIALTONE_RTP_PORTS=f"{rtp_lo}-{rtp_hi}",
                   DIALTONE_DATA_DIR=self.dir, DIALTONE_PROJECT_ID=PROJECT,
                   DIALTONE_API_TOKEN=TOKEN, DIALTONE_SIGNING_KEY="bench-key",
                   DIALTONE_LOG="warn")
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=self.log)
        auth = base64.b64encode(f"{PROJECT}:{TOKEN}".encode()).decode()
        self.headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
        for _ in range(200):
            try:
                self.get("/api/calling/calls?limit=1")
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def get(self, path):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", headers=self.headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def post(self, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}/api/calling/calls",
                                     data=json.dumps(body).encode(), headers=self.headers, method="POST")
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as r:
            out = json.loads(r.read())
        return out, time.perf_counter() - t

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick

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


def run(binary, calls, rate, hold):
    server = Server(binary, 20000, 20000 + 2 * calls + 200)
    uas_port = free_port(socket.SOCK_DGRAM)
    uas_log = open(os.path.join(server.dir, "sipp.log"), "w")
    sipp = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-mp", str(free_port(socket.SOCK_DGRAM)),
                             "-rtp_echo", "-nostdin", "-max_socket", "4096", "-timeout", str(hold + 120)],
                            stdout=uas_log, stderr=uas_log)
    time.sleep(0.5)
    body = {"command": "dial", "params": {"from": "+15105550100", "to": f"sip:bench@127.0.0.1:{uas_port}",
                                          "swml": {"version": "1.0.0", "sections": {"main": [{"answer": {}}, {"sleep": 600000}]}},
                                          "timeout": 60}}
    latencies, ids = [], []
    lock = threading.Lock()
    cpu0, t0 = server.cpu_seconds(), time.perf_counter()

    def one(_):
        out, dt = server.post(body)
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
        if answered >= calls:
            break
        time.sleep(0.2)
    setup_time = time.perf_counter() - t0
    # Steady state: all calls up, RTP flowing both ways.
    time.sleep(1)
    c1, w1 = server.cpu_seconds(), time.perf_counter()
    time.sleep(hold)
    c2, w2 = server.cpu_seconds(), time.perf_counter()
    rss = server.rss_mib()
    cpu_pct = 100 * (c2 - c1) / (w2 - w1)
    ended = 0
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda cid: server.post({"command": "calling.end", "id": cid, "params": {"reason": "hangup"}}), ids))
    sipp.send_signal(signal.SIGINT)
    try:
        sipp.wait(10)
    except subprocess.TimeoutExpired:
        sipp.kill()
    server.stop()
    lat = sorted(latencies)
    p = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]
    return {
        "calls": calls, "answered": answered, "fire_s": fired, "setup_rate": answered / setup_time if setup_time else 0,
        "p50_ms": p(0.50), "p99_ms": p(0.99), "cpu_pct": cpu_pct, "cpu_pct_per_call": cpu_pct / max(answered, 1),
        "rss_mib": rss, "rss_kib_per_call": 1024 * rss / max(answered, 1),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, nargs="+", default=[100, 500, 1000])
    ap.add_argument("--rate", type=float, default=200.0, help="dials per second")
    ap.add_argument("--hold", type=float, default=5.0, help="seconds to measure with all calls up")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/dialtone"))
    a = ap.parse_args()
    rows = [run(a.binary, n, a.rate, a.hold) for n in a.calls]
    print("| concurrent calls | answered | setup rate (calls/s) | API p50 (ms) | API p99 (ms) | CPU (% of one core) | CPU per call (%) | RSS (MiB) | RSS per call (KiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['calls']} | {r['answered']} | {r['setup_rate']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['cpu_pct']:.0f} | {r['cpu_pct_per_call']:.3f} | {r['rss_mib']:.0f} | {r['rss_kib_per_call']:.0f} |")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Stream benchmark: N concurrent calls, each streaming both tracks to a local `wss://` media server
that echoes the call's audio back into it (bidirectional), against N plain calls in the same run
conditions.

The far end is one sipp UAS with -rtp_echo (as in dial_load.py); the media server is the Rust example
`ws_echo` (crates/node/examples/ws_echo.rs; TLS with a certificate this script makes with openssl,
trusted through DIALTONE_WS_CA_FILE). For every inbound `media` frame it sends the frame back as bot
audio followed by a `mark` named after the moment it received the frame; dialtone echoes the mark once
that audio has played into the call (left the media shard), so the mark's delay is the return leg
server -> call. Every 25th frame the server sends a marker (20 ms of noise) instead and times its
return on the inbound track: out of the call to sipp, echoed, back in through the jitter buffer and
onto the stream — the whole loop call -> WebSocket -> call (as a peer would hear it, plus a loopback
RTP echo).

  cargo build --release -p dialtone && cargo build --release -p node --example ws_echo
  python3 bench/stream_load.py --calls 100 500

Only loopback is used. Results are printed as Markdown for docs/benchmarks.md.
"""
import argparse, json, os, signal, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dial_load import ROOT, count_status, free_port, raise_fd_limit, start_server, start_uas, stop_uas  # noqa: E402


def make_cert(where):
    run = lambda *a: subprocess.run(["openssl", *a], cwd=where, check=True, capture_output=True)
    with open(os.path.join(where, "leaf.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=bench CA")
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "1", "-extfile", "leaf.ext")
    return [os.path.join(where, n) for n in ("ca.pem", "leaf.pem", "leaf.key")]


class Echo:
    """The ws_echo process and its once-a-second reports."""

    def __init__(self, binary, cert, key):
        self.port = free_port()
        self.proc = subprocess.Popen([binary, str(self.port), cert, key], stdout=subprocess.PIPE, text=True)
        self.reports = []
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.3)

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.reports.append((time.time(), json.loads(line)))
            except ValueError:
                pass

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run(binary, echo_bin, calls, rate, hold, stream, ca, cert, key):
    os.environ["DIALTONE_WS_CA_FILE"] = ca
    # Its own RTP range: another benchmark may run on 20000 and up.
    server = start_server(binary, 40000, 40000 + 2 * calls + 200)
    echo = Echo(echo_bin, cert, key) if stream else None
    uas_port, sipp, uas_log = start_uas(server, "sipp", hold)
    try:
        time.sleep(0.5)
        steps = [{"answer": {}}]
        if stream:
            steps.append({"stream": {"url": f"wss://127.0.0.1:{echo.port}/", "track": "both_tracks"}})
        steps.append({"sleep": 600000})
        body = {"command": "dial", "params": {"from": "+15105550100", "to": f"sip:bench@127.0.0.1:{uas_port}",
                                              "swml": {"version": "1.0.0", "sections": {"main": steps}},
                                              "timeout": 60}}
        ids, lock = [], threading.Lock()

        def one(_):
            try:
                out, _ = server.post(body)
            except Exception as e:
                print(f"dial failed: {e!r}", file=sys.stderr)
                return
            with lock:
                ids.append(out["id"])

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=32) as pool:
            for i in range(calls):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(one, i)
        deadline = time.time() + 120
        answered = 0
        while time.time() < deadline:
            answered = count_status(server, "answered")
            if answered >= calls and (not stream or (echo.reports and echo.reports[-1][1]["conns"] >= calls)):
                break
            time.sleep(0.5)
        time.sleep(2)
        c1, e1, w1, rss1 = server.cpu_seconds(), echo.cpu_seconds() if echo else 0, time.perf_counter(), server.rss_mib()
        t_start = time.time()
        time.sleep(hold)
        c2, e2, w2, rss2 = server.cpu_seconds(), echo.cpu_seconds() if echo else 0, time.perf_counter(), server.rss_mib()
        still = count_status(server, "answered")
        if still < answered:
            print(f"{answered - still} calls ended during the hold; server log tail:", file=sys.stderr)
            with open(server.log_path) as f:
                print("".join(f.readlines()[-15:]), file=sys.stderr)
        window = [r for t, r in (echo.reports if echo else []) if t >= t_start + 1]
        conns = min((r["conns"] for r in window), default=0)
        media_rate = ((window[-1]["media_in"] - window[0]["media_in"]) / max(len(window) - 1, 1)) if len(window) > 1 else 0
        def end(cid):
            try:
                server.post({"command": "calling.end", "id": cid, "params": {"reason": "hangup"}})
            except Exception as e:  # already over: reported below by the counts
                body = e.read()[:300] if hasattr(e, "read") else b""
                print(f"end {cid}: {e!r} {body!r}", file=sys.stderr)

        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(end, ids))
        return {
            "calls": calls, "stream": stream, "answered": answered, "conns": conns,
            "cpu_pct": 100 * (c2 - c1) / (w2 - w1), "echo_cpu_pct": 100 * (e2 - e1) / (w2 - w1),
            "rss_mib": rss2, "media_per_s": media_rate,
            "p50_us": max((r["p50_us"] for r in window), default=0),
            "p99_us": max((r["p99_us"] for r in window), default=0),
            "max_us": max((r["max_us"] for r in window), default=0),
            "loops": sum(r.get("loops", 0) for r in window),
            "loop_p50_us": max((r.get("loop_p50_us", 0) for r in window), default=0),
            "loop_p99_us": max((r.get("loop_p99_us", 0) for r in window), default=0),
            "loop_max_us": max((r.get("loop_max_us", 0) for r in window), default=0),
        }
    finally:
        stop_uas(sipp, uas_log)
        if echo:
            echo.stop()
        server.stop()


def main():
    raise_fd_limit()
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--hold", type=float, default=12.0)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/dialtone"))
    ap.add_argument("--echo", default=os.path.join(ROOT, "target/release/examples/ws_echo"))
    ap.add_argument("--streamed-only", action="store_true", help="skip the plain calls (e.g. to profile)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="stream-bench-")
    ca, cert, key = make_cert(tmp)
    rows = []
    for n in a.calls:
        plain = None if a.streamed_only else run(a.binary, a.echo, n, a.rate, a.hold, False, ca, cert, key)
        streamed = run(a.binary, a.echo, n, a.rate, a.hold, True, ca, cert, key)
        rows.append((plain, streamed))
    print("| calls | streams up | dialtone CPU, plain (% of a core) | with a stream each | CPU per stream (%) | media server CPU (%) | inbound media msgs/s | RSS plain / streamed (MiB) | RSS per stream (KiB) | return leg p50 / p99 / max (ms) | loop call -> WS -> call p50 / p99 / max (ms), markers |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for p, s in rows:
        if p is None:
            p = {"cpu_pct": 0.0, "rss_mib": 0.0}
        per = (s["cpu_pct"] - p["cpu_pct"]) / max(s["answered"], 1)
        rss_per = 1024 * (s["rss_mib"] - p["rss_mib"]) / max(s["answered"], 1)
        print(f"| {s['calls']} | {s['conns']} | {p['cpu_pct']:.1f} | {s['cpu_pct']:.1f} | {per:.3f} | {s['echo_cpu_pct']:.1f} | "
              f"{s['media_per_s']:.0f} | {p['rss_mib']:.0f} / {s['rss_mib']:.0f} | {rss_per:.0f} | "
              f"{s['p50_us'] / 1000:.1f} / {s['p99_us'] / 1000:.1f} / {s['max_us'] / 1000:.1f} | "
              f"{s['loop_p50_us'] / 1000:.1f} / {s['loop_p99_us'] / 1000:.1f} / {s['loop_max_us'] / 1000:.1f}, {s['loops']} |")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Fax benchmark: N concurrent faxes of a 3-page PDF from one dialtone node to another over loopback SIP
and RTP, as in tests/e2e/test_fax.py: over T.38 (B offers it, A accepts; UDPTL) or, with `--transport audio`,
over G.711 with ECM (A refuses T.38); T.30 by spandsp on each node's media shards.

Node A dials node B N times (20 dials a second) with SWML `send_fax`; B's inbound route runs
`receive_fax`. The script measures how long each fax took (dial to A's `finished` event), how many
went through, and the CPU time (user + system) each node used over the run, per fax.

  cargo build --release -p dialtone
  python3 bench/fax_load.py --calls 1 10 40 [--transport audio|t38]

Only loopback is used. Results are printed as Markdown for docs/benchmarks.md.
"""
import argparse, http.server, json, os, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dial_load import ROOT, raise_fd_limit, start_server  # noqa: E402

NUMBER = "+15557770000"


def make_pdf(where, pages=3):
    ps = ["%!PS"]
    for n in range(1, pages + 1):
        ps += ["/Helvetica-Bold findfont 72 scalefont setfont", f"100 600 moveto (PAGE {n}) show",
               "/Helvetica findfont 12 scalefont setfont"]
        ps += [f"72 {560 - 16 * k} moveto (Line {k} of page {n}: the quick brown fox jumps over the lazy dog.) show"
               for k in range(25)]
        ps += ["showpage"]
    src = os.path.join(where, "doc.ps")
    with open(src, "w") as f:
        f.write("\n".join(ps) + "\n")
    pdf = os.path.join(where, "doc.pdf")
    subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sPAPERSIZE=letter",
                    f"-sOutputFile={pdf}", src], check=True)
    with open(pdf, "rb") as f:
        return f.read()


class Http:
    """Serves the PDF on GET and keeps every POSTed JSON body (the fax webhooks)."""

    def __init__(self, pdf):
        self.events = []
        self.lock = threading.Lock()
        me = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/pdf")
                self.send_header("Content-Length", str(len(pdf)))
                self.end_headers()
                self.wfile.write(pdf)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    e = json.loads(body)
                    with me.lock:
                        me.events.append((self.path, time.time(), e))
                except ValueError:
                    pass
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def finished(self, path):
        with self.lock:
            return [(t, e["params"]) for p, t, e in self.events
                    if p == path and e.get("event_type") == "calling.call.fax"
                    and e["params"]["fax"]["type"] == "finished"]


def run(binary, calls, work, transport):
    peer = Http(make_pdf(work))
    cfg = os.path.join(work, "b.toml")
    swml = {"version": "1.0.0", "sections": {"main": [
        {"receive_fax": {"status_url": f"http://127.0.0.1:{peer.port}/rx"}}, {"hangup": {}}]}}
    with open(cfg, "w") as f:
        f.write(f"[[inbound_routes]]\ndestination = \"{NUMBER}\"\nswml = '''\n{json.dumps(swml)}\n'''\n")
    os.environ["DIALTONE_CONFIG"] = cfg
    b = start_server(binary, 30000, 30000 + 4 * calls + 100)
    del os.environ["DIALTONE_CONFIG"]
    if transport == "audio":
        os.environ["DIALTONE_FAX_T38"] = "false"
    a = start_server(binary, 40000, 40000 + 4 * calls + 100)
    os.environ.pop("DIALTONE_FAX_T38", None)
    try:
        doc = {"version": "1.0.0", "sections": {"main": [
            {"send_fax": {"document": f"http://127.0.0.1:{peer.port}/doc.pdf",
                          "status_url": f"http://127.0.0.1:{peer.port}/tx"}}, {"hangup": {}}]}}
        cpu0 = (a.cpu_seconds(), b.cpu_seconds())
        t0 = time.time()
        started = {}
        for i in range(calls):
            out, _ = a.post({"command": "dial", "params": {"from": "+15551110000",
                                                           "to": f"sip:{NUMBER}@127.0.0.1:{b.sip}", "swml": doc}})
            started[out["id"]] = time.time()
            time.sleep(0.05)
        deadline = time.time() + 300
        while time.time() < deadline and (len(peer.finished("/tx")) < calls or len(peer.finished("/rx")) < calls):
            time.sleep(0.5)
        wall = time.time() - t0
        cpu_a, cpu_b = a.cpu_seconds() - cpu0[0], b.cpu_seconds() - cpu0[1]
        tx, rx = peer.finished("/tx"), peer.finished("/rx")
        took = sorted(t - started[p["call_id"]] for t, p in tx if p["call_id"] in started)
        ok = sum(1 for _, p in tx if p["fax"]["params"]["success"] and p["fax"]["params"]["pages"] == 3)
        ok_rx = sum(1 for _, p in rx if p["fax"]["params"]["success"] and p["fax"]["params"]["pages"] == 3)
        mean_took = sum(took) / len(took) if took else 0
        # Each node runs one fax terminal per call for the fax's duration.
        per_call = lambda cpu: 100 * cpu / (mean_took * calls) if mean_took else 0
        return {"calls": calls, "sent_ok": ok, "received_ok": ok_rx, "wall_s": round(wall, 1),
                "took_p50_s": round(took[len(took) // 2], 1) if took else None,
                "took_max_s": round(took[-1], 1) if took else None,
                "cpu_s_a": round(cpu_a, 2), "cpu_s_b": round(cpu_b, 2),
                "cpu_pct_per_call_a": round(per_call(cpu_a), 3), "cpu_pct_per_call_b": round(per_call(cpu_b), 3)}
    finally:
        a.stop()
        b.stop()
        peer.server.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "dialtone"))
    ap.add_argument("--transport", choices=["t38", "audio"], default="t38")
    args = ap.parse_args()
    raise_fd_limit()
    rows = []
    for n in args.calls:
        with tempfile.TemporaryDirectory(prefix="fax-bench-") as work:
            r = run(args.binary, n, work, args.transport)
        print("JSON:", json.dumps(r), flush=True)
        rows.append(r)
    print("| faxes at once | sent / received whole | time per fax p50 / max | CPU per fax call, sender / receiver |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['calls']} | {r['sent_ok']} / {r['received_ok']} | {r['took_p50_s']} / {r['took_max_s']} s | "
              f"{r['cpu_pct_per_call_a']} % / {r['cpu_pct_per_call_b']} % |")


if __name__ == "__main__":
    main()

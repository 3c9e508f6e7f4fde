#!/usr/bin/env python3
"""dialtone and restsend/rustpbx under the same load, in the same run, with the ratio.

For each call count and each shape, runs dialtone (`bench/dial_load.py`) and then rustpbx
(`bench/rustpbx/rustpbx_load.py`) on this machine, one right after the other: each server
originates N calls to one `sipp -sn uas -rtp_echo` and every answered call loops the same 2 s
440 Hz prompt as 20 ms PCMU.

  play    dialtone `--play`; rustpbx `media.play` looped.
  listen  dialtone `--listen` (+ stereo WAV recording, `calling.collect` with in-band DTMF
          detection, VAD); rustpbx `--listen` (+ `record.start` separate_legs, `dtmf.collect`:
          RFC 2833 only, rustpbx has no in-band detector, so it does less work per call).

Prints absolute CPU and memory per call for both and dialtone/rustpbx ratios. rustpbx must be
built first (`RUSTPBX_GIT=... bash bench/rustpbx/build.sh`, ~25 min, never in CI).

  python3 bench/side_by_side.py --calls 200 500 1000 --shapes play listen
"""
import argparse, json, os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "rustpbx"))
import dial_load as D  # noqa: E402
import rustpbx_load as R  # noqa: E402


def main():
    D.raise_fd_limit()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, nargs="+", default=[200, 500, 1000])
    ap.add_argument("--shapes", nargs="+", choices=["play", "listen"], default=["play", "listen"])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--hold", type=float, default=12.0)
    ap.add_argument("--sip-workers", type=int, default=2,
                    help="rustpbx's sip_worker_threads (its default, 1, sends only ~half the frames at 1000 calls)")
    ap.add_argument("--dialtone", default=os.path.join(os.path.dirname(HERE), "target/release/dialtone"))
    ap.add_argument("--rustpbx", default=os.path.join(HERE, "rustpbx/src/target/release/rustpbx"))
    ap.add_argument("--json", default=None, help="append each run's JSON to this file")
    a = ap.parse_args()
    rows = []
    for shape in a.shapes:
        for n in a.calls:
            listen = "both" if shape == "listen" else None
            d = D.run(a.dialtone, n, a.rate, a.hold, True, listen)
            time.sleep(3)
            r = R.run(a.rustpbx, n, a.rate, a.hold, True, "warn", None, a.sip_workers, shape == "listen")
            time.sleep(3)
            rows.append((shape, n, d, r))
            print(f"{shape} {n}: dialtone {d['cpu_pct_per_call']:.3f} %/call {d['rss_mib']:.0f} MiB; "
                  f"rustpbx {r['cpu_per_call']:.3f} %/call {r['rss_mib']:.0f} MiB", file=sys.stderr, flush=True)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps({"shape": shape, "calls": n, "dialtone": d, "rustpbx": r, "ts": time.time()}) + "\n")
    print()
    print("| shape | calls | answered (dialtone / rustpbx) | CPU per call, dialtone (% of a core) | rustpbx | dialtone / rustpbx | RSS per call, dialtone (KiB) | rustpbx | dialtone / rustpbx | far-end drops, dialtone (%) | rustpbx UDP drops (/s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for shape, n, d, r in rows:
        cpu_ratio = d["cpu_pct_per_call"] / r["cpu_per_call"] if r["cpu_per_call"] else float("nan")
        mem_ratio = d["rss_kib_per_call"] / r["rss_kib_per_call"] if r["rss_kib_per_call"] else float("nan")
        drops = 100 * d["udp_rcvbuf_drops"] / max(d["udp_datagrams"], 1)
        rtp = r.get("rtp") or {}
        print(f"| {shape} | {n} | {d['answered']} / {r['answered']} | {d['cpu_pct_per_call']:.3f} | {r['cpu_per_call']:.3f} | "
              f"{cpu_ratio:.2f} | {d['rss_kib_per_call']:.0f} | {r['rss_kib_per_call']:.0f} | {mem_ratio:.2f} | {drops:.2f} | "
              f"{rtp.get('udp_rcvbuf_errors_per_s', float('nan')):.0f} |")
    for shape, n, d, r in rows:
        if r["fails"]:
            print(f"- rustpbx {shape} {n}: failures e.g. {r['fails']}")
        if shape == "listen":
            print(f"- {shape} {n}: recorded audio at the end — dialtone {d['rec_files']} files, "
                  f"rustpbx {r.get('rec_bytes', 0) / 1e6:.1f} MB")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""AI turn latency: the caller stops speaking -> the agent's first words leave dialtone, split into its parts.

Each trial is one real call: dialtone dials sipp, which asks a question in flite speech after the agent's
short greeting; the `ai` agent hears it (the embedded recogniser, the question as its hint), asks the model
and speaks the answer as it streams. A stereo `record_call` (left: what the caller sent, right: what dialtone
sent) gives the total: the caller's last loud 20 ms -> the agent's first loud 20 ms after it. dialtone's log
(its times, against the recording's start) splits it:

  end of speech   the utterance's end: `end_of_speech_timeout` of silence, and the recogniser's result
  model           the request -> the model's first words (`first_words_ms`)
  TTS             the first words -> their first sentence synthesised
  to the wire     synthesised -> the first loud frame in the recording (the player's 20 ms clock, the
                  frame's own ramp-up and the log/recording offset)

"Overhead" is the total less the model's first-words time and the end-of-speech timeout: what dialtone adds.
The model is the scripted OpenAI-compatible server of the tests (tests/e2e/llm_server.py: answers at once) or,
with --embedded, the embedded SmolLM2 (scripts/ai/local_model.py). --concurrent N also runs N agents at once
and reports dialtone's CPU and memory per agent.

  cargo build --release -p dialtone
  .venv/bin/python bench/ai_turn_latency.py --trials 8 [--embedded] [--concurrent 20]

Only loopback is used. Results print as Markdown for docs/benchmarks.md.
"""
import argparse
import datetime
import math
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("DIALTONE_BIN", os.path.join(ROOT, "target", "release", "dialtone"))

import conftest  # noqa: E402
from llm_server import ScriptedModel  # noqa: E402
from sipp_peer import Sipp  # noqa: E402
from test_record import fetch_wav  # noqa: E402
from test_speech import write_speech_wav  # noqa: E402
from webhooks import Webhooks  # noqa: E402

QUESTION = "what is the weather in paris"
ANSWER = "It is sunny in Paris today. Anything else?"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def windows_rms(samples, rate):
    n = rate // 50
    return [math.sqrt(sum(x * x for x in samples[i:i + n]) / n) for i in range(0, len(samples) - n + 1, n)]


def log_times(log_path, call_id):
    """(time, line) of the call's log lines."""
    out = []
    for line in ANSI.sub("", Path(log_path).read_text(errors="replace")).splitlines():
        if call_id not in line:
            continue
        stamp = line.split(" ", 1)[0]
        try:
            when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        out.append((when, line))
    return out


def first(lines, needle, after=0.0):
    return next(((t, l) for t, l in lines if needle in l and t >= after), (None, None))


def swml(hooks, eos_ms):
    return {"version": "1.0.0", "sections": {"main": [
        {"record_call": {"format": "wav", "stereo": True, "direction": "both", "status_url": hooks.url("/rec")}},
        {"ai": {"prompt": {"text": "You are a weather assistant. Answer in one short sentence.", "max_tokens": 40,
                           "temperature": 0.2},
                "hints": [QUESTION],
                "params": {"static_greeting": "Hi.", "end_of_speech_timeout": eos_ms, "inactivity_timeout": 2500}}},
        {"stop_record_call": {}},
        {"hangup": {}}]}}


def trial(d, hooks, where, eos_ms):
    far = Sipp("uas_stream_wav.xml", where, timeout_s=40)
    try:
        before = len(hooks.on("/rec"))
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"),
                                                  "swml": swml(hooks, eos_ms)}})
        r.raise_for_status()
        call_id = r.json()["id"]
        deadline = time.time() + 60
        rec = []
        while time.time() < deadline and not rec:
            rec = [e for e in hooks.on("/rec")[before:] if e["params"]["state"] == "finished"]
            time.sleep(0.2)
        if not rec:
            raise RuntimeError("no recording")
        w, samples = fetch_wav(d, rec[0]["params"]["url"])
        rate = w.getframerate()
        caller = windows_rms(list(samples[0::2]), rate)
        agent = windows_rms(list(samples[1::2]), rate)
        loud_caller = [i for i, v in enumerate(caller) if v > 500]
        if not loud_caller:
            raise RuntimeError("the caller's question is not in the recording")
        # The question's end: its first loud stretch, over once 0.5 s stay quiet (sipp's stream
        # may loop back to the question later).
        end = loud_caller[0]
        for i in loud_caller:
            if i - end > 25:
                break
            end = i
        end += 1
        start = next((i for i in range(end, len(agent)) if agent[i] > 500), None)
        if start is None:
            raise RuntimeError("the agent did not answer")
        total = (start - end) * 0.02
        lines = log_times(d.log_path, call_id)
        t_rec_start, _ = first(lines, ": recording control_id")
        t_heard, _ = first(lines, "utterance recognised")
        t_words, words = first(lines, "ai answer spoken as it streams", after=t_heard or 0)
        t_synth, _ = first(lines, "the first words are synthesised", after=t_words or 0)
        if None in (t_rec_start, t_heard, t_words, t_synth):
            raise RuntimeError("the log misses a mark")
        model_ms = int(re.search(r"first_words_ms=(\d+)", words).group(1))
        caller_end = t_rec_start + end * 0.02
        agent_start = t_rec_start + start * 0.02
        return {
            "total": total * 1000,
            "end_of_speech": (t_heard - caller_end) * 1000,
            "model": model_ms,
            "to_model": (t_words - t_heard) * 1000 - model_ms,
            "tts": (t_synth - t_words) * 1000,
            "to_wire": (agent_start - t_synth) * 1000,
            "overhead": total * 1000 - model_ms - eos_ms,
        }
    finally:
        far.wait(30)
        far.kill()


def concurrent(d, hooks, where, n, eos_ms):
    """n agents at once: dialtone's CPU seconds and resident memory over the run, per agent."""
    def stat():
        fields = Path(f"/proc/{d.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        rss = int(Path(f"/proc/{d.proc.pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return cpu, rss
    cpu0, rss0 = stat()
    peers = [Sipp("uas_stream_wav.xml", where, timeout_s=60) for _ in range(n)]
    started = time.time()
    before = len(hooks.on("/rec"))
    for p in peers:
        d.post({"command": "dial", "params": {"from": "+15551110000", "to": p.uri("service"),
                                              "swml": swml(hooks, eos_ms)}}).raise_for_status()
    peak = rss0
    while time.time() - started < 90:
        peak = max(peak, stat()[1])
        done = [e for e in hooks.on("/rec")[before:] if e["params"]["state"] == "finished"]
        if len(done) >= n:
            break
        time.sleep(0.2)
    wall = time.time() - started
    cpu1, _ = stat()
    for p in peers:
        p.wait(30)
        p.kill()
    return {"agents": n, "wall_s": wall, "cpu_s_per_agent": (cpu1 - cpu0) / n,
            "cpu_pct_per_agent": 100 * (cpu1 - cpu0) / n / wall, "mib_per_agent": (peak - rss0) / n / 2**20}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--eos-ms", type=int, default=700, help="params.end_of_speech_timeout")
    ap.add_argument("--embedded", action="store_true", help="the embedded model instead of the scripted one")
    ap.add_argument("--concurrent", type=int, default=0)
    args = ap.parse_args()
    where = Path(tempfile.mkdtemp(prefix="ai-bench-"))
    write_speech_wav(where, QUESTION, tail_s=4.0)
    model = None
    env = {"DIALTONE_LOG": "info", "DIALTONE_EXTERNAL_IP": "127.0.0.1",
           "DIALTONE_RTP_PORTS": "30000-31000", "DIALTONE_MAX_CALLS": "0"}
    if args.embedded:
        env["DIALTONE_AI_LOCAL_COMMAND"] = f"{sys.executable} {ROOT}/scripts/ai/local_model.py --port {{port}}"
    else:
        model = ScriptedModel([{"text": ANSWER}] * (args.trials + 2 * args.concurrent + 4))
        env["DIALTONE_AI_BASE_URL"] = model.base_url
    hooks = Webhooks("test-signing-key")
    d = conftest.Dialtone(where, env).start()
    try:
        if args.embedded:
            deadline = time.time() + 120
            while "the embedded AI model is ready" not in ANSI.sub("", d.log_path.read_text()):
                if time.time() > deadline:
                    raise RuntimeError("the embedded model did not come up")
                time.sleep(0.25)
        results = []
        for i in range(args.trials):
            try:
                results.append(trial(d, hooks, where, args.eos_ms))
                print(f"trial {i + 1}: " + ", ".join(f"{k} {v:.0f}" for k, v in results[-1].items()), file=sys.stderr)
            except RuntimeError as e:
                print(f"trial {i + 1}: {e}", file=sys.stderr)
        backend = "embedded SmolLM2-135M (1 thread)" if args.embedded else "scripted (answers at once)"
        print(f"\n### AI turn latency, {backend}, end_of_speech_timeout {args.eos_ms} ms, "
              f"{len(results)} of {args.trials} trials (ms)\n")
        print("| part | p50 | min | max |")
        print("|---|---|---|---|")
        for key, name in [("total", "caller's last word -> agent's first on the wire"),
                          ("end_of_speech", "end of speech (timeout + recognition)"),
                          ("to_model", "result -> model request"),
                          ("model", "model: first words"), ("tts", "TTS: first sentence"),
                          ("to_wire", "to the wire"), ("overhead", "overhead beyond the model and the timeout")]:
            vals = [r[key] for r in results]
            if vals:
                print(f"| {name} | {statistics.median(vals):.0f} | {min(vals):.0f} | {max(vals):.0f} |")
        if args.concurrent:
            c = concurrent(d, hooks, where, args.concurrent, args.eos_ms)
            print(f"\n{c['agents']} agents at once over {c['wall_s']:.1f} s: {c['cpu_s_per_agent']:.3f} CPU-s per agent "
                  f"({c['cpu_pct_per_agent']:.2f} % of a core), {c['mib_per_agent']:.2f} MiB per agent at the peak")
    finally:
        d.stop()
        hooks.stop()
        if model:
            model.stop()


if __name__ == "__main__":
    main()

"""Runaway JavaScript in SWML (issue 10, docs/security.md): 20 calls whose documents loop over a runaway `${...}`
expression. Their steps run on the node's evaluator pool, not on the async runtime, so the API stays fast
while they burn CPU; `calling.end` stops a call's evaluation at once; and a call's JavaScript budget (over its
whole script) ends a script that keeps looping, with its documented warning and end reason `error`.

Runs against the binary the e2e suite uses (a debug build in CI: QuickJS unoptimised, so each budget tick costs
more than in release; the budgets below are set in ticks, not time)."""
import socket
import threading
import time

import pytest
import requests

from conftest import rtp_port_range
from test_hardening import sip_request

# Timing under runaway scripts: never beside the other CPU-bound tests (conftest.py).
pytestmark = pytest.mark.xdist_group("cpu_bound")

FROM = "+15105550100"
RUNAWAY = "${(function(){ var n = 0; for (;;) { n++; } })()}"
HOSTILE = {"version": "1.0.0", "sections": {"main": [
    {"label": "top"},
    {"set": {"x": RUNAWAY}},
    {"goto": {"label": "top", "max": 100}},
]}}
# The script end of each call just holds the line (it ends when the origin does).
HOLD = {"version": "1.0.0", "sections": {"main": [{"play": {"url": "silence:60"}}]}}
CALLS = 20


def start(start_dialtone, budget, name):
    lo, hi = rtp_port_range(4 * CALLS + 20)
    return start_dialtone({"DIALTONE_RTP_PORTS": f"{lo}-{hi}", "DIALTONE_SCRIPT_THREADS": "2",
                           "DIALTONE_SWML_JS_BUDGET": str(budget), "DIALTONE_LOG": "info"}, name=name)


def dial_hostile(d, status_url=None):
    params = {"from": FROM, "to_script": HOLD, "swml": HOSTILE}
    if status_url:
        params.update(status_url=status_url, status_events=["answered", "ended"])
    r = d.post({"command": "dial", "params": params})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def get_call(d, call_id):
    r = requests.get(f"{d.base}/api/calling/calls/{call_id}", auth=(d.project, d.token), timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def wait_ended(d, call_id, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        leg = get_call(d, call_id)
        if leg["status"] == "ended":
            return leg
        time.sleep(0.05)
    return None


def p99(samples):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def api_latencies(d, per_client=100, clients=2):
    """GET /api/calling/calls from `clients` clients at once, `per_client` each, 20 ms apart: the latencies."""
    latencies = []
    lock = threading.Lock()

    def client():
        s = requests.Session()
        for _ in range(per_client):
            t0 = time.perf_counter()
            r = s.get(f"{d.base}/api/calling/calls", auth=(d.project, d.token), timeout=5)
            dt = time.perf_counter() - t0
            assert r.status_code == 200
            with lock:
                latencies.append(dt)
            time.sleep(0.02)

    workers = [threading.Thread(target=client) for _ in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(latencies) == per_client * clients
    return latencies


def test_runaway_scripts_leave_the_api_fast_and_end_promptly(start_dialtone):
    # A budget far beyond the test's length: the scripts run until they are ended.
    d = start(start_dialtone, budget=2_000_000, name="node")
    # The same requests on the idle node first: a loaded test machine (CI runs builds and other tests beside
    # this one) shows up here, and the limit below makes room for it (never less than 100 ms).
    baseline = p99(api_latencies(d, per_client=50))
    ids = [dial_hostile(d) for _ in range(CALLS)]
    # Every call is answered and its script is burning CPU.
    deadline = time.time() + 10
    while time.time() < deadline and any(get_call(d, i)["status"] != "answered" for i in ids):
        time.sleep(0.1)
    assert all(get_call(d, i)["status"] == "answered" for i in ids), [get_call(d, i)["status"] for i in ids]
    time.sleep(1.0)

    # 200 API requests while the 20 scripts run, from two clients at once.
    latencies = api_latencies(d)
    worst = p99(latencies)
    limit = max(0.100, 2 * baseline)
    print(f"API latency with {CALLS} runaway scripts: p50 {sorted(latencies)[100] * 1000:.1f} ms, "
          f"p99 {worst * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; idle p99 {baseline * 1000:.1f} ms")
    if worst >= limit:
        # A busy CI box shows up as a single multi-second outlier now and then (seen in CI runs of session
        # 10 with and without other work beside; likely a store read waiting for its group commit's fsync,
        # docs/call-lifecycle.md "Durability"). Scripts that starve the API fail a second measurement the
        # same way, so measure once more before failing.
        first = worst
        latencies = api_latencies(d)
        worst = p99(latencies)
        print(f"again: p99 {worst * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms (first p99 {first * 1000:.1f} ms)")
    assert worst < limit, f"p99 {worst * 1000:.1f} ms (idle p99 {baseline * 1000:.1f} ms)"
    # SIP is answered as promptly: 50 out-of-dialog OPTIONS, one after another.
    sip_port = int(d.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    sip_latencies = []
    try:
        for i in range(50):
            t0 = time.perf_counter()
            assert sip_request(u, sip_port, "OPTIONS", f"{i + 1} OPTIONS").startswith("SIP/2.0 200")
            sip_latencies.append(time.perf_counter() - t0)
    finally:
        u.close()
    print(f"SIP OPTIONS with {CALLS} runaway scripts: p99 {p99(sip_latencies) * 1000:.1f} ms")
    assert p99(sip_latencies) < limit, f"OPTIONS p99 {p99(sip_latencies) * 1000:.1f} ms"
    # The scripts were still running: nothing has ended them.
    assert all(get_call(d, i)["status"] == "answered" for i in ids)

    # calling.end on each ends it within about a second, whether its step is running or queued.
    for i in ids:
        t0 = time.time()
        r = d.post({"command": "calling.end", "id": i, "params": {"reason": "hangup"}})
        assert r.status_code == 200, r.text
        leg = wait_ended(d, i, timeout=2)
        took = time.time() - t0
        assert leg is not None, f"call {i} not ended 2 s after calling.end"
        assert took < 1.2, f"calling.end took {took:.2f} s"
        assert leg["end_reason"] == "hangup", leg
    assert requests.get(f"{d.base}/api/calling/calls", auth=(d.project, d.token), timeout=2).status_code == 200
    # Their queued steps went away with them: a well-behaved script runs at once.
    t0 = time.time()
    r = d.post({"command": "dial", "params": {"from": FROM, "to_script": HOLD, "swml": {
        "version": "1.0.0", "sections": {"main": [{"play": {"url": "silence:0.5"}}, {"hangup": {}}]}}}})
    assert r.status_code == 200, r.text
    polite = wait_ended(d, r.json()["id"], timeout=10)
    took = time.time() - t0
    assert polite is not None and polite["end_reason"] == "hangup", polite
    assert took < 3, f"a script without JavaScript took {took:.1f} s after the runaway ones ended"


def test_a_runaway_script_fails_once_its_calls_budget_is_spent(start_dialtone, hooks):
    # A small budget (15 % of one runaway expression) per call: each script fails on its own.
    d = start(start_dialtone, budget=3_000, name="budget")
    ids = [dial_hostile(d, status_url=hooks.url()) for _ in range(CALLS)]
    deadline = time.time() + 45
    legs = {}
    while time.time() < deadline and len(legs) < CALLS:
        for i in ids:
            if i not in legs:
                leg = get_call(d, i)
                if leg["status"] == "ended":
                    legs[i] = leg
        time.sleep(0.2)
    assert len(legs) == CALLS, f"only {len(legs)} of {CALLS} scripts stopped"
    assert all(leg["end_reason"] == "error" for leg in legs.values()), [leg["end_reason"] for leg in legs.values()]
    # Each script said why: one calling.script.warning with the budget's message, not a hundred.
    deadline = time.time() + 10
    while time.time() < deadline:
        warnings = [e for e in hooks.json() if e.get("event_type") == "calling.script.warning"]
        if {w["params"]["call_id"] for w in warnings} >= set(ids):
            break
        time.sleep(0.1)
    by_call = {}
    for w in warnings:
        by_call.setdefault(w["params"]["call_id"], []).append(w["params"])
    assert set(by_call) >= set(ids), f"warnings for {len(by_call)} calls"
    for i in ids:
        budget = [p for p in by_call[i] if "spent its JavaScript budget" in p["message"]]
        assert len(budget) == 1, by_call[i]
        assert budget[0]["code"] == "relay_script_js_eval_error"
        assert len(by_call[i]) <= 3, by_call[i]

"""The operator's surface (issue 10, README "Operator endpoints"): /health, /ready and /metrics on the API listener
without credentials, `max_calls` and RTP port exhaustion refused up front with 503 (API and SIP), and the SIGTERM
drain (new calls refused, live ones go on up to `drain_secs`, then BYE, final webhooks flushed, exit 0). Real
binary, sipp far ends and callers, the official SDK, a real webhook receiver. Every wait polls with a deadline."""
import json
import re
import signal
import time

import requests

from conftest import rtp_port_range
from test_calls import ALL_EVENTS, SWML, dial, get_call, wait_hook, wait_status

NUMBER = "+15551230000"
HOLD = {"version": "1.0.0", "sections": {"main": [{"answer": {}}, {"sleep": -1}]}}

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? '
                    r'(-?[0-9.e+-]+|\+Inf|-Inf|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(d):
    """GET /metrics without credentials, parsed strictly (text format 0.0.4): {(name, frozenset(labels)): value}.
    Every sample's family has exactly one HELP and one TYPE line before it."""
    r = requests.get(d.base + "/metrics", timeout=5)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    out, typed, helped = {}, {}, set()
    for line in r.text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helped, f"two HELP lines for {name}"
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name not in typed and kind in ("counter", "gauge", "histogram"), line
            typed[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
        assert family in typed and family in helped, f"{name} has no TYPE/HELP"
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(name, labels)] = float(m.group(4))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples, name, **labels):
    """Sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def start_node(start_dialtone, tmp_path, env=None):
    cfg = tmp_path / "ops.toml"
    cfg.write_text(f"[[inbound_routes]]\ndestination = \"*\"\nswml = '''\n{json.dumps(HOLD)}\n'''\n")
    d = start_dialtone({"DIALTONE_CONFIG": str(cfg), **(env or {})})
    d.sip_port = int(d.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
    return d


def raw_dial(d, to):
    return d.post({"command": "dial", "params": {"from": "+15105550100", "to": to, "swml": SWML}})


def call_in(sipp, d, scenario):
    return sipp(scenario, extra=("-s", NUMBER, f"127.0.0.1:{d.sip_port}"))


def assert_503(r, code):
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.headers.get("Retry-After") == "1", r.headers
    err = r.json()["errors"]
    assert len(err) == 1 and err[0]["type"] == "server_error" and err[0]["code"] == code, err
    assert err[0]["url"].startswith("https://") and err[0]["message"], err
    return err[0]


# ---------------------------------------------------------------- probes

def test_health_ready_and_metrics_need_no_credentials_and_the_api_still_does(start_dialtone, tmp_path):
    d = start_node(start_dialtone, tmp_path)
    r = requests.get(d.base + "/health", timeout=5)
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    r = requests.get(d.base + "/ready", timeout=5)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready",
                        "checks": {"store": "up", "sip": "up", "media": "up", "draining": False}}, r.json()
    samples = scrape(d)
    assert value(samples, "dialtone_max_calls") == 1000
    assert value(samples, "dialtone_draining") == 0
    assert value(samples, "dialtone_calls_live") == 0
    assert value(samples, "dialtone_webhook_queue_depth") == 0
    lo, hi = d.rtp_range
    assert value(samples, "dialtone_rtp_ports_free") == (hi - lo) // 2 + 1
    # Every family the README lists is exposed, even before anything happened.
    names = {n for n, _ in samples} | {n for n in re.findall(r"^# TYPE (\S+)", requests.get(d.base + "/metrics").text, re.M)}
    for family in ("dialtone_calls", "dialtone_call_setups_total", "dialtone_calls_refused_total",
                   "dialtone_dial_answer_seconds", "dialtone_api_request_duration_seconds",
                   "dialtone_media_tick_lateness_seconds", "dialtone_rtp_packets_total",
                   "dialtone_rtp_packets_dropped_total", "dialtone_rtp_packets_rejected_total",
                   "dialtone_recordings_active", "dialtone_webhook_queue_depth", "dialtone_webhook_retries_total",
                   "dialtone_webhooks_given_up_total", "dialtone_errors_total"):
        assert family in names, family
    # The API itself still wants credentials.
    assert requests.get(d.base + "/api/calling/calls", timeout=5).status_code == 401
    assert requests.get(d.base + "/api/calling/calls", auth=(d.project, d.token), timeout=5).status_code == 200


def test_metrics_move_after_a_call(start_dialtone, tmp_path, sipp, hooks):
    d = start_node(start_dialtone, tmp_path)
    before = scrape(d)
    far = sipp("uas.xml")
    leg = dial(d, far.uri("service"), hooks.url(), ALL_EVENTS)
    wait_hook(hooks, leg["id"], "answered")
    time.sleep(0.5)  # some media ticks
    during = scrape(d)
    assert value(during, "dialtone_calls", state="answered") == 1, during
    assert value(during, "dialtone_calls_live") == 1
    assert value(during, "dialtone_rtp_packets_total", direction="out") > 0
    assert value(during, "dialtone_recordings_active") == 0
    d.sdk().calling.record(leg["id"], control_id="rec1", audio={"format": "wav"})
    assert value(scrape(d), "dialtone_recordings_active") == 1
    d.sdk().calling.record_stop(leg["id"], control_id="rec1")
    deadline = time.time() + 5
    while time.time() < deadline and value(scrape(d), "dialtone_recordings_active") != 0:
        time.sleep(0.1)
    assert value(scrape(d), "dialtone_recordings_active") == 0
    time.sleep(0.3)  # more ticks, more packets
    d.sdk().calling.end(leg["id"], reason="hangup")
    wait_hook(hooks, leg["id"], "ended")
    assert far.wait(10) == 0, far.describe()
    after = scrape(d)
    assert value(after, "dialtone_call_setups_total", direction="outbound") == 1
    assert value(after, "dialtone_calls_ended_total", reason="hangup") == 1
    assert value(after, "dialtone_dial_answer_seconds_count") == 1
    assert 0 < value(after, "dialtone_dial_answer_seconds_sum") < 10
    assert value(after, "dialtone_media_tick_lateness_seconds_count") > 10
    assert value(after, "dialtone_rtp_packets_total", direction="out") > value(during, "dialtone_rtp_packets_total", direction="out")
    posts = value(after, "dialtone_api_request_duration_seconds_count", method="POST", route="/api/calling/calls", status="200")
    assert posts == 4 + value(before, "dialtone_api_request_duration_seconds_count", method="POST",
                              route="/api/calling/calls", status="200"), after
    assert value(after, "dialtone_api_request_duration_seconds_bucket", method="POST", route="/api/calling/calls",
                 status="200", le="+Inf") == posts
    assert total(after, "dialtone_calls") == 0
    deadline = time.time() + 10
    while time.time() < deadline and value(after, "dialtone_webhooks_delivered_total") < 4:
        time.sleep(0.2)
        after = scrape(d)
    assert value(after, "dialtone_webhooks_delivered_total") >= 4
    assert value(after, "dialtone_webhook_queue_depth") == 0


# ---------------------------------------------------------------- max_calls and ports

def test_max_calls_refuses_api_dials_and_invites_with_503_until_a_call_ends(start_dialtone, tmp_path, sipp, hooks):
    d = start_node(start_dialtone, tmp_path, {"DIALTONE_MAX_CALLS": "2"})
    a, b = sipp("uas.xml"), sipp("uas.xml")
    legs = [dial(d, far.uri("service"), hooks.url(), ALL_EVENTS) for far in (a, b)]
    for leg in legs:
        wait_hook(hooks, leg["id"], "answered")
    # A third call, from the API...
    err = assert_503(raw_dial(d, "sip:third@127.0.0.1:9"), "max_calls_reached")
    assert "2 concurrent calls" in err["message"] and "max_calls" in err["message"], err
    # ... and from the SDK, which sees the same 503.
    from signalwire.rest._base import SignalWireRestError
    try:
        d.sdk().calling.dial(from_="+15105550100", to="sip:fourth@127.0.0.1:9", swml=SWML)
        raise AssertionError("the SDK's dial over max_calls succeeded")
    except SignalWireRestError as e:
        assert e.status_code == 503 and e.body["errors"][0]["code"] == "max_calls_reached", (e.status_code, e.body)
    # ... and over SIP: 503, never a 180.
    caller = call_in(sipp, d, "inbound_uac_503.xml")
    assert caller.wait(15) == 0, caller.describe()
    arrows = caller.arrows_dedup()
    assert "> 503" in arrows and "> 180" not in arrows and "> 200" not in arrows, arrows
    # Nothing was stored for the refused calls, and the live ones are untouched.
    calls = requests.get(d.base + "/api/calling/calls", auth=(d.project, d.token), timeout=5).json()["data"]
    assert {c["id"] for c in calls} == {leg["id"] for leg in legs}, calls
    assert all(get_call(d, leg["id"])["status"] == "answered" for leg in legs)
    samples = scrape(d)
    assert value(samples, "dialtone_calls_refused_total", reason="max_calls_reached") >= 3, samples
    # One call ends: the next dial is taken.
    d.sdk().calling.end(legs[0]["id"], reason="hangup")
    wait_status(d, legs[0]["id"], "ended")
    c = sipp("uas.xml")
    leg3 = dial(d, c.uri("service"), hooks.url(), ALL_EVENTS)
    wait_hook(hooks, leg3["id"], "answered")
    for leg in (legs[1], leg3):
        d.sdk().calling.end(leg["id"], reason="hangup")
    for far in (a, b, c):
        assert far.wait(10) == 0, far.describe()


def test_rtp_port_exhaustion_is_refused_up_front(start_dialtone, tmp_path, sipp, hooks):
    lo, hi = rtp_port_range(4)  # two even ports: two calls
    d = start_node(start_dialtone, tmp_path, {"DIALTONE_RTP_PORTS": f"{lo}-{hi}"})
    a, b = sipp("uas.xml"), sipp("uas.xml")
    legs = [dial(d, far.uri("service"), hooks.url(), ALL_EVENTS) for far in (a, b)]
    for leg in legs:
        wait_hook(hooks, leg["id"], "answered")
    assert value(scrape(d), "dialtone_rtp_ports_free") == 0
    err = assert_503(raw_dial(d, "sip:third@127.0.0.1:9"), "no_rtp_port")
    assert "rtp_ports" in err["message"], err
    # A script call needs two ports: refused the same way.
    r = d.post({"command": "dial", "params": {"from": "+15105550100", "to_script": HOLD, "swml": HOLD}})
    assert_503(r, "no_rtp_port")
    caller = call_in(sipp, d, "inbound_uac_503.xml")
    assert caller.wait(15) == 0, caller.describe()
    assert "> 503" in caller.arrows_dedup(), caller.arrows()
    # No call record was left behind by the refusals (the odd `error` calls of before).
    calls = requests.get(d.base + "/api/calling/calls", auth=(d.project, d.token), timeout=5).json()["data"]
    assert len(calls) == 2, calls
    for leg in legs:
        d.sdk().calling.end(leg["id"], reason="hangup")
    for far in (a, b):
        assert far.wait(10) == 0, far.describe()
    deadline = time.time() + 5
    while time.time() < deadline and value(scrape(d), "dialtone_rtp_ports_free") != 2:
        time.sleep(0.1)
    assert value(scrape(d), "dialtone_rtp_ports_free") == 2


# ---------------------------------------------------------------- SIGTERM drain

def test_sigterm_drains_then_hangs_up_flushes_webhooks_and_exits_0(start_dialtone, tmp_path, sipp, hooks):
    drain = 4
    d = start_node(start_dialtone, tmp_path, {"DIALTONE_DRAIN_SECS": str(drain)})
    far = sipp("uas.xml")
    leg = dial(d, far.uri("service"), hooks.url(), ALL_EVENTS)
    wait_hook(hooks, leg["id"], "answered")
    t_term = time.time()
    d.proc.send_signal(signal.SIGTERM)
    # Draining: not ready, new calls refused (API and SIP), the live call goes on and still takes commands.
    deadline = time.time() + 3
    r = None
    while time.time() < deadline:
        r = requests.get(d.base + "/ready", timeout=5)
        if r.status_code == 503:
            break
        time.sleep(0.05)
    assert r.status_code == 503 and r.json()["checks"]["draining"] is True, r.text
    assert requests.get(d.base + "/health", timeout=5).status_code == 200
    assert_503(raw_dial(d, "sip:late@127.0.0.1:9"), "draining")
    caller = call_in(sipp, d, "inbound_uac_503.xml")
    assert caller.wait(15) == 0, caller.describe()
    assert get_call(d, leg["id"])["status"] == "answered"
    assert far.received("BYE") == []
    # After the drain time: BYE, the final webhook, exit 0.
    bye = far.wait_for("BYE", timeout=drain + 10)
    assert bye is not None, far.describe()
    assert drain - 0.5 <= bye.when - t_term <= drain + 3, f"BYE {bye.when - t_term:.2f}s after SIGTERM"
    assert d.proc.wait(20) == 0
    ended = hooks.wait_state(leg["id"], "ended", 1)
    assert ended is not None, hooks.states(leg["id"])
    assert ended["params"]["end_reason"] == "hangup"
    assert far.wait(10) == 0, far.describe()
    assert "drain over" in d.log_path.read_text()


def test_sigterm_exits_as_soon_as_the_last_call_ends(start_dialtone, tmp_path, sipp, hooks):
    d = start_node(start_dialtone, tmp_path, {"DIALTONE_DRAIN_SECS": "60"})
    far = sipp("uas.xml")
    leg = dial(d, far.uri("service"), hooks.url(), ALL_EVENTS)
    wait_hook(hooks, leg["id"], "answered")
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    assert d.proc.poll() is None, "exited while a call was live"
    t_end = time.time()
    d.sdk().calling.end(leg["id"], reason="hangup")
    assert d.proc.wait(15) == 0
    assert time.time() - t_end < 10
    assert hooks.wait_state(leg["id"], "ended", 1) is not None, hooks.states(leg["id"])
    assert far.wait(10) == 0, far.describe()


def test_a_second_sigterm_cuts_the_drain_short(start_dialtone, tmp_path, sipp, hooks):
    d = start_node(start_dialtone, tmp_path, {"DIALTONE_DRAIN_SECS": "60"})
    far = sipp("uas.xml")
    leg = dial(d, far.uri("service"), hooks.url(), ALL_EVENTS)
    wait_hook(hooks, leg["id"], "answered")
    d.proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 3
    while time.time() < deadline and requests.get(d.base + "/ready", timeout=5).status_code != 503:
        time.sleep(0.05)
    t_second = time.time()
    d.proc.send_signal(signal.SIGTERM)
    bye = far.wait_for("BYE", timeout=10)
    assert bye is not None and bye.when - t_second < 3, far.describe()
    assert d.proc.wait(15) == 0
    assert hooks.wait_state(leg["id"], "ended", 1) is not None, hooks.states(leg["id"])

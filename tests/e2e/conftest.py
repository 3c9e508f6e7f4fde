"""End-to-end fixtures: the real `dialtone` binary on free loopback ports, per-test data dirs.

Tests run two at a time (`-n 2 --dist loadgroup`, scripts/test.sh). Those that keep a core busy
or measure timing under load — software fax modems, runaway scripts, the embedded language
model — share the xdist group `cpu_bound`, so they run one after another on one worker and never
beside each other."""
import os
import socket
import subprocess
import time
import uuid

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("DIALTONE_BIN", os.path.join(ROOT, "target", "debug", "dialtone"))
EXAMPLES = os.environ.get("DIALTONE_SWML_EXAMPLES", os.path.join(os.path.dirname(ROOT), "shared", "spec", "swml-examples"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PortTaken(RuntimeError):
    """dialtone could not bind a port the fixture picked."""


class Dialtone:
    def __init__(self, tmp_path, extra_env=None):
        self.http_port = free_port()
        self.project = str(uuid.uuid4())
        self.token = "PT" + uuid.uuid4().hex
        self.data_dir = tmp_path / "data"
        self.log_path = tmp_path / "dialtone.log"
        self.env = dict(os.environ,
                        DIALTONE_HTTP_LISTEN=f"127.0.0.1:{self.http_port}",
                        DIALTONE_SIP_LISTEN=f"127.0.0.1:{free_port()}",
                        DIALTONE_DATA_DIR=str(self.data_dir),
                        DIALTONE_PROJECT_ID=self.project,
                        DIALTONE_API_TOKEN=self.token,
                        DIALTONE_SIGNING_KEY="test-signing-key",
                        DIALTONE_LOG="debug",
                        # Stop at once on SIGTERM (test_ops.py sets its own drain).
                        DIALTONE_DRAIN_SECS="0")
        self.env.update(extra_env or {})
        self.fixture_ports = {"DIALTONE_HTTP_LISTEN", "DIALTONE_SIP_LISTEN"} - set(extra_env or {})
        self.proc = None

    @property
    def base(self):
        return f"http://127.0.0.1:{self.http_port}"

    def start(self):
        # A port picked free can be taken before dialtone binds it (an ephemeral client port
        # of another test); then pick again rather than fail the test. Ports a test chose
        # itself are left as they are.
        for attempt in range(3):
            try:
                return self._start_once()
            except PortTaken:
                if attempt == 2 or not self._repick_ports():
                    raise

    def _repick_ports(self):
        repicked = False
        for key in ("DIALTONE_HTTP_LISTEN", "DIALTONE_SIP_LISTEN"):
            if key in self.fixture_ports:
                port = free_port()
                self.env[key] = f"127.0.0.1:{port}"
                if key == "DIALTONE_HTTP_LISTEN":
                    self.http_port = port
                repicked = True
        return repicked

    def _start_once(self):
        self.log = open(self.log_path, "a")
        since = self.log.tell()
        self.proc = subprocess.Popen([BINARY, "serve"], env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                log = self.log_path.read_text()
                if "Address already in use" in log[since:]:
                    raise PortTaken(log)
                raise RuntimeError(f"dialtone exited early:\n{log}")
            try:
                r = requests.get(self.base + "/api/calling/calls", auth=(self.project, self.token), timeout=1)
                if r.status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"dialtone did not come up:\n{self.log_path.read_text()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc:
            self.log.close()

    def post(self, body, auth=None, **kw):
        return requests.post(self.base + "/api/calling/calls", json=body, auth=auth or (self.project, self.token), timeout=10, **kw)

    def sdk(self):
        from signalwire.rest import RestClient
        return RestClient(project=self.project, token=self.token, host=f"127.0.0.1:{self.http_port}")


@pytest.fixture
def dialtone(tmp_path, request):
    d = Dialtone(tmp_path).start()
    yield d
    d.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(d.log_path.read_text())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


# --- Call tests (test_calls.py): a dialtone with a call runtime config, sipp far ends, a webhook receiver ---

def rtp_port_range(n=10):
    """A small RTP range of its own per test: a random even base in 30000-39000, all n ports free now."""
    import random
    for _ in range(200):
        base = random.randrange(30000, 39000, 2)
        ok = True
        for p in range(base, base + n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base, base + n - 1
    raise RuntimeError("no free RTP range")


@pytest.fixture
def start_dialtone(tmp_path, request):
    """Factory: start_dialtone(extra_env=None, name="node") -> a started Dialtone with its own RTP range,
    DIALTONE_EXTERNAL_IP=127.0.0.1 and a short webhook backoff. All are stopped at teardown; their logs
    are printed when the test failed."""
    started = []

    def start(extra_env=None, name="node"):
        # 64 ports (32 calls): calls beyond the free ports are refused up front (503 no_rtp_port), so a test
        # that dials in bursts needs room even for calls that fail at once.
        lo, hi = rtp_port_range(64)
        env = {"DIALTONE_RTP_PORTS": f"{lo}-{hi}", "DIALTONE_EXTERNAL_IP": "127.0.0.1",
               "DIALTONE_WEBHOOK_BACKOFF_MS": "200,400", "DIALTONE_WEBHOOK_MAX_ATTEMPTS": "3"}
        env.update(extra_env or {})
        where = tmp_path / name
        where.mkdir(exist_ok=True)
        d = Dialtone(where, env)
        d.rtp_range = (lo, hi)
        started.append(d)
        return d.start()

    yield start
    for d in started:
        d.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for d in started:
            print(f"==== dialtone log {d.log_path}")
            print(d.log_path.read_text())


@pytest.fixture
def hooks():
    """A real webhook receiver verifying signatures with the key the Dialtone class configures."""
    from webhooks import Webhooks
    h = Webhooks("test-signing-key")
    yield h
    h.stop()


@pytest.fixture
def sipp(tmp_path, request):
    """Factory: sipp("uas.xml", transport="udp", keys={...}, timeout_s=25) -> a running sipp far end
    (foreground, -m 1, gone after timeout_s); killed at teardown, its ladder printed when the test failed."""
    from sipp_peer import Sipp
    peers = []

    def start(scenario, transport="udp", keys=None, extra=(), timeout_s=25):
        p = Sipp(scenario, tmp_path, transport=transport, keys=keys, extra=extra, timeout_s=timeout_s)
        peers.append(p)
        return p

    yield start
    for p in peers:
        p.kill()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for p in peers:
            print(f"==== {p.describe()}")

"""baresip (Debian `baresip-core`, 1.0) as a real softphone in a test: one headless process per peer.

  peer = BaresipPeer(tmp_path / "bob", codecs=["PCMU"], tone=440, seconds=12)   # made, not started
                                      (codecs: our names, PCMU PCMA G722 OPUS; rtp_stats, wav_codec optional;
                                      account_params e.g. ";mediaenc=srtp-mand"; rtcp_mux=True offers/accepts it)
  peer.start()                        baresip -f DIR in the foreground; connects the ctrl_tcp client
  peer.uri()                          sip:bob@127.0.0.1:<sip port> (what dialtone dials)
  peer.tls_uri()                      sip:bob@127.0.0.1:<sip port + 1>;transport=tls (with extra_config
                                      ["sip_certificate PEM"], the cert and key in one file)
  peer.ctrl                           a baresip_ctrl.Baresip: cmd("dial ..."), cmd("sndcode 123#"), wait_event(...)
  peer.heard()                        (rate, channels, samples) of the newest sndfile "-dec.wav" (what it heard)
  peer.log()                          its stdout/stderr so far
  peer.kill()                         SIGTERM, then SIGTERM again / SIGKILL, by pid; idempotent

The config comes from tests/e2e/peers/baresip/{config,accounts}.in (the team's shared peers toolkit,
with the G.722 and Opus modules added). Each peer gets its own SIP port (and port+1, which baresip
binds for TLS), ctrl_tcp port and RTP range. What it sends is a sine of `tone` Hz from a WAV the
fixture writes at the codec's rate: aufile refuses a file whose rate is not the codec's (8000 Hz for
G.711, 16000 Hz for G.722, 48000 Hz stereo for Opus). baresip hangs the call up (BYE) when the
file ends, so `seconds` also bounds the call.
"""
import math
import os
import random
import signal
import socket
import struct
import subprocess
import time
import wave

from baresip_ctrl import Baresip

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "peers", "baresip")

# Our codec name -> (baresip's audio_codecs spelling, source WAV rate, source WAV channels)
CODECS = {
    "PCMU": ("PCMU/8000/1", 8000, 1),
    "PCMA": ("PCMA/8000/1", 8000, 1),
    "G722": ("G722/16000/1", 16000, 1),
    "OPUS": ("opus/48000/2", 48000, 2),
}


def _bindable(port, kinds=(socket.SOCK_DGRAM, socket.SOCK_STREAM)):
    for kind in kinds:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _outside_ephemeral(default=(50000, 59000)):
    """A port window the kernel never hands out for outgoing connections: baresip binds TCP (SIP, TLS,
    ctrl), and any test's HTTP client could take a port between our check and baresip's bind."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return default
    if hi <= 64000:
        return hi + 1, 65500
    if lo >= 12000:
        return 2000, lo - 1
    return default


def _free_run(n, lo=None, hi=None, step=2):
    """n consecutive ports free for UDP and TCP, base random in [lo, hi)."""
    if lo is None or hi is None:
        lo, hi = _outside_ephemeral()
    for _ in range(500):
        base = random.randrange(lo, hi - n, step)
        if all(_bindable(p) for p in range(base, base + n)):
            return base
    raise RuntimeError("no free ports for baresip")


def write_tone_wav(path, freq, seconds, rate=8000, channels=1, amp=0.3):
    n = int(seconds * rate)
    a = amp * 32767
    w = wave.open(str(path), "wb")
    w.setnchannels(channels)
    w.setsampwidth(2)
    w.setframerate(rate)
    frames = bytearray()
    for i in range(n):
        v = struct.pack("<h", int(a * math.sin(2 * math.pi * freq * i / rate)))
        frames += v * channels
    w.writeframes(bytes(frames))
    w.close()


def read_wav(path):
    """(rate, channels, first channel's samples) of a 16-bit PCM WAV."""
    with wave.open(str(path)) as w:
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: {width * 8}-bit samples, expected 16")
    samples = struct.unpack("<%dh" % (len(raw) // 2), raw)
    return rate, ch, list(samples[::ch])


class BaresipPeer:
    def __init__(self, where, codecs=("PCMU",), tone=440, seconds=12, user="bob", answermode="auto",
                 rtp_stats=False, wav_codec=None, account_params="", rtcp_mux=False, extra_config=()):
        self.dir = os.path.abspath(str(where))
        os.makedirs(self.dir, exist_ok=True)
        self.codecs = list(codecs)
        self.user = user
        self.tone = tone
        # aufile wants the rate (and channels) of the codec the call ends up on: the first listed
        # unless the caller knows better (wav_codec).
        first = CODECS[wav_codec or self.codecs[0]]
        self.src_wav = os.path.join(self.dir, "src.wav")
        write_tone_wav(self.src_wav, tone, seconds, rate=first[1], channels=first[2])
        self._fields = {"SRC_WAV": self.src_wav, "DIR": self.dir, "RTP_STATS": "yes" if rtp_stats else "no",
                        "USER": user, "ANSWERMODE": answermode,
                        "CODECS": ",".join(CODECS[c][0] for c in self.codecs),
                        "ACCOUNT_EXTRA": account_params, "RTCP_MUX": "yes" if rtcp_mux else "no"}
        self._extra_config = list(extra_config)
        self._configure()
        self.log_path = os.path.join(self.dir, "baresip.log")
        self.proc = None
        self.ctrl = None

    def _configure(self):
        """Pick its ports and write config + accounts (again, when a port was taken under us)."""
        # The SIP port and port+1 (TLS) must be free; keep a gap to the ctrl port.
        base = _free_run(4)
        self.sip_port, self.ctrl_port = base, base + 3
        rtp = _free_run(10)
        self.rtp_range = (rtp, rtp + 9)
        fields = dict(self._fields, SIP_PORT=str(self.sip_port), CTRL_PORT=str(self.ctrl_port),
                      RTP_RANGE=f"{rtp}-{rtp + 9}")
        extra_config = self._extra_config
        for name in ("config", "accounts"):
            with open(os.path.join(TEMPLATES, name + ".in")) as f:
                lines = f.read().splitlines(keepends=True)
            out = []
            for line in lines:
                if not line.startswith("#"):
                    for k, v in fields.items():
                        line = line.replace(f"@{k}@", v)
                out.append(line)
            if name == "config":
                out += [line + "\n" for line in extra_config]
            with open(os.path.join(self.dir, name), "w") as f:
                f.write("".join(out))
        open(os.path.join(self.dir, "contacts"), "w").close()

    def start(self, lifetime=60):
        # Ports are checked free when picked, but another process can bind one before baresip does:
        # pick again rather than fail the test on a race that says nothing about dialtone.
        for attempt in range(3):
            self._log = open(self.log_path, "ab")
            seen = self._log.tell()
            self.proc = subprocess.Popen(["baresip", "-f", self.dir, "-t", str(lifetime)],
                                         stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
            try:
                self.ctrl = Baresip(self.ctrl_port, connect_timeout=10)
                return self
            except OSError:
                self.kill()
                if attempt < 2 and "Address already in use" in self.log()[seen:]:
                    self._configure()
                    continue
                raise RuntimeError(f"baresip did not come up:\n{self.log()}")
        raise RuntimeError("unreachable")

    def uri(self, user=None):
        """Its account's address: baresip answers 404 to a Request-URI whose user is not the account's."""
        return f"sip:{user or self.user}@127.0.0.1:{self.sip_port}"

    def tls_uri(self, user=None):
        """The same over TLS (baresip's TLS port is sip_port + 1; give it `sip_certificate`)."""
        return f"sip:{user or self.user}@127.0.0.1:{self.sip_port + 1};transport=tls"

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def dumps(self, kind="dec"):
        return sorted(os.path.join(self.dir, f) for f in os.listdir(self.dir)
                      if f.startswith("dump-") and f.endswith(f"-{kind}.wav"))

    def heard(self, timeout=5):
        """The newest recording of what baresip heard (sndfile's -dec.wav), once it has stopped growing."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            files = self.dumps("dec")
            if files:
                size = os.path.getsize(files[-1])
                if size > 44 and size == last:
                    return read_wav(files[-1])
                last = size
            time.sleep(0.3)
        files = self.dumps("dec")
        if not files:
            raise AssertionError(f"baresip recorded nothing in {self.dir}; log:\n{self.log()}")
        return read_wav(files[-1])

    def kill(self):
        if self.ctrl is not None:
            self.ctrl.close()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # The first SIGTERM hangs up and waits for open transactions; the second ends it at once.
            for sig in (signal.SIGTERM, signal.SIGTERM):
                try:
                    os.kill(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(1.5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def describe(self):
        return f"baresip {self.uri()} codecs={self.codecs} dir={self.dir}\n{self.log()}"

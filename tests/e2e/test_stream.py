"""Media out of the call and back in: `calling.stream` / SWML `stream` to a WebSocket server, and
`calling.tap` / SWML `tap` to RTP and WebSocket receivers (docs/streaming.md).

The far end is baresip (it sends a 440 Hz tone and records what it hears). The media servers are
written here with the `websockets` library: over `wss://` with a certificate from a CA made per test
(dialtone trusts it through `DIALTONE_WS_CA_FILE`), they check what dialtone sends by content (the
far end's tone found by Goertzel in the decoded `media` payloads, 50 messages a second per track,
ordered sequence numbers and timestamps) and send a different tone back that baresip must hear;
`mark` must come back once the audio before it played, `clear` must cut the bot's audio at once.
"""
import asyncio
import base64
import json
import math
import shutil
import socket
import ssl
import threading
import time

import pytest
from websockets.asyncio.server import serve

from audio_check import goertzel_db, ulaw_decode
from test_calls import alaw_decode
from test_interop import THEIR_TONE, baresip, doc, start_node, tone_share  # noqa: F401
from test_tls import make_certs

pytestmark = pytest.mark.skipif(shutil.which("baresip") is None or shutil.which("openssl") is None,
                                reason="baresip-core or openssl is not installed")

FROM = "+15105550100"
BOT_TONE = 1600


def ulaw_encode(sample):
    """G.711 µ-law of one 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent, mask = 7, 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone_ulaw(freq, seconds, amp=8000):
    n = int(8000 * seconds)
    return bytes(ulaw_encode(int(amp * math.sin(2 * math.pi * freq * i / 8000))) for i in range(n))


class WsServer:
    """A WebSocket media server on 127.0.0.1 in its own thread. `on_start(ws, start_msg)` runs when the
    `start` message arrives (the bot's behaviour); everything received is kept with its arrival time."""

    def __init__(self, ssl_ctx=None, on_start=None, stall_after=None):
        self.received = []
        self.auth = None
        self.on_start = on_start
        self.stall_after = stall_after
        self.closed_at = None
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ssl_ctx, ready), daemon=True)
        self.thread.start()
        assert ready.wait(5)

    def _run(self, ssl_ctx, ready):
        asyncio.set_event_loop(self.loop)

        async def main():
            async with serve(self._handler, "127.0.0.1", 0, ssl=ssl_ctx, max_size=None) as server:
                self.port = server.sockets[0].getsockname()[1]
                ready.set()
                self.stop_future = self.loop.create_future()
                await self.stop_future

        self.loop.run_until_complete(main())

    async def _handler(self, ws):
        self.auth = ws.request.headers.get("Authorization")
        first = time.time()
        try:
            async for msg in ws:
                now = time.time()
                self.received.append((now, msg))
                if isinstance(msg, str):
                    parsed = json.loads(msg)
                    if parsed.get("event") == "start" and self.on_start:
                        asyncio.ensure_future(self.on_start(ws, parsed))
                if self.stall_after is not None and now - first > self.stall_after:
                    # Stop reading for 5 s (the TCP window fills), then close.
                    await asyncio.sleep(5)
                    self.closed_at = time.time()
                    await ws.close()
                    return
        except Exception:
            pass

    def stop(self):
        self.loop.call_soon_threadsafe(lambda: self.stop_future.done() or self.stop_future.set_result(None))
        self.thread.join(5)

    def events(self, kind=None):
        out = []
        for t, m in self.received:
            if isinstance(m, str):
                j = json.loads(m)
                if kind is None or j.get("event") == kind:
                    out.append((t, j))
        return out

    def binary(self):
        return [(t, m) for t, m in self.received if isinstance(m, bytes)]


def server_ssl(certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["cert"], certs["key"])
    return ctx


def track_audio(server, track):
    """The decoded µ-law of one track's `media` messages, in order, with the messages."""
    msgs = [j for _, j in server.events("media") if j["media"]["track"] == track]
    pcm = []
    for j in msgs:
        pcm.extend(ulaw_decode(b) for b in base64.b64decode(j["media"]["payload"]))
    return msgs, pcm


def check_media_stream(msgs, pcm, freq):
    assert len(msgs) > 100, len(msgs)
    # Ordered: chunk numbers count up by one, timestamps never go back, one message per 20 ms.
    chunks = [int(j["media"]["chunk"]) for j in msgs]
    assert chunks == list(range(chunks[0], chunks[0] + len(chunks))), chunks[:10]
    stamps = [int(j["media"]["timestamp"]) for j in msgs]
    assert stamps == sorted(stamps)
    span_s = (stamps[-1] - stamps[0]) / 1000
    rate = (len(msgs) - 1) / span_s
    assert 45 <= rate <= 55, f"{rate:.1f} media messages per second"
    assert all(len(base64.b64decode(j["media"]["payload"])) == 160 for j in msgs)
    hit, voiced = tone_share(pcm, 8000, freq)
    assert hit >= 20 and hit >= 0.7 * voiced, (hit, voiced)


def stream_node(start_dialtone, tmp_path, certs):
    return start_node(start_dialtone, tmp_path, extra_env={"DIALTONE_WS_CA_FILE": certs["ca"]})


def test_bidirectional_stream_over_wss_audio_both_ways_marks_and_events(start_dialtone, tmp_path, baresip, hooks):
    certs = make_certs(tmp_path / "certs")
    bot = {}

    async def speak(ws, start):
        # 3 s of the bot's tone sent at once (faster than real time: dialtone queues it), then a mark.
        audio = tone_ulaw(BOT_TONE, 3.0)
        for i in range(0, len(audio), 160):
            await ws.send(json.dumps({"event": "media", "streamSid": start["streamSid"],
                                      "media": {"payload": base64.b64encode(audio[i:i + 160]).decode()}}))
        await ws.send(json.dumps({"event": "mark", "streamSid": start["streamSid"], "mark": {"name": "spoken"}}))
        bot["mark_sent"] = time.time()

    server = WsServer(server_ssl(certs), on_start=speak)
    try:
        d = stream_node(start_dialtone, tmp_path, certs)
        peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=20)
        swml = doc(
            {"stream": {"url": f"wss://127.0.0.1:{server.port}/media", "track": "both_tracks", "name": "bot",
                        "status_url": hooks.url("/stream"), "authorization_bearer_token": "s3cret",
                        "custom_parameters": {"customer": "42"}}},
            {"request": {"url": hooks.url("/vars"), "method": "POST",
                         "body": {"result": "${stream_result}", "id": "${stream_control_id}"}}},
            {"play": {"url": "silence:6"}},
            {"hangup": {}},
        )
        leg = d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=swml)
        assert hooks.wait_on("/stream", 2, timeout=25), hooks.on("/stream")
        peer.ctrl.wait_event("CALL_CLOSED", timeout=10)
        vars_ = [e for e in hooks.on("/vars")]
        assert vars_ and vars_[0]["result"] == "success", vars_

        # The handshake carried the bearer token; connected, then start with our fields.
        assert server.auth == "Bearer s3cret", server.auth
        kinds = [j["event"] for _, j in server.events()]
        assert kinds[:2] == ["connected", "start"], kinds[:5]
        start = server.events("start")[0][1]
        assert start["start"]["callSid"] == leg["id"]
        assert start["start"]["tracks"] == ["inbound", "outbound"]
        assert start["start"]["customParameters"] == {"customer": "42"}
        assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        assert kinds[-1] == "stop", kinds[-5:]
        seqs = [int(j["sequenceNumber"]) for _, j in server.events() if "sequenceNumber" in j]
        assert seqs == list(range(1, len(seqs) + 1))

        # The far end's tone reached the server on the inbound track, the bot's own audio on the outbound.
        msgs, pcm = track_audio(server, "inbound")
        check_media_stream(msgs, pcm, THEIR_TONE)
        msgs, pcm = track_audio(server, "outbound")
        check_media_stream(msgs, pcm, BOT_TONE)

        # baresip heard the bot's tone.
        rate, _, heard = peer.heard()
        hit, voiced = tone_share(heard, rate, BOT_TONE)
        assert hit >= 20, (hit, voiced)

        # The mark came back once the 3 s before it had played (not when it was received).
        marks = server.events("mark")
        assert [j["mark"]["name"] for _, j in marks] == ["spoken"], marks
        waited = marks[0][0] - bot["mark_sent"]
        assert 2.0 <= waited <= 5.0, waited

        states = [e["params"] for e in hooks.on("/stream")]
        assert [s["state"] for s in states] == ["streaming", "finished"], states
        for s in states:
            assert s["control_id"] == vars_[0]["id"] and s["name"] == "bot" and s["call_id"] == leg["id"]
            assert s["url"] == f"wss://127.0.0.1:{server.port}/media"
            assert set(s) == {"call_id", "node_id", "segment_id", "control_id", "state", "url", "name"}, s
    finally:
        server.stop()


def test_clear_cuts_the_bots_audio_and_releases_its_marks(start_dialtone, tmp_path, baresip, hooks):
    certs = make_certs(tmp_path / "certs")
    bot = {}

    async def speak_then_clear(ws, start):
        audio = tone_ulaw(BOT_TONE, 10.0)
        await ws.send(json.dumps({"event": "media", "media": {"payload": base64.b64encode(audio).decode()}}))
        await ws.send(json.dumps({"event": "mark", "mark": {"name": "long"}}))
        await asyncio.sleep(1.5)
        bot["clear_sent"] = time.time()
        await ws.send(json.dumps({"event": "clear", "streamSid": start["streamSid"]}))

    server = WsServer(server_ssl(certs), on_start=speak_then_clear)
    try:
        d = stream_node(start_dialtone, tmp_path, certs)
        peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=20)
        swml = doc({"stream": {"url": f"wss://127.0.0.1:{server.port}/", "status_url": hooks.url("/get"),
                               "status_url_method": "GET"}},
                   {"play": {"url": "silence:7"}}, {"hangup": {}})
        leg = d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=swml)
        peer.ctrl.wait_event("CALL_CLOSED", timeout=25)
        # status_url_method GET: the events' scalars in the query of a GET, no body (A12).
        from urllib.parse import parse_qs, urlsplit
        deadline = time.time() + 10
        gets = []
        while time.time() < deadline and len(gets) < 2:
            gets = [a for a in hooks.events if a["path"].startswith("/get?")]
            time.sleep(0.1)
        assert [a["method"] for a in gets] == ["GET", "GET"] and not any(a["body"] for a in gets), gets
        queries = [parse_qs(urlsplit(a["path"]).query) for a in gets]
        assert [q["state"] for q in queries] == [["streaming"], ["finished"]], queries
        assert all(q["event_type"] == ["calling.call.stream"] and q["call_id"] == [leg["id"]] for q in queries)
        marks = server.events("mark")
        assert [j["mark"]["name"] for _, j in marks] == ["long"], marks
        assert marks[0][0] - bot["clear_sent"] < 0.5, "the cleared mark came back at the clear"
        rate, _, heard = peer.heard()
        hit, _ = tone_share(heard, rate, BOT_TONE)
        # ~1.5 s of the 10 s played before the clear (0.1 s windows).
        assert 5 <= hit <= 25, hit
    finally:
        server.stop()


def test_a_stalled_then_closed_server_ends_its_stream_not_the_call(start_dialtone, tmp_path, baresip, hooks):
    certs = make_certs(tmp_path / "certs")
    stalling = WsServer(server_ssl(certs), stall_after=1.0)
    healthy = WsServer(server_ssl(certs))
    try:
        d = stream_node(start_dialtone, tmp_path, certs)
        peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=20)
        swml = doc(
            {"stream": {"url": f"wss://127.0.0.1:{stalling.port}/", "control_id": "stalls",
                        "status_url": hooks.url("/s1")}},
            {"stream": {"url": f"wss://127.0.0.1:{healthy.port}/", "control_id": "healthy",
                        "status_url": hooks.url("/s2")}},
            {"play": {"url": "silence:10"}},
            {"hangup": {}},
        )
        d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=swml)
        assert hooks.wait_on("/s1", 2, timeout=20), hooks.on("/s1")
        peer.ctrl.wait_event("CALL_CLOSED", timeout=20)
        assert stalling.closed_at is not None
        # The healthy stream saw the whole call: ~10 s of media at 50 a second, none missing.
        msgs, pcm = track_audio(healthy, "inbound")
        check_media_stream(msgs, pcm, THEIR_TONE)
        assert len(msgs) > 400, len(msgs)
        assert [e["params"]["state"] for e in hooks.on("/s2")] == ["streaming", "finished"]
        log = d.log_path.read_text(errors="replace")
        assert "stream finished" in log and "closed by the server" in log
    finally:
        stalling.stop()
        healthy.stop()


def rtp_receiver():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.5)
    return s


def test_rest_tap_to_rtp_and_to_a_websocket(start_dialtone, tmp_path, baresip, hooks):
    sock = rtp_receiver()
    ws = WsServer()
    try:
        d = start_node(start_dialtone, tmp_path, extra_env={"DIALTONE_TAP_ALLOW_PRIVATE": "true"})
        peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=20)
        swml = doc({"play": {"url": "silence:12"}}, {"hangup": {}})
        sdk = d.sdk()
        leg = sdk.calling.dial(from_=FROM, to=peer.uri(), swml=swml)
        peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
        time.sleep(0.5)
        port = sock.getsockname()[1]
        r = sdk.calling.tap(leg["id"], control_id="rtp-tap", tap={"type": "audio", "params": {"direction": "speak"}},
                            device={"type": "rtp", "params": {"addr": "127.0.0.1", "port": port, "codec": "PCMA",
                                                              "ptime": 20}},
                            extras={"status_url": hooks.url("/tap")})
        assert r["control_id"] == "rtp-tap"
        sdk.calling.tap(leg["id"], control_id="ws-tap", tap={"type": "audio", "params": {"direction": "speak"}},
                        device={"type": "ws", "params": {"uri": f"ws://127.0.0.1:{ws.port}/tap"}})
        packets = []
        deadline = time.time() + 4
        while time.time() < deadline:
            try:
                packets.append((time.time(), sock.recv(2048)))
            except socket.timeout:
                pass
        sdk.calling.tap_stop(leg["id"], control_id="rtp-tap")
        assert hooks.wait_on("/tap", 2, timeout=10), hooks.on("/tap")
        time.sleep(1)
        got_after_stop = 0
        try:
            while True:
                sock.recv(2048)
                got_after_stop += 1
        except socket.timeout:
            pass

        # RTP: PCMA (payload type 8), 160 bytes per 20 ms, paced (~50 a second), the far end's tone.
        assert len(packets) > 150, len(packets)
        heads = [(p[1] & 0x7F, int.from_bytes(p[2:4], "big"), int.from_bytes(p[4:8], "big"), len(p) - 12)
                 for _, p in packets]
        assert all(pt == 8 and n == 160 for pt, _, _, n in heads), heads[:3]
        seqs = [s for _, s, _, _ in heads]
        assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:]))
        gaps = sorted(b[0] - a[0] for a, b in zip(packets, packets[1:]))
        assert gaps[len(gaps) // 2] == pytest.approx(0.02, abs=0.006), gaps[len(gaps) // 2]
        pcm = []
        for _, p in packets:
            pcm.extend(alaw_decode(b) for b in p[12:])
        hit, voiced = tone_share(pcm, 8000, THEIR_TONE)
        assert hit >= 20 and hit >= 0.7 * voiced, (hit, voiced)
        assert got_after_stop <= 5, got_after_stop

        # The tap's events echo the device with what was negotiated.
        states = [e["params"] for e in hooks.on("/tap")]
        assert [s["state"] for s in states] == ["tapping", "finished"], states
        assert states[0]["tap"] == {"type": "audio", "params": {"direction": "speak"}}
        assert states[0]["device"] == {"type": "rtp", "params": {"addr": "127.0.0.1", "port": port,
                                                                 "codec": "PCMA", "ptime": 20}}

        # The WebSocket tap: binary G.711 frames of 20 ms with the same tone.
        peer.ctrl.wait_event("CALL_CLOSED", timeout=20)
        frames = ws.binary()
        assert len(frames) > 200, len(frames)
        assert all(len(m) == 160 for _, m in frames)
        pcm = []
        for _, m in frames:
            pcm.extend(ulaw_decode(b) for b in m)
        hit, voiced = tone_share(pcm, 8000, THEIR_TONE)
        assert hit >= 20 and hit >= 0.7 * voiced, (hit, voiced)
    finally:
        sock.close()
        ws.stop()


def test_swml_tap_sets_its_variables_and_stop_tap_ends_it(start_dialtone, tmp_path, baresip, hooks):
    sock = rtp_receiver()
    try:
        d = start_node(start_dialtone, tmp_path, extra_env={"DIALTONE_TAP_ALLOW_PRIVATE": "true"})
        peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=20)
        port = sock.getsockname()[1]
        swml = doc(
            {"tap": {"uri": f"rtp://127.0.0.1:{port}", "direction": "both", "rtp_ptime": 40,
                     "status_url": hooks.url("/tap")}},
            {"request": {"url": hooks.url("/vars"), "method": "POST",
                         "body": {k: "${" + k + "}" for k in ("tap_result", "tap_control_id", "tap_uri", "tap_codec",
                                                              "tap_rate", "tap_ptime", "tap_rtp_src_addr",
                                                              "tap_rtp_src_port")}}},
            {"play": {"url": "silence:2"}},
            {"stop_tap": {}},
            {"request": {"url": hooks.url("/vars2"), "method": "POST", "body": {"r": "${stop_tap_result}"}}},
            {"tap": {"uri": "rtp://example.com:4000"}},
            {"request": {"url": hooks.url("/vars3"), "method": "POST", "body": {"r": "${tap_result}"}}},
            {"hangup": {}},
        )
        d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=swml)
        assert hooks.wait_on("/vars3", 1, timeout=20), [e["path"] for e in hooks.events]
        v = hooks.on("/vars")[0]
        assert v["tap_result"] == "success" and v["tap_uri"] == f"rtp://127.0.0.1:{port}", v
        assert (v["tap_codec"], v["tap_rate"], v["tap_ptime"]) == ("PCMU", "8000", "40"), v
        assert v["tap_rtp_src_addr"] == "127.0.0.1" and int(v["tap_rtp_src_port"]) > 0, v
        assert hooks.on("/vars2")[0]["r"] == "success"
        # An RTP tap needs an IPv4 address: the step fails, the document goes on.
        assert hooks.on("/vars3")[0]["r"] == "failed"
        packets = []
        try:
            while True:
                data, src = sock.recvfrom(2048)
                packets.append((data, src))
        except socket.timeout:
            pass
        assert packets and all(len(p) - 12 == 320 for p, _ in packets), len(packets)
        assert packets[0][1][1] == int(v["tap_rtp_src_port"])
        states = [e["params"]["state"] for e in hooks.on("/tap")]
        assert states == ["tapping", "finished"], states
    finally:
        sock.close()


def test_bad_fork_requests_are_refused_and_the_call_goes_on(start_dialtone, tmp_path, baresip, hooks):
    d = start_node(start_dialtone, tmp_path)
    peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=20)
    swml = doc(
        {"tap": {"uri": "rtp://127.0.0.1:9"}},
        {"stream": {"url": "wss://127.0.0.1:9/", "codec": "OPUS"}},
        {"stream": {"url": "wss://127.0.0.1:9/"}},
        {"request": {"url": hooks.url("/vars"), "method": "POST",
                     "body": {"tap": "${tap_result}", "stream": "${stream_result}"}}},
        {"play": {"url": "silence:20"}},
    )
    leg = d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=swml)
    assert hooks.wait_on("/vars", 1, timeout=20)
    v = hooks.on("/vars")[0]
    # Loopback is private (no tap_allow_private), OPUS is no stream codec, nothing listens on port 9.
    assert v == {"tap": "failed", "stream": "failed"}, v
    log = d.log_path.read_text(errors="replace")
    assert "tap_allow_private is off" in log and "OPUS" in log
    cases = [
        ("calling.stream", {"url": "ws://127.0.0.1:9/"}, 422),
        ("calling.stream", {"url": "wss://127.0.0.1:9/", "codec": "G722"}, 422),
        ("calling.tap", {"tap": {"type": "audio", "params": {"direction": "both"}},
                         "device": {"type": "rtp", "params": {"addr": "127.0.0.1", "port": 4000}}}, 422),
        ("calling.tap", {"tap": {"type": "audio", "params": {"direction": "both"}},
                         "device": {"type": "ws", "params": {"uri": "ws://127.0.0.1:9/", "codec": "OPUS"}}}, 501),
        ("calling.stream.stop", {"control_id": "nope"}, 422),
        ("calling.tap.stop", {"control_id": "nope"}, 422),
    ]
    for command, params, status in cases:
        r = d.post({"command": command, "id": leg["id"], "params": params})
        assert r.status_code == status, (command, params, r.status_code, r.text)
        assert r.json()["errors"], r.text
    # A control_id another operation of the call holds.
    play = d.post({"command": "calling.play", "id": leg["id"],
                   "params": {"control_id": "t1", "play": [{"type": "silence", "params": {"duration": 30}}]}})
    assert play.status_code == 200, play.text
    tap = {"tap": {"type": "audio", "params": {"direction": "both"}},
           "device": {"type": "ws", "params": {"uri": "ws://127.0.0.1:9/"}}}
    again = d.post({"command": "calling.tap", "id": leg["id"], "params": {"control_id": "t1", **tap}})
    assert again.status_code == 422 and again.json()["errors"][0]["code"] == "value_not_unique", again.text
    # The call is unharmed.
    assert d.sdk().calling.end(leg["id"], reason="hangup")
    peer.ctrl.wait_event("CALL_CLOSED", timeout=10)


def test_connect_to_a_stream_lasts_until_the_server_hangs_up(start_dialtone, tmp_path, baresip, hooks):
    certs = make_certs(tmp_path / "certs")
    bot = {}

    async def talk_then_leave(ws, start):
        bot["start"] = time.time()
        audio = tone_ulaw(BOT_TONE, 2.0)
        await ws.send(json.dumps({"event": "media", "media": {"payload": base64.b64encode(audio).decode()}}))
        await asyncio.sleep(3.5)
        bot["closed"] = time.time()
        await ws.close()

    server = WsServer(server_ssl(certs), on_start=talk_then_leave)
    try:
        d = stream_node(start_dialtone, tmp_path, certs)
        peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=20)
        swml = doc(
            {"connect": {"to": f"stream:wss://127.0.0.1:{server.port}/bot", "realtime": True, "codec": "PCMU",
                         "custom_parameters": {"lang": "en"}}},
            {"request": {"url": hooks.url("/vars"), "method": "POST",
                         "body": {"result": "${connect_result}"}}},
            {"hangup": {}},
        )
        d.sdk().calling.dial(from_=FROM, to=peer.uri(), swml=swml)
        assert hooks.wait_on("/vars", 1, timeout=20)
        reported_at = time.time()
        assert hooks.on("/vars")[0]["result"] == "connected", hooks.on("/vars")
        # The connect held the document until the server left.
        assert reported_at >= bot["closed"], (reported_at, bot)
        start = server.events("start")[0][1]
        assert start["start"]["customParameters"] == {"lang": "en"}
        msgs, pcm = track_audio(server, "inbound")
        check_media_stream(msgs, pcm, THEIR_TONE)
        peer.ctrl.wait_event("CALL_CLOSED", timeout=10)
        rate, _, heard = peer.heard()
        hit, _ = tone_share(heard, rate, BOT_TONE)
        assert hit >= 12, hit
    finally:
        server.stop()

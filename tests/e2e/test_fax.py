"""Fax between two dialtone nodes over real SIP and RTP (docs/fax.md). Debian has no independent SIP fax peer,
so node A's SWML `send_fax` dials node B, whose inbound route runs `receive_fax`: B offers T.38 by re-INVITE and
A accepts (UDPTL between two spandsp T.38 terminals), or A refuses (`DIALTONE_FAX_T38=false`) and the fax goes
as T.30 over PCMU between two spandsp audio terminals; each on its node's 20 ms media clock. The document is a PDF written here with Ghostscript
from a PostScript page description (no binary fixture), served by a real HTTP server; the `calling.call.fax`
events reach a real webhook receiver; the received PDF is fetched from B's API and its pages compared with the
source's, rendered the same way. A voice far end (sipp playing speech) makes the fax fail cleanly.
"""
import subprocess
import time

import pytest
import requests

from media_sink import HttpPeer
from test_calls import sipp_done
from test_detect import flite, silence
from test_inbound import route_toml, start_node
from test_ops import scrape
from test_record import write_ulaw_wav

NUMBER = "+15557770000"
SENDER = "+15551110000"

pytestmark = [
    pytest.mark.skipif(subprocess.run(["which", "gs"], capture_output=True).returncode != 0,
                       reason="Ghostscript (gs) is not installed"),
    # Modems in software keep a core busy: never beside the other CPU-bound tests (conftest.py).
    pytest.mark.xdist_group("cpu_bound"),
]


def doc(*steps):
    return {"version": "1.0.0", "sections": {"main": list(steps)}}


def make_pdf(path, pages):
    """A `pages`-page PDF: on each page its number in big type, a box at a place of its own, and some text."""
    ps = ["%!PS"]
    for n in range(1, pages + 1):
        ps += ["/Helvetica-Bold findfont 72 scalefont setfont", f"100 600 moveto (PAGE {n}) show",
               "/Helvetica findfont 16 scalefont setfont",
               f"72 520 moveto (dialtone fax test: page {n} of {pages}) show",
               "72 490 moveto (The quick brown fox jumps over the lazy dog.) show",
               f"{80 + 120 * n} {150 + 60 * n} 100 100 rectfill", "showpage"]
    src = path.with_suffix(".ps")
    src.write_text("\n".join(ps) + "\n")
    subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sPAPERSIZE=letter",
                    f"-sOutputFile={path}", str(src)], check=True)
    return path.read_bytes()


def render(pdf_path, out_dir, tag):
    """Each page as a 40 dpi grey PGM on a letter canvas (the content fitted to it): a list of (w, h, bytes)."""
    out_dir.mkdir(exist_ok=True)
    pattern = out_dir / f"{tag}-%03d.pgm"
    subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pgmraw", "-r40", "-g340x440",
                    "-dFIXEDMEDIA", "-dPDFFitPage", "-dTextAlphaBits=4", "-dGraphicsAlphaBits=4",
                    f"-sOutputFile={pattern}", str(pdf_path)], check=True)
    pages = []
    for f in sorted(out_dir.glob(f"{tag}-*.pgm")):
        data = f.read_bytes()
        # P5, then width, height and maxval (comment lines between), one whitespace, the pixels.
        fields, pos = [], 0
        while len(fields) < 4:
            line_end = data.index(b"\n", pos)
            line = data[pos:line_end]
            pos = line_end + 1
            if not line.startswith(b"#"):
                fields += line.split()
        w, h = int(fields[1]), int(fields[2])
        pages.append((w, h, data[pos:pos + w * h]))
    return pages


def difference(a, b):
    """Mean absolute grey difference (0-255) of two same-size renderings, after 5x5 block averaging (a fax
    page moves content by a pixel or two and dithers edges)."""
    (w, h, pa), (w2, h2, pb) = a, b
    assert (w, h) == (w2, h2)
    k = 5
    total, blocks = 0, 0
    for by in range(0, h - k + 1, k):
        for bx in range(0, w - k + 1, k):
            sa = sum(pa[(by + y) * w + bx + x] for y in range(k) for x in range(k))
            sb = sum(pb[(by + y) * w + bx + x] for y in range(k) for x in range(k))
            total += abs(sa - sb) / (k * k)
            blocks += 1
    return total / blocks


@pytest.fixture
def http():
    p = HttpPeer()
    yield p
    p.stop()


def receiver(start_dialtone, tmp_path, hooks, extra_steps=()):
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    route = route_toml(NUMBER, swml=doc({"receive_fax": {"status_url": hooks.url("/rx")}}, *extra_steps,
                                        {"hangup": {}}))
    b = start_node(start_dialtone, b_dir, [route])
    return b


def send(a, to, document, hooks, **params):
    swml = doc({"send_fax": {"document": document, "status_url": hooks.url("/tx"), **params}},
               {"play": {"url": "say:${send_fax_result} ${send_fax_pages}"}}, {"hangup": {}})
    r = a.post({"command": "dial", "params": {"from": SENDER, "to": to, "swml": swml,
                                              "status_url": hooks.url("/call-a")}})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def finished(hooks, path, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in hooks.on(path):
            if e["params"]["fax"]["type"] == "finished":
                return e
        time.sleep(0.1)
    raise AssertionError(f"no fax finished on {path}: {hooks.on(path)}")


def pages(hooks, path):
    return [e["params"]["fax"]["params"]["number"] for e in hooks.on(path) if e["params"]["fax"]["type"] == "page"]


def sender_node(start_dialtone, transport):
    """Node A; over `audio` it refuses B's T.38 offer (488), so the fax falls back to G.711."""
    return start_dialtone({"DIALTONE_FAX_T38": "false"} if transport == "audio" else {}, name="a")


@pytest.mark.parametrize("transport", ["t38", "audio"])
def test_a_three_page_pdf_goes_from_one_node_to_another_and_comes_out_the_same(
        start_dialtone, tmp_path, hooks, http, transport):
    source = make_pdf(tmp_path / "source.pdf", 3)
    url = http.route("/doc.pdf", source, "application/pdf")
    b = receiver(start_dialtone, tmp_path, hooks)
    a = sender_node(start_dialtone, transport)
    t0 = time.time()
    call_a = send(a, f"sip:{NUMBER}@127.0.0.1:{b.sip_port}", url, hooks, header_info="dialtone e2e",
                  identity="+1 555 111 0000")
    tx = finished(hooks, "/tx", 150)
    rx = finished(hooks, "/rx", 30)
    took = time.time() - t0
    txp, rxp = tx["params"]["fax"]["params"], rx["params"]["fax"]["params"]
    assert tx["event_type"] == rx["event_type"] == "calling.call.fax"
    assert txp["success"] is True and txp["result"] == 0 and txp["pages"] == 3, txp
    assert rxp["success"] is True and rxp["result"] == 0 and rxp["pages"] == 3, rxp
    assert (txp["direction"], rxp["direction"]) == ("send", "receive")
    assert txp["document"] == url and txp["format"] == rxp["format"] == "pdf"
    assert txp["identity"] == "+1 555 111 0000" and rxp["remote_identity"] == "+1 555 111 0000", (txp, rxp)
    # B's station id defaults to its own number, which is what A heard as the far end's.
    assert rxp["identity"] == NUMBER and txp["remote_identity"] == NUMBER, (txp, rxp)
    assert pages(hooks, "/tx") == [1, 2, 3] and pages(hooks, "/rx") == [1, 2, 3]
    assert tx["params"]["call_id"] == call_a and tx["params"]["control_id"].startswith("swml-send_fax")
    # The PDF B received, from B's API (the project's credentials; another project gets 404).
    got = requests.get(rxp["document"], auth=(b.project, b.token), timeout=10)
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf", got.status_code
    assert got.content.startswith(b"%PDF")
    assert requests.get(rxp["document"], auth=(a.project, a.token), timeout=10).status_code in (401, 404)
    (tmp_path / "received.pdf").write_bytes(got.content)
    src_pages = render(tmp_path / "source.pdf", tmp_path / "img", "src")
    rx_pages = render(tmp_path / "received.pdf", tmp_path / "img", "rx")
    assert len(src_pages) == len(rx_pages) == 3
    diffs = []
    for n in range(3):
        same = difference(src_pages[n], rx_pages[n])
        other = difference(src_pages[(n + 1) % 3], rx_pages[n])
        # The page that was sent, not just any page: its own source is far closer than another page.
        assert same < 6.0 and other > 2 * same, (n, same, other)
        diffs.append((round(same, 2), round(other, 2)))
    # The operators see it: one fax ended on each node, none running.
    for node, direction in ((a, "send"), (b, "receive")):
        m = scrape(node)
        labels = frozenset({("direction", direction), ("result", "success"), ("transport", transport)})
        assert m.get(("dialtone_faxes_total", labels)) == 1, [k for k in m if k[0] == "dialtone_faxes_total"]
        assert m[("dialtone_faxes_active", frozenset())] == 0
    print(f"{transport}: 3 pages in {took:.1f} s; page differences (own, another): {diffs}")


def test_stopping_a_receive_keeps_the_pages_so_far(start_dialtone, tmp_path, hooks, http):
    url = http.route("/doc.pdf", make_pdf(tmp_path / "source.pdf", 3), "application/pdf")
    b = receiver(start_dialtone, tmp_path, hooks)
    a = start_dialtone(name="a")
    send(a, f"sip:{NUMBER}@127.0.0.1:{b.sip_port}", url, hooks)
    first = hooks.wait_on("/rx", 1, timeout=90)[0]["params"]
    assert first["fax"]["type"] == "page" and first["fax"]["params"] == {"direction": "receive", "number": 1}
    r = b.post({"command": "calling.receive_fax.stop", "id": first["call_id"],
                "params": {"control_id": first["control_id"]}})
    assert r.status_code == 200, r.text
    rxp = finished(hooks, "/rx", 30)["params"]["fax"]["params"]
    assert rxp["success"] is False and rxp["result_text"] == "stopped" and rxp["pages"] >= 1, rxp
    got = requests.get(rxp["document"], auth=(b.project, b.token), timeout=10)
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    (tmp_path / "partial.pdf").write_bytes(got.content)
    assert len(render(tmp_path / "partial.pdf", tmp_path / "img", "part")) == rxp["pages"]
    txp = finished(hooks, "/tx", 60)["params"]["fax"]["params"]
    assert txp["success"] is False and txp["pages"] < 3, txp
    # A stop for a fax that is over, or of the other kind, is 422 does_not_exist.
    r = b.post({"command": "calling.receive_fax.stop", "id": first["call_id"],
                "params": {"control_id": first["control_id"]}})
    assert r.status_code in (404, 422), r.text


def test_stopping_a_send_mid_document(start_dialtone, tmp_path, hooks, http):
    url = http.route("/doc.pdf", make_pdf(tmp_path / "source.pdf", 3), "application/pdf")
    b = receiver(start_dialtone, tmp_path, hooks)
    a = start_dialtone(name="a")
    call_a = send(a, f"sip:{NUMBER}@127.0.0.1:{b.sip_port}", url, hooks)
    first = hooks.wait_on("/tx", 1, timeout=90)[0]["params"]
    assert first["fax"]["params"] == {"direction": "send", "number": 1}
    wrong = a.post({"command": "calling.receive_fax.stop", "id": call_a, "params": {"control_id": first["control_id"]}})
    assert wrong.status_code == 422, wrong.text
    r = a.post({"command": "calling.send_fax.stop", "id": call_a, "params": {"control_id": first["control_id"]}})
    assert r.status_code == 200, r.text
    txp = finished(hooks, "/tx", 30)["params"]["fax"]["params"]
    assert txp["success"] is False and txp["result_text"] == "stopped" and 1 <= txp["pages"] < 3, txp
    rxp = finished(hooks, "/rx", 60)["params"]["fax"]["params"]
    assert rxp["success"] is False and rxp["pages"] < 3, rxp


def test_a_voice_far_end_fails_the_fax_cleanly(start_dialtone, tmp_path, sipp, hooks, http):
    # sipp answers and speaks, then is silent: no fax machine ever answers the CNG.
    write_ulaw_wav(tmp_path / "stream.wav", flite("Hello, this is not a fax machine.", tmp_path) + silence(2))
    # T.30 gives up after 60 s without a fax answer; sipp stays up to answer the BYE.
    far = sipp("uas_stream_wav.xml", timeout_s=110)
    url = http.route("/doc.pdf", make_pdf(tmp_path / "source.pdf", 1), "application/pdf")
    a = start_dialtone(name="a")
    call_a = send(a, far.uri("service"), url, hooks)
    txp = finished(hooks, "/tx", 120)["params"]["fax"]["params"]
    assert txp["success"] is False and txp["result"] != 0 and txp["pages"] == 0, txp
    assert txp["result_text"], txp
    assert pages(hooks, "/tx") == []
    # The script went on with its variables and hung up.
    deadline = time.time() + 20
    while time.time() < deadline:
        r = requests.get(f"{a.base}/api/calling/calls/{call_a}", auth=(a.project, a.token), timeout=5)
        if r.json()["status"] == "ended":
            break
        time.sleep(0.2)
    assert r.json()["status"] == "ended", r.json()
    sipp_done(far)


def test_a_document_that_is_not_a_pdf_fails_the_fax_before_any_audio(start_dialtone, tmp_path, hooks, http):
    url = http.route("/doc.pdf", b"<html>not a pdf</html>", "text/html")
    b = receiver(start_dialtone, tmp_path, hooks)
    a = start_dialtone(name="a")
    send(a, f"sip:{NUMBER}@127.0.0.1:{b.sip_port}", url, hooks)
    txp = finished(hooks, "/tx", 30)["params"]["fax"]["params"]
    assert txp["success"] is False and "not a PDF" in txp["result_text"] and txp["pages"] == 0, txp


def test_a_document_can_switch_an_inbound_call_to_fax_when_it_hears_cng(start_dialtone, tmp_path, hooks, http):
    # B answers like any call, listens for a calling fax's CNG, and only then receives the fax.
    url = http.route("/doc.pdf", make_pdf(tmp_path / "source.pdf", 1), "application/pdf")
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    swml = doc({"answer": {}},
               {"detect_machine": {"detectors": "fax", "tone": "CNG", "timeout": 15}},
               {"cond": [{"when": "detect_result == 'fax'",
                          "then": [{"receive_fax": {"status_url": hooks.url("/rx")}}]},
                         {"else": [{"play": {"url": "say:Hello"}}]}]},
               {"hangup": {}})
    b = start_node(start_dialtone, b_dir, [route_toml(NUMBER, swml=swml)])
    a = start_dialtone(name="a")
    send(a, f"sip:{NUMBER}@127.0.0.1:{b.sip_port}", url, hooks)
    rxp = finished(hooks, "/rx", 90)["params"]["fax"]["params"]
    txp = finished(hooks, "/tx", 30)["params"]["fax"]["params"]
    assert rxp["success"] is True and rxp["pages"] == 1, rxp
    assert txp["success"] is True and txp["pages"] == 1, txp
    # A's fax started on G.711 (its CNG is what B heard); B's T.38 offer came before any page, so A's fax
    # started over on T.38.
    labels = frozenset({("direction", "send"), ("result", "success"), ("transport", "t38")})
    assert scrape(a).get(("dialtone_faxes_total", labels)) == 1


@pytest.mark.parametrize("transport", ["audio", "t38"])
def test_with_one_percent_packet_loss_each_way_the_fax_still_completes(
        start_dialtone, tmp_path, hooks, http, transport):
    # B advertises 127.0.0.2; a relay there forwards to B on 127.0.0.1 and drops 1 % of the media datagrams
    # (RTP, or UDPTL once the call moved to T.38) each way.
    from loss_relay import LossRelay
    from media_sink import free_rtp_range
    url = http.route("/doc.pdf", make_pdf(tmp_path / "source.pdf", 2), "application/pdf")
    cfg = tmp_path / "b.toml"
    cfg.write_text(route_toml(NUMBER, swml=doc({"receive_fax": {"status_url": hooks.url("/rx")}}, {"hangup": {}})))
    lo, hi = free_rtp_range(20)
    b = start_dialtone({"DIALTONE_CONFIG": str(cfg), "DIALTONE_RTP_PORTS": f"{lo}-{hi}",
                        "DIALTONE_EXTERNAL_IP": "127.0.0.2"}, name="b")
    sip_port = int(b.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
    rtp_ports = list(range(lo, hi + 1))
    relay = LossRelay([sip_port, *rtp_ports], lossy=rtp_ports, loss=0.01, seed=17)
    try:
        a = sender_node(start_dialtone, transport)
        send(a, f"sip:{NUMBER}@127.0.0.2:{sip_port}", url, hooks)
        txp = finished(hooks, "/tx", 150)["params"]["fax"]["params"]
        rxp = finished(hooks, "/rx", 30)["params"]["fax"]["params"]
    finally:
        relay.stop()
    # T.38 sends far fewer datagrams than RTP's 50 a second (about 400 for these 2 pages): fewer losses.
    assert relay.dropped > (20 if transport == "audio" else 2), (relay.dropped, relay.passed)
    assert 0.005 < relay.dropped / (relay.dropped + relay.passed) < 0.025, (relay.dropped, relay.passed)
    assert txp["success"] is True and txp["pages"] == 2, txp
    assert rxp["success"] is True and rxp["pages"] == 2, rxp
    m = scrape(b)
    labels = frozenset({("direction", "receive"), ("result", "success"), ("transport", transport)})
    assert m[("dialtone_faxes_total", labels)] == 1, m
    print(f"{transport}: relay dropped {relay.dropped} of {relay.dropped + relay.passed} datagrams")


def test_a_received_fax_goes_to_the_s3_bucket_and_is_served_from_it(start_dialtone, tmp_path, hooks, http):
    # moto's S3 server (not ours) as the bucket, as for recordings (test_record.py).
    from conftest import free_port
    from test_record import s3_env, start_moto
    port = free_port()
    server, s3 = start_moto(port)
    try:
        url = http.route("/doc.pdf", make_pdf(tmp_path / "source.pdf", 1), "application/pdf")
        cfg = tmp_path / "b.toml"
        cfg.write_text(route_toml(NUMBER, swml=doc({"receive_fax": {"status_url": hooks.url("/rx")}}, {"hangup": {}})))
        b = start_dialtone({"DIALTONE_CONFIG": str(cfg), **s3_env(port)}, name="b")
        sip_port = int(b.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
        a = start_dialtone(name="a")
        send(a, f"sip:{NUMBER}@127.0.0.1:{sip_port}", url, hooks)
        rxp = finished(hooks, "/rx", 90)["params"]["fax"]["params"]
        assert rxp["success"] is True and rxp["pages"] == 1, rxp
        fax_id = rxp["document"].rsplit("/", 1)[1].removesuffix(".pdf")
        key = f"calls/{b.project}/{fax_id}.pdf"
        deadline = time.time() + 15
        keys = []
        while time.time() < deadline:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="recs").get("Contents", [])]
            if key in keys and not list(b.data_dir.rglob(f"{fax_id}.pdf")):
                break
            time.sleep(0.2)
        assert key in keys, keys
        assert not list(b.data_dir.rglob(f"{fax_id}.pdf")), "the local copy is removed once uploaded"
        obj = s3.get_object(Bucket="recs", Key=key)
        body = obj["Body"].read()
        assert obj["ContentType"] == "application/pdf" and body.startswith(b"%PDF")
        got = requests.get(rxp["document"], auth=(b.project, b.token), timeout=10)
        assert got.status_code == 200 and got.content == body
    finally:
        server.terminate()
        server.wait(10)


def test_a_call_on_opus_fails_the_fax_at_once_and_says_why(start_dialtone, tmp_path, hooks, http):
    # B prefers Opus, which A offers: the call runs on Opus, where a fax modem cannot work.
    url = http.route("/doc.pdf", make_pdf(tmp_path / "source.pdf", 1), "application/pdf")
    cfg = tmp_path / "b.toml"
    cfg.write_text(route_toml(NUMBER, swml=doc({"receive_fax": {"status_url": hooks.url("/rx")}},
                                               {"play": {"url": "say:${receive_fax_result}"}}, {"hangup": {}})))
    b = start_dialtone({"DIALTONE_CONFIG": str(cfg), "DIALTONE_CODECS": "OPUS,PCMU"}, name="b")
    sip_port = int(b.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
    a = start_dialtone(name="a")
    send(a, f"sip:{NUMBER}@127.0.0.1:{sip_port}", url, hooks)
    rxp = finished(hooks, "/rx", 30)["params"]["fax"]["params"]
    assert rxp["success"] is False and rxp["pages"] == 0 and "G.711" in rxp["result_text"], rxp
    assert rxp["document"] is None


def test_after_a_t38_fax_the_call_has_its_audio_back(start_dialtone, tmp_path, hooks, http):
    """B offered T.38, so B offers the audio back once its fax is over (A answers 491 while its own fax is
    still finishing, and B tries again): the tone B plays after `receive_fax` reaches A's recording."""
    import struct
    import wave
    from test_record import fetch_wav, tone, tone_seconds
    with wave.open(str(tmp_path / "tone.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack(f"<{4 * 8000}h", *tone(1000, 4)))
    tone_url = http.route("/tone.wav", (tmp_path / "tone.wav").read_bytes(), "audio/wav")
    url = http.route("/doc.pdf", make_pdf(tmp_path / "source.pdf", 1), "application/pdf")
    b = receiver(start_dialtone, tmp_path, hooks,
                 extra_steps=({"play": {"urls": ["silence:2", tone_url]}},))
    a = start_dialtone(name="a")
    swml = doc({"send_fax": {"document": url, "status_url": hooks.url("/tx")}},
               {"record_call": {"format": "wav", "direction": "both", "status_url": hooks.url("/rec")}},
               {"play": {"url": "silence:10"}},
               {"hangup": {}})
    r = a.post({"command": "dial", "params": {"from": SENDER, "to": f"sip:{NUMBER}@127.0.0.1:{b.sip_port}",
                                              "swml": swml}})
    assert r.status_code == 200, r.text
    txp = finished(hooks, "/tx", 90)["params"]["fax"]["params"]
    rxp = finished(hooks, "/rx", 30)["params"]["fax"]["params"]
    assert txp["success"] is True and rxp["success"] is True, (txp, rxp)
    deadline = time.time() + 30
    while time.time() < deadline and not [e for e in hooks.on("/rec") if e["params"]["state"] == "finished"]:
        time.sleep(0.2)
    rec = [e for e in hooks.on("/rec") if e["params"]["state"] == "finished"]
    assert rec, hooks.on("/rec")
    w, samples = fetch_wav(a, rec[0]["params"]["url"])
    heard = tone_seconds(samples, w.getframerate())
    assert heard >= 1.5, f"{heard} s of B's 1 kHz tone in A's recording after the fax"
    for node, direction in ((a, "send"), (b, "receive")):
        labels = frozenset({("direction", direction), ("result", "success"), ("transport", "t38")})
        assert scrape(node).get(("dialtone_faxes_total", labels)) == 1

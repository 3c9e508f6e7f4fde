"""SIP over TLS with a real softphone: baresip 1.0 (tests/e2e/baresip_peer.py), plain RTP.

Every test makes its own CA and a leaf certificate for 127.0.0.1 with the openssl CLI in its tmp dir
(nothing is committed). dialtone listens for TLS on `sip_tls_listen` (port 0: the bound port is read
from its log) with `tls_cert_file`/`tls_key_file`, and trusts the CA for calls it places
(`tls_ca_file`).

  - inbound: baresip dials `sip:NUMBER@127.0.0.1:<tls port>;transport=tls`; an inbound route's SWML
    answers, plays a 1 kHz tone and records; baresip sends 440 Hz; baresip hangs up (its BYE must
    come over TLS: our 200's Contact says `;transport=tls` and names the TLS port);
  - outbound: dialtone dials `sip:bob@127.0.0.1:<baresip port + 1>;transport=tls` (baresip presents
    the same leaf, signed by the CA dialtone was given); the SWML plays and records, then hangs up
    (our BYE over TLS).

Both check the tones by content both ways, and that the signalling of the call was TLS: every SIP
message of the call in dialtone's trace went over a TLS stream, none over UDP, and the TLS port does
not answer plaintext SIP.
"""
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from media_sink import free_rtp_range
from test_interop import OUR_TONE, THEIR_TONE, baresip, doc, media, reported, tone_share  # noqa: F401
from test_record import fetch_wav

pytestmark = pytest.mark.skipif(shutil.which("baresip") is None or shutil.which("openssl") is None,
                                reason="baresip-core or openssl is not installed")

FROM = "+15105550100"
NUMBER = "+15551230000"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def make_certs(where):
    """A CA and a leaf for 127.0.0.1 (P-256), made with the openssl CLI. Returns their paths."""
    where.mkdir(exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)

    (where / "leaf.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                                    "extendedKeyUsage=serverAuth,clientAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=dialtone test CA")
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "1", "-extfile", "leaf.ext")
    # baresip's sip_certificate: the certificate and its key in one file.
    (where / "both.pem").write_text((where / "leaf.pem").read_text() + (where / "leaf.key").read_text())
    return {k: str(where / f) for k, f in
            (("ca", "ca.pem"), ("cert", "leaf.pem"), ("key", "leaf.key"), ("both", "both.pem"))}


def log_text(d):
    return ANSI.sub("", d.log_path.read_text(errors="replace"))


def tls_port(d, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(r"SIP TLS listener started tls_local=[\d.]+:(\d+)", log_text(d))
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    raise AssertionError(f"no TLS listener in the log:\n{log_text(d)}")


def start_tls_node(start_dialtone, tmp_path, certs, swml=None, ca=None):
    routes = ""
    if swml is not None:
        routes = f"[[inbound_routes]]\ndestination = \"{NUMBER}\"\nswml = '''\n{json.dumps(swml)}\n'''\n"
    cfg = tmp_path / "dialtone.toml"
    cfg.write_text(routes)
    lo, hi = free_rtp_range(20)
    d = start_dialtone({"DIALTONE_CONFIG": str(cfg), "DIALTONE_RTP_PORTS": f"{lo}-{hi}",
                        "DIALTONE_SIP_TLS_LISTEN": "127.0.0.1:0", "DIALTONE_TLS_CERT_FILE": certs["cert"],
                        "DIALTONE_TLS_KEY_FILE": certs["key"], "DIALTONE_TLS_CA_FILE": ca or certs["ca"]})
    d.sip_port = int(d.env["DIALTONE_SIP_LISTEN"].rsplit(":", 1)[1])
    d.tls_port = tls_port(d)
    return d


def sip_trace(d, call_id):
    """(event, src, dest, raw) of every SIP message of the call in dialtone's trace."""
    out = []
    for line in log_text(d).splitlines():
        m = re.search(r'raw_message="(.*?)(?<!\\)"', line)
        if not m:
            continue
        raw = m.group(1).encode().decode("unicode_escape")
        if f"Call-ID: {call_id}" not in raw:
            continue
        event = "udp" if ("udp send" in line or "udp received" in line) else (
            "stream send" if "stream send" in line else "stream received")
        src = re.search(r"\bsrc=(\S+)", line)
        dest = re.search(r"\bdest=(\S+)", line)
        out.append((event, src and src.group(1), dest and dest.group(1), raw))
    return out


def call_ids(d):
    return set(re.findall(r"Call-ID: ([^\\\s]+)", log_text(d)))


def assert_all_tls(d, call_id):
    trace = sip_trace(d, call_id)
    assert trace, f"no SIP trace for {call_id}"
    assert not [t for t in trace if t[0] == "udp"], "SIP over UDP in a TLS call"
    for event, src, dest, raw in trace:
        # The stack logs stream addresses as "TLS ip:port" (or "TCP ip:port"): the transport is the
        # first word of src (and dest, which only sends log).
        assert src == "TLS" and (event != "stream send" or dest == "TLS"), (event, src, dest, raw[:40])
    return trace


def starts(trace, event, prefix):
    return [raw for e, _, _, raw in trace if e == event and raw.startswith(prefix)]


def invite_answers(d):
    """200 OKs to INVITEs dialtone sent over a TLS stream (first answer, then re-INVITEs)."""
    out = []
    for line in log_text(d).splitlines():
        if "stream send" in line and "src=TLS" in line:
            m = re.search(r'raw_message="(.*?)(?<!\\)"', line)
            raw = m.group(1).encode().decode("unicode_escape") if m else ""
            if raw.startswith("SIP/2.0 200") and " INVITE\r\n" in raw:
                out.append(raw)
    return out


def check_plaintext_refused(port):
    """A plaintext OPTIONS to the TLS port gets no SIP answer; the same over TLS gets 200."""
    options = (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKplain\r\n"
               "From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: plain-probe\r\n"
               "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(options)
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    assert b"SIP/2.0" not in got, got
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(options.replace(b"SIP/2.0/TCP", b"SIP/2.0/TLS").replace(b"plain-probe", b"tls-probe"))
        got = s.recv(4096)
    assert got.startswith(b"SIP/2.0 200"), got


def tls_peer(baresip, certs):
    return baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=15,
                   extra_config=[f"sip_certificate\t{certs['both']}", f"sip_cafile\t{certs['ca']}"])


def script(hooks, tone_url, inbound):
    steps = [{"answer": {}}] if inbound else []
    steps += [
        {"record_call": {"format": "wav", "stereo": True, "direction": "both"}},
        {"play": {"url": tone_url}},
        {"stop_record_call": {}},
        {"request": {"url": hooks.url("/vars"), "method": "POST", "body": {"url": "${record_call_url}"}}},
    ]
    # Inbound, the caller hangs up; outbound, we do.
    steps += [{"play": {"url": "silence:20"}}] if inbound else [{"hangup": {}}]
    return doc(*steps)


def check_audio(d, peer, got):
    rate, _, heard = peer.heard()
    hit, voiced = tone_share(heard, rate, OUR_TONE)
    assert hit >= 15, f"baresip heard {hit} windows of {OUR_TONE} Hz out of {voiced} voiced"
    w, samples = fetch_wav(d, got["url"])
    left = list(samples[0::2])
    hit, voiced = tone_share(left, w.getframerate(), THEIR_TONE)
    assert hit >= 15, f"dialtone recorded {hit} windows of {THEIR_TONE} Hz out of {voiced} voiced"
    assert hit >= 0.8 * voiced, (hit, voiced)


def test_inbound_call_over_tls_audio_both_ways_caller_hangs_up(start_dialtone, tmp_path, baresip, hooks, media):
    certs = make_certs(tmp_path / "certs")
    d = start_tls_node(start_dialtone, tmp_path, certs, script(hooks, media.url("/tone1k.wav"), inbound=True))
    peer = tls_peer(baresip, certs)
    before = call_ids(d)
    peer.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.tls_port};transport=tls")
    peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    got = reported(hooks, timeout=15)
    # In-dialog re-INVITEs from baresip (hold, resume) reach us over TLS and are answered there.
    for command, direction in (("hold", "a=recvonly"), ("resume", "a=sendrecv")):
        n = len(invite_answers(d))
        peer.ctrl.cmd(command)
        deadline = time.time() + 5
        while time.time() < deadline and len(invite_answers(d)) <= n:
            time.sleep(0.1)
        answers = invite_answers(d)
        assert len(answers) == n + 1 and direction in answers[-1], (command, answers)
    peer.ctrl.cmd("hangup", check=False)
    peer.ctrl.wait_event("CALL_CLOSED", timeout=10)
    time.sleep(0.5)
    check_audio(d, peer, got)

    new = call_ids(d) - before
    invites = [c for c in new if starts(sip_trace(d, c), "stream received", "INVITE ")]
    assert len(invites) == 1, new
    assert len(starts(sip_trace(d, invites[0]), "stream received", "INVITE ")) == 3, "INVITE, hold, resume"
    assert len(invites) == 1, new
    trace = assert_all_tls(d, invites[0])
    ok = starts(trace, "stream send", "SIP/2.0 200 OK")
    assert ok, trace
    contact = re.search(r"Contact: (.*)\r\n", ok[0]).group(1)
    assert contact.lower().endswith(f"@127.0.0.1:{d.tls_port};transport=tls>"), contact
    # baresip's ACK and BYE came back over the TLS connection and the BYE was answered there.
    assert starts(trace, "stream received", "ACK "), trace
    assert starts(trace, "stream received", "BYE "), trace
    assert [r for r in starts(trace, "stream send", "SIP/2.0 200 OK") if "CSeq: " in r and " BYE" in r], trace
    # The BYE's 200 ends its transaction: no second (501) response is attempted.
    assert "cannot send response" not in log_text(d)
    check_plaintext_refused(d.tls_port)


def test_outbound_call_over_tls_audio_both_ways_we_hang_up(start_dialtone, tmp_path, baresip, hooks, media):
    certs = make_certs(tmp_path / "certs")
    d = start_tls_node(start_dialtone, tmp_path, certs)
    peer = tls_peer(baresip, certs)
    before = call_ids(d)
    leg = d.sdk().calling.dial(from_=FROM, to=peer.tls_uri(), swml=script(hooks, media.url("/tone1k.wav"), False),
                               status_url=hooks.url(), status_events=["answered", "ended"])
    peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    got = reported(hooks, timeout=15)
    assert hooks.wait_state(leg["id"], "ended", timeout=10), hooks.states(leg["id"])
    peer.ctrl.wait_event("CALL_CLOSED", timeout=10)
    time.sleep(0.5)
    check_audio(d, peer, got)

    new = call_ids(d) - before
    invites = [c for c in new if starts(sip_trace(d, c), "stream send", "INVITE ")]
    assert len(invites) == 1, new
    trace = assert_all_tls(d, invites[0])
    inv = starts(trace, "stream send", "INVITE ")[0]
    assert inv.lower().startswith(f"invite sip:bob@127.0.0.1:{peer.sip_port + 1};transport=tls sip/2.0"), inv
    assert f"Via: SIP/2.0/TLS 127.0.0.1:{d.tls_port};" in inv, inv
    assert f"@127.0.0.1:{d.tls_port};transport=tls>" in inv.lower(), inv
    assert starts(trace, "stream send", "ACK "), trace
    bye = starts(trace, "stream send", "BYE ")
    assert bye and f"Via: SIP/2.0/TLS 127.0.0.1:{d.tls_port};" in bye[0], trace
    assert [r for r in starts(trace, "stream received", "SIP/2.0 200 OK") if " BYE" in r], trace


@pytest.mark.parametrize("which", ["missing", "not_pem", "wrong_key"])
def test_bad_certificate_files_stop_start_up_with_a_clear_error(start_dialtone, tmp_path, which):
    certs = make_certs(tmp_path / "certs")
    other = make_certs(tmp_path / "other")
    env = {"DIALTONE_SIP_TLS_LISTEN": "127.0.0.1:0", "DIALTONE_TLS_CERT_FILE": certs["cert"],
           "DIALTONE_TLS_KEY_FILE": certs["key"]}
    want = {"missing": "tls_key_file: cannot read", "not_pem": "is not a PEM file",
            "wrong_key": "TLS certificate and key"}[which]
    if which == "missing":
        env["DIALTONE_TLS_KEY_FILE"] = str(tmp_path / "nowhere.key")
    elif which == "not_pem":
        (tmp_path / "junk.pem").write_text("junk\n")
        env["DIALTONE_TLS_CERT_FILE"] = str(tmp_path / "junk.pem")
    else:
        env["DIALTONE_TLS_KEY_FILE"] = other["key"]
    with pytest.raises(RuntimeError) as e:
        start_dialtone(env)
    assert "dialtone exited early" in str(e.value) and want in str(e.value), str(e.value)[-2000:]
    assert "panicked" not in str(e.value)


def test_outbound_tls_to_a_certificate_the_ca_file_does_not_sign_fails(start_dialtone, tmp_path, baresip, hooks):
    """tls_ca_file is what verifies the far end: baresip's leaf is signed by another CA, so the
    handshake fails, the call fails at once and baresip never sees an INVITE."""
    from test_calls import wait_status
    certs = make_certs(tmp_path / "certs")
    other = make_certs(tmp_path / "other")
    d = start_tls_node(start_dialtone, tmp_path, certs, ca=other["ca"])
    peer = tls_peer(baresip, certs)
    leg = d.sdk().calling.dial(from_=FROM, to=peer.tls_uri(), swml=doc({"hangup": {}}),
                               status_url=hooks.url(), status_events=["answered", "ended"])
    assert hooks.wait_state(leg["id"], "ended", timeout=10), hooks.states(leg["id"])
    assert wait_status(d, leg["id"], "failed", timeout=5)["status"] == "failed"
    assert "answered" not in hooks.states(leg["id"])
    time.sleep(0.5)
    assert not [e for e in peer.ctrl.events if e.get("type") == "CALL_INCOMING"], peer.ctrl.events


def test_srtp_over_tls_both_ways_with_an_srtp_mandatory_phone(start_dialtone, tmp_path, baresip, hooks, media):
    """The deployment SDES is meant for: keys in SDP over SIP/TLS, media in SRTP. baresip with
    `mediaenc=srtp-mand` calls us over TLS (inbound) and is called over TLS with
    `encryption: mandatory` (outbound); tones checked by content both ways each time, the call's
    media_stats names the suite."""
    from test_rtp_source import media_stats
    certs = make_certs(tmp_path / "certs")
    d = start_tls_node(start_dialtone, tmp_path, certs, script(hooks, media.url("/tone1k.wav"), inbound=True))
    peer = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=15, account_params=";mediaenc=srtp-mand",
                   extra_config=[f"sip_certificate\t{certs['both']}", f"sip_cafile\t{certs['ca']}"])
    peer.ctrl.cmd(f"dial sip:{NUMBER}@127.0.0.1:{d.tls_port};transport=tls")
    peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    got = reported(hooks, timeout=15)
    peer.ctrl.cmd("hangup", check=False)
    peer.ctrl.wait_event("CALL_CLOSED", timeout=10)
    check_audio(d, peer, got)
    answers = invite_answers(d)
    assert answers and "RTP/SAVP" in answers[0] and "a=crypto:" in answers[0], answers

    hooks.events.clear()
    out = baresip(codecs=["PCMU"], tone=THEIR_TONE, seconds=15, account_params=";mediaenc=srtp-mand",
                  extra_config=[f"sip_certificate\t{certs['both']}", f"sip_cafile\t{certs['ca']}"])
    leg = d.sdk().calling.dial(from_=FROM, to=out.tls_uri(),
                               swml=script(hooks, media.url("/tone1k.wav"), inbound=False),
                               extras={"encryption": "mandatory"})
    out.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    got = reported(hooks, timeout=15)
    out.ctrl.wait_event("CALL_CLOSED", timeout=10)
    check_audio(d, out, got)
    stats = media_stats(d, leg["id"])
    assert stats["srtp"] == "AES_CM_128_HMAC_SHA1_80" and stats["srtp_rejected"] <= 1, stats

"""Live transcription (docs/ai.md "Live transcription"): `calling.live_transcribe` on a real call, through Whisper
(faster-whisper tiny.en as dialtone's free-form recogniser). The far end (sipp) says one sentence in flite speech,
dialtone plays another to it; both legs come to the webhook as utterances as they are recognised — the far end's as
`remote-caller`, dialtone's own as `local-caller` — and `stop` sends the model's summary of the transcript (the
scripted OpenAI-compatible server) and the `stopped` state. SWML `live_transcribe` starts the same way."""
import time

from llm_server import ScriptedModel
from test_calls import dial, sipp_done, wait_hook
from test_interop import baresip  # noqa: F401  (the fixture)
from test_speech import write_speech_wav
from test_transcribe import WHISPER, words

REMOTE = "the delivery date is next tuesday"


def live_events(hooks, path, kind, n, timeout):
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        got = [e for e in hooks.on(path) if e["params"].get("kind") == kind]
        if len(got) >= n:
            return got
        time.sleep(0.1)
    return got


def test_rest_live_transcribe_hears_both_legs_and_summarizes(start_dialtone, sipp, hooks, tmp_path):
    write_speech_wav(tmp_path, REMOTE, tail_s=8.0)
    model = ScriptedModel([{"text": "The caller asked about a delivery on Tuesday."}])
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_ASR_COMMAND": WHISPER, "DIALTONE_AI_BASE_URL": model.base_url})
        call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
        wait_hook(hooks, call_id, "answered")
        # Nothing runs yet: stop and summarize are refused.
        for action in ["stop", {"summarize": {}}]:
            r = d.post({"command": "calling.live_transcribe", "id": call_id, "params": {"action": action}})
            assert r.status_code == 422, r.text
        r = d.post({"command": "calling.live_transcribe", "id": call_id, "params": {"action": {"start": {
            "lang": "en-US", "direction": ["remote-caller", "local-caller"], "webhook": hooks.url("/live"),
            "live_events": True, "ai_summary": True, "ai_summary_prompt": "Summarize briefly."}}}})
        assert r.status_code == 200, r.text
        # dialtone's own words, while the far end's stream is still to come (1.5 s after the answer).
        r = d.post({"command": "calling.play", "id": call_id, "params": {
            "control_id": "p1", "play": [{"type": "tts", "params": {"text": "Your order ships tomorrow morning."}}]}})
        assert r.status_code == 200, r.text
        finals = live_events(hooks, "/live", "utterance", 2, 30)
        finals = [e for e in finals if e["params"]["final"]]
        by_leg = {}
        for e in finals:
            assert e["event_type"] == "calling.call.live_transcribe" and e["params"]["call_id"] == call_id, e
            assert e["params"]["lang"] == "en-US"
            by_leg.setdefault(e["params"]["direction"], []).extend(words(e["params"]["text"]))
        print("heard:", by_leg)
        local, remote = by_leg.get("local-caller", []), by_leg.get("remote-caller", [])
        # Whisper tiny hears flite's "order ships" variously ("order shipped", "ownership").
        assert {"tomorrow", "morning"} <= set(local), local
        assert {"delivery", "tuesday"} <= set(remote), remote

        r = d.post({"command": "calling.live_transcribe", "id": call_id, "params": {"action": "stop"}})
        assert r.status_code == 200, r.text
        summary = live_events(hooks, "/live", "summary", 1, 15)
        assert summary and summary[0]["params"]["summary"] == "The caller asked about a delivery on Tuesday.", summary
        asked = model.requests[0]["body"]["messages"]
        assert asked[0] == {"role": "system", "content": "Summarize briefly."}, asked
        assert "remote-caller:" in asked[1]["content"] and "local-caller:" in asked[1]["content"], asked
        states = [e["params"]["state"] for e in hooks.on("/live") if e["params"].get("kind") == "state"]
        assert states == ["started", "stopped"], states
        d.sdk().calling.end(call_id, reason="hangup")
        sipp_done(far)
    finally:
        model.stop()


def test_swml_live_transcribe_starts_and_the_call_end_stops_it(start_dialtone, sipp, hooks, tmp_path):
    write_speech_wav(tmp_path, REMOTE, tail_s=3.0)
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone({"DIALTONE_ASR_COMMAND": WHISPER})
    swml = {"version": "1.0.0", "sections": {"main": [
        {"live_transcribe": {"action": {"start": {"lang": "en-US", "direction": ["remote-caller"],
                                                  "webhook": hooks.url("/live"), "live_events": True}}}},
        {"play": {"url": "silence:7"}},
        {"hangup": {}}]}}
    r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
    assert r.status_code == 200, r.text
    finals = [e for e in live_events(hooks, "/live", "utterance", 1, 30) if e["params"]["final"]]
    assert finals and {"delivery", "tuesday"} <= set(words(finals[0]["params"]["text"])), finals
    assert all(e["params"]["direction"] == "remote-caller" for e in finals)
    deadline = time.time() + 20
    while time.time() < deadline and not [e for e in hooks.on("/live") if e["params"].get("state") == "stopped"]:
        time.sleep(0.2)
    states = [e["params"]["state"] for e in hooks.on("/live") if e["params"].get("kind") == "state"]
    assert states == ["started", "stopped"], states
    sipp_done(far)


def test_rest_live_translate_translates_each_utterance_and_injects(start_dialtone, sipp, hooks, tmp_path):
    """`calling.live_translate`: the far end's English utterance (Whisper) comes with the model's translation (the
    scripted server) under `calling.call.live_translate`; `inject` to the remote caller is translated and spoken to
    it (a recording of what it hears holds speech after the inject); the status URL gets the states; `stop` sends
    the summary in both languages."""
    from test_ai import finished_recording, windows_rms
    write_speech_wav(tmp_path, REMOTE, tail_s=10.0)
    model = ScriptedModel([
        {"text": "La fecha de entrega es el martes."},
        {"text": "Gracias por su llamada."},
        {"text": "Delivery on Tuesday was discussed."},
        {"text": "Se hablo de la entrega el martes."},
    ])
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_ASR_COMMAND": WHISPER, "DIALTONE_AI_BASE_URL": model.base_url})
        call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
        wait_hook(hooks, call_id, "answered")
        r = d.post({"command": "calling.record", "id": call_id, "params": {
            "control_id": "rec", "record": {"audio": {"format": "wav", "direction": "listen", "initial_timeout": 0,
                                                      "end_silence_timeout": 0}},
            "status_url": hooks.url("/rec")}})
        assert r.status_code == 200, r.text
        r = d.post({"command": "calling.live_translate", "id": call_id, "params": {
            "status_url": hooks.url("/tstatus"),
            "action": {"start": {"from_lang": "en-US", "to_lang": "es-ES", "direction": ["remote-caller"],
                                 "webhook": hooks.url("/translate"), "filter_to": "polite", "ai_summary": True}}}})
        assert r.status_code == 200, r.text
        got = live_events(hooks, "/translate", "utterance", 1, 30)
        assert got, hooks.on("/translate")
        ev = got[0]
        assert ev["event_type"] == "calling.call.live_translate", ev
        p = ev["params"]
        assert p["direction"] == "remote-caller" and p["lang"] == "en-US" and p["to_lang"] == "es-ES", p
        assert {"delivery", "tuesday"} <= set(words(p["text"])), p
        assert p["translated_text"] == "La fecha de entrega es el martes.", p
        asked = model.requests[0]["body"]["messages"]
        assert "from the language en-US into the language es-ES" in asked[0]["content"], asked
        assert asked[1]["content"] == p["text"], asked

        # An inject to the remote caller: translated (from the near side's language), then spoken.
        r = d.post({"command": "calling.live_translate", "id": call_id, "params": {
            "action": {"inject": {"message": "Thank you for calling.", "direction": "remote-caller"}}}})
        assert r.status_code == 200, r.text
        local = d.post({"command": "calling.live_translate", "id": call_id, "params": {
            "action": {"inject": {"message": "Hello.", "direction": "local-caller"}}}})
        assert local.status_code == 501, local.text
        deadline = time.time() + 10
        while time.time() < deadline and len(model.requests) < 2:
            time.sleep(0.1)
        assert model.requests[1]["body"]["messages"][1]["content"] == "Thank you for calling."
        time.sleep(3)
        r = d.post({"command": "calling.live_translate", "id": call_id, "params": {"action": "stop"}})
        assert r.status_code == 200, r.text
        summary = live_events(hooks, "/translate", "summary", 1, 15)
        assert summary, hooks.on("/translate")
        assert summary[0]["params"]["summaries"] == {"en-US": "Delivery on Tuesday was discussed.",
                                                     "es-ES": "Se hablo de la entrega el martes."}, summary
        states = [e["params"]["state"] for e in hooks.on("/tstatus")]
        assert states == ["started", "stopped"], states
        d.sdk().calling.end(call_id, reason="hangup")
        sipp_done(far)
        w, samples = finished_recording(d, hooks)
        loud = sum(1 for v in windows_rms(list(samples), w.getframerate()) if v > 500) * 0.02
        assert loud >= 0.5, f"the injected translation was not spoken ({loud:.2f} s of speech)"
    finally:
        model.stop()


TRANSLATED = "Las palabras traducidas están aquí, muchas gracias."


def the_translation_was_heard_by(hooks, peer, tmp_path):
    """The scripted translation reached the webhook, and `peer` (a baresip bridged to the call) heard it said in
    Spanish: its recording, once its call is over, follows the envelope of eSpeak NG's Spanish voice saying it."""
    from test_tts import spoken_in_spanish
    got = live_events(hooks, "/translate", "utterance", 1, 30)
    assert got and got[0]["params"]["translated_text"] == TRANSLATED, got
    peer.ctrl.wait_event("CALL_CLOSED", timeout=30)
    rate, _, samples = peer.heard()
    assert spoken_in_spanish(list(samples), rate, TRANSLATED, tmp_path)


def test_swml_live_translate_speaks_the_remote_callers_words_to_the_bridged_party(start_dialtone, sipp, hooks,
                                                                                   tmp_path, baresip):
    """A call dialtone made to sipp (the remote caller, saying an English sentence after 2 s) runs `live_translate`,
    then `connect`s to a baresip (the local side). The utterance, translated by the model, is spoken to the bridged
    party in Spanish: its recording follows eSpeak NG's Spanish voice saying the translation (after the original
    words it heard through the bridge); the event still carries both."""
    from test_record import write_ulaw_wav
    from test_speech import flite_samples
    write_ulaw_wav(tmp_path / "stream.wav",
                   [0] * 16000 + flite_samples(tmp_path, REMOTE) + [0] * 8000 * 12)
    model = ScriptedModel([{"text": TRANSLATED}])
    try:
        far = sipp("uas_stream_wav.xml")
        local = baresip(codecs=["PCMU"], tone=1000, seconds=14, user="bob")
        d = start_dialtone({"DIALTONE_ASR_COMMAND": WHISPER, "DIALTONE_AI_BASE_URL": model.base_url})
        swml = {"version": "1.0.0", "sections": {"main": [
            {"live_translate": {"action": {"start": {
                "from_lang": "en-US", "to_lang": "es-ES", "direction": ["remote-caller"],
                "webhook": hooks.url("/translate")}}}},
            {"connect": {"to": local.uri()}},
            {"hangup": {}}]}}
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        the_translation_was_heard_by(hooks, local, tmp_path)
        sipp_done(far)
    finally:
        model.stop()


def test_swml_live_translate_speaks_to_the_agent_that_took_the_call_from_a_queue(start_dialtone, sipp, hooks,
                                                                                  tmp_path, baresip):
    """A call dialtone made to sipp (the remote caller, saying an English sentence 9 s in) runs `live_translate`,
    then waits in a queue; a baresip agent dials in and its route `connect`s to the queue, taking the call. The
    utterance, translated by the model, is spoken to that agent in Spanish (its recording follows eSpeak NG's
    Spanish voice saying the translation)."""
    from test_interop import start_node
    from test_record import write_ulaw_wav
    from test_speech import flite_samples
    write_ulaw_wav(tmp_path / "stream.wav",
                   [0] * 8000 * 9 + flite_samples(tmp_path, REMOTE) + [0] * 8000 * 12)
    model = ScriptedModel([{"text": TRANSLATED}])
    agent_number = "+15551230009"
    try:
        far = sipp("uas_stream_wav.xml")
        # Long enough for the Spanish translation (about 3.5 s) after the sentence 9 s in.
        agent = baresip(codecs=["PCMU"], tone=1000, seconds=19, user="agent")
        d = start_node(start_dialtone, tmp_path,
                       routes={agent_number: {"version": "1.0.0", "sections": {"main": [
                           {"connect": {"to": "queue:translated", "transfer_after_bridge": "after"}},
                           {"hangup": {}}], "after": [{"hangup": {}}]}}},
                       extra_env={"DIALTONE_ASR_COMMAND": WHISPER, "DIALTONE_AI_BASE_URL": model.base_url})
        swml = {"version": "1.0.0", "sections": {"main": [
            {"live_translate": {"action": {"start": {
                "from_lang": "en-US", "to_lang": "es-ES", "direction": ["remote-caller"],
                "webhook": hooks.url("/translate")}}}},
            {"enter_queue": {"queue_name": "translated", "transfer_after_bridge": "after",
                             "status_url": hooks.url("/queue")}},
            {"hangup": {}}], "after": [{"hangup": {}}]}}
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/queue", 1, timeout=15)[0]["params"]["status"] == "enqueue"
        agent.ctrl.cmd(f"dial sip:{agent_number}@127.0.0.1:{d.sip_port}")
        agent.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
        the_translation_was_heard_by(hooks, agent, tmp_path)
        sipp_done(far)
    finally:
        model.stop()


def test_swml_live_translate_speaks_to_the_others_in_a_conference(start_dialtone, sipp, hooks, tmp_path, baresip):
    """A call dialtone made to sipp (the remote caller, saying an English sentence 9 s in) runs `live_translate`,
    then joins a conference; a baresip dials in and its route joins the same conference. The utterance, translated
    by the model, is spoken to the other participant in Spanish (its recording follows eSpeak NG's Spanish voice
    saying the translation)."""
    from test_interop import start_node
    from test_record import write_ulaw_wav
    from test_speech import flite_samples
    write_ulaw_wav(tmp_path / "stream.wav",
                   [0] * 8000 * 9 + flite_samples(tmp_path, REMOTE) + [0] * 8000 * 12)
    model = ScriptedModel([{"text": TRANSLATED}])
    member_number = "+15551230010"
    room = {"join_conference": {"name": "translated-room", "beep": "false"}}
    try:
        far = sipp("uas_stream_wav.xml")
        member = baresip(codecs=["PCMU"], tone=1000, seconds=18, user="member")
        d = start_node(start_dialtone, tmp_path,
                       # The member's leaving ends the conference, so the sipp call's script hangs up.
                       routes={member_number: {"version": "1.0.0", "sections": {"main": [
                           {"join_conference": dict(room["join_conference"], end_on_exit=True)},
                           {"hangup": {}}]}}},
                       extra_env={"DIALTONE_ASR_COMMAND": WHISPER, "DIALTONE_AI_BASE_URL": model.base_url})
        swml = {"version": "1.0.0", "sections": {"main": [
            {"live_translate": {"action": {"start": {
                "from_lang": "en-US", "to_lang": "es-ES", "direction": ["remote-caller"],
                "webhook": hooks.url("/translate")}}}},
            room,
            {"hangup": {}}]}}
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        time.sleep(2)
        member.ctrl.cmd(f"dial sip:{member_number}@127.0.0.1:{d.sip_port}")
        member.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
        the_translation_was_heard_by(hooks, member, tmp_path)
        sipp_done(far)
    finally:
        model.stop()

"""The SWML `ai` agent on a real call (docs/ai.md): dialtone dials sipp, which speaks a question (flite speech);
the agent hears it through the embedded recogniser, asks the model backend — a scripted OpenAI-compatible server
(tests/e2e/llm_server.py) that streams a SWAIG tool call, then an answer — calls the function's webhook with the
SWAIG request body, speaks the answer (a `record_call` of what the far end hears holds it), and POSTs the
post-prompt report; then the script goes on."""
import math
import time

from llm_server import ScriptedModel
from test_calls import sipp_done
from test_record import fetch_wav
from test_speech import write_speech_wav

QUESTION = "what is the weather in paris"
ANSWER = "It is sunny in Paris. Goodbye."


def doc(*steps):
    return {"version": "1.0.0", "sections": {"main": list(steps)}}


def after(hooks):
    return {"request": {"url": hooks.url("/after"), "method": "POST",
                        "body": {"ai_result": "${ai_result}", "return_value": "${return_value}"}}}


def finished_recording(d, hooks, path="/rec", timeout=20):
    """The (wave, samples) of the first recording whose `finished` event reached `path`."""
    deadline = time.time() + timeout
    rec = []
    while time.time() < deadline and not rec:
        rec = [e for e in hooks.on(path) if e["params"]["state"] == "finished"]
        time.sleep(0.2)
    assert rec, hooks.on(path)
    return fetch_wav(d, rec[0]["params"]["url"])


def speech_seconds(samples, rate=8000):
    """Seconds of 20 ms windows loud enough to be speech."""
    n = rate // 50
    loud = 0
    for i in range(0, len(samples) - n + 1, n):
        win = samples[i:i + n]
        if math.sqrt(sum(x * x for x in win) / n) > 500:
            loud += 1
    return loud * 0.02


def test_an_ai_agent_hears_the_caller_calls_a_swaig_function_and_answers(start_dialtone, sipp, tmp_path, hooks):
    write_speech_wav(tmp_path, QUESTION, tail_s=4.0)
    model = ScriptedModel([
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"text": ANSWER},
        {"text": "The caller asked about the weather in Paris."},
    ])
    model.hooks["weather"] = {"response": "sunny, 22 degrees"}
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url, "DIALTONE_AI_API_KEY": "sk-test",
                            "DIALTONE_AI_MODEL": "scripted-1"})
        swml = agent_over_a_recording(hooks, {
            "prompt": {"text": "You are a weather assistant.", "temperature": 0.2},
            "post_prompt": {"text": "Summarize the conversation."},
            "post_prompt_url": model.hook_url("post"),
            "hints": [QUESTION],
            "params": {"static_greeting": "Hello, ask me about the weather.", "inactivity_timeout": 4000},
            "SWAIG": {"functions": [{
                "function": "get_weather", "description": "The weather in a city",
                "fillers": {"en-US": ["Let me check."]},
                "web_hook_url": model.hook_url("weather", "agent:secret"), "meta_data_token": "tok-1",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]},
        })
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        got = hooks.wait_on("/after", 1, timeout=60)[0]
        assert got == {"ai_result": "success", "return_value": "success"}, got

        # The model was asked three times: the caller's words, the function's response, the summary.
        assert len(model.requests) == 3, [q["body"]["messages"] for q in model.requests]
        first = model.requests[0]
        assert {k.lower(): v for k, v in first["headers"].items()}.get("authorization") == "Bearer sk-test"
        body = first["body"]
        assert body["model"] == "scripted-1" and body["stream"] is True and body["temperature"] == 0.2, body
        assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
        roles = [m["role"] for m in body["messages"]]
        assert roles == ["system", "assistant", "user"], body["messages"]
        assert body["messages"][0]["content"] == "You are a weather assistant."
        assert body["messages"][2]["content"] == QUESTION, body["messages"]
        second = model.requests[1]["body"]["messages"]
        assert second[-2]["tool_calls"][0]["function"]["name"] == "get_weather", second
        assert second[-1] == {"role": "tool", "tool_call_id": "call_0", "content": "sunny, 22 degrees"}, second
        assert "tools" not in model.requests[2]["body"]
        assert model.requests[2]["body"]["messages"][-1]["content"] == "Summarize the conversation."

        # The SWAIG function's webhook got the request body SignalWire documents.
        swaig = model.hook_bodies["weather"][0]
        assert swaig["function"] == "get_weather" and swaig["argument"]["parsed"] == [{"city": "Paris"}], swaig
        assert swaig["call_id"] == call_id and swaig["meta_data_token"] == "tok-1", swaig
        assert swaig["content_type"] == "text/swaig" and swaig["content_disposition"] == "SWAIG Function", swaig
        # Credentials in the function's URL go as basic auth.
        assert model.hook_headers["weather"][0].get("authorization") == "Basic YWdlbnQ6c2VjcmV0"

        # The post-prompt report.
        report = model.hook_bodies["post"][0]
        assert report["action"] == "post_conversation" and report["call_id"] == call_id, report
        assert report["post_prompt_data"]["raw"] == "The caller asked about the weather in Paris."
        said = [m.get("content") for m in report["call_log"] if m["role"] == "assistant"]
        assert said == ["Hello, ask me about the weather.", None, ANSWER], said

        # The agent's speech is in the recording of what the far end heard: the greeting (cut short when the
        # caller talked over it) and the answer.
        w, samples = finished_recording(d, hooks)
        spoken = speech_seconds(list(samples), w.getframerate())
        assert spoken >= 1.5, f"{spoken} s of the agent's speech in the recording"
        sipp_done(far)
    finally:
        model.stop()


def test_an_ai_agent_whose_model_is_down_says_so_and_the_script_goes_on(start_dialtone, sipp, tmp_path, hooks):
    write_speech_wav(tmp_path, QUESTION, tail_s=2.0)
    from conftest import free_port
    far = sipp("uas_stream_wav.xml")
    # Nothing listens there: the backend is down.
    d = start_dialtone({"DIALTONE_AI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"})
    swml = doc({"ai": {"prompt": {"text": "You are a bot."}}}, after(hooks), {"hangup": {}})
    r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
    assert r.status_code == 200, r.text
    got = hooks.wait_on("/after", 1, timeout=30)[0]
    assert got == {"ai_result": "failed", "return_value": "failed"}, got
    sipp_done(far)


def barge_in(samples):
    """From a stereo recording (left: the caller, right: the agent): the 20 ms window where the caller began,
    and how long the agent went on talking after it — to the first window from which 0.5 s stays silent. Fails
    when the agent was not talking as the caller began."""
    caller, agent = windows_rms(list(samples[0::2])), windows_rms(list(samples[1::2]))
    start = next(i for i, v in enumerate(caller) if v > 500)
    assert max(agent[max(0, start - 15):start]) > 500, "the agent was not speaking when the caller began"
    stop = next(i for i in range(start, len(agent)) if max(agent[i:i + 25], default=0) < 300)
    return start, (stop - start) * 0.02


def windows_rms(samples, rate=8000):
    n = rate // 50
    return [math.sqrt(sum(x * x for x in samples[i:i + n]) / n) for i in range(0, len(samples) - n + 1, n)]


GREETING = ("Hello and welcome to the weather line. I can tell you the weather anywhere in the world, "
            "today or tomorrow, in any city you like")


def agent_over_a_recording(hooks, ai, both=False, then=()):
    """The `ai` method (its object) in a recording of the call — of what the far end hears, or with `both` a
    stereo one (left: the caller, right: the agent) — then the steps `then`, the `/after` report and a hangup."""
    record = {"direction": "both", "stereo": True} if both else {"direction": "listen"}
    return doc(
        {"record_call": {"format": "wav", **record, "status_url": hooks.url("/rec")}},
        {"ai": ai},
        *then,
        {"stop_record_call": {}},
        after(hooks),
        {"hangup": {}})


def a_silent_caller(tmp_path, sipp, start_dialtone, model, seconds):
    """sipp answering and saying nothing for `seconds`, and a dialtone whose agents ask `model`: (far, d)."""
    from test_speech import write_ulaw_wav
    write_ulaw_wav(tmp_path / "stream.wav", [0] * 8000 * seconds)
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url, "DIALTONE_AI_MODEL": "scripted-1"})
    return far, d


def greeting_over_a_recording(hooks, greeting, **params):
    """An agent that greets the caller at length (`params` beside), in a stereo recording of the call; then the
    `/after` report."""
    return agent_over_a_recording(hooks, {"prompt": {"text": "Weather bot."}, "hints": [QUESTION],
                                          "params": {"static_greeting": greeting, "inactivity_timeout": 2000,
                                                     **params}}, both=True)


def test_the_caller_talking_over_the_agent_stops_its_speech(start_dialtone, sipp, tmp_path, hooks):
    """Barge-in: the agent's long greeting is playing when the caller starts to speak (sipp, 1.5 s after the
    answer); in a stereo recording (left: the caller, right: what the agent sends) the agent's speech stops
    soon after the caller's starts."""
    write_speech_wav(tmp_path, QUESTION, tail_s=3.0)
    model = ScriptedModel([{"text": "Sunny."}])
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url})
        swml = greeting_over_a_recording(hooks, GREETING + ", and for as many days ahead as you wish to know.")
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=60)[0]["ai_result"] == "success"
        assert model.requests[0]["body"]["messages"][-1]["content"] == QUESTION
        w, samples = finished_recording(d, hooks)
        assert w.getnchannels() == 2
        # The agent was talking when the caller began (the greeting lasts far longer than 1.5 s), and went quiet
        # for good soon after.
        _, took = barge_in(samples)
        print(f"barge-in: the agent's speech stopped {took * 1000:.0f} ms after the caller's began")
        assert took < 0.6, f"the agent went on {took:.2f} s over the caller"
        sipp_done(far)
    finally:
        model.stop()


def test_calling_ai_stop_and_ai_message_act_on_the_running_agent(start_dialtone, sipp, tmp_path, hooks):
    """`calling.ai_message` while the agent speaks its greeting: a `system` one waits for the model's next turn,
    a `user` one cuts the greeting and is answered at once; `calling.ai.stop` cuts the answer, the agent ends (its
    report is sent) and the script goes on. With no agent running both answer 422."""
    from test_record import write_ulaw_wav
    write_ulaw_wav(tmp_path / "stream.wav", [0] * 8000 * 20)
    model = ScriptedModel([{"text": "It is noon. " + "Let me tell you more about the time. " * 10}])
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url})
        greeting = "Hello. " + "This greeting goes on and on. " * 20
        swml = doc({"ai": {"prompt": {"text": "Bot"}, "post_prompt_url": model.hook_url("post"),
                           "params": {"static_greeting": greeting}}},
                   # sipp takes a BYE only once its stream started (1.5 s after the answer).
                   after(hooks), {"play": {"url": "silence:2"}}, {"hangup": {}})
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        deadline = time.time() + 15
        while time.time() < deadline:
            r = d.post({"command": "calling.ai_message", "id": call_id,
                        "params": {"role": "system", "message_text": "Be brief.", "global_data": {"vip": True}}})
            if r.status_code == 200:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        time.sleep(0.5)
        assert model.requests == [], "a system message waits for the next turn"
        r = d.post({"command": "calling.ai_message", "id": call_id,
                    "params": {"role": "user", "message_text": "what time is it"}})
        assert r.status_code == 200, r.text
        deadline = time.time() + 5
        while time.time() < deadline and not model.requests:
            time.sleep(0.05)
        assert model.requests, "the user message is answered at once"
        messages = model.requests[0]["body"]["messages"]
        assert messages[-2:] == [{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": "what time is it"}], messages
        time.sleep(1.0)
        t0 = time.time()
        r = d.post({"command": "calling.ai.stop", "id": call_id, "params": {}})
        assert r.status_code == 200, r.text
        got = hooks.wait_on("/after", 1, timeout=10)[0]
        took = time.time() - t0
        assert got["ai_result"] == "success", got
        assert took < 3.0, f"the script went on {took:.1f} s after the stop"
        report = model.hook_bodies["post"][0]
        assert report["action"] == "post_conversation" and report["global_data"] == {"vip": True}, report
        assert {"role": "system", "content": "Be brief."} in report["raw_call_log"], report["raw_call_log"]
        assert len(model.requests) == 1, "the model was asked once, for the user message"
        # No agent any more.
        for command, params in (("calling.ai.stop", {}), ("calling.ai_message", {"message_text": "x"})):
            r = d.post({"command": command, "id": call_id, "params": params})
            assert r.status_code in (404, 422), (command, r.status_code, r.text)
        sipp_done(far)
    finally:
        model.stop()


def test_calling_ai_hold_and_unhold(start_dialtone, sipp, tmp_path, hooks):
    """`calling.ai_hold` (timeout as the platform's numeric string): the agent announces the hold and hold music
    plays; `calling.ai_unhold` ends it long before the timeout and the model, told the caller is back, speaks."""
    from test_record import write_ulaw_wav
    write_ulaw_wav(tmp_path / "stream.wav", [0] * 8000 * 30)
    model = ScriptedModel([{"text": "Please hold on."}, {"text": "Thanks for waiting."}])
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url})
        swml = doc({"ai": {"prompt": {"text": "Bot"}, "params": {"static_greeting": "Hello."}}},
                   after(hooks), {"play": {"url": "silence:2"}}, {"hangup": {}})
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        deadline = time.time() + 15
        while time.time() < deadline:
            r = d.post({"command": "calling.ai_hold", "id": call_id, "params": {"timeout": "60"}})
            if r.status_code == 200:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        deadline = time.time() + 5
        while time.time() < deadline and not model.requests:
            time.sleep(0.05)
        assert model.requests, "the hold is announced"
        hold = model.requests[0]["body"]
        assert "tools" not in hold and hold["messages"][-1] == {
            "role": "system", "content": "Tell the user you are putting them on hold."}, hold
        time.sleep(2.0)
        assert len(model.requests) == 1, "on hold: the agent waits"
        t0 = time.time()
        r = d.post({"command": "calling.ai_unhold", "id": call_id, "params": {"prompt": "The caller is back."}})
        assert r.status_code == 200, r.text
        deadline = time.time() + 5
        while time.time() < deadline and len(model.requests) < 2:
            time.sleep(0.05)
        assert len(model.requests) == 2, "unhold ends the hold"
        assert time.time() - t0 < 3
        assert model.requests[1]["body"]["messages"][-1] == {"role": "system", "content": "The caller is back."}
        r = d.post({"command": "calling.ai.stop", "id": call_id, "params": {}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=10)[0]["ai_result"] == "success"
        sipp_done(far)
    finally:
        model.stop()


def test_the_agent_speaks_its_answer_as_the_model_writes_it(start_dialtone, sipp, tmp_path, hooks):
    """Sentence by sentence: the model writes its first sentence at once and the second 4 s later; the first is
    heard by the far end long before the model has finished (in a recording of what the far end hears, started
    just before the agent), the second after it."""
    from test_record import write_ulaw_wav
    write_ulaw_wav(tmp_path / "stream.wav", [0] * 8000 * 12)
    model = ScriptedModel([{"parts": [[0, "Hello there, welcome."], [4.0, " This second sentence came later."]]}])
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url})
        swml = agent_over_a_recording(hooks, {"prompt": {"text": "Greeter."}, "params": {"inactivity_timeout": 2000}})
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=60)[0]["ai_result"] == "success"
        w, samples = finished_recording(d, hooks)
        loud = [i * 0.02 for i, v in enumerate(windows_rms(list(samples), w.getframerate())) if v > 500]
        assert loud, "the agent said nothing"
        print(f"first speech at {loud[0]:.2f} s, last at {loud[-1]:.2f} s of the recording")
        # The model's answer takes over 4 s to write; its first sentence is heard well before that...
        assert loud[0] < 2.0, f"the first words came {loud[0]:.2f} s in"
        # ...and the second after it.
        assert loud[-1] > 4.0, f"the last words ended at {loud[-1]:.2f} s"
        sipp_done(far)
    finally:
        model.stop()


def test_the_caller_talking_over_a_streaming_answer_stops_it(start_dialtone, sipp, tmp_path, hooks):
    """Barge-in while the model still writes: its long first sentence is being spoken when the caller (sipp, 1.5 s
    after the answer) starts talking, and the rest of the answer comes 6 s later. The agent's speech stops soon
    after the caller's starts — before the model has finished — and the caller's words reach the model's next
    turn."""
    write_speech_wav(tmp_path, QUESTION, tail_s=7.0)
    first = ("Hello and welcome to the weather line, where I can tell you the weather anywhere in the world, "
             "today or tomorrow, in any city you like, for as many days ahead as you wish.")
    model = ScriptedModel([{"parts": [[0, first], [6.0, " Ask me anything."]]}, {"text": "Sunny."}])
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url})
        swml = agent_over_a_recording(hooks, {"prompt": {"text": "Weather bot."}, "hints": [QUESTION],
                                              "params": {"inactivity_timeout": 2000}}, both=True)
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=60)[0]["ai_result"] == "success"
        assert len(model.requests) >= 2, model.requests
        assert model.requests[1]["body"]["messages"][-1] == {"role": "user", "content": QUESTION}
        w, samples = finished_recording(d, hooks)
        start, took = barge_in(samples)
        print(f"barge-in over a streaming answer: the agent stopped {took * 1000:.0f} ms after the caller began")
        assert took < 0.6, f"the agent went on {took:.2f} s over the caller"
        # The model was still writing then: its answer took 6 s, the caller began 1.5 s in.
        assert start * 0.02 < 4.0
        sipp_done(far)
    finally:
        model.stop()


def test_a_functions_inline_swml_runs_on_the_call_and_the_agent_goes_on(start_dialtone, sipp, tmp_path, hooks):
    """A SWAIG function answers with a `SWML` action without `transfer`: its document runs on the real call (it
    says something and calls a webhook with a variable it set), then the agent takes the call back: the model
    is asked again with the function's response and its answer is spoken; the script goes on after the agent."""
    write_speech_wav(tmp_path, QUESTION, tail_s=4.0)
    model = ScriptedModel([
        {"tool_calls": [{"name": "jingle", "arguments": {}}]},
        {"text": ANSWER},
    ])
    model.hooks["jingle"] = {"response": "the jingle was played", "action": [{"SWML": {
        "version": "1.0.0", "sections": {"main": [
            {"play": {"url": "say:This is the inline part."}},
            {"set": {"inline": "ran"}},
            {"request": {"url": hooks.url("/inline"), "method": "POST", "body": {"inline": "${inline}"}}},
        ]}}}]}
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url, "DIALTONE_AI_MODEL": "scripted-1"})
        swml = doc(
            {"ai": {
                "prompt": {"text": "You are a bot."},
                "params": {"inactivity_timeout": 3000},
                "SWAIG": {"functions": [{"function": "jingle", "description": "Plays the jingle",
                                         "web_hook_url": model.hook_url("jingle")}]},
            }},
            after(hooks),
            {"hangup": {}})
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/inline", 1, timeout=40)[0] == {"inline": "ran"}
        got = hooks.wait_on("/after", 1, timeout=40)[0]
        assert got == {"ai_result": "success", "return_value": "success"}, got
        # The second model turn came after the inline document and carried the function's response.
        assert len(model.requests) >= 2, [q["body"]["messages"] for q in model.requests]
        second = model.requests[1]["body"]["messages"]
        assert second[-1]["content"] == "the jingle was played", second
        sipp_done(far)
    finally:
        model.stop()


def test_the_agents_background_file_plays_under_it_and_stops_with_it(start_dialtone, sipp, tmp_path, hooks):
    """`params.background_file`: a 1 kHz clip loops under the agent's speech on the real call (a recording of what
    the far end hears has the tone while the agent runs) and stops when the agent ends (the silence played after
    the agent is silent)."""
    from media_sink import HttpPeer, labels, tone_wav
    media = HttpPeer()
    music = media.route("/music.wav", tone_wav(1000, 0.5, 8000, amp=0.3), "audio/wav")
    model = ScriptedModel([{"text": "Hello there."}])
    try:
        far, d = a_silent_caller(tmp_path, sipp, start_dialtone, model, 12)
        swml = agent_over_a_recording(hooks, {"prompt": {"text": "You are a bot."},
                                              "params": {"background_file": music, "inactivity_timeout": 3000}},
                                      then=[{"play": {"url": "silence:2"}}])
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=40)[0]["ai_result"] == "success"
        w, samples = finished_recording(d, hooks)
        assert w.getframerate() == 8000, w.getframerate()
        labs = labels(list(samples))
        tone = [i for i, l in enumerate(labs) if l == "1k"]
        # The clip is half a second long: over 3 s of agent it looped; the 2 s after the agent has none of it.
        assert len(tone) >= 15, labs
        assert "1k" not in labs[-15:], labs
        assert len(media.hits("/music.wav")) >= 1
        sipp_done(far)
    finally:
        model.stop()


def test_a_functions_wait_file_plays_while_its_webhook_runs(start_dialtone, sipp, tmp_path, hooks):
    """A SWAIG function's `wait_file`: its webhook (a real HTTP server) takes 3 s to answer, and the far end hears
    the 1 kHz wait file under the call for that long — in a recording of what it hears, the tone lasts about as long
    as the webhook did, not as long as the agent ran, and is gone after."""
    from media_sink import HttpPeer, labels, tone_wav

    def slow_answer():
        time.sleep(3)
        return 200, "application/json", b'{"response": "done"}'
    media = HttpPeer()
    wait_file = media.route("/wait.wav", tone_wav(1000, 0.5, 8000, amp=0.3), "audio/wav")
    media.routes["/slow"] = slow_answer
    model = ScriptedModel([{"tool_calls": [{"name": "slow_lookup", "arguments": {}}]}, {"text": "All done."}])
    try:
        far, d = a_silent_caller(tmp_path, sipp, start_dialtone, model, 16)
        swml = agent_over_a_recording(hooks, {
            "prompt": {"text": "You are a bot."}, "params": {"inactivity_timeout": 3000},
            "SWAIG": {"functions": [{"function": "slow_lookup", "description": "Looks something up slowly",
                                     "web_hook_url": media.url("/slow"), "wait_file": wait_file}]}},
            then=[{"play": {"url": "silence:2"}}])
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=40)[0]["ai_result"] == "success"
        assert len(media.hits("/slow")) == 1
        w, samples = finished_recording(d, hooks)
        labs = labels(list(samples))
        tone = [i for i, l in enumerate(labs) if l == "1k"]
        # 100 ms windows: about 3 s of tone while the webhook ran — not the whole agent (answer + 3 s of
        # inactivity after it) — and none in the 2 s played after the agent.
        assert 15 <= len(tone) <= 45, labs
        assert "1k" not in labs[-15:], labs
        assert len(model.requests) == 2, model.requests
        sipp_done(far)
    finally:
        model.stop()
        media.stop()


def test_playback_bg_with_wait_plays_its_file_before_the_agent_answers(start_dialtone, sipp, tmp_path, hooks):
    """A function's `playback_bg` action with `wait`: the 1 s file (1 kHz) plays in the open on the real call and
    the agent's answer is heard only after it — in a recording of what the far end hears, a second of tone, then
    the answer's speech, never both at once."""
    from media_sink import HttpPeer, labels, major_runs, tone_wav
    media = HttpPeer()
    ding = media.route("/ding.wav", tone_wav(1000, 1.0, 8000, amp=0.3), "audio/wav")
    model = ScriptedModel([{"tool_calls": [{"name": "ding", "arguments": {}}]}, {"text": "All done now."}])
    try:
        far, d = a_silent_caller(tmp_path, sipp, start_dialtone, model, 16)
        swml = agent_over_a_recording(hooks, {
            "prompt": {"text": "You are a bot."}, "params": {"inactivity_timeout": 2000},
            "SWAIG": {"functions": [{"function": "ding", "description": "Rings a bell", "data_map": {"output": {
                "response": "rang", "action": [{"playback_bg": {"file": ding, "wait": True}}]}}}]}})
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=40)[0]["ai_result"] == "success"
        w, samples = finished_recording(d, hooks)
        heard = [(l, n) for l, _, n in major_runs(labels(list(samples))) if l != "silence"]
        # One run of tone about a second long, then the spoken answer.
        assert [l for l, _ in heard][:2] == ["1k", "sound"], heard
        assert 8 <= heard[0][1] <= 11, heard
        assert len(model.requests) == 2, model.requests
        sipp_done(far)
    finally:
        model.stop()
        media.stop()


def test_wait_for_fillers_sends_the_webhook_once_the_filler_is_said(start_dialtone, sipp, tmp_path, hooks):
    """A function with `wait_for_fillers`: its filler (a sentence of a few seconds) is said first, and its webhook (a
    real HTTP server) is called only after — seconds after the model asked for the function, where a function
    without it is called at once."""
    from media_sink import HttpPeer
    media = HttpPeer()
    media.route("/patient", '{"response": "found it"}', "application/json")
    media.route("/eager", '{"response": "found it"}', "application/json")
    filler = "Please hold on while I look that up for you in all of our records."
    model = ScriptedModel([{"tool_calls": [{"name": "patient_lookup", "arguments": {}}]},
                           {"tool_calls": [{"name": "eager_lookup", "arguments": {}}]},
                           {"text": "Done."}])
    try:
        far, d = a_silent_caller(tmp_path, sipp, start_dialtone, model, 20)
        functions = [{"function": "patient_lookup", "description": "Looks up, patiently", "fillers": [filler],
                      "wait_for_fillers": True, "web_hook_url": media.url("/patient")},
                     {"function": "eager_lookup", "description": "Looks up at once", "fillers": [filler],
                      "web_hook_url": media.url("/eager")}]
        swml = doc({"ai": {"prompt": {"text": "You are a bot."}, "params": {"inactivity_timeout": 2000},
                           "SWAIG": {"functions": functions}}}, after(hooks), {"hangup": {}})
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=60)[0]["ai_result"] == "success"
        patient = media.wait_hit("/patient")["t"] - model.requests[0]["t"]
        eager = media.wait_hit("/eager")["t"] - model.requests[1]["t"]
        print(f"webhook {patient:.2f} s after the model's call with wait_for_fillers, {eager:.2f} s without")
        assert patient > 2.0, patient
        assert eager < 1.0, eager
        sipp_done(far)
    finally:
        model.stop()
        media.stop()


def test_barge_min_words_lets_a_short_interruption_go(start_dialtone, sipp, tmp_path, hooks):
    """`params.barge_min_words`: the caller says six words over the agent's long greeting; with 20 needed the
    greeting plays on over them (a stereo recording shows the agent still talking seconds after the caller began)
    and the words are let go (the model is never asked about them)."""
    write_speech_wav(tmp_path, QUESTION, tail_s=3.0)
    model = ScriptedModel([{"text": "Sunny."}])
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url})
        swml = greeting_over_a_recording(hooks, GREETING + ".", barge_min_words=20)
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=60)[0]["ai_result"] == "success"
        asked = [q["body"]["messages"][-1]["content"] for q in model.requests]
        assert QUESTION not in asked, asked
        w, samples = finished_recording(d, hooks)
        _, went_on = barge_in(samples)
        assert went_on > 2.0, f"the agent stopped {went_on:.2f} s after the caller began"
        sipp_done(far)
    finally:
        model.stop()


def test_an_mcp_servers_tools_are_the_agents(start_dialtone, sipp, tmp_path, hooks):
    """`SWAIG.mcp_servers`: a server made with the official MCP SDK (FastMCP, Streamable HTTP) lists its tool;
    the model is offered it, calls it, and the tool's answer (from the MCP server) goes back to the model. With
    `resources: true` its resources are read first (a template filled from `resource_vars` with the caller's
    number) and the prompt reads them from global_data."""
    from mcp_weather import WeatherMcp
    server = WeatherMcp()
    write_speech_wav(tmp_path, QUESTION, tail_s=4.0)
    model = ScriptedModel([
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"text": ANSWER},
    ])
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url, "DIALTONE_AI_MODEL": "scripted-1"})
        swml = doc(
            {"ai": {"prompt": {"text": "You are a weather assistant for ${customer_name} (${caller}) at ${station}."},
                    "hints": [QUESTION], "params": {"inactivity_timeout": 3000},
                    "SWAIG": {"mcp_servers": [{"url": server.url, "resources": True,
                                               "resource_vars": {"caller_id": "${caller_id_number}"}}]}}},
            after(hooks),
            {"hangup": {}})
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=60)[0]["ai_result"] == "success"
        first = model.requests[0]["body"]
        assert first["messages"][0]["content"] == \
            "You are a weather assistant for Ann Example (+15551110000) at Orly.", first["messages"][0]
        tools = {t["function"]["name"]: t["function"] for t in first["tools"]}
        assert "get_weather" in tools, first["tools"]
        assert tools["get_weather"]["parameters"]["properties"]["city"]["type"] == "string", tools
        second = model.requests[1]["body"]["messages"]
        assert second[-1]["role"] == "tool" and second[-1]["content"] == "sunny in Paris, 22 degrees", second[-1]
        sipp_done(far)
    finally:
        model.stop()
        server.stop()


def test_keypresses_reach_the_agent_as_the_callers_words(start_dialtone, sipp, hooks):
    """`params.digit_terminators`: the far end (sipp) presses 1, 2, 3 and # as RFC 4733 events while the agent
    listens; the model gets "123" as the caller's words and the script goes on after the agent."""
    model = ScriptedModel([{"text": "Thank you."}])
    try:
        far = sipp("uas_dtmf.xml")
        d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url, "DIALTONE_AI_MODEL": "scripted-1"})
        swml = doc(
            {"ai": {"prompt": {"text": "Take the caller's account number."},
                    "params": {"wait_for_user": True, "digit_terminators": "#", "inactivity_timeout": 5000}}},
            after(hooks),
            {"hangup": {}})
        r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
        assert r.status_code == 200, r.text
        assert hooks.wait_on("/after", 1, timeout=40)[0]["ai_result"] == "success"
        first = model.requests[0]["body"]["messages"]
        assert first[-1] == {"role": "user", "content": "123"}, first
        sipp_done(far)
    finally:
        model.stop()

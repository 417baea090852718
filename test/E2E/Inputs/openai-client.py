"""Drives `PROGRAM --serve` with the official openai client.

usage: openai-client.py PROGRAM FIXTURE_DIR [PROGRAM OPTIONS...]

Starts the server on 127.0.0.1 (a free port; at most 6 requests running),
then sends 16 concurrent requests: completions and chat completions, streamed and not, greedy. Each
text must equal transformers' (the fixture's outputs.txt and chats.json,
which the offline program reproduces in test/E2E/text.test). Then: /metrics
parses as Prometheus text and counts the requests, /v1/models and /health
answer, a request past the token limit is refused in one line, and SIGTERM
stops the server cleanly (exit 0).
"""

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

import openai
from prometheus_client.parser import text_string_to_metric_families

program, fixture, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
server = subprocess.Popen(
    [program, "--weights", os.path.join(fixture, "model.safetensors"),
     "--tokenizer", fixture, "--serve", "127.0.0.1:0", "--max-new-tokens",
     "12", "--batch-size", "6", "--model-name", "tiny-llama"] + extra,
    stdout=subprocess.PIPE, text=True)
try:
    line = server.stdout.readline()
    match = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
    assert match, f"no address in {line!r}"
    base = f"http://127.0.0.1:{match.group(1)}"
    client = openai.OpenAI(base_url=base + "/v1", api_key="none",
                           max_retries=0, timeout=120)

    prompts = [p for p in open(os.path.join(fixture, "prompts.txt"),
                               encoding="utf-8").read().split("\n") if p]
    outputs = [json.loads(l) for l in open(os.path.join(fixture, "outputs.txt"),
                                           encoding="utf-8") if l.strip()]
    chats = json.load(open(os.path.join(fixture, "chats.json"),
                           encoding="utf-8"))

    def completion(i, stream):
        if not stream:
            r = client.completions.create(model="tiny-llama", prompt=prompts[i],
                                          max_tokens=12, temperature=0)
            return r.choices[0].text, r.choices[0].finish_reason
        text, reason = "", None
        for chunk in client.completions.create(
                model="tiny-llama", prompt=prompts[i], max_tokens=12,
                temperature=0, stream=True):
            text += chunk.choices[0].text
            reason = chunk.choices[0].finish_reason or reason
        return text, reason

    def chat(i, stream):
        messages = chats[i]["messages"]
        if not stream:
            r = client.chat.completions.create(model="tiny-llama",
                                               messages=messages,
                                               max_tokens=12, temperature=0)
            return r.choices[0].message.content, r.choices[0].finish_reason
        text, reason = "", None
        for chunk in client.chat.completions.create(
                model="tiny-llama", messages=messages, max_tokens=12,
                temperature=0, stream=True):
            if chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            reason = chunk.choices[0].finish_reason or reason
        return text, reason

    jobs = []
    for k in range(16):
        if k % 4 < 2:
            i = k % len(prompts)
            jobs.append((completion, i, k % 2 == 1, outputs[i]))
        else:
            i = k % len(chats)
            jobs.append((chat, i, k % 2 == 1, chats[i]["output"]))
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(f, i, s) for f, i, s, _ in jobs]
        results = [f.result() for f in futures]
    for (f, i, s, want), (got, reason) in zip(jobs, results):
        assert got == want, (f.__name__, i, s, got, want)
        assert reason in ("stop", "length"), reason
    print("16 concurrent requests: every text equals transformers'")

    metrics = urllib.request.urlopen(base + "/metrics").read().decode()
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    finished = families["fairkv_requests_finished"].samples[0].value
    assert finished == 16, finished
    assert "fairkv_time_to_first_token_seconds" in families
    assert "fairkv_kv_bytes" in families
    # Continuous batching: with at most 6 running, the 16 joined over at
    # least 3 step boundaries, later ones while others were decoding.
    joins = families["fairkv_joins"].samples[0].value
    assert joins >= 3, joins
    pools = [int(x.value) for x in families["fairkv_kv_bytes"].samples]
    if "--kv-memory" in extra:
        # Admission queued what did not fit: no pool ever passed the limit.
        limit = int(extra[extra.index("--kv-memory") + 1])
        assert max(pools) <= limit, (pools, limit)
        print("every pool within --kv-memory", limit)
    print("joined at", int(joins), "step boundaries; KV pool bytes", pools)
    print("metrics parse as Prometheus text:", len(families), "families")

    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny-llama"], models
    health = json.loads(urllib.request.urlopen(base + "/health").read())
    assert health == {"status": "ok"}, health
    try:
        client.completions.create(model="tiny-llama", prompt="Hi there",
                                  max_tokens=500)
        raise AssertionError("max_tokens past the limit was accepted")
    except openai.BadRequestError as e:
        assert "exceeds the program's limit of 12" in str(e), e
    print("models, health and one-line refusals answer")
finally:
    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=60)
assert code == 0, f"the server exited with {code}"
print("SIGTERM: the server stopped cleanly")

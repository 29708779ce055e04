import json
import urllib.error
import urllib.request

import pytest

from harken.knowledge.local_llm import LocalLLMGenerator
from harken.knowledge.serve_openai import OpenAIChatServer

KEY = "sk-test-123"


@pytest.fixture(scope="module")
def server(tiny_lm):
    llm = LocalLLMGenerator(model=str(tiny_lm), max_new_tokens=8)
    with OpenAIChatServer(llm, model_name="tiny-llama", api_key=KEY) as srv:
        yield srv


def call(server, path, body=None, key=KEY, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=data)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "open door"}]


def test_chat_completion_shape(server):
    status, body = call(
        server,
        "/v1/chat/completions",
        {"model": "tiny-llama", "messages": MESSAGES, "max_tokens": 5},
    )
    assert status == 200
    assert body["object"] == "chat.completion" and body["model"] == "tiny-llama"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(
        choice["message"]["content"], str
    )
    assert choice["finish_reason"] in {"stop", "length"}
    assert (
        body["usage"]["total_tokens"]
        == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert 1 <= body["usage"]["completion_tokens"] <= 5


@pytest.mark.parametrize(
    ("key", "code"), [(None, "invalid_api_key"), ("sk-wrong", "invalid_api_key")]
)
def test_auth(server, key, code):
    status, body = call(
        server, "/v1/chat/completions", {"model": "tiny-llama", "messages": MESSAGES}, key=key
    )
    assert status == 401 and body["error"]["code"] == code


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"messages": MESSAGES}, 400, "model"),
        ({"model": "gpt-9", "messages": MESSAGES}, 404, "model"),
        ({"model": "tiny-llama"}, 400, "messages"),
        ({"model": "tiny-llama", "messages": []}, 400, "messages"),
        (
            {"model": "tiny-llama", "messages": [{"role": "robot", "content": "x"}]},
            400,
            "messages[0]",
        ),
        ({"model": "tiny-llama", "messages": [{"role": "user"}]}, 400, "messages[0]"),
        ({"model": "tiny-llama", "messages": MESSAGES, "max_tokens": 0}, 400, "max_tokens"),
        ({"model": "tiny-llama", "messages": MESSAGES, "temperature": 5}, 400, "temperature"),
        ({"model": "tiny-llama", "messages": MESSAGES, "n": 2}, 400, "n"),
    ],
)
def test_request_validation(server, body, status, param):
    got, answer = call(server, "/v1/chat/completions", body)
    assert got == status and answer["error"]["param"] == param


def test_invalid_json_unknown_path_and_models(server):
    status, body = call(server, "/v1/chat/completions", raw=b"{nope")
    assert status == 400 and "JSON" in body["error"]["message"]
    status, _ = call(server, "/v1/embeddings", {"model": "tiny-llama"})
    assert status == 404
    status, body = call(server, "/v1/models")
    assert status == 200 and body["data"][0]["id"] == "tiny-llama"

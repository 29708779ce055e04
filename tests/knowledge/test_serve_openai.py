import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from harken.errors import ConfigError
from harken.knowledge.local_llm import LocalLLMGenerator
from harken.knowledge.serve_openai import OpenAIChatServer, check_bind, main

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


# -- hardening: binding, body limits, timeouts, bounded threads ---------------------------------


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse_response(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body)


def post_head(length_header: str | None, body: bytes = b"") -> bytes:
    lines = ["POST /v1/chat/completions HTTP/1.1", "Host: x", f"Authorization: Bearer {KEY}"]
    if length_header is not None:
        lines.append(length_header)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def small_server(tiny_lm):
    """A server with tight limits: 1 KiB bodies, 1 s timeout, 3 workers."""
    llm = LocalLLMGenerator(model=str(tiny_lm), max_new_tokens=4)
    with OpenAIChatServer(
        llm, model_name="tiny-llama", api_key=KEY, max_body_bytes=1024, timeout=1.0, workers=3
    ) as srv:
        yield srv


def test_oversized_body_is_413_without_reading_it(small_server):
    status, body = call(
        small_server,
        "/v1/chat/completions",
        {"model": "tiny-llama", "messages": MESSAGES, "pad": "x" * 2000},
    )
    assert status == 413 and "at most 1024 bytes" in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"
    # Only the header is sent: the server answers at once instead of waiting for the body.
    t0 = time.monotonic()
    raw = raw_exchange(small_server.port, post_head("Content-Length: 1000000000"))
    status, headers, body = parse_response(raw)
    assert status == 413 and headers["connection"] == "close"
    assert time.monotonic() - t0 < 0.9  # before the 1 s socket timeout


@pytest.mark.parametrize(
    ("header", "status", "words"),
    [
        ("Content-Length: abc", 400, "Invalid Content-Length"),
        ("Content-Length: -5", 400, "Invalid Content-Length"),
        ("Content-Length: 1e3", 400, "Invalid Content-Length"),
        (None, 411, "needs a Content-Length"),
        ("Transfer-Encoding: chunked", 411, "Chunked"),
    ],
)
def test_bad_or_missing_content_length_is_answered(small_server, header, status, words):
    raw = raw_exchange(small_server.port, post_head(header, b"{}"))
    got, headers, body = parse_response(raw)
    assert got == status and words in body["error"]["message"]
    assert headers["content-type"] == "application/json"


def test_malformed_request_line_gets_a_json_answer(small_server):
    got, _, body = parse_response(raw_exchange(small_server.port, b"GARBAGE\r\n\r\n"))
    assert got == 400 and body["error"]["message"]


def test_body_that_stalls_is_408_after_the_timeout(small_server):
    t0 = time.monotonic()
    raw = raw_exchange(small_server.port, post_head("Content-Length: 50", b'{"model":'))
    status, _, body = parse_response(raw)
    assert status == 408 and "1 s" in body["error"]["message"]
    assert 0.9 < time.monotonic() - t0 < 5


def test_keep_alive_still_works(small_server):
    body = json.dumps({"model": "tiny-llama", "messages": MESSAGES, "max_tokens": 2}).encode()
    request = post_head(f"Content-Length: {len(body)}", body)
    with socket.create_connection(("127.0.0.1", small_server.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        for _ in range(2):  # two requests on one connection
            sock.sendall(request)
            assert reader.readline().startswith(b"HTTP/1.1 200")
            length = 0
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert json.loads(reader.read(length))["object"] == "chat.completion"


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.168.1.10", "example.org"])
def test_non_loopback_without_key_is_refused(tiny_lm, host):
    with pytest.raises(ConfigError, match=r"without an API key.*--api-key.*127\.0\.0\.1"):
        OpenAIChatServer(LocalLLMGenerator(model=str(tiny_lm)), host=host)


def test_bind_check_allows_loopback_or_a_key():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, None)  # no error
    check_bind("0.0.0.0", "secret")  # checked without binding: tests stay on loopback
    for host in ("0.0.0.0", "192.0.2.1", "example.org"):
        with pytest.raises(ConfigError, match="without an API key"):
            check_bind(host, None)


def test_cli_refuses_public_host_without_key(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--host", "0.0.0.0", "--port", "0"])
    assert info.value.code == 2
    assert "without an API key" in capsys.readouterr().err


def test_idle_connections_are_bounded_and_closed(small_server):
    """50 idle clients: at most ``workers`` threads serve them, the others are answered 503 at
    once, and the idle ones are disconnected after the socket timeout."""
    before = threading.active_count()
    socks = [
        socket.create_connection(("127.0.0.1", small_server.port), timeout=10) for _ in range(50)
    ]
    try:
        time.sleep(0.3)
        assert threading.active_count() <= before + 3 + 1
        t0 = time.monotonic()
        answers = []
        for sock in socks:
            chunks = []
            while chunk := sock.recv(65536):  # EOF: the server closed the connection
                chunks.append(chunk)
            answers.append(b"".join(chunks))
        assert time.monotonic() - t0 < 8  # closed after the 1 s timeout, not held open
    finally:
        for sock in socks:
            sock.close()
    busy = [parse_response(a) for a in answers if a]
    assert all(status == 503 for status, _, _ in busy)
    assert busy[0][2]["error"]["code"] == "server_busy"
    # Those that got a worker were closed silently after the timeout; the rest were refused.
    assert len(busy) >= 25
    # The pool is free again: a normal request succeeds.
    status, _ = call(small_server, "/v1/models")
    assert status == 200

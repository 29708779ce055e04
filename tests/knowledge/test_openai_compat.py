import socket
import threading
import time

import pytest

from harken.errors import ConfigError, HarkenError, ModelUnavailableError
from harken.knowledge import CachedGenerator, get_generator
from harken.knowledge.local_llm import LocalLLMGenerator, clean_description
from harken.knowledge.openai_compat import OpenAIGenerator
from harken.knowledge.prompts import GEBHARD2024
from harken.knowledge.serve_openai import OpenAIChatServer, _RequestError

KEY = "sk-test-456"


@pytest.fixture(scope="module")
def server(tiny_lm):
    llm = LocalLLMGenerator(model=str(tiny_lm), max_new_tokens=8)
    with OpenAIChatServer(llm, model_name="tiny-llama", api_key=KEY) as srv:
        yield srv


def client(server, **kwargs) -> OpenAIGenerator:
    args = {"model": "tiny-llama", "base_url": server.base_url, "api_key": KEY, "max_tokens": 6}
    return OpenAIGenerator(**(args | kwargs))


def test_describe_against_a_real_loopback_server(server):
    gen = client(server)
    out = gen.describe(["open door", "cut onion"])
    assert len(out) == 2 and all(len(d) <= 1 for d in out)
    assert gen.describe(["open door", "cut onion"]) == out  # temperature 0 → same answers
    # The server's model, asked the same messages directly, gives the same description.
    llm = server.llm
    direct = llm.generate([llm.render_chat(GEBHARD2024.messages("open door"))], False, 6)[0]
    expected = clean_description(direct.strip(), GEBHARD2024.response_prefix)
    assert out[0] == ([expected] if expected else [])


def test_settings_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_MODEL", "tiny-llama")
    gen = get_generator("openai", max_tokens=4)
    assert gen.url == f"{server.base_url}/chat/completions"
    assert len(gen.describe(["wash plate"])) == 1
    assert KEY not in str(gen.config())  # the key never reaches configs or manifests
    assert get_generator("openai:other").model == "other"


def test_wrong_or_missing_key_is_a_clear_error(server):
    with pytest.raises(HarkenError, match=r"refused the API key \(HTTP 401") as info:
        client(server, api_key="sk-wrong").describe(["open door"])
    assert server.base_url in str(info.value)
    with pytest.raises(HarkenError, match="401"):
        client(server, api_key="").describe(["open door"])


def test_unknown_model_is_reported(server):
    with pytest.raises(ModelUnavailableError, match="'gpt-9'"):
        client(server, model="gpt-9").describe(["open door"])


def test_connection_refused_names_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = OpenAIGenerator(model="m", base_url=f"http://127.0.0.1:{port}/v1", api_key="k", retries=0)
    with pytest.raises(
        HarkenError, match=f"cannot reach the chat endpoint http://127.0.0.1:{port}/v1"
    ):
        gen.describe(["open door"])


def test_retries_on_rate_limit_and_server_errors(server, monkeypatch):
    real = server.complete
    failures = [_RequestError(429, "Rate limit reached"), _RequestError(503, "overloaded")]

    def flaky(body):
        if failures:
            raise failures.pop(0)
        return real(body)

    monkeypatch.setattr(server, "complete", flaky)
    before = server.requests
    out = client(server, backoff=0.01).describe(["open door"])
    assert len(out) == 1 and not failures and server.requests == before + 1

    failures.extend(_RequestError(503, "down") for _ in range(3))
    with pytest.raises(HarkenError, match="HTTP 503: down"):
        client(server, backoff=0.01, retries=2).describe(["open door"])


def test_cached_openai_generator_asks_once(server, tmp_path):
    before = server.requests
    gen = CachedGenerator(client(server), tmp_path / "c.jsonl")
    first = gen.describe(["open door", "open door"])
    second = CachedGenerator(client(server), tmp_path / "c.jsonl").describe(["open door"])
    assert server.requests == before + 1 and second == first[:1]


def test_needs_a_model(monkeypatch):
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with pytest.raises(ConfigError, match="needs a model"):
        OpenAIGenerator()


# -- timeouts: connect, answer and the total retry time are bounded ----------------------------


@pytest.fixture
def no_proxy_env(monkeypatch):
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def silent_server():
    """Accepts connections and reads requests, never answers; yields (port, accepted)."""
    srv = socket.create_server(("127.0.0.1", 0), backlog=64)
    srv.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever():
        while not stop.is_set():
            try:
                accepted.append(srv.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    yield srv.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    srv.close()


def test_silent_server_times_out_and_retries_within_the_budget(no_proxy_env, silent_server):
    port, accepted = silent_server
    gen = OpenAIGenerator(
        model="m",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="k",
        timeout=0.3,
        retries=50,
        backoff=0.05,
        retry_budget=1.0,
    )
    t0 = time.monotonic()
    with pytest.raises(HarkenError, match=r"answer timeout 0\.3 s.*within 1 s") as info:
        gen.describe(["open door"])
    elapsed = time.monotonic() - t0
    # Retries stop at the 1 s budget (plus the last attempt's 0.3 s), far from 50 attempts.
    assert 0.9 < elapsed < 2.5
    assert 2 <= len(accepted) < 10
    assert f"after {len(accepted)} attempts" in str(info.value)


def test_connect_timeout_is_separate_from_the_answer_timeout(no_proxy_env):
    """A listener whose accept queue is full never completes a connection: the 0.3 s connect
    timeout ends the call, not the 30 s answer timeout."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):  # fills the queue
            gen = OpenAIGenerator(
                model="m",
                base_url=f"http://127.0.0.1:{port}/v1",
                api_key="k",
                timeout=30,
                connect_timeout=0.3,
                retries=0,
            )
            t0 = time.monotonic()
            with pytest.raises(HarkenError, match=r"connect timeout 0\.3 s"):
                gen.describe(["open door"])
            assert time.monotonic() - t0 < 3


def test_timeouts_must_be_positive():
    with pytest.raises(ConfigError, match="connect_timeout must be positive"):
        OpenAIGenerator(model="m", connect_timeout=0)
    with pytest.raises(ConfigError, match="retry_budget must be positive"):
        OpenAIGenerator(model="m", retry_budget=-1)

"""Sound descriptions from any OpenAI-compatible chat-completions endpoint.

Sends the prompt's system + user messages (Gebhard et al., 2024, Table 2 by default) to
``POST {base_url}/chat/completions`` with ``temperature=0`` and keeps the answer, cleaned by
:func:`~harken.knowledge.local_llm.clean_description`. Works with OpenAI itself and with local
servers that speak the same API (vLLM, llama.cpp's server, Ollama, LM Studio,
:mod:`harken.knowledge.serve_openai`). The chat API cannot force the start of an answer, so a
prompt's ``response_prefix`` is not sent; an answer that repeats it has it removed.

Uses only the standard library (``urllib``). Rate limits (429) and server errors (5xx) are retried
with exponential backoff (honouring ``Retry-After``); authentication and connection failures raise
:class:`~harken.errors.HarkenError` naming the URL.

Every request is bounded: ``connect_timeout`` for the TCP connection (and a proxy tunnel and TLS
handshake), ``timeout`` for each wait on the answer; retries stop once ``retry_budget`` seconds
have passed since the first attempt, so one call takes at most about ``retry_budget`` plus one
attempt's timeouts.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from harken.errors import ConfigError, HarkenError, ModelUnavailableError
from harken.knowledge.base import GENERATORS, check_items
from harken.knowledge.local_llm import clean_description
from harken.knowledge.prompts import Prompt, get_prompt

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _ReadTimeout:
    """Mixin for ``http.client`` connections: connect (TCP, proxy tunnel, TLS handshake) within
    ``timeout`` seconds, then wait ``read_timeout`` for each read."""

    def __init__(self, *args, read_timeout: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.read_timeout)


class _ReadTimeoutHTTPConnection(_ReadTimeout, http.client.HTTPConnection):
    pass


class _ReadTimeoutHTTPSConnection(_ReadTimeout, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self.read_timeout = read_timeout

    def http_open(self, req):
        conn = functools.partial(_ReadTimeoutHTTPConnection, read_timeout=self.read_timeout)
        return self.do_open(conn, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self.read_timeout = read_timeout

    def https_open(self, req):
        conn = functools.partial(_ReadTimeoutHTTPSConnection, read_timeout=self.read_timeout)
        return self.do_open(conn, req, context=self._context)


def _opener(read_timeout: float) -> urllib.request.OpenerDirector:
    """An opener whose connections use ``read_timeout`` once connected (``open(...,
    timeout=)`` is then the connect timeout); proxies are read from the environment now."""
    return urllib.request.build_opener(_HTTPHandler(read_timeout), _HTTPSHandler(read_timeout))


class OpenAIGenerator:
    """One description per input text from an OpenAI-compatible chat endpoint.

    Args:
        model: Model name sent to the server; default ``$OPENAI_MODEL``.
        base_url: API root, e.g. ``http://127.0.0.1:8000/v1``; default ``$OPENAI_BASE_URL`` or
            ``https://api.openai.com/v1``.
        api_key: Bearer token; default ``$OPENAI_API_KEY`` (may be empty for local servers).
        prompt: A prompt name or :class:`~harken.knowledge.prompts.Prompt`.
        max_tokens: Answer length budget.
        timeout: Seconds to wait for the server each time it should send something (the
            answer of a slow model included).
        retries: Extra attempts after a 429/5xx answer or a timeout.
        backoff: First retry delay in seconds; doubles with each retry.
        spec: Registry spec (``"openai:<model>"``); overrides ``model``.
        connect_timeout: Seconds to open the connection (TCP, proxy tunnel, TLS).
        retry_budget: Seconds after the first attempt during which retries may start.

    Raises:
        ConfigError: no model, or a timeout or budget that is not positive.
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        prompt: str | Prompt = "gebhard2024",
        max_tokens: int = 60,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 1.0,
        spec: str | None = None,
        connect_timeout: float = 10.0,
        retry_budget: float = 120.0,
    ) -> None:
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("retry_budget", retry_budget),
        ):
            if not value > 0:
                raise ConfigError(f"the openai generator's {name} must be positive, got {value!r}")
        self.model = spec or model or os.environ.get("OPENAI_MODEL")
        if not self.model:
            raise ConfigError(
                "the openai generator needs a model: pass model=..., use 'openai:<model>', "
                "or set OPENAI_MODEL"
            )
        base = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = base.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.prompt = get_prompt(prompt)
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry_budget = retry_budget
        self.retries = retries
        self.backoff = backoff
        self.name = f"openai:{self.model}"

    def config(self) -> dict:
        # The API key is deliberately absent: it changes no output and must not be recorded.
        return {
            "generator": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "prompt": self.prompt.config(),
            "decoding": {"temperature": 0, "max_tokens": self.max_tokens},
            "postprocess": "clean_description-v1",
        }

    def describe(self, items: Sequence[str]) -> list[list[str]]:
        out = []
        for item in check_items(items):
            answer = self.complete(self.prompt.messages(item))
            text = clean_description(answer, self.prompt.response_prefix)
            out.append([text] if text else [])
        return out

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The assistant's answer to one conversation.

        Raises:
            HarkenError: On authentication, connection or protocol failure (after retries).
        """
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        response = self._post(body)
        try:
            return response["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as e:
            raise HarkenError(
                f"{self.url} answered without choices[0].message.content: {str(response)[:300]}"
            ) from e

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        opener = _opener(self.timeout)
        deadline = time.monotonic() + self.retry_budget
        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with opener.open(request, timeout=self.connect_timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                detail = _error_detail(e)
                wait = _retry_after(e, delay)
                if e.code in RETRY_STATUS and not last and time.monotonic() + wait < deadline:
                    time.sleep(wait)
                    delay *= 2
                    continue
                raise _http_error(self.url, self.model, e.code, detail) from e
            except (TimeoutError, urllib.error.URLError, ConnectionError) as e:
                reason = getattr(e, "reason", e)
                timed_out = isinstance(reason, TimeoutError)
                if timed_out and not last and time.monotonic() + delay < deadline:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise HarkenError(self._unreachable(reason, attempt + 1, timed_out)) from e
            except json.JSONDecodeError as e:
                raise HarkenError(f"{self.url} answered with invalid JSON: {e}") from e
        raise AssertionError("unreachable")  # the loop returns or raises

    def _unreachable(self, reason, attempts: int, timed_out: bool) -> str:
        message = f"cannot reach the chat endpoint {self.url}: {reason}"
        if timed_out:
            message += (
                f" (after {attempts} attempt{'s' if attempts > 1 else ''}; connect timeout "
                f"{self.connect_timeout:g} s, answer timeout {self.timeout:g} s, retries within "
                f"{self.retry_budget:g} s: raise timeout= for a slow model)"
            )
        return message + (". Is the server running and OPENAI_BASE_URL (or base_url=) right?")


def _error_detail(error: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(error.read().decode("utf-8"))
        return str(payload.get("error", {}).get("message") or payload)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, OSError):
        return error.reason if isinstance(error.reason, str) else ""


def _retry_after(error: urllib.error.HTTPError, default: float) -> float:
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        return min(float(value), 60.0) if value is not None else default
    except ValueError:
        return default


def _http_error(url: str, model: str, code: int, detail: str) -> HarkenError:
    if code in (401, 403):
        return HarkenError(
            f"{url} refused the API key (HTTP {code}: {detail}); set OPENAI_API_KEY or api_key="
        )
    if code == 404:
        return ModelUnavailableError(
            f"{url} answered 404 for model {model!r} ({detail}); check the model name and that "
            "the base URL ends with the API root (e.g. .../v1)"
        )
    return HarkenError(f"{url} answered HTTP {code}: {detail}")


@GENERATORS.register("openai")
def _openai_factory(**kwargs) -> OpenAIGenerator:
    return OpenAIGenerator(**kwargs)

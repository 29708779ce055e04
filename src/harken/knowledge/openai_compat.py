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
"""

from __future__ import annotations

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


class OpenAIGenerator:
    """One description per input text from an OpenAI-compatible chat endpoint.

    Args:
        model: Model name sent to the server; default ``$OPENAI_MODEL``.
        base_url: API root, e.g. ``http://127.0.0.1:8000/v1``; default ``$OPENAI_BASE_URL`` or
            ``https://api.openai.com/v1``.
        api_key: Bearer token; default ``$OPENAI_API_KEY`` (may be empty for local servers).
        prompt: A prompt name or :class:`~harken.knowledge.prompts.Prompt`.
        max_tokens: Answer length budget.
        timeout: Seconds to wait for one response.
        retries: Extra attempts after a 429/5xx answer or a timeout.
        backoff: First retry delay in seconds; doubles with each retry.
        spec: Registry spec (``"openai:<model>"``); overrides ``model``.
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
    ) -> None:
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
        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                detail = _error_detail(e)
                if e.code in RETRY_STATUS and not last:
                    time.sleep(_retry_after(e, delay))
                    delay *= 2
                    continue
                raise _http_error(self.url, self.model, e.code, detail) from e
            except (TimeoutError, urllib.error.URLError, ConnectionError) as e:
                reason = getattr(e, "reason", e)
                if isinstance(reason, TimeoutError) and not last:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise HarkenError(
                    f"cannot reach the chat endpoint {self.url}: {reason}. Is the server running "
                    "and OPENAI_BASE_URL (or base_url=) right?"
                ) from e
            except json.JSONDecodeError as e:
                raise HarkenError(f"{self.url} answered with invalid JSON: {e}") from e
        raise AssertionError("unreachable")  # the loop returns or raises


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

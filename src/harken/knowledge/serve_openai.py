"""A small OpenAI-compatible chat-completions server over a local causal LM.

Serves :class:`~harken.knowledge.local_llm.LocalLLMGenerator`'s model at
``POST /v1/chat/completions`` (and ``GET /v1/models``) with the request checks and error bodies
of the OpenAI API: a missing or wrong ``Authorization: Bearer`` key is 401 ``invalid_api_key``, an
unknown model is 404 ``model_not_found``, a malformed body is 400. Decoding is always greedy
(``temperature`` is accepted and ignored); one request is generated at a time.

It lets the ``openai`` generator (and any OpenAI client) run against SmolLM2 offline::

    python -m harken.knowledge.serve_openai --port 8000 --api-key secret
    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=secret harken ...

Standard library ``http.server`` only: meant for loopback use and tests, not the open internet.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harken.knowledge.local_llm import LocalLLMGenerator

log = logging.getLogger(__name__)

ROLES = frozenset({"system", "developer", "user", "assistant"})


class _RequestError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, param: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {
            "error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        }


class OpenAIChatServer:
    """An OpenAI-compatible chat server on a background thread.

    Args:
        llm: The local model to serve (loaded on the first request); default SmolLM2.
        model_name: The name clients must send as ``model``.
        api_key: Required bearer token; None accepts any request without a key check.
        host: Interface to bind; keep the loopback default unless you know why not.
        port: TCP port; 0 picks a free one (see :attr:`port`).
        max_tokens_limit: Largest ``max_tokens`` a request may ask for.
    """

    def __init__(
        self,
        llm: LocalLLMGenerator | None = None,
        model_name: str = "harken-local",
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_tokens_limit: int = 512,
    ) -> None:
        self.llm = llm or LocalLLMGenerator()
        self.model_name = model_name
        self.api_key = api_key
        self.max_tokens_limit = max_tokens_limit
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.requests = 0

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """The API root to give clients, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self._httpd.server_address[0]}:{self.port}/v1"

    def start(self) -> OpenAIChatServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> OpenAIChatServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- request handling --------------------------------------------------------------------

    def check_auth(self, header: str | None) -> None:
        if self.api_key is None:
            return
        token = header[7:] if header and header.startswith("Bearer ") else None
        if token is None:
            raise _RequestError(
                401,
                "You didn't provide an API key. Provide it in an Authorization header "
                "(Authorization: Bearer YOUR_KEY).",
                code="invalid_api_key",
            )
        if not hmac.compare_digest(token.encode(), self.api_key.encode()):
            raise _RequestError(401, "Incorrect API key provided.", code="invalid_api_key")

    def parse(self, body: dict) -> tuple[list[dict[str, str]], int]:
        """Validate a chat-completions body; return (messages, max_tokens)."""
        if not isinstance(body, dict):
            raise _RequestError(400, "The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _RequestError(400, "you must provide a model parameter", param="model")
        if model != self.model_name:
            raise _RequestError(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
                param="model",
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _RequestError(400, "'messages' must be a non-empty array.", param="messages")
        clean = []
        for i, m in enumerate(messages):
            role = m.get("role") if isinstance(m, dict) else None
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(
                    p.get("text", "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text"
                )
            if role not in ROLES or not isinstance(content, str):
                raise _RequestError(
                    400,
                    f"messages[{i}] needs a role in {sorted(ROLES)} and a string content.",
                    param=f"messages[{i}]",
                )
            clean.append({"role": "system" if role == "developer" else role, "content": content})
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 60))
        if not isinstance(max_tokens, int) or not 1 <= max_tokens <= self.max_tokens_limit:
            raise _RequestError(
                400,
                f"max_tokens must be an integer in [1, {self.max_tokens_limit}].",
                param="max_tokens",
            )
        temperature = body.get("temperature", 1)
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            raise _RequestError(400, "temperature must be a number in [0, 2].", param="temperature")
        if body.get("n", 1) != 1:
            raise _RequestError(400, "only n=1 is supported.", param="n")
        return clean, max_tokens

    def complete(self, body: dict) -> dict:
        messages, max_tokens = self.parse(body)
        with self._lock:
            prompt = self.llm.render_chat(messages)
            text = self.llm.generate(
                [prompt], add_special_tokens=not self.llm._chat(), max_new_tokens=max_tokens
            )[0]
            prompt_tokens = self.llm.count_tokens(prompt)
            completion_tokens, stopped = self.llm.last_counts[0]
            self.requests += 1
        finish = "stop" if stopped else "length"
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text.strip()},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def models(self) -> dict:
        return {
            "object": "list",
            "data": [
                {"id": self.model_name, "object": "model", "created": 0, "owned_by": "harken"}
            ],
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._dispatch({"/v1/models": lambda _: server.models()}, read_body=False)

            def do_POST(self) -> None:
                routes = {p: server.complete for p in ("/v1/chat/completions", "/chat/completions")}
                self._dispatch(routes, read_body=True)

            def _dispatch(self, routes, read_body: bool) -> None:
                try:
                    server.check_auth(self.headers.get("Authorization"))
                    handler = routes.get(self.path.split("?")[0].rstrip("/"))
                    if handler is None:
                        raise _RequestError(404, f"Invalid URL ({self.command} {self.path})")
                    body = None
                    if read_body:
                        length = int(self.headers.get("Content-Length") or 0)
                        try:
                            body = json.loads(self.rfile.read(length) or b"null")
                        except json.JSONDecodeError as e:
                            raise _RequestError(400, f"The body is not valid JSON: {e}") from e
                    self._send(200, handler(body))
                except _RequestError as e:
                    self._send(e.status, e.body())

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args) -> None:
                log.debug("%s %s", self.address_string(), format % args)

        return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve a local causal LM until interrupted (``python -m harken.knowledge.serve_openai``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="causal LM id/folder/.gguf (default SmolLM2)")
    parser.add_argument("--model-name", default="harken-local", help="name clients send")
    parser.add_argument("--api-key", default=None, help="required bearer token (default: none)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    server = OpenAIChatServer(
        LocalLLMGenerator(model=args.model), args.model_name, args.api_key, args.host, args.port
    )
    served = args.model or "SmolLM2-135M-Instruct"
    print(f"serving {served} as {args.model_name!r} at {server.base_url}")
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()

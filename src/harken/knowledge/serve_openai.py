"""A small OpenAI-compatible chat-completions server over a local causal LM.

Serves :class:`~harken.knowledge.local_llm.LocalLLMGenerator`'s model at
``POST /v1/chat/completions`` (and ``GET /v1/models``) with the request checks and error bodies
of the OpenAI API: a missing or wrong ``Authorization: Bearer`` key is 401 ``invalid_api_key``, an
unknown model is 404 ``model_not_found``, a malformed body is 400. Decoding is always greedy
(``temperature`` is accepted and ignored); one request is generated at a time.

It lets the ``openai`` generator (and any OpenAI client) run against SmolLM2 offline::

    python -m harken.knowledge.serve_openai --port 8000 --api-key secret
    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=secret harken ...

Standard library ``http.server`` only, hardened for use on a trusted network:

* it binds to loopback by default and refuses any other interface unless an API key is set
  (:func:`check_bind`);
* a request body larger than ``max_body_bytes`` (1 MiB) is 413, a missing ``Content-Length`` 411
  and a malformed one 400, each with an OpenAI-style error body (the connection is then closed);
* every connection has a socket timeout (``timeout``, 30 s): an idle or stalled client is
  disconnected (408 when it stalls inside a body);
* connections are served by a fixed pool of ``workers`` threads; when all are busy a new
  connection is answered 503 at once, so many idle clients cannot make many threads.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer

from harken.errors import ConfigError
from harken.knowledge.local_llm import LocalLLMGenerator

log = logging.getLogger(__name__)

ROLES = frozenset({"system", "developer", "user", "assistant"})
#: Largest request body accepted (bytes) unless ``max_body_bytes`` says otherwise.
MAX_BODY_BYTES = 1 << 20
#: Seconds a connection may stay silent (between or inside requests) before it is closed.
TIMEOUT = 30.0
#: Connections served at once; more are answered 503.
WORKERS = 4


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``"localhost"``) names only the loopback interface."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, or "" (every interface)
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve beyond loopback without an API key.

    Raises:
        ConfigError: ``host`` is not a loopback address and ``api_key`` is empty.
    """
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"refusing to serve on {host!r} without an API key: anyone who can reach that "
            "interface could use the model. Pass --api-key (api_key=...) and give clients the "
            "same key, or bind to 127.0.0.1 (the default)"
        )


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


class _PooledHTTPServer(HTTPServer):
    """An ``HTTPServer`` whose connections run on a fixed thread pool.

    A connection takes one of ``workers`` slots for its whole life (keep-alive included); when
    none is free it is answered 503 and closed by the accepting thread, so the number of
    threads never grows with the number of clients.
    """

    #: Pending connections the kernel queues before this server answers them (503 when busy).
    request_queue_size = 128

    def __init__(self, address, handler, workers: int) -> None:
        super().__init__(address, handler)
        self.workers = workers
        self._slots = threading.BoundedSemaphore(workers)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="serve-openai")
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse_busy(request)
            return
        with self._open_lock:
            self._open.add(request)
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # reported like socketserver's own threads do, then closed
            self.handle_error(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)
            self.shutdown_request(request)
            self._slots.release()

    def _refuse_busy(self, request) -> None:
        body = json.dumps(
            _RequestError(503, "The server is busy; retry shortly.", code="server_busy").body()
        ).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        try:
            request.settimeout(1.0)
            request.sendall(head.encode() + body)
        except OSError as exc:  # the client left already: nothing to answer
            log.debug("could not send 503: %s", exc)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        log.exception("error while serving %s", client_address)

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            still_open = list(self._open)
        for sock in still_open:  # wake workers blocked on idle clients
            with contextlib.suppress(OSError):  # already closed by its worker
                sock.shutdown(socket.SHUT_RDWR)
        self._pool.shutdown(wait=True)


class OpenAIChatServer:
    """An OpenAI-compatible chat server on a background thread.

    Args:
        llm: The local model to serve (loaded on the first request); default SmolLM2.
        model_name: The name clients must send as ``model``.
        api_key: Required bearer token; None accepts any request without a key check (only
            allowed on a loopback ``host``).
        host: Interface to bind; keep the loopback default unless you know why not (any other
            needs ``api_key``).
        port: TCP port; 0 picks a free one (see :attr:`port`).
        max_tokens_limit: Largest ``max_tokens`` a request may ask for.
        max_body_bytes: Largest request body; a larger one is answered 413.
        timeout: Seconds a connection may stay silent before it is closed.
        workers: Connections served at once; more are answered 503.

    Raises:
        ConfigError: a non-loopback ``host`` without ``api_key``, or a non-positive limit.
    """

    def __init__(
        self,
        llm: LocalLLMGenerator | None = None,
        model_name: str = "harken-local",
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_tokens_limit: int = 512,
        max_body_bytes: int = MAX_BODY_BYTES,
        timeout: float = TIMEOUT,
        workers: int = WORKERS,
    ) -> None:
        check_bind(host, api_key)
        for name, value in (
            ("max_body_bytes", max_body_bytes),
            ("timeout", timeout),
            ("workers", workers),
        ):
            if not value > 0:
                raise ConfigError(f"{name} must be positive, got {value!r}")
        self.llm = llm or LocalLLMGenerator()
        self.model_name = model_name
        self.api_key = api_key
        self.max_tokens_limit = max_tokens_limit
        self.max_body_bytes = int(max_body_bytes)
        self.timeout = float(timeout)
        self._lock = threading.Lock()
        self._httpd = _PooledHTTPServer((host, port), self._handler_class(), int(workers))
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
        """Stop accepting, close open connections and wait for the workers."""
        if self._thread is not None:
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

    def read_length(self, headers) -> int:
        """The request's ``Content-Length``, checked against :attr:`max_body_bytes`.

        Raises:
            _RequestError: 411 when it is missing (or the body is chunked), 400 when it is
                not a non-negative integer, 413 when it is over the limit.
        """
        if headers.get("Transfer-Encoding"):
            raise _RequestError(
                411, "Chunked request bodies are not supported: send a Content-Length header."
            )
        values = headers.get_all("Content-Length") or []
        if not values:
            raise _RequestError(411, "A POST request needs a Content-Length header.")
        text = values[0].strip()
        if len(values) > 1 or not text.isdigit() or not text.isascii():
            raise _RequestError(
                400, f"Invalid Content-Length header {', '.join(values)!r}: expected one integer."
            )
        length = int(text)
        if length > self.max_body_bytes:
            raise _RequestError(
                413,
                f"The request body is {length} bytes; this server accepts at most "
                f"{self.max_body_bytes} bytes.",
            )
        return length

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = server.timeout  # socket timeout of every read and write

            def do_GET(self) -> None:
                self._dispatch({"/v1/models": lambda _: server.models()}, read_body=False)

            def do_POST(self) -> None:
                routes = {p: server.complete for p in ("/v1/chat/completions", "/chat/completions")}
                self._dispatch(routes, read_body=True)

            def _dispatch(self, routes, read_body: bool) -> None:
                body_read = not read_body
                try:
                    server.check_auth(self.headers.get("Authorization"))
                    handler = routes.get(self.path.split("?")[0].rstrip("/"))
                    if handler is None:
                        raise _RequestError(404, f"Invalid URL ({self.command} {self.path})")
                    body = self._read_json() if read_body else None
                    body_read = True
                    self._send(200, handler(body))
                except _RequestError as e:
                    # An unread body would be parsed as the next request: close instead.
                    self.close_connection = self.close_connection or not body_read
                    self._send(e.status, e.body())
                except Exception as e:
                    log.exception("chat request failed")
                    self.close_connection = True
                    error = _RequestError(500, f"The server failed: {type(e).__name__}: {e}")
                    self._send(500, error.body())

            def _read_json(self):
                """The request's JSON body (closing the connection when it cannot be read)."""
                length = server.read_length(self.headers)
                try:
                    raw = self.rfile.read(length)
                except TimeoutError as e:
                    raise _RequestError(
                        408, f"The request body did not arrive within {server.timeout:g} s."
                    ) from e
                if len(raw) < length:
                    raise _RequestError(400, f"The body ended after {len(raw)} of {length} bytes.")
                try:
                    return json.loads(raw or b"null")
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    raise _RequestError(400, f"The body is not valid JSON: {e}") from e

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def send_error(self, code: int, message: str | None = None, explain=None) -> None:
                # http.server's own errors (malformed request line, oversized headers) with an
                # OpenAI-style JSON body instead of an HTML page.
                self.close_connection = True
                if self.request_version == "HTTP/0.9":  # an unparsable request line
                    self.request_version = "HTTP/1.1"  # answer with a status line anyway
                try:
                    text = message or HTTPStatus(code).phrase
                except ValueError:
                    text = message or "error"
                self._send(code, _RequestError(code, text).body())

            def log_message(self, format: str, *args) -> None:
                log.debug("%s %s", self.address_string(), format % args)

        return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve a local causal LM until interrupted (``python -m harken.knowledge.serve_openai``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="causal LM id/folder/.gguf (default SmolLM2)")
    parser.add_argument("--model-name", default="harken-local", help="name clients send")
    parser.add_argument(
        "--api-key", default=None, help="required bearer token (default: none; loopback only)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (non-loopback needs a key)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--max-body-bytes", type=int, default=MAX_BODY_BYTES, help="largest request body"
    )
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT, help="seconds before a silent client is dropped"
    )
    parser.add_argument(
        "--workers", type=int, default=WORKERS, help="connections served at once (more get 503)"
    )
    args = parser.parse_args(argv)
    try:
        check_bind(args.host, args.api_key)
        server = OpenAIChatServer(
            LocalLLMGenerator(model=args.model),
            args.model_name,
            args.api_key,
            args.host,
            args.port,
            max_body_bytes=args.max_body_bytes,
            timeout=args.timeout,
            workers=args.workers,
        )
    except ConfigError as e:
        parser.exit(e.exit_code, f"{parser.prog}: error: {e}\n")
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

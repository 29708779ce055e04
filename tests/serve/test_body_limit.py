"""The upload limit holds for a body without Content-Length (``Transfer-Encoding: chunked``):
:class:`~harken.serve.app.BodyLimit` on plain ASGI calls, then a real chunked request to the
app under uvicorn."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

from harken.serve.app import BodyLimit

LIMIT_MESSAGE = "over the 2 MB upload limit; cut the recording shorter or start harken serve"


def _call(app, messages: list[bytes], headers=()) -> tuple[list[dict], int]:
    """Run ``app`` on a POST whose body arrives as ``messages``; what it sent and how many
    times it called ``receive``."""
    sent, calls = [], 0

    async def receive():
        nonlocal calls
        calls += 1
        body = messages[calls - 1]
        return {"type": "http.request", "body": body, "more_body": calls < len(messages)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": list(headers)}
    asyncio.run(app(scope, receive, send))
    return sent, calls


async def reads_all_then_answers(scope, receive, send):
    """An app that reads the whole body, then answers 200 with its size (or 400 if reading
    failed, as a form parser would)."""
    size = 0
    try:
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        status, body = 200, str(size).encode()
    except Exception:
        status, body = 400, b"There was an error parsing the body"
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _answer(sent: list[dict]) -> tuple[int, bytes]:
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


def test_a_body_without_length_is_not_read_past_the_limit():
    app = BodyLimit(reads_all_then_answers, max_bytes=2_500, max_upload_mb=2)
    sent, calls = _call(app, [b"x" * 1000] * 10)
    status, body = _answer(sent)
    assert calls == 3  # 3000 bytes: over 2500, and not one message more
    assert status == 413
    assert json.loads(body)["detail"] == (
        "upload of more than 2 MB: " + LIMIT_MESSAGE + " with a larger --max-upload-mb"
    )


def test_a_body_within_the_limit_reaches_the_app_unchanged():
    app = BodyLimit(reads_all_then_answers, max_bytes=2_500, max_upload_mb=2)
    sent, calls = _call(app, [b"x" * 1000, b"x" * 1000, b"x" * 500])
    assert calls == 3 and _answer(sent) == (200, b"2500")


def test_a_length_over_the_limit_is_refused_before_reading():
    app = BodyLimit(reads_all_then_answers, max_bytes=2_500, max_upload_mb=2)
    sent, calls = _call(app, [b"x" * 10], headers=[(b"content-length", b"3000000")])
    status, body = _answer(sent)
    assert calls == 0 and status == 413
    assert json.loads(body)["detail"].startswith("upload of 3.0 MB: " + LIMIT_MESSAGE)


BOUNDARY = "harkenboundary"


def _form_head(filename: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="labels"\r\n\r\n'
        "blender, chopping, water flowing, sweep, microwave\r\n"
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()


def post_chunked(server: str, filename: str, data, chunk: int = 64 * 1024) -> dict:
    """POST a multipart upload of ``data`` (bytes, or an iterator of byte blocks) to
    /api/classify with ``Transfer-Encoding: chunked`` (no Content-Length), stopping as soon
    as an answer arrives. Returns the status, the JSON answer, the upload bytes sent and
    whether all of them were sent."""
    url = urlparse(server)
    blocks = (
        (data[i : i + chunk] for i in range(0, len(data), chunk))
        if isinstance(data, bytes)
        else data
    )
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(
            (
                f"POST /api/classify HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )

        def send_chunk(payload: bytes) -> None:
            sock.sendall(b"%x\r\n%b\r\n" % (len(payload), payload))

        def answered() -> bool:
            return bool(select.select([sock], [], [], 0)[0])

        send_chunk(_form_head(filename))
        sent, finished = 0, True
        for block in blocks:
            if answered():
                finished = False
                break
            send_chunk(block)
            sent += len(block)
        if finished:
            send_chunk(f"\r\n--{BOUNDARY}--\r\n".encode())
            sock.sendall(b"0\r\n\r\n")
        return {**_read_answer(sock), "sent": sent, "finished": finished}


def _read_answer(sock: socket.socket) -> dict:
    """Status and JSON body of an HTTP/1.1 answer with Content-Length."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += sock.recv(65536) or b"!"  # "!": closed; the asserts below then fail
        assert not raw.endswith(b"!"), f"connection closed: {raw!r}"
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return {"status": int(lines[0].split()[1]), "json": json.loads(body)}


def test_a_chunked_upload_within_the_limit_is_classified(server, blender_clip):
    answer = post_chunked(server, "clip.flac", Path(blender_clip).read_bytes())
    assert answer["finished"] and answer["status"] == 200, answer
    assert "blender" in [r["label"] for r in answer["json"]["ranking"][:3]]


def test_an_endless_chunked_upload_is_answered_413_long_before_it_ends(server):
    """64 MB sent without Content-Length against the 2 MB limit: the server stops reading past
    the limit and answers at once (without the middleware it spools all 64 MB first)."""
    total, block = 64_000_000, b"\0" * (64 * 1024)
    start = time.perf_counter()
    answer = post_chunked(server, "endless.wav", (block for _ in range(total // len(block))))
    seconds = time.perf_counter() - start
    # answered before the body ended: after the limit, plus what the sockets buffered
    assert not answer["finished"], f"answered only after all {total / 1e6:.0f} MB: {answer}"
    assert 2_000_000 < answer["sent"] < 24_000_000, answer["sent"]
    assert answer["status"] == 413, answer
    assert answer["json"]["detail"].startswith("upload of more than 2 MB: " + LIMIT_MESSAGE)
    print(f"\nchunked upload refused after {answer['sent'] / 1e6:.1f} MB, {seconds:.2f} s")

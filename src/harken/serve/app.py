"""The FastAPI application of ``harken serve`` (see :mod:`harken.serve`).

Routes (all under the token check when a token is set):

* ``GET /``: the page (``static/index.html``); ``GET /api/info``: limits, backends, template
  sets, and whether an index / runs folder was given;
* ``POST /api/classify``: multipart ``file`` + ``labels`` (comma-separated, one CSV row),
  ``backend``, ``templates``; answers ``harken predict --json``'s object for the upload plus
  ``score_meaning``, ``duration_s`` and ``seconds`` (time spent);
* ``GET /api/search?q=...&k=...``: hits of the ``--index``; ``GET /api/audio/{i}`` plays hit
  ``i`` (a row of the index: no path is taken from the request);
* ``GET /api/runs``: report HTML files under ``--runs``; ``GET /runs/{path}``: a file under
  ``--runs`` (read-only; anything resolving outside it is a 404).
"""

from __future__ import annotations

import csv
import hmac
import os
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from harken.errors import AudioError, ConfigError, DataError, HarkenError

#: Hosts that only this machine can reach.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Host header values a server without token answers (the local names, IPv6 bracketed).
LOCAL_NAMES = ["127.0.0.1", "localhost", "[::1]", "::1"]
#: Header and cookie that carry the access token.
TOKEN_HEADER = "X-Harken-Token"
TOKEN_COOKIE = "harken_token"
#: Backends offered on the page (others can be typed into the API).
BACKENDS = ("bridge", "clap", "msclap")
#: Most classifiers (label sets) kept embedded at once.
CLASSIFIER_CACHE = 16
STATIC = Path(__file__).with_name("static")
#: Uploads at least this long (seconds) also get a timeline (:func:`harken.api.detect`).
TIMELINE_SECONDS = 15.0


@dataclass(frozen=True)
class ServeSettings:
    """What one ``harken serve`` offers.

    Attributes:
        index: Index folder for the search tab (``harken index``), or None.
        runs: Folder whose report HTML files the runs tab lists and serves, or None.
        host: Address to bind (127.0.0.1 by default; others need ``token``).
        port: TCP port.
        token: Access token required (header ``X-Harken-Token`` or cookie ``harken_token``;
            ``?token=`` on the page URL sets the cookie); None: no token.
        max_upload_mb: Largest upload accepted, in MB (413 above).
        max_seconds: Longest upload accepted, in seconds of audio (413 above).
        backend: The backend loaded at start-up (models load once and stay loaded).
    """

    index: Path | None = None
    runs: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_upload_mb: float = 50.0
    max_seconds: float = 600.0
    backend: str = "bridge"


def check_host(host: str, token: str | None) -> None:
    """Refuse to bind a non-local address without an access token.

    Raises:
        ConfigError: ``host`` is reachable from other machines and no token is set.
    """
    if host not in LOCAL_HOSTS and not token:
        raise ConfigError(
            f"--host {host} makes the app reachable from other machines; set an access token "
            "with --token TOKEN (or HARKEN_SERVE_TOKEN) or bind 127.0.0.1"
        )


def check_settings(settings: ServeSettings) -> ServeSettings:
    """The settings with absolute folders, checked before anything loads.

    Raises:
        ConfigError: a non-local host without token, non-positive limits, or a missing folder.
    """
    check_host(settings.host, settings.token)
    if not settings.max_upload_mb > 0 or not settings.max_seconds > 0:
        raise ConfigError("--max-upload-mb and --max-seconds must be positive numbers")
    folders = {}
    for name in ("index", "runs"):
        folder = getattr(settings, name)
        if folder is None:
            continue
        folder = Path(folder).resolve()
        if not folder.is_dir():
            raise ConfigError(f"--{name} {folder}: not a folder; give an existing folder")
        folders[name] = folder
    from dataclasses import replace

    return replace(settings, **folders)


class Models:
    """Classifiers by (labels, backend, templates), built once and kept (LRU); one lock around
    model calls so that concurrent requests share the loaded encoders safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._classifiers: OrderedDict[tuple, object] = OrderedDict()

    def classifier(self, labels: list[str], backend: str, templates: str | None):
        from harken.classify import Classifier

        key = (tuple(labels), backend, templates)
        with self.lock:
            if key in self._classifiers:
                self._classifiers.move_to_end(key)
                return self._classifiers[key]
            clf = Classifier(labels, backend, templates=templates)
            self._classifiers[key] = clf
            while len(self._classifiers) > CLASSIFIER_CACHE:
                self._classifiers.popitem(last=False)
            return clf

    def warm(self, backend: str) -> None:
        """Load ``backend``'s encoders now (text and audio, by one prediction on 1 s of noise),
        not on the first request."""
        import numpy as np

        clf = self.classifier(["warm up", "load models"], backend, None)
        noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
        with self.lock:
            clf.predict(noise, sample_rate=16000)


def parse_labels(text: str) -> list[str]:
    """Labels typed in the page: one CSV row (``'"salt, pepper",chop'``), or one per line.

    Raises:
        ConfigError: no labels, or an empty one.
    """
    rows = [line for line in text.replace("\r", "").split("\n") if line.strip()]
    labels: list[str] = []
    for row in rows:
        try:
            cells = next(csv.reader([row], skipinitialspace=True, strict=True), [])
        except csv.Error as exc:
            raise ConfigError(
                f"labels {row!r}: {exc}; separate labels with commas and quote a label that "
                'contains a comma ("salt, pepper")'
            ) from None
        labels += [c.strip() for c in cells if c.strip()]
    if len(labels) < 2:
        raise ConfigError("give at least two candidate labels, separated by commas")
    return labels


def check_templates(templates: str | None) -> str | None:
    """A template set name or one literal template with ``{}``; never a file path (a request
    must not make the server read its files).

    Raises:
        ConfigError: anything else.
    """
    from harken.knowledge.templates import TEMPLATE_SETS

    if templates is None or not templates.strip():
        return None
    templates = templates.strip()
    if templates in TEMPLATE_SETS or "{}" in templates:
        return templates
    raise ConfigError(
        f"templates {templates!r}: choose a set ({', '.join(TEMPLATE_SETS)}) or type one "
        "template with {} for the label"
    )


class TooLarge(HarkenError):
    """An upload over the size or duration limit (HTTP 413)."""


def save_upload(upload, folder: Path, max_bytes: int) -> Path:
    """Copy an upload into ``folder`` in chunks, stopping at ``max_bytes``.

    The file gets a neutral name: its type is found by decoding, never from the name it came
    with.

    Raises:
        TooLarge: more than ``max_bytes``.
        AudioError: an empty upload.
    """
    target = folder / "upload"
    size = 0
    with open(target, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(
                    f"{upload.filename}: over the {max_bytes / 1e6:.0f} MB upload limit; "
                    "cut the recording shorter or start harken serve with a larger "
                    "--max-upload-mb"
                )
            out.write(chunk)
    if size == 0:
        raise AudioError(f"{upload.filename}: the upload is empty (0 bytes)")
    return target


def too_large_message(max_upload_mb: float, size: int | None) -> str:
    """The 413 message for a request body over the limit (``size``: its Content-Length, or
    None when the body came without one and was cut off)."""
    what = f"{size / 1e6:.1f} MB" if size is not None else f"more than {max_upload_mb:g} MB"
    return (
        f"upload of {what}: over the {max_upload_mb:.0f} MB upload limit; cut the recording "
        "shorter or start harken serve with a larger --max-upload-mb"
    )


class _BodyTooLarge(Exception):
    """Raised from the wrapped ``receive`` once a body passes the limit (never leaves
    :class:`BodyLimit`)."""


class BodyLimit:
    """Pure ASGI middleware: answer 413 to a request body over ``max_bytes``, whether or not it
    says its length.

    A ``Content-Length`` over the limit is refused before any of the body is read. A body
    without one (``Transfer-Encoding: chunked``) is counted as the app reads it; once past
    the limit the app gets no more of it (its ``receive`` raises), whatever it answered to
    the cut body is dropped, and the client gets the 413 with the same message instead. So
    no route, and no form parser spooling an upload before the route runs, ever gets more
    than ``max_bytes`` of a body (plus the one message that passed it). uvicorn then reads
    and discards the rest of the request rather than closing the connection under a client
    that is still sending (which might then miss the message).

    Args:
        app: The ASGI app to protect.
        max_bytes: Most body bytes accepted.
        max_upload_mb: The upload limit the message names (``--max-upload-mb``).
    """

    def __init__(self, app, max_bytes: int, max_upload_mb: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_mb = max_upload_mb

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await self.refuse(scope, receive, send, int(length))
            return
        received, over, started = 0, False, False

        async def counted_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a cut body; the 413 goes out instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            # the app may pass _BodyTooLarge on as it is or wrapped in its own error
            if not over or started:
                raise
        if over and not started:
            await self.refuse(scope, receive, send, None)

    async def refuse(self, scope, receive, send, size: int | None) -> None:
        message = too_large_message(self.max_upload_mb, size)
        await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)


def decode_upload(path: Path, name: str, max_seconds: float):
    """Decode an upload (any container FFmpeg reads: WAV, FLAC, Ogg, WebM, MP3, ...) to mono
    float32 at its own rate; this decode is the type check.

    Raises:
        TooLarge: longer than ``max_seconds`` (by its header, else after decoding).
        AudioError: not decodable audio, silent, or without samples (naming ``name``).
    """
    from harken.data.audio import audio_duration, load_audio

    too_long = (
        f"{name}: {{:.0f}} s long, over the {max_seconds:.0f} s limit; cut it shorter or start "
        "harken serve with a larger --max-seconds"
    )
    try:
        duration = audio_duration(path)
        if duration is not None and duration > max_seconds:
            raise TooLarge(too_long.format(duration))
        wave, rate = load_audio(path)
    except AudioError as exc:
        raise AudioError(
            f"{name}: not audio harken can decode ({str(exc).removeprefix(str(path) + ': ')})"
        ) from None
    if wave.size / rate > max_seconds:  # a live recording without a stated duration
        raise TooLarge(too_long.format(wave.size / rate))
    return wave, rate


def long_file_timeline(path: Path, labels: list[str], backend: str, templates: str | None):
    """Where each label sounds in a long upload (:func:`harken.api.detect`): frame boundaries,
    smoothed per-label scores ``[N][C]``, their kind, and the detected segments."""
    from harken import api

    found = api.detect(path, labels, backend=backend, templates=templates)
    line = found.timelines[0]
    return {
        "score_kind": found.settings["score"],
        "labels": labels,
        "boundaries": [round(float(b), 3) for b in line.boundaries],
        "scores": [[round(float(v), 4) for v in row] for row in line.smoothed],
        "segments": [
            {k: seg[k] for k in ("start", "end", "label", "score")} for seg in found.segments
        ],
    }


def report_files(runs: Path) -> list[str]:
    """Report HTML files under ``runs``, as sorted POSIX paths relative to it."""
    found = []
    for path in runs.rglob("*.html"):
        if path.is_file() and path.resolve().is_relative_to(runs):
            found.append(path.relative_to(runs).as_posix())
    return sorted(found)


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` when it is a file inside ``root`` after resolving links, else None."""
    try:
        path = (root / relative).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return path if path.is_relative_to(root) and path.is_file() else None


def create_app(settings: ServeSettings | None = None, warm: bool = True):
    """The FastAPI app for ``settings`` (checked; models load at start-up when ``warm``).

    Raises:
        ConfigError: see :func:`check_settings`.
    """
    from contextlib import asynccontextmanager

    settings = check_settings(settings or ServeSettings())
    models = Models()

    @asynccontextmanager
    async def lifespan(app):
        if warm:
            models.warm(settings.backend)
        yield

    app = FastAPI(title="harken", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings, app.state.models = settings, models
    if settings.token is None:
        # without a token only this machine's names are answered: a web page that rebinds its
        # own domain to 127.0.0.1 (DNS rebinding) gets 400, not the app
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=LOCAL_NAMES)

    # the form's other fields and multipart framing come on top of the file
    app.add_middleware(
        BodyLimit,
        max_bytes=int(settings.max_upload_mb * 1e6) + 64 * 1024,
        max_upload_mb=settings.max_upload_mb,
    )

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if settings.token is None:
            return await call_next(request)
        given = (
            request.headers.get(TOKEN_HEADER)
            or request.cookies.get(TOKEN_COOKIE)
            or request.query_params.get("token")
        )
        if not given or not hmac.compare_digest(given.encode(), settings.token.encode()):
            return JSONResponse(
                {
                    "detail": f"access token required: send the {TOKEN_HEADER} header, or open "
                    "the page as /?token=TOKEN"
                },
                status_code=401,
            )
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="strict")
        return response

    @app.exception_handler(HarkenError)
    async def harken_error(request: Request, exc: HarkenError):
        status = 413 if isinstance(exc, TooLarge) else 422
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/info")
    def info() -> dict:
        from harken.classify import SCORE_KINDS
        from harken.knowledge.templates import TEMPLATE_SETS

        return {
            "backends": list(BACKENDS),
            "backend": settings.backend,
            "templates": list(TEMPLATE_SETS),
            "score_kinds": SCORE_KINDS,
            "max_upload_mb": settings.max_upload_mb,
            "max_seconds": settings.max_seconds,
            "index": settings.index is not None,
            "runs": settings.runs is not None,
        }

    @app.post("/api/classify")
    def classify(
        file: Annotated[UploadFile, File()],
        labels: Annotated[str, Form()],
        backend: Annotated[str | None, Form()] = None,
        templates: Annotated[str | None, Form()] = None,
    ) -> dict:
        from harken.classify import SCORE_KINDS

        start = time.perf_counter()
        names = parse_labels(labels)
        chosen = check_templates(templates)
        name = Path(file.filename or "upload").name
        # private (0700) and removed when the request ends, whatever happens
        backend = backend or settings.backend
        timeline = None
        with tempfile.TemporaryDirectory(prefix="harken-serve-") as tmp:
            path = save_upload(file, Path(tmp), int(settings.max_upload_mb * 1e6))
            wave, rate = decode_upload(path, name, settings.max_seconds)
            clf = models.classifier(names, backend, chosen)
            with models.lock:
                found = clf.predict(wave, sample_rate=rate)
                if wave.size / rate >= TIMELINE_SECONDS:
                    timeline = long_file_timeline(path, names, backend, chosen)
        out = found.to_dict()
        out.update(
            timeline=timeline,
            file=name,
            score_meaning=SCORE_KINDS[found.score_kind],
            duration_s=round(wave.size / rate, 3),
            seconds=round(time.perf_counter() - start, 3),
        )
        return out

    @app.get("/api/search")
    def search(q: str, k: int = 10) -> list[dict]:
        from harken import api

        index = _need(settings.index, "--index")
        k = max(1, min(int(k), 100))
        with models.lock:
            hits = api.search(index, q, top_k=k)
        files = _index_files(index)
        row = {f: i for i, f in enumerate(files)}
        return [
            {
                "rank": r + 1,
                "name": _short(h["file"]),
                "score": h["score"],
                "audio": f"/api/audio/{row[h['file']]}",
            }
            for r, h in enumerate(hits)
        ]

    @app.get("/api/audio/{row}")
    def audio(row: int) -> FileResponse:
        files = _index_files(_need(settings.index, "--index"))
        if not 0 <= row < len(files) or not Path(files[row]).is_file():
            return Response(status_code=404)
        return FileResponse(files[row])

    @app.get("/api/runs")
    def runs() -> list[dict]:
        root = _need(settings.runs, "--runs")
        return [{"path": p, "url": f"/runs/{p}"} for p in report_files(root)]

    @app.get("/runs/{relative:path}")
    def run_file(relative: str) -> Response:
        root = _need(settings.runs, "--runs")
        path = inside(root, relative)
        if path is None:
            return Response("not found", status_code=404)
        return FileResponse(path)

    return app


def _short(file: str) -> str:
    """``folder/name`` of a file (the folder often names the class), never the full path."""
    path = Path(file)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _need(folder: Path | None, option: str) -> Path:
    if folder is None:
        raise DataError(f"this server was started without {option}; restart it with {option}")
    return folder


_INDEX_FILES: dict[Path, tuple[float, list[str]]] = {}


def _index_files(index: Path) -> list[str]:
    """The files of an index (re-read when the index folder changes)."""
    from harken.store.index import EmbeddingIndex

    stamp = index.stat().st_mtime
    if index not in _INDEX_FILES or _INDEX_FILES[index][0] != stamp:
        _INDEX_FILES[index] = (stamp, list(EmbeddingIndex.load(index).files))
    return _INDEX_FILES[index][1]


def serve(settings: ServeSettings) -> None:
    """Run the app with uvicorn until interrupted (models load before it answers)."""
    import uvicorn

    app = create_app(settings)
    print(f"harken serve: http://{settings.host}:{settings.port}/", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


def token_from_env() -> str | None:
    """``$HARKEN_SERVE_TOKEN``, or None when unset or blank."""
    token = os.environ.get("HARKEN_SERVE_TOKEN", "").strip()
    return token or None

"""Every hub load is bounded: behind a proxy that never answers, or offline, loading a hub
model fails within seconds with a message that says how to use a local folder.

Only loopback addresses are ever contacted: the proxy is a local socket that accepts and never
answers, and :func:`loopback_only` turns any other connection or name lookup into an error
that the test then reports."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
import time

import huggingface_hub.constants
import pytest
from huggingface_hub.utils import close_session

from harken.encoders import _hf
from harken.errors import ConfigError, DataError, ModelUnavailableError

PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")
#: A hub id nobody has cached (a cached model would load offline, which is not under test here).
MODEL = "harken-tests/never-published-clap"


def _is_loopback(host) -> bool:
    if host in (None, "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture
def loopback_only(monkeypatch):
    """Refuse (and record) any connection or DNS lookup beyond loopback; return the log."""
    log = {"connected": [], "refused": []}
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(host):
            log["refused"].append(address)
            raise OSError(101, f"the test blocks traffic to {address}")
        log["connected"].append(address)
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host if isinstance(host, str) else None):
            log["refused"].append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"the test blocks resolving {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(_hf, "_PROBES", {})  # no reachability result from another test
    yield log
    assert not log["refused"], f"something tried to leave the machine: {log['refused']}"


@pytest.fixture
def online_mode(monkeypatch):
    """Hub access switched on (the suite runs with HF_HUB_OFFLINE=1)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HARKEN_HUB_TIMEOUT", raising=False)


@pytest.fixture
def dead_proxy(monkeypatch, loopback_only):
    """A proxy on 127.0.0.1 that accepts connections and never answers; returns them."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever():
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    for var in PROXY_VARS:
        monkeypatch.setenv(var, url)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    close_session()  # the hub client reads the proxy settings when its session is made
    yield accepted
    close_session()
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    server.close()


def test_clap_behind_dead_proxy_fails_fast_with_folder_hint(online_mode, dead_proxy):
    from transformers import ClapModel  # noqa: F401 - imported before the clock starts

    from harken.encoders.clap import ClapCheckpoint

    t0 = time.monotonic()
    with pytest.raises(ModelUnavailableError) as info:
        _ = ClapCheckpoint(MODEL).model
    elapsed = time.monotonic() - t0
    assert elapsed < 20, f"took {elapsed:.1f} s"
    message = str(info.value)
    assert MODEL in message and "unreachable" in message
    assert "clap:/path/to/folder" in message and "HF_HUB_OFFLINE=1" in message
    assert dead_proxy, "the hub check never went through the proxy"


def test_msclap_download_behind_dead_proxy_fails_fast(online_mode, dead_proxy):
    from harken.encoders.msclap import resolve_weights

    t0 = time.monotonic()
    with pytest.raises(ModelUnavailableError, match=r"unreachable.*msclap:/path/to/"):
        resolve_weights("2023")
    assert time.monotonic() - t0 < 20
    assert dead_proxy


def test_causal_lm_behind_dead_proxy_fails_fast(online_mode, dead_proxy):
    from transformers import AutoModelForCausalLM  # noqa: F401 - imported before the clock

    from harken.knowledge.local_llm import load_causal_lm

    t0 = time.monotonic()
    with pytest.raises(ModelUnavailableError, match=r"(?s)hub is unreachable.*local folder"):
        load_causal_lm("harken-tests/never-published-lm")
    assert time.monotonic() - t0 < 20
    assert dead_proxy


def test_offline_fails_at_once_without_network(monkeypatch, loopback_only):
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    from sentence_transformers import SentenceTransformer  # noqa: F401 - before the clock

    from harken.encoders.sbert import SbertEncoder

    t0 = time.monotonic()
    with pytest.raises(ModelUnavailableError) as info:
        SbertEncoder(MODEL)._load()
    assert time.monotonic() - t0 < 5
    assert "HF_HUB_OFFLINE is set" in str(info.value) and "local folder" in str(info.value)
    assert loopback_only["connected"] == []  # not even a loopback connection


def test_offline_env_alone_skips_the_network_check(monkeypatch, loopback_only):
    """HF_HUB_OFFLINE set after huggingface_hub was imported still counts."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _hf.hub_access(MODEL) == ({"local_files_only": True}, "HF_HUB_OFFLINE is set")
    assert loopback_only["connected"] == []


# -- the reachability check itself -------------------------------------------------------------


@pytest.fixture
def no_proxy_env(monkeypatch):
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


class _Hub(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):
        self.send_response(404)  # any HTTP answer means "reachable"
        self.end_headers()

    def log_message(self, *args):
        pass


def test_check_accepts_any_http_answer(no_proxy_env, loopback_only):
    with http.server.HTTPServer(("127.0.0.1", 0), _Hub) as hub:
        thread = threading.Thread(target=hub.handle_request, daemon=True)
        thread.start()
        assert _hf.hub_unreachable(f"http://127.0.0.1:{hub.server_port}", timeout=3) is None
        thread.join(timeout=5)


def test_check_is_bounded_when_nothing_answers(no_proxy_env, loopback_only):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never accepts or answers
        t0 = time.monotonic()
        reason = _hf.hub_unreachable(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=1)
        assert reason is not None and time.monotonic() - t0 < 2


def test_check_reports_a_refused_connection(no_proxy_env, loopback_only):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    reason = _hf.hub_unreachable(f"http://127.0.0.1:{port}", timeout=2)  # port now closed
    assert reason is not None and "Refused" in reason


def test_check_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("HARKEN_HUB_TIMEOUT", "2.5")
    assert _hf.hub_timeout() == 2.5
    monkeypatch.setenv("HARKEN_HUB_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="HARKEN_HUB_TIMEOUT='soon'"):
        _hf.hub_timeout()


def test_local_folders_never_touch_the_network(tmp_path, loopback_only):
    assert _hf.hub_access(str(tmp_path)) == ({}, None)
    assert loopback_only["connected"] == []


# -- dataset downloads -------------------------------------------------------------------------


def test_stalled_download_fails_after_the_read_timeout(
    tmp_path, monkeypatch, no_proxy_env, loopback_only
):
    """The server sends its headers and 10 of 1000 bytes, then stalls: the download fails
    after one read timeout and leaves no file behind."""
    from harken.data import download

    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def stall():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        stop.wait(10)
        conn.close()

    thread = threading.Thread(target=stall, daemon=True)
    thread.start()
    monkeypatch.setattr(download, "TIMEOUT", 0.5)
    dest = tmp_path / "k20.zip"
    t0 = time.monotonic()
    try:
        with pytest.raises(DataError, match=r"download failed \(.*timed out"):
            download.download_file(f"http://127.0.0.1:{srv.getsockname()[1]}/k20.zip", dest)
        assert time.monotonic() - t0 < 3
    finally:
        stop.set()
        thread.join(timeout=5)
        srv.close()
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_check_counts_a_garbled_answer_as_reachable(no_proxy_env, loopback_only):
    """Something that answers, even badly, is there: the hub client reports what it says."""
    with socket.create_server(("127.0.0.1", 0)) as srv:

        def garble():
            conn, _ = srv.accept()
            conn.recv(65536)
            conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            conn.close()

        thread = threading.Thread(target=garble, daemon=True)
        thread.start()
        t0 = time.monotonic()
        assert _hf.hub_unreachable(f"http://127.0.0.1:{srv.getsockname()[1]}", timeout=3) is None
        assert time.monotonic() - t0 < 2
        thread.join(timeout=5)

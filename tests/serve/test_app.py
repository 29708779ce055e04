"""The web app's routes through FastAPI's TestClient: classify (decode-checked uploads,
browser audio, limits), safety (token, host, paths), concurrency, search and runs."""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from harken.errors import ConfigError
from harken.serve import ServeSettings, create_app
from harken.serve.app import TOKEN_HEADER, parse_labels

from .conftest import FIVE_LABELS

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def client(small_index, runs_dir):
    settings = ServeSettings(index=small_index, runs=runs_dir, max_upload_mb=2, max_seconds=120)
    with TestClient(create_app(settings), base_url=LOCAL) as c:
        yield c


def classify(client, path, name=None, labels=FIVE_LABELS, **form):
    with open(path, "rb") as f:
        files = {"file": (name or path.name, f)}
        return client.post("/api/classify", files=files, data={"labels": labels, **form})


def test_classify_ranks_a_kitchen20_clip_as_predict_json_does(client, blender_clip):
    from harken import api

    r = classify(client, blender_clip)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["file"] == blender_clip.name
    assert got["score_kind"] == "probability" and "softmax" in got["score_meaning"]
    assert got["ranking"][0]["label"] == "blender"
    assert len(got["ranking"]) == 5
    assert got["duration_s"] == pytest.approx(5.0, abs=0.01)
    assert got["timeline"] is None  # a short clip: no timeline
    expected = api.predict(str(blender_clip), parse_labels(FIVE_LABELS)).to_dict()
    for mine, cli in zip(got["ranking"], expected["ranking"], strict=True):
        assert mine["label"] == cli["label"]
        assert mine["score"] == pytest.approx(cli["score"], abs=1e-4)


def test_browser_audio_48k_stereo_webm_is_decoded_like_any_input(client, browser_webm):
    r = classify(client, browser_webm, name="recording.webm")
    assert r.status_code == 200, r.text
    assert r.json()["ranking"][0]["label"] == "blender"
    assert r.json()["duration_s"] == pytest.approx(5.0, abs=0.1)


def test_the_type_is_checked_by_decoding_not_by_the_name(client, blender_clip, tmp_path):
    fake = tmp_path / "clip.wav"
    fake.write_text("this is not audio at all\n" * 100)
    r = classify(client, fake)
    assert r.status_code == 422
    assert "clip.wav: not audio harken can decode" in r.json()["detail"]
    # real audio under a misleading name is still audio
    r = classify(client, blender_clip, name="notes.txt")
    assert r.status_code == 200 and r.json()["ranking"][0]["label"] == "blender"


def test_size_and_duration_limits_answer_413_with_a_clear_message(
    client, minute_webm, tmp_path, small_index, runs_dir
):
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * 3_000_000)
    r = classify(client, big)
    assert r.status_code == 413
    assert "upload of 3.0 MB: over the 2 MB upload limit" in r.json()["detail"]
    assert "--max-upload-mb" in r.json()["detail"]
    # a body announced as too large is refused before it is read
    huge = client.post(
        "/api/classify",
        content=b"x" * 10,
        headers={"content-length": "900000000", "content-type": "multipart/form-data"},
    )
    assert huge.status_code == 413 and "over the 2 MB upload limit" in huge.json()["detail"]
    short = ServeSettings(index=small_index, runs=runs_dir, max_seconds=30)
    with TestClient(create_app(short, warm=False), base_url=LOCAL) as c:
        r = classify(c, minute_webm)
    assert r.status_code == 413
    assert "over the 30 s limit" in r.json()["detail"] and "--max-seconds" in r.json()["detail"]


def test_an_upload_without_length_is_cut_off_at_the_limit(tmp_path):
    """A body sent without Content-Length (chunked) is stopped while it is copied."""
    import io
    from types import SimpleNamespace

    from harken.serve.app import TooLarge, save_upload

    upload = SimpleNamespace(filename="stream.webm", file=io.BytesIO(b"\0" * 3_000_001))
    with pytest.raises(TooLarge, match=r"stream.webm: over the 3 MB upload limit"):
        save_upload(upload, tmp_path, 3_000_000)
    upload = SimpleNamespace(filename="ok.webm", file=io.BytesIO(b"\1" * 3_000_000))
    assert save_upload(upload, tmp_path, 3_000_000).stat().st_size == 3_000_000


def test_bad_labels_and_template_paths_are_refused(client, blender_clip):
    r = classify(client, blender_clip, labels="blender")
    assert r.status_code == 422 and "at least two" in r.json()["detail"]
    # a request must not make the server read one of its files as templates
    r = classify(client, blender_clip, templates="/etc/passwd")
    assert r.status_code == 422 and "choose a set" in r.json()["detail"]
    r = classify(client, blender_clip, templates="the sound of {}")
    assert r.status_code == 200


def test_uploads_live_in_a_private_folder_that_is_removed(client, blender_clip, tmp_path):
    seen = []
    real = tempfile.TemporaryDirectory

    class Spy(real):
        def __init__(self, *a, **k):
            super().__init__(*a, dir=tmp_path, **k)
            seen.append(self.name)

    tempfile.TemporaryDirectory = Spy
    try:
        assert classify(client, blender_clip).status_code == 200
        fake = tmp_path / "x.ogg"
        fake.write_bytes(b"OggS" + b"\1" * 500)
        assert classify(client, fake).status_code == 422
    finally:
        tempfile.TemporaryDirectory = real
    assert len(seen) == 2
    assert not any(p.name.startswith("harken-serve-") for p in tmp_path.iterdir())


def test_concurrent_requests_all_get_their_answer(client, blender_clip, browser_webm):
    inputs = [blender_clip, browser_webm] * 3
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda p: classify(client, p), inputs))
    assert [a.status_code for a in answers] == [200] * 6
    assert {a.json()["ranking"][0]["label"] for a in answers} == {"blender"}


def test_search_hits_play_only_rows_of_the_index(client):
    hits = client.get("/api/search", params={"q": "blender", "k": 4}).json()
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    assert hits[0]["name"].startswith("blender/")
    assert all(not h["name"].startswith("/") and "/work" not in h["name"] for h in hits)
    r = client.get(hits[0]["audio"])
    assert r.status_code == 200 and len(r.content) > 1000
    assert client.get("/api/audio/12").status_code == 404
    assert client.get("/api/audio/-1").status_code == 404


def test_runs_serves_reports_and_nothing_outside_the_folder(client, runs_dir):
    assert client.get("/api/runs").json() == [
        {"path": "kfold/report.html", "url": "/runs/kfold/report.html"}
    ]
    r = client.get("/runs/kfold/report.html")
    assert r.status_code == 200 and "k-fold report" in r.text
    assert r.headers["content-type"].startswith("text/html")
    (runs_dir / "link.txt").symlink_to(runs_dir.parent / "secret.txt")
    try:
        for url in (
            "/runs/../secret.txt",
            "/runs/%2e%2e/secret.txt",
            "/runs/kfold/..%2F..%2Fsecret.txt",
            "/runs/%2Fetc%2Fpasswd",
            "/runs//etc/passwd",
            "/runs/link.txt",
            "/runs/kfold",
        ):
            r = client.get(url)
            assert r.status_code == 404, url
            assert "not to be served" not in r.text and "root:" not in r.text
        assert client.post("/runs/kfold/report.html").status_code == 405  # read-only
    finally:
        (runs_dir / "link.txt").unlink()


def test_another_host_needs_a_token_and_then_every_request_does(small_index, blender_clip):
    with pytest.raises(ConfigError, match="--token"):
        create_app(ServeSettings(host="0.0.0.0"), warm=False)
    app = create_app(ServeSettings(host="0.0.0.0", token="s3cret", index=small_index), warm=False)
    with TestClient(app) as c:
        assert c.get("/").status_code == 401
        assert c.get("/api/info", headers={TOKEN_HEADER: "wrong"}).status_code == 401
        assert classify(c, blender_clip).status_code == 401
        assert c.get("/api/info", headers={TOKEN_HEADER: "s3cret"}).status_code == 200
        page = c.get("/?token=s3cret")  # opening the page with the token sets the cookie
        assert page.status_code == 200 and "harken" in page.text
        assert c.get("/api/info").status_code == 200


def test_without_token_only_local_host_names_are_answered(client):
    """DNS rebinding: a page of another domain resolved to 127.0.0.1 must not reach the app."""
    assert client.get("/api/info", headers={"host": "evil.example:8000"}).status_code == 400
    assert client.get("/api/info", headers={"host": "localhost:8000"}).status_code == 200


def test_cli_refuses_a_public_host_without_token(capsys, monkeypatch):
    from harken.cli import main

    monkeypatch.delenv("HARKEN_SERVE_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--host 0.0.0.0" in capsys.readouterr().err


def test_a_long_recording_also_gets_a_timeline(client, minute_webm):
    got = classify(client, minute_webm).json()
    line = got["timeline"]
    assert line["labels"] == parse_labels(FIVE_LABELS)
    assert line["boundaries"][0] == 0 and line["boundaries"][-1] == pytest.approx(60, abs=1)
    assert len(line["scores"]) == len(line["boundaries"]) - 1
    assert {len(row) for row in line["scores"]} == {5}
    assert "not a probability" in line["score_kind"]
    assert isinstance(line["segments"], list)


def test_harken_serve_starts_from_the_command_line(runs_dir):
    """``harken serve`` as a person starts it: a process that loads the models, then answers."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from .conftest import free_port

    port = free_port()
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "harken.cli", "serve", "--port", str(port), "--runs", runs_dir]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=5) as r:
                    assert json.loads(r.read()) == [
                        {"path": "kfold/report.html", "url": "/runs/kfold/report.html"}
                    ]
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "harken serve did not answer in 240 s"
                time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

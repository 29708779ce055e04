"""The ``ray`` engine on a real two-node Ray cluster (``ray start`` on loopback: conftest's
``ray_cluster``), against the ``local`` engine on the same real Kitchen20 clips."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from harken.cli import main
from harken.data.manifest import Clip
from harken.encoders.base import get_encoder
from harken.errors import AudioError, ConfigError
from harken.store.engines import (
    EncoderRecipe,
    LocalEngine,
    ShardTask,
    get_engine,
    recipe_of,
)
from harken.store.features import FeatureStore, clip_key
from harken.store.index import EmbeddingIndex
from harken.store.ray_engine import (
    _bound,
    _done_from_json,
    _error_from_json,
    _portable_error,
    _task_from_json,
    _task_json,
)

from .conftest import StatsEncoder, kitchen20_first

pytest.importorskip("ray", reason="Ray is not installed: pip install 'harken[ray]'")

N_CLIPS = 200  # real Kitchen20 clips
SHARD = 20  # clips per shard: 10 shard tasks


def shard_tasks(root: Path, encoder, n: int = N_CLIPS) -> tuple[list[ShardTask], Path]:
    """The first ``n`` Kitchen20 clips as shard tasks of a fresh store under ``root``."""
    store = FeatureStore(root, shard_size=SHARD, progress=False)
    folder = store._prepare("kitchen20", encoder)
    clips = kitchen20_first(n)
    keys = [clip_key(c, store.hashes) for c in clips]
    tasks = [
        ShardTask(str(folder), tuple(keys[i : i + SHARD]), tuple(clips[i : i + SHARD]))
        for i in range(0, n, SHARD)
    ]
    return tasks, folder


def store_embeddings(root: Path) -> dict[str, np.ndarray]:
    """Key → embedding of every shard under a feature-store folder."""
    out = {}
    for shard in root.rglob("shard-*.npz"):
        with np.load(shard) as z:
            out |= dict(zip(z["keys"].tolist(), z["embeddings"], strict=True))
    return out


@pytest.fixture(scope="module")
def yamnet():
    return get_encoder("yamnet")


@pytest.fixture(scope="module")
def kitchen20_csv(tmp_path_factory) -> Path:
    """The first ``N_CLIPS`` Kitchen20 clips as a dataset CSV (absolute paths)."""
    out = tmp_path_factory.mktemp("k20") / "clips.csv"
    rows = [f"{c.audio_path},{c.labels['label']}" for c in kitchen20_first(N_CLIPS)]
    out.write_text("path,label\n" + "\n".join(rows) + "\n")
    return out


@pytest.fixture(scope="module")
def local_index(kitchen20_csv, tmp_path_factory) -> tuple[Path, Path]:
    """The reference: ``harken index`` with the ``local`` engine; its index and store folders."""
    out = tmp_path_factory.mktemp("local")
    argv = ["index", str(kitchen20_csv), "--out", str(out / "index"), "--store-dir"]
    assert main([*argv, str(out / "store"), "--engine", "local"]) == 0
    return out / "index", out / "store"


def test_cli_index_on_a_two_node_cluster_equals_the_local_index(
    ray_cluster, kitchen20_csv, local_index, tmp_path
):
    """``harken index --engine ray --ray-address HEAD --workers 2`` into a cold store."""
    argv = ["index", str(kitchen20_csv), "--out", str(tmp_path / "index"), "--store-dir"]
    argv += [str(tmp_path / "store"), "--engine", "ray", "--ray-address", ray_cluster.address]
    assert main([*argv, "--workers", "2"]) == 0
    ours, local = EmbeddingIndex.load(tmp_path / "index"), EmbeddingIndex.load(local_index[0])
    assert ours.files == local.files and len(ours.files) == N_CLIPS
    assert np.asarray(ours.embeddings).tobytes() == np.asarray(local.embeddings).tobytes()
    stored = store_embeddings(tmp_path / "store")
    reference = store_embeddings(local_index[1])
    assert stored.keys() == reference.keys()
    assert all(stored[k].tobytes() == reference[k].tobytes() for k in reference)


def test_killed_worker_costs_at_most_its_shard(ray_cluster, yamnet, local_index, tmp_path):
    """SIGKILL one worker (its pid from the actor's ``os.getpid()``) once the first shard it
    encoded arrives: the job finishes with the local embeddings bit for bit, the shards an
    earlier job finished are reused untouched, and every other shard is encoded once (the
    killed worker's own may have been written just before it died, then it is reused)."""
    tasks, folder = shard_tasks(tmp_path, yamnet)
    earlier = list(LocalEngine().run(recipe_of(yamnet), tasks[:2], 1))  # an earlier job's work
    stamps = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("shard-*")}

    engine = get_engine("ray", address=ray_cluster.address)
    done, killed = [], None
    for d in engine.run(recipe_of(yamnet), tasks, workers=2):
        done.append(d)
        if killed is None and not d.reused:
            killed = engine.worker_pids[-1]
            assert killed != os.getpid()
            os.kill(killed, signal.SIGKILL)

    assert killed is not None
    assert sorted(d.task_id for d in done) == sorted(t.task_id for t in tasks)
    assert len(engine.nodes) == 2, "both nodes of the cluster encoded shards"
    reused = {d.task_id for d in done if d.reused}
    assert {d.task_id for d in earlier} <= reused, "the earlier job's shards were recomputed"
    assert len(reused) <= len(earlier) + 1  # at most the killed worker's own shard besides
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("shard-*")}
    assert all(after[name] == stamp for name, stamp in stamps.items()), "rewritten shards"
    assert len(after) == len(tasks)
    ours, reference = store_embeddings(folder), store_embeddings(local_index[1])
    assert len(ours) == N_CLIPS
    assert all(ours[k].tobytes() == reference[k].tobytes() for k in ours)


def test_a_shard_that_always_kills_its_worker_ends_the_job_naming_its_clips(ray_cluster, tmp_path):
    """Ray Data's actor pool retries forever by default; the engine bounds it: 1 + max_retries
    deaths, then an error naming the shard's clips (not a job that never ends)."""
    from .ray_encoders import DyingEncoder  # registers test-ray-die (as store.ray_encoders)

    marker = tmp_path / "deaths.txt"
    encoder = get_encoder("test-ray-die", driver=os.getpid(), marker=str(marker))
    assert isinstance(encoder, DyingEncoder)
    tasks, _ = shard_tasks(tmp_path, encoder, n=SHARD)
    engine = get_engine("ray", address=ray_cluster.address, max_retries=1)
    with pytest.raises(RuntimeError, match=r"Ray workers kept failing.*1 shards not encoded") as e:
        list(engine.run(recipe_of(encoder), tasks, workers=1))
    assert tasks[0].clips[0].clip_id in str(e.value)
    assert len(marker.read_text().splitlines()) == 2  # the first try and one retry


def test_worker_errors_travel_as_data_and_keep_their_type(yamnet, tmp_path):
    """The actor's class, run here: rows are JSON text (nothing the driver reads can run
    code); an unusable clip comes back as an AudioError (re-raised as such by the driver),
    and the shard before it as a ShardDone."""
    tasks, folder = shard_tasks(tmp_path, yamnet, n=4)
    gone = Clip("gone", tmp_path / "gone.wav", {"label": "x"}, start=0.5, end=1.5)
    bad = ShardTask(str(folder), (*tasks[0].keys[:2], "0" * 64), (*tasks[0].clips[:2], gone))
    good = ShardTask(str(folder), tasks[0].keys[2:], tasks[0].clips[2:])
    assert _task_from_json(_task_json(bad)) == bad  # clips, paths and spans survive the trip
    actor = _bound(recipe_of(yamnet), 1)()
    out = actor({"task": [_task_json(good), _task_json(bad)]})
    assert out["pid"] == [os.getpid()] * 2 and out["error"][0] == "" and out["done"][1] == ""
    assert all(isinstance(json.loads(x), dict) for x in (out["done"][0], out["error"][1]))
    done = _done_from_json(out["done"][0])
    assert done.keys == good.keys and not done.reused and Path(done.shard).parent == folder
    error = _error_from_json(out["error"][1])
    assert isinstance(error, AudioError) and "gone.wav" in str(error)
    # An encoder that cannot be built fails every task with the reason, not a dead actor.
    broken = _bound(EncoderRecipe("no-such-encoder", label="no-such-encoder"), 1)()
    out = broken({"task": [_task_json(good)]})
    assert isinstance(_error_from_json(out["error"][0]), ConfigError)
    # any other exception becomes a RuntimeError naming its type and the shard
    other = _error_from_json(_portable_error(KeyError("k"), good))
    assert type(other) is RuntimeError and "KeyError" in str(other) and "shard of" in str(other)


def test_unreachable_cluster_is_a_config_error_at_once(yamnet):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens there once closed
    engine = get_engine("ray", address=f"127.0.0.1:{port}", connect_timeout=5)
    task = ShardTask("/nonexistent", ("0" * 64,), (kitchen20_first(1)[0],))
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=rf"no Ray cluster answers at 127\.0\.0\.1:{port}"):
        list(engine.run(recipe_of(yamnet), [task], workers=1))
    assert time.monotonic() - t0 < 10


def test_bad_address_and_hand_made_encoders_are_config_errors(yamnet):
    task = ShardTask("/nonexistent", ("0" * 64,), (kitchen20_first(1)[0],))
    with pytest.raises(ConfigError, match="expected auto, HOST:PORT"):
        list(
            get_engine("ray", address="head-node").run(recipe_of(get_encoder("yamnet")), [task], 1)
        )
    with pytest.raises(ConfigError, match=r"not made by harken\.encoders\.get_encoder"):
        list(get_engine("ray").run(recipe_of(StatsEncoder()), [task], 1))

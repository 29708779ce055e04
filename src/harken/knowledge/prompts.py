"""Prompts that ask a language model how an action sounds.

:data:`GEBHARD2024` is the prompt of Gebhard et al. (2024), Table 2, which they used with
LLaMA-2-7b-chat to write one sound description per EPIC-KITCHENS narration (§2 "Audio
descriptions"). :data:`GEBHARD2024_PROMPT` is the same prompt as the single LLaMA-2 chat string
printed in the paper; :meth:`Prompt.messages` gives the system + user messages for models with a
chat template. The ``harken-*`` prompts are harken's own, shorter sound-description prompts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harken.errors import ConfigError

ACTION = "{ACTION}"

# Gebhard et al. (2024), Table 2, reconstructed from the paper's text. What was normalised:
# * the text extraction splits the system prompt across two lines ("...produced by the specific
#   action" / "in the phrase."); it is one sentence joined by a single space;
# * the printed "<< /SYS>>" is LLaMA-2's closing tag "<</SYS>>";
# * the extraction flattens line breaks to spaces; the LLaMA-2 chat format (Touvron et al., 2023,
#   and the Llama-2-chat tokenizer's chat template) puts "\n" after "<<SYS>>", "\n" before
#   "<</SYS>>" and "\n\n" after it, so the string below has those.
# Every word is the paper's, including "auditioning" without a final period, the quotes and
# full stop around {ACTION} and the answer prefix "This action sounds like:" after [/INST].
GEBHARD2024_SYSTEM = (
    "You are a highly skilled audio engineer with expertise in accurately describing sounds from "
    'various actions in everyday life. I will provide you with a "kitchen action" and your task '
    "is to give me a short, precise and accurate description of the sound produced by the "
    "specific action in the phrase. The question is, how does this action sound like in terms of "
    "auditioning"
)
GEBHARD2024_USER = '"{ACTION}".'
GEBHARD2024_RESPONSE_PREFIX = "This action sounds like:"
GEBHARD2024_PROMPT = (
    f"<s>[INST] <<SYS>>\n{GEBHARD2024_SYSTEM}\n<</SYS>>\n\n{GEBHARD2024_USER} [/INST] "
    f"{GEBHARD2024_RESPONSE_PREFIX}"
)


@dataclass(frozen=True)
class Prompt:
    """A prompt with an ``{ACTION}`` slot, as chat messages plus an optional answer prefix.

    Args:
        name: Short id, recorded in generator configs.
        user: The user message; must contain ``{ACTION}``.
        system: The system message, or None.
        response_prefix: Text the answer is forced to start with (appended after the chat
            template's assistant header); the generated continuation is the description.
    """

    name: str
    user: str
    system: str | None = None
    response_prefix: str = ""

    def __post_init__(self) -> None:
        if ACTION not in self.user:
            raise ConfigError(f"prompt {self.name!r}: the user message must contain {ACTION}")

    def messages(self, action: str) -> list[dict[str, str]]:
        """System (if any) and user chat messages with ``{ACTION}`` filled in."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        out.append({"role": "user", "content": self.user.replace(ACTION, action)})
        return out

    def llama2(self, action: str) -> str:
        """The LLaMA-2 chat string (with BOS ``<s>``: tokenize without adding special tokens)."""
        system = f"<<SYS>>\n{self.system}\n<</SYS>>\n\n" if self.system else ""
        text = f"<s>[INST] {system}{self.user.replace(ACTION, action)} [/INST]"
        return f"{text} {self.response_prefix}" if self.response_prefix else text

    def plain(self, action: str) -> str:
        """Plain text for a model without a chat template: system, user, then answer prefix."""
        parts = [p for p in (self.system, self.user.replace(ACTION, action)) if p]
        text = "\n\n".join(parts) + "\n"
        return text + self.response_prefix if self.response_prefix else text

    def config(self) -> dict:
        """The prompt's full text (part of a generator's config and cache key)."""
        return asdict(self)


GEBHARD2024 = Prompt(
    name="gebhard2024",
    system=GEBHARD2024_SYSTEM,
    user=GEBHARD2024_USER,
    response_prefix=GEBHARD2024_RESPONSE_PREFIX,
)

HARKEN_SOUND = Prompt(
    name="harken-sound",
    system=(
        "You describe how everyday actions sound. Answer in one or two plain sentences about "
        "what can be heard only: the sound source, its texture, rhythm and loudness. Do not "
        "describe what the action looks like."
    ),
    user='What does "{ACTION}" sound like?',
)

HARKEN_SOUND_SHORT = Prompt(
    name="harken-sound-short",
    user='Describe in one sentence the sound of "{ACTION}".',
    response_prefix="It sounds like",
)

PROMPTS: dict[str, Prompt] = {p.name: p for p in (GEBHARD2024, HARKEN_SOUND, HARKEN_SOUND_SHORT)}


def get_prompt(prompt: str | Prompt) -> Prompt:
    """A :class:`Prompt` by name (``"gebhard2024"``, ``"harken-sound"``, ...) or as given.

    Raises:
        ConfigError: For an unknown name.
    """
    if isinstance(prompt, Prompt):
        return prompt
    if prompt not in PROMPTS:
        raise ConfigError(f"unknown prompt {prompt!r}; choose one of: {', '.join(PROMPTS)}")
    return PROMPTS[prompt]

"""Class knowledge: textual descriptions of classes, and class embeddings made from them.

Generators (:mod:`~harken.knowledge.base`) turn action names or narrations into descriptions:
prompt-ensemble templates, a local causal LM, or an OpenAI-compatible endpoint; a persistent cache
makes sure nothing is generated twice. :mod:`~harken.knowledge.classes` turns descriptions into
one embedding per class, as Gebhard et al. (2024, §2-§3) do.
"""

from harken.knowledge.base import (
    GENERATORS,
    DescriptionGenerator,
    available_generators,
    get_generator,
)
from harken.knowledge.cache import CachedGenerator, DescriptionCache, cache_dir
from harken.knowledge.classes import (
    class_embeddings,
    class_texts,
    export_descriptions,
    read_descriptions,
)
from harken.knowledge.prompts import GEBHARD2024, GEBHARD2024_PROMPT, PROMPTS, Prompt, get_prompt
from harken.knowledge.templates import TEMPLATE_SETS, gerund, humanize, load_templates

__all__ = [
    "GEBHARD2024",
    "GEBHARD2024_PROMPT",
    "GENERATORS",
    "PROMPTS",
    "TEMPLATE_SETS",
    "CachedGenerator",
    "DescriptionCache",
    "DescriptionGenerator",
    "Prompt",
    "available_generators",
    "cache_dir",
    "class_embeddings",
    "class_texts",
    "export_descriptions",
    "gerund",
    "get_generator",
    "get_prompt",
    "humanize",
    "load_templates",
    "read_descriptions",
]

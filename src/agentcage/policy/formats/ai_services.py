"""Built-in credential formats of AI model, search and tooling providers.

(Anthropic, OpenAI, OpenRouter, Groq, xAI, Perplexity, Hugging Face and Replicate
are in `builtin.py` and `services.py`.) See `pattern.py` for the rules every
format follows.
"""

from __future__ import annotations

import re

from agentcage.policy.formats.pattern import END, END_DASH, START, CredentialPattern, make

# The `sk-` keys that have a format of their own (`builtin.py`, above); the generic
# `sk-` format below leaves them to it, so each still may go to its own provider.
_OWN_SK_FORMATS = rb"(?!ant-|proj-|svcacct-|admin-|or-v1-|lf-|helicone-)"
_SK_CLASSES = (re.compile(rb"[a-z]"), re.compile(rb"[A-Z]"), re.compile(rb"[0-9]"))


def _random_sk(value: bytes) -> bool:
    """A key's random part: letters and digits mixed, many distinct characters, and
    not an OpenAI legacy key (`T3BlbkFJ` marks those; their own format has them)."""
    if b"T3BlbkFJ" in value or len(set(value)) < 10:
        return False
    kinds = sum(1 for c in _SK_CLASSES if c.search(value))
    return kinds >= 2 and _SK_CLASSES[2].search(value) is not None


AI_PATTERNS: tuple[CredentialPattern, ...] = (
    make(
        "langsmith_api_key",
        START + rb"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}" + END,
        (b"lsv2_pt_", b"lsv2_sk_"),
        ("langchain.com",),
        "LangSmith personal and service keys",
    ),
    make(
        "pinecone_api_key",
        START + rb"pcsk_[A-Za-z0-9]{4,8}_[A-Za-z0-9]{40,70}" + END,
        (b"pcsk_",),
        ("pinecone.io",),
        "Pinecone API key",
    ),
    make(
        "fireworks_api_key",
        START + rb"fw_[A-Za-z0-9]{20,40}" + END,
        (b"fw_",),
        ("fireworks.ai",),
        "Fireworks AI API key",
    ),
    make(
        "nvidia_api_key",
        START + rb"nvapi-[A-Za-z0-9_-]{64}" + END_DASH,
        (b"nvapi-",),
        ("nvidia.com",),
        "NVIDIA API key (build.nvidia.com, NGC)",
    ),
    make(
        "cerebras_api_key",
        START + rb"csk-[a-z0-9]{48}" + END,
        (b"csk-",),
        ("cerebras.ai",),
        "Cerebras API key",
    ),
    make(
        "langfuse_secret_key",
        START + rb"sk-lf-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}" + END_DASH,
        (b"sk-lf-",),
        ("langfuse.com",),
        "Langfuse secret key",
    ),
    make(
        "tavily_api_key",
        START + rb"tvly-(?:dev-|prod-)?[A-Za-z0-9]{32}" + END,
        (b"tvly-",),
        ("tavily.com",),
        "Tavily API key",
    ),
    make(
        "firecrawl_api_key",
        START + rb"fc-[a-f0-9]{32}" + END,
        (b"fc-",),
        ("firecrawl.dev",),
        "Firecrawl API key",
    ),
    make(
        "elevenlabs_api_key",
        START + rb"sk_[a-f0-9]{48}" + END,
        (b"sk_",),
        ("elevenlabs.io",),
        "ElevenLabs API key",
    ),
    make(
        "llamacloud_api_key",
        START + rb"llx-[A-Za-z0-9]{48}" + END,
        (b"llx-",),
        ("llamaindex.ai",),
        "LlamaCloud API key",
    ),
    make(
        "anyscale_api_key",
        START + rb"esecret_[A-Za-z0-9]{20,60}" + END,
        (b"esecret_",),
        ("anyscale.com",),
        "Anyscale API key",
    ),
    make(
        "helicone_api_key",
        START + rb"sk-helicone-(?:[a-z0-9]{7}-){3}[a-z0-9]{7}" + END_DASH,
        (b"sk-helicone-",),
        ("helicone.ai",),
        "Helicone API key",
    ),
    make(
        "sk_api_key",
        # DeepSeek, Moonshot, DashScope and SiliconFlow keys, LiteLLM's virtual keys,
        # and many a provider's test key (`sk-test-...`): `sk-`, perhaps a word, and a
        # random part.
        START
        + rb"sk-"
        + _OWN_SK_FORMATS
        + rb"(?:[a-z]{2,10}-)?(?P<v>[A-Za-z0-9]{20,128})"
        + END_DASH,
        (b"sk-",),
        (
            "deepseek.com",
            "moonshot.cn",
            "moonshot.ai",
            "dashscope.aliyuncs.com",
            "siliconflow.cn",
            "openai.com",
        ),
        "API key with the bare `sk-` prefix (DeepSeek, Moonshot, DashScope, LiteLLM...)",
        check=_random_sk,
    ),
)

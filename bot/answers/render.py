"""Format an ``Answer``: plain text (console), Telegram HTML, a JSON object.

Pure functions of the answer: every label and title a formatter needs is already in its parts.
"""

from __future__ import annotations

import html
from typing import Any

from bot.answers.texts import t
from bot.types import Answer, Part

#: Roles that start a new block (a blank line before them, except at the top).
_BLOCK_START = {"heading", "section", "step", "abstain", "not_stated"}


def _cite(part: Part, answer: Answer) -> str:
    return t("cite", answer.language, label=part.label) if part.label else ""


def _related_line(part: Part, answer: Answer) -> str:
    sep = ": " if answer.language == "en" else "："
    label = f"{part.label}{sep}" if part.label else ""
    return f"• {label}{part.text}"


def to_text(answer: Answer, knowledge: object | None = None) -> str:
    """Plain text with citations like 【第2.1条】 / [Clause 2.1] before each quoted text.

    ``knowledge`` is accepted for the agreed signature and not needed: parts carry their labels.
    """
    lines: list[str] = []
    for part in answer.parts:
        if part.role in _BLOCK_START and lines:
            lines.append("")
        if part.role in ("quote", "explain"):
            lines.append(f"{_cite(part, answer)}{part.text}")
        elif part.role == "translation":
            lines.append(t("translation", answer.language, text=part.text))
        elif part.role == "related":
            lines.append(_related_line(part, answer))
        elif part.role in ("topic", "law", "gap"):
            lines.append(f"• {part.text}")
        elif part.role == "toc":
            lines.append(f"  {part.text}")
        else:
            lines.append(part.text)
    return "\n".join(lines).strip()


def to_html(answer: Answer, knowledge: object | None = None, *, related: bool = True) -> str:
    """Telegram HTML (parse_mode="HTML"): every dynamic string escaped; <b>, <i>, <blockquote>.

    ``related=False`` leaves out the follow-up list (the Telegram layer shows it as buttons).
    """
    e = html.escape
    out: list[str] = []
    parts = list(answer.parts)
    for index, part in enumerate(parts):
        following = parts[index + 1] if index + 1 < len(parts) else None
        if not related and (
            part.role == "related"
            or (part.role == "heading" and following is not None and following.role == "related")
        ):
            continue
        if part.role in _BLOCK_START and out:
            out.append("")
        cite = f"<b>{e(_cite(part, answer))}</b>" if part.label else ""
        if part.role == "quote":
            out.append(f"{cite}<blockquote>{e(part.text)}</blockquote>")
        elif part.role == "translation":
            text = t("translation", answer.language, text=part.text)
            out.append(f"<blockquote><i>{e(text)}</i></blockquote>")
        elif part.role == "explain":
            out.append(f"{cite}{e(part.text)}")
        elif part.role in ("heading", "step", "not_stated"):
            out.append(f"<b>{e(part.text)}</b>")
        elif part.role == "law":
            out.append(f"<i>{e(f'• {part.text}')}</i>")
        elif part.role == "gap":
            out.append(e(f"• {part.text}"))
        elif part.role in ("section", "note", "context"):
            out.append(f"<i>{e(part.text)}</i>")
        elif part.role == "related":
            out.append(e(_related_line(part, answer)))
        elif part.role == "topic":
            out.append(e(f"• {part.text}"))
        elif part.role == "toc":
            out.append(e(f"  {part.text}"))
        else:
            out.append(e(part.text))
    return "\n".join(out).strip()


def to_json(answer: Answer, knowledge: object | None = None) -> dict[str, Any]:
    """The object ``contract-bot ask --json`` prints, with exactly the keys the issue names."""
    return {
        "question": answer.question,
        "language": answer.language,
        "abstained": answer.abstained,
        "coverage": answer.coverage,
        "confidence": round(float(answer.confidence), 3),
        "citations": []
        if answer.abstained
        else [{"id": c.id, "kind": c.kind, "score": round(c.score, 3)} for c in answer.citations],
        "answer": to_text(answer),
    }

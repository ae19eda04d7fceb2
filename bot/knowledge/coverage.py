"""The coverage map (``knowledge/coverage.toml``): what the agreement says and does not say.

One ``[[category]]`` per item of the checklist a lawyer holds a service agreement against
(parties, term, fees, liability cap, force majeure, subcontracting, ...). Each says whether the
agreement covers it (``covered = "yes" | "partly" | "no"``) and which items do; a category it
does not cover (``partly`` / ``no``) has a fixed statement of what the agreement does not say
(zh-Hans and English; zh-Hant is derived when shown), the nearest items to quote beneath it,
optionally the PRC Civil Code articles that supply the default rule, and example questions (in
zh-Hans, zh-Hant and English) that the index embeds to recognise questions about the gap.

``load_coverage(path, item_ids)`` validates like the item loader: every problem is collected
and names the file, the category and the field, e.g.
``coverage.toml: category "subcontracting": field "nearest[0]": unknown item "9.9"``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    import opencc

COVERAGE_FILE = "coverage.toml"
#: Example questions an uncovered category needs at least, and the languages among them.
MIN_EXAMPLES = 5
MAX_NEAREST = 3
EXAMPLE_LANGUAGES = ("zh-Hans", "zh-Hant", "en")
#: Bumped when what the index embeds of the map changes, so old indexes are seen as stale.
HASH_VERSION = "coverage-v1"

_ID_PATTERN = r"^[a-z][a-z0-9_]*$"
#: An article of the Civil Code as the statute numbers it: 第五百八十五条, 第十二条.
_ARTICLE_RE = re.compile(r"^第[一二三四五六七八九十百千零〇]+条$")

Covered = Literal["yes", "partly", "no"]


_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_UNITS = {"十": 10, "百": 100, "千": 1000}


def chinese_number(text: str) -> int:
    """A number written in Chinese numerals below 10 000 (五百八十五 -> 585, 一千零三十四 ->
    1034, 十二 -> 12); ``ValueError`` for anything else."""
    total, digit = 0, None
    for char in text:
        if char in _DIGITS:
            digit = _DIGITS[char]
        elif char in _UNITS:
            total += (1 if digit is None else digit) * _UNITS[char]
            digit = None
        else:
            raise ValueError(f"not a Chinese number: {text!r}")
    if not text:
        raise ValueError("not a Chinese number: ''")
    return total + (digit or 0)


@dataclass(frozen=True)
class LawPointer:
    """An article of 《中华人民共和国民法典》 supplying the default rule where the agreement is
    silent: only its number and a one-line topic, never worded as the agreement's."""

    article: str
    topic: str
    topic_en: str

    @property
    def number(self) -> int:
        """The article's number (第五百八十五条 -> 585), for English replies."""
        return chinese_number(self.article.removeprefix("第").removesuffix("条"))


@dataclass(frozen=True)
class Category:
    """One checklist category and what the agreement says about it."""

    id: str
    name: str
    name_en: str
    covered: Covered
    clauses: tuple[str, ...] = ()
    not_stated: str = ""
    not_stated_en: str = ""
    nearest: tuple[str, ...] = ()
    law: tuple[LawPointer, ...] = ()
    examples: tuple[str, ...] = ()

    @property
    def gap(self) -> bool:
        """The agreement does not cover it, or only partly."""
        return self.covered != "yes"


@dataclass(frozen=True)
class Coverage:
    """The categories in file order."""

    categories: tuple[Category, ...] = ()
    by_id: Mapping[str, Category] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", MappingProxyType({c.id: c for c in self.categories}))

    def get(self, category_id: str) -> Category | None:
        return self.by_id.get(category_id)

    @property
    def gaps(self) -> tuple[Category, ...]:
        """Categories the agreement does not cover or covers only partly."""
        return tuple(c for c in self.categories if c.gap)

    def examples(self) -> tuple[tuple[str, str], ...]:
        """(category id, example question) for every example of every gap, in file order: the
        texts the index embeds."""
        return tuple((c.id, text) for c in self.gaps for text in c.examples)

    def examples_hash(self) -> str:
        """sha256 over what the index embeds (category ids and examples): statements, names
        and law pointers can change without a rebuild."""
        payload = {"version": HASH_VERSION, "examples": [list(e) for e in self.examples()]}
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]


# ---------------------------------------------------------------------------------------------
# validation


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


NonEmpty = Annotated[str, AfterValidator(_non_empty)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_strip_whitespace=True)


class LawModel(_Model):
    article: Annotated[str, Field(pattern=_ARTICLE_RE.pattern)]
    topic: NonEmpty
    topic_en: NonEmpty


class CategoryModel(_Model):
    id: Annotated[str, Field(pattern=_ID_PATTERN)]
    name: NonEmpty
    name_en: NonEmpty
    covered: Covered
    clauses: list[NonEmpty] = []
    not_stated: str = ""
    not_stated_en: str = ""
    nearest: list[NonEmpty] = []
    law: list[LawModel] = []
    examples: list[NonEmpty] = []


@cache
def _converter(config: str) -> opencc.OpenCC:
    import opencc

    return opencc.OpenCC(config)


def script_of(text: str) -> str:
    """zh-Hans, zh-Hant or en: which of the example languages ``text`` is written in (the same
    count as ``bot.answers.language.detect_language``, kept here so the knowledge layer does not
    reach up into the answers layer)."""
    han = "".join(c for c in text if "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf")
    if not han:
        return "en"
    simplified = _converter("t2s").convert(han)
    traditional = _converter("s2t").convert(han)
    trad_only = sum(1 for a, b in zip(han, simplified, strict=False) if a != b)
    simp_only = sum(1 for a, b in zip(han, traditional, strict=False) if a != b)
    return "zh-Hant" if trad_only > simp_only else "zh-Hans"


def _pydantic_messages(exc: ValidationError, where: str) -> list[str]:
    out = []
    for error in exc.errors():
        path = ""
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        if error["type"] == "extra_forbidden":
            text = f"unknown field (allowed: {', '.join(CategoryModel.model_fields)})"
        elif error["type"] == "missing":
            text = "missing (required)"
        elif error["type"] == "literal_error":
            text = 'must be "yes", "partly" or "no"'
        elif error["type"] == "string_pattern_mismatch" and path.startswith("law"):
            text = "must be an article number such as 第五百八十五条"
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
        out.append(f'{where}: field "{path}": {text}')
    return out


def _check(where: str, category: Category, item_ids: Collection[str] | None) -> list[str]:
    """Checks across fields and against the items (``item_ids`` None: not checked)."""
    messages: list[str] = []
    for name in ("clauses", "nearest"):
        for i, item_id in enumerate(getattr(category, name)):
            if item_ids is not None and item_id not in item_ids:
                messages.append(f'{where}: field "{name}[{i}]": unknown item "{item_id}"')
    if category.covered == "no" and category.clauses:
        messages.append(
            f'{where}: field "clauses": a category with covered = "no" cannot cite covering '
            'clauses (list them in "nearest", or set covered = "partly")'
        )
    if category.covered != "no" and not category.clauses:
        messages.append(
            f'{where}: field "clauses": covered = "{category.covered}" needs the clauses '
            "that cover it"
        )
    if category.covered == "yes":
        for name in ("not_stated", "not_stated_en", "nearest", "law", "examples"):
            if getattr(category, name):
                messages.append(
                    f'{where}: field "{name}": only for categories the agreement does not cover '
                    '(covered = "partly" or "no")'
                )
        return messages
    for name in ("not_stated", "not_stated_en"):
        if not getattr(category, name):
            messages.append(
                f'{where}: field "{name}": missing (required when covered = "{category.covered}")'
            )
    if not category.nearest:
        messages.append(f'{where}: field "nearest": needs 1 to {MAX_NEAREST} items to quote')
    elif len(category.nearest) > MAX_NEAREST:
        messages.append(f'{where}: field "nearest": at most {MAX_NEAREST} items')
    if len(set(category.nearest)) != len(category.nearest):
        messages.append(f'{where}: field "nearest": lists an item twice')
    if len(category.examples) < MIN_EXAMPLES:
        messages.append(
            f'{where}: field "examples": needs at least {MIN_EXAMPLES} example questions, '
            f"has {len(category.examples)}"
        )
    scripts = {script_of(text) for text in category.examples}
    missing = [lang for lang in EXAMPLE_LANGUAGES if lang not in scripts]
    if category.examples and missing:
        messages.append(
            f'{where}: field "examples": no example in {", ".join(missing)} '
            "(each uncovered category needs zh-Hans, zh-Hant and English examples)"
        )
    seen: set[str] = set()
    for i, text in enumerate(category.examples):
        if text in seen:
            messages.append(f'{where}: field "examples[{i}]": duplicate example')
        seen.add(text)
    return messages


def parse_coverage(
    data: Mapping[str, Any], name: str, item_ids: Collection[str] | None
) -> tuple[Coverage, list[str]]:
    """The valid categories of parsed TOML ``data`` and every problem found."""
    messages: list[str] = []
    for key in data:
        if key != "category":
            messages.append(f'{name}: unknown top-level key "{key}" (expected [[category]] tables)')
    raw_categories = data.get("category", [])
    if not isinstance(raw_categories, list):
        return Coverage(), [*messages, f'{name}: "category" must be an array of [[category]]']
    categories: list[Category] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_categories):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        label = (
            f'category "{raw_id}"' if isinstance(raw_id, str) and raw_id else f"category[{index}]"
        )
        where = f"{name}: {label}"
        if isinstance(raw_id, str) and raw_id:
            if raw_id in seen:
                messages.append(f'{where}: field "id": duplicate id (also category {seen[raw_id]})')
            seen.setdefault(raw_id, index)
        try:
            model = CategoryModel.model_validate(raw)
        except ValidationError as exc:
            messages.extend(_pydantic_messages(exc, where))
            continue
        category = Category(
            id=model.id,
            name=model.name,
            name_en=model.name_en,
            covered=model.covered,
            clauses=tuple(model.clauses),
            not_stated=model.not_stated,
            not_stated_en=model.not_stated_en,
            nearest=tuple(model.nearest),
            law=tuple(LawPointer(x.article, x.topic, x.topic_en) for x in model.law),
            examples=tuple(model.examples),
        )
        messages.extend(_check(where, category, item_ids))
        categories.append(category)
    return Coverage(tuple(categories)), messages


def load_coverage(path: Path, item_ids: Collection[str] | None) -> tuple[Coverage, list[str]]:
    """The coverage map in ``path`` (an empty one when there is no such file) and every
    problem found; clause ids are checked against ``item_ids`` unless it is None."""
    if not path.is_file():
        return Coverage(), []
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        return Coverage(), [f"{path.name}: invalid TOML: {exc}"]
    except UnicodeDecodeError as exc:
        return Coverage(), [f"{path.name}: not valid UTF-8: {exc}"]
    except OSError as exc:
        return Coverage(), [f"{path.name}: cannot read: {exc.strerror}"]
    return parse_coverage(data, path.name, item_ids)

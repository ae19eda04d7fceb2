"""Load and validate the knowledge files (knowledge/*.toml) into frozen ``Item`` objects.

Layout of a knowledge directory:

- ``parameters.toml``: ``[parameters.<name>]`` tables (label, label_en, value) naming the
  template blanks.
- ``coverage.toml``: the coverage map, ``[[category]]`` tables (``bot.knowledge.coverage``),
  loaded into ``Knowledge.coverage``.
- every other ``*.toml``: ``[[items]]`` arrays of tables. ``agreement.toml`` is read first, then
  ``appendices.toml``, then any other file in name order. ``Knowledge.items`` is in document
  order: stably sorted by kind in the order of ``KINDS`` (header, clause, signing, attachments,
  breach, term, problem, scenario), each kind keeping the order it has in the files.

Every problem found is collected into one ``KnowledgeError``; each message names the file
(relative to the knowledge directory), the item (its id, or ``items[i]`` when the id is
missing) and the field, e.g.
``agreement.toml: item "1.3": field "links[0].to": links to unknown item "breach-9"``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bot.knowledge.coverage import COVERAGE_FILE, Coverage, load_coverage
from bot.types import KINDS, RELATIONS, Item, Language, Link, Parameter

__all__ = [
    "ITEM_FILE_ORDER",
    "PARAMETERS_FILE",
    "Knowledge",
    "KnowledgeError",
    "fill_blanks",
    "item_hash",
    "load_knowledge",
    "unfilled",
]

PARAMETERS_FILE = "parameters.toml"
#: Item files read first, in this order; any other *.toml follows in name order.
ITEM_FILE_ORDER = ("agreement.toml", "appendices.toml")
PARTIES = ("甲方", "乙方")
MIN_QUESTIONS = 5
#: Kinds that sit outside the numbered sections and so may have an empty ``section``.
UNSECTIONED_KINDS = ("header", "signing")
#: Bumped when the hashed representation changes, so old indexes are seen as stale.
HASH_VERSION = "knowledge-v1"

BLANK_RE = re.compile(r"_+")
_ID_PATTERN = r"^[a-z0-9]+(?:[.\-][a-z0-9]+)*$"
_PARAMETER_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class KnowledgeError(Exception):
    """Invalid knowledge. ``messages`` holds every problem; ``str()`` is one per line."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = tuple(messages)
        super().__init__("\n".join(self.messages))


# ---------------------------------------------------------------------------------------------
# pydantic models of the files (strict: TOML already has exact types; forbid unknown keys)


def _normalize_newlines(value: object) -> object:
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _known_kind(value: str) -> str:
    if value not in KINDS:
        raise ValueError(f"unknown kind {value!r} (known: {', '.join(KINDS)})")
    return value


def _known_relation(value: str) -> str:
    if value not in RELATIONS:
        raise ValueError(f"unknown relation {value!r} (known: {', '.join(RELATIONS)})")
    return value


Text = Annotated[str, BeforeValidator(_normalize_newlines)]
NonEmpty = Annotated[Text, AfterValidator(_non_empty)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_strip_whitespace=True)


class LinkModel(_Model):
    rel: Annotated[str, AfterValidator(_known_relation)]
    to: NonEmpty


class ItemModel(_Model):
    id: Annotated[str, Field(pattern=_ID_PATTERN)]
    kind: Annotated[str, AfterValidator(_known_kind)]
    section: Text = ""
    section_en: Text = ""
    title: NonEmpty
    title_en: NonEmpty
    text: NonEmpty
    text_en: NonEmpty
    parties: Annotated[list[Literal["甲方", "乙方"]], Field(min_length=1)]
    questions: Annotated[list[NonEmpty], Field(min_length=MIN_QUESTIONS)]
    links: list[LinkModel] = []
    blanks: list[str] = []
    aliases: list[NonEmpty] = []


class ParameterModel(_Model):
    label: NonEmpty
    label_en: NonEmpty
    value: str = ""


# ---------------------------------------------------------------------------------------------
# the loaded knowledge


@dataclass(frozen=True)
class Knowledge:
    """All items in document order, with their parameters (template blanks) and the coverage
    map (what the agreement does not say)."""

    items: tuple[Item, ...]
    parameters: Mapping[str, Parameter]
    coverage: Coverage = field(default_factory=Coverage)
    by_id: Mapping[str, Item] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", MappingProxyType({item.id: item for item in self.items}))
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))

    def get(self, item_id: str) -> Item | None:
        return self.by_id.get(item_id)

    def linked(self, item_id: str, rel: str) -> tuple[Item, ...]:
        """The items ``item_id`` links to with ``rel``, in link order."""
        item = self.by_id.get(item_id)
        if item is None:
            return ()
        return tuple(self.by_id[to] for to in item.linked(rel) if to in self.by_id)

    def fill(self, item_id: str, language: Language = "zh-Hans") -> str:
        """The item's text with every set parameter filled in.

        English gets ``text_en``; both Chinese variants get the authoritative zh-Hans ``text``
        (converting it to zh-Hant is the reply layer's job).
        """
        item = self.by_id[item_id]
        text = item.text_en if language == "en" else item.text
        return fill_blanks(text, item.blanks, self.parameters, language)

    def unfilled(self, item_id: str) -> list[Parameter]:
        """The parameters of ``item_id`` that the template leaves blank (no value set)."""
        return unfilled(self.by_id[item_id], self.parameters)

    def to_json(self) -> list[dict[str, Any]]:
        """All items as JSON-ready dicts, in document order."""
        return [_item_dict(item) | {"source": item.source} for item in self.items]

    def content_hash(self) -> str:
        """sha256 over the parsed content: items in order and the parameter definitions.

        Comments, whitespace, key order and how items are split over files do not change it.
        Parameter *values* are excluded: they are filled in when an answer is shown and never
        reach the index, so filling in a value does not make the index stale.
        """
        payload = {
            "version": HASH_VERSION,
            "items": [item_hash(item) for item in self.items],
            "parameters": {
                name: [p.label, p.label_en] for name, p in sorted(self.parameters.items())
            },
        }
        return _sha256(payload)


def _item_dict(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "section": item.section,
        "section_en": item.section_en,
        "title": item.title,
        "title_en": item.title_en,
        "text": item.text,
        "text_en": item.text_en,
        "parties": list(item.parties),
        "questions": list(item.questions),
        "links": [{"rel": link.rel, "to": link.to} for link in item.links],
        "blanks": list(item.blanks),
        "aliases": list(item.aliases),
    }


def _sha256(payload: object) -> str:
    data = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def item_hash(item: Item) -> str:
    """sha256 of one item's content (not its source file): changes iff the item changes."""
    return _sha256({"version": HASH_VERSION, "item": _item_dict(item)})


# ---------------------------------------------------------------------------------------------
# blanks


def _is_set(parameter: Parameter | None) -> bool:
    return parameter is not None and bool(parameter.value.strip())


def fill_blanks(
    text: str,
    blanks: Sequence[str],
    parameters: Mapping[str, Parameter],
    language: Language | None = None,
) -> str:
    """Replace the i-th run of ``_`` in ``text`` with the value of parameter ``blanks[i]``.

    Runs whose parameter has no value stay as they are: the caller says they are blank (see
    ``unfilled``); nothing is ever made up. Values are numbers, names and dates, shown as the
    operator wrote them; ``language`` is accepted so callers can pass the reply language
    uniformly, and does not change them.
    """
    runs = BLANK_RE.findall(text)
    if len(runs) != len(blanks):
        raise ValueError(f"text has {len(runs)} blanks but {len(blanks)} blank names were given")
    names = iter(blanks)

    def replace(match: re.Match[str]) -> str:
        parameter = parameters.get(next(names))
        return parameter.value.strip() if parameter is not None and _is_set(parameter) else match[0]

    return BLANK_RE.sub(replace, text)


def unfilled(item: Item, parameters: Mapping[str, Parameter]) -> list[Parameter]:
    """The item's parameters without a value, in blank order, each once."""
    result: list[Parameter] = []
    for name in dict.fromkeys(item.blanks):
        parameter = parameters.get(name)
        if parameter is None:
            parameter = Parameter(name=name, label=name, label_en=name)
        if not _is_set(parameter):
            result.append(parameter)
    return result


# ---------------------------------------------------------------------------------------------
# loading


def _field_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def _error_text(error: Mapping[str, Any], allowed: Iterable[str]) -> str:
    """A pydantic error in words an admin can act on."""
    kind = error["type"]
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        guess = difflib.get_close_matches(name, list(allowed), n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else f" (allowed: {', '.join(allowed)})"
        return f"unknown field{hint}"
    if kind == "missing":
        return "missing (required)"
    if kind == "too_short" and error["loc"] and error["loc"][-1] == "questions":
        return f"needs at least {MIN_QUESTIONS} questions, has {len(error['input'])}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _validate(model: type[_Model], raw: object, where: str, messages: list[str]) -> _Model | None:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            allowed = model.model_fields
            if len(loc) >= 3 and loc[0] == "links":
                allowed = LinkModel.model_fields
            path = _field_path(loc)
            messages.append(f'{where}: field "{path}": {_error_text(error, allowed)}')
        return None


def _read_toml(path: Path, name: str, messages: list[str]) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        messages.append(f"{name}: invalid TOML: {exc}")
    except UnicodeDecodeError as exc:
        messages.append(f"{name}: not valid UTF-8: {exc}")
    except OSError as exc:
        messages.append(f"{name}: cannot read: {exc.strerror}")
    return None


def _item_files(directory: Path) -> list[Path]:
    others = sorted(
        p
        for p in directory.glob("*.toml")
        if p.name not in ITEM_FILE_ORDER and p.name not in (PARAMETERS_FILE, COVERAGE_FILE)
    )
    first = [directory / name for name in ITEM_FILE_ORDER if (directory / name).is_file()]
    return first + others


def _load_parameters(
    directory: Path, overrides: Mapping[str, str], messages: list[str]
) -> tuple[dict[str, Parameter], set[str] | None]:
    """The valid parameters, and the names defined at all (None when the file is unreadable)."""
    path = directory / PARAMETERS_FILE
    parameters: dict[str, Parameter] = {}
    defined: set[str] | None = set()
    if path.is_file():
        data = _read_toml(path, PARAMETERS_FILE, messages)
        if data is None:
            defined, data = None, {}
        for key in data:
            if key != "parameters":
                messages.append(
                    f'{PARAMETERS_FILE}: unknown top-level key "{key}"'
                    " (expected [parameters.<name>] tables)"
                )
        tables = data.get("parameters", {})
        if not isinstance(tables, dict):
            messages.append(f'{PARAMETERS_FILE}: "parameters" must be tables [parameters.<name>]')
            tables = {}
        for name, raw in tables.items():
            where = f'{PARAMETERS_FILE}: parameter "{name}"'
            if defined is not None:
                defined.add(name)  # even if invalid: its own message says what is wrong
            if not _PARAMETER_NAME_RE.match(name):
                messages.append(f"{where}: invalid name (use lower_case_with_underscores)")
            model = _validate(ParameterModel, raw, where, messages)
            if isinstance(model, ParameterModel):
                if "\n" in model.value:
                    messages.append(f'{where}: field "value": must be a single line')
                parameters[name] = Parameter(name, model.label, model.label_en, model.value)
    for name, value in overrides.items():
        if name not in parameters:
            if defined is None or name not in defined:
                known = ", ".join(parameters) or "none"
                messages.append(f'overrides: unknown parameter "{name}" (known: {known})')
        elif "\n" in value:
            messages.append(f'overrides: parameter "{name}": value must be a single line')
        else:
            parameters[name] = Parameter(
                name, parameters[name].label, parameters[name].label_en, value
            )
    return parameters, defined


@dataclass
class _FileItems:
    """What one item file yielded: valid items and the id of every item, valid or not."""

    items: list[tuple[str, Item]] = field(default_factory=list)  # (message prefix, item)
    ids: list[tuple[str, str]] = field(default_factory=list)  # (message prefix, id)
    readable: bool = True


def _load_items(path: Path, name: str, messages: list[str]) -> _FileItems:
    result = _FileItems()
    data = _read_toml(path, name, messages)
    if data is None:
        result.readable = False
        return result
    for key in data:
        if key != "items":
            messages.append(f'{name}: unknown top-level key "{key}" (expected [[items]] tables)')
    raw_items = data.get("items", [])
    if not isinstance(raw_items, list):
        messages.append(f'{name}: "items" must be an array of tables [[items]]')
        return result
    for index, raw in enumerate(raw_items):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        label = f'item "{raw_id}"' if isinstance(raw_id, str) and raw_id else f"items[{index}]"
        where = f"{name}: {label}"
        if isinstance(raw_id, str) and raw_id:
            result.ids.append((where, raw_id))
        model = _validate(ItemModel, raw, where, messages)
        if not isinstance(model, ItemModel):
            continue
        item = Item(
            id=model.id,
            kind=model.kind,
            section=model.section,
            section_en=model.section_en,
            title=model.title,
            title_en=model.title_en,
            text=model.text,
            text_en=model.text_en,
            parties=tuple(model.parties),
            questions=tuple(model.questions),
            links=tuple(Link(rel=link.rel, to=link.to) for link in model.links),
            blanks=tuple(model.blanks),
            aliases=tuple(model.aliases),
            source=name,
        )
        result.items.append((where, item))
    return result


def _check_item(
    where: str, item: Item, ids: Collection[str] | None, parameters: Collection[str] | None
) -> list[str]:
    """Checks that need more than one field, other items or the parameters.

    ``ids`` / ``parameters`` are the names defined anywhere, or None when a file could not be
    read: then references are not checked, since the syntax error is the one to fix first.
    """
    messages: list[str] = []
    if item.kind not in UNSECTIONED_KINDS:
        for name in ("section", "section_en"):
            if not getattr(item, name):
                messages.append(
                    f'{where}: field "{name}": must not be empty for kind "{item.kind}"'
                )
    if len(set(item.parties)) != len(item.parties):
        messages.append(f'{where}: field "parties": lists a party twice')
    seen_questions: set[str] = set()
    for i, question in enumerate(item.questions):
        if question in seen_questions:
            messages.append(f'{where}: field "questions[{i}]": duplicate question')
        seen_questions.add(question)
    seen_links: set[Link] = set()
    for i, link in enumerate(item.links):
        if ids is not None and link.to not in ids:
            messages.append(f'{where}: field "links[{i}].to": links to unknown item "{link.to}"')
        elif link.to == item.id:
            messages.append(f'{where}: field "links[{i}].to": links to itself')
        if link in seen_links:
            messages.append(
                f'{where}: field "links[{i}]": duplicate link ({link.rel} -> {link.to})'
            )
        seen_links.add(link)
    for i, name in enumerate(item.blanks):
        if parameters is not None and name not in parameters:
            messages.append(
                f'{where}: field "blanks[{i}]": unknown parameter "{name}"'
                f" (define [parameters.{name}] in {PARAMETERS_FILE})"
            )
    runs = len(BLANK_RE.findall(item.text))
    if runs != len(item.blanks):
        messages.append(
            f'{where}: field "blanks": names {len(item.blanks)} blanks but "text" has {runs}'
            " runs of _"
        )
    runs_en = len(BLANK_RE.findall(item.text_en))
    if runs_en != runs:
        messages.append(f'{where}: field "text_en": has {runs_en} runs of _ but "text" has {runs}')
    return messages


def load_knowledge(directory: Path, overrides: Mapping[str, str] | None = None) -> Knowledge:
    """Load and validate every knowledge file in ``directory``.

    ``overrides`` maps parameter names to values that replace ``value`` from parameters.toml
    (e.g. from a setting), so an operator can fill in blanks without editing the files. An
    override for an unknown parameter is an error. Raises ``KnowledgeError`` listing every
    problem found.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise KnowledgeError(
            [f"{directory}: knowledge directory not found (set BOT_KNOWLEDGE_DIR or restore it)"]
        )
    messages: list[str] = []
    parameters, parameter_names = _load_parameters(directory, overrides or {}, messages)
    files = _item_files(directory)
    if not files:
        messages.append(f"{directory}: no item files (*.toml with [[items]]) found")

    loaded: list[tuple[str, Item]] = []
    ids: dict[str, str] = {}  # id -> the file that defines it first
    all_readable = True
    for path in files:
        found = _load_items(path, path.name, messages)
        loaded.extend(found.items)
        all_readable = all_readable and found.readable
        for where, item_id in found.ids:
            if item_id in ids:
                messages.append(
                    f'{where}: field "id": duplicate id (first defined in {ids[item_id]})'
                )
            else:
                ids[item_id] = path.name
    for where, item in loaded:
        messages.extend(_check_item(where, item, ids if all_readable else None, parameter_names))
    coverage, coverage_messages = load_coverage(
        directory / COVERAGE_FILE, ids if all_readable else None
    )
    messages.extend(coverage_messages)

    if messages:
        raise KnowledgeError(messages)
    # Document order: by kind in KINDS order; sorted() is stable, so file order breaks ties.
    items = sorted((item for _, item in loaded), key=lambda item: KINDS.index(item.kind))
    return Knowledge(items=tuple(items), parameters=parameters, coverage=coverage)

"""Small frozen result types shared across modules.

``Item`` is one piece of the agreement as knowledge/ describes it; ``Hit`` one retrieved item;
``Answer`` the composed reply that the CLI and the Telegram layer only format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Language = Literal["zh-Hans", "zh-Hant", "en"]

#: Item kinds, in the order the agreement presents them.
KINDS = ("header", "clause", "signing", "attachments", "breach", "term", "problem", "scenario")

#: Link relations: from an obligation to what counts as its breach, the remedy, the procedure.
RELATIONS = ("breach", "remedy", "procedure", "definition", "document", "obligation", "related")


@dataclass(frozen=True)
class Link:
    """A typed edge from one item to another (``rel`` is one of ``RELATIONS``)."""

    rel: str
    to: str


@dataclass(frozen=True)
class Parameter:
    """A template blank an operator may fill in (``value`` empty means: left blank)."""

    name: str
    label: str
    label_en: str
    value: str = ""


@dataclass(frozen=True)
class Item:
    """One citable unit of the agreement.

    ``text`` is the authoritative zh-Hans wording, verbatim; blanks in it (runs of ``_``) are
    named, in order, by ``blanks`` (names of ``Parameter``). ``text_en`` is an unofficial
    translation with the same blanks.
    """

    id: str
    kind: str
    section: str
    section_en: str
    title: str
    title_en: str
    text: str
    text_en: str
    parties: tuple[str, ...]
    questions: tuple[str, ...]
    links: tuple[Link, ...] = ()
    blanks: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    source: str = ""  # the knowledge file it came from, for error messages

    def linked(self, rel: str) -> tuple[str, ...]:
        return tuple(link.to for link in self.links if link.rel == rel)


@dataclass(frozen=True)
class Hit:
    """One retrieved item with the scores that ranked it."""

    item_id: str
    score: float
    dense: float = 0.0
    lexical: float = 0.0
    via: str = "search"  # "search" | "reference" (an explicit clause number or term name)


#: What an answer says about the agreement: it answers the question, the agreement does not
#: say (``not_stated``: a topic it leaves open, or a value a clause lacks), or the question is
#: not about this agreement at all (``out_of_scope``, the only outcome that abstains).
COVERAGE = ("answered", "not_stated", "out_of_scope")


@dataclass(frozen=True)
class Retrieval:
    """Ranked hits for one question, the calibrated confidence, and whether to abstain.

    ``coverage`` is one of ``COVERAGE`` (``abstain`` is true exactly for ``out_of_scope``); for
    ``not_stated``, ``category`` is the coverage-map category it falls in ("" when only the aspect
    check found it), ``aspect`` the kind of value the best clause lacks ("" when none) and
    ``nearest`` the items to quote beneath the statement, nearest first.
    """

    query: str
    hits: tuple[Hit, ...]
    confidence: float
    abstain: bool
    coverage: str = "answered"
    category: str = ""
    aspect: str = ""
    nearest: tuple[str, ...] = ()


@dataclass(frozen=True)
class Citation:
    id: str
    kind: str
    score: float


@dataclass(frozen=True)
class Part:
    """One paragraph of an answer.

    ``role`` tells a formatter how to show it: "quote" (agreement text, verbatim), "translation"
    (unofficial English), "explain" (a fixed template around knowledge), "step" (a numbered
    procedure step), "note", "abstain", "heading", "context" (what a follow-up was taken to
    continue, "（接上一问：…）"), "not_stated" (the fixed statement of what the agreement does
    not say), "law" (a Civil Code pointer, not the agreement's text), "gap" (one entry of the
    list of what the agreement does not cover). ``cite`` is the item id it rests on.
    """

    role: str
    text: str
    cite: str | None = None
    label: str = ""  # e.g. "第3.2条" / "Clause 3.2"


@dataclass(frozen=True)
class Answer:
    """A composed reply. Formatting to text or HTML is a pure function of this."""

    question: str
    language: Language
    abstained: bool
    confidence: float
    intent: str  # "question" | "clause" | "toc" | "term" | "complaint" | "abstain" | "empty"
    # | "not_stated" | "gaps"
    citations: tuple[Citation, ...] = ()
    parts: tuple[Part, ...] = ()
    related: tuple[str, ...] = field(default=())  # item ids offered as follow-ups
    coverage: str = "answered"  # one of COVERAGE; "out_of_scope" exactly when abstained
    category: str = ""  # the coverage-map category of a not_stated answer

    def __post_init__(self) -> None:
        # ``abstained`` and ``coverage`` say the same thing for out-of-scope questions; an
        # abstaining answer built without a coverage (older callers) is out of scope.
        if self.abstained and self.coverage == "answered":
            object.__setattr__(self, "coverage", "out_of_scope")
        if self.coverage not in COVERAGE:
            raise ValueError(f"unknown coverage {self.coverage!r} (one of {COVERAGE})")
        if (self.coverage == "out_of_scope") != self.abstained:
            raise ValueError("an answer abstains exactly when its coverage is out_of_scope")


@dataclass(frozen=True)
class DialogueTurn:
    """What a chat remembers of its last answered question, for follow-ups ("那乙方呢？").

    ``question`` is the question as it was understood (a follow-up's includes the question it
    followed, so a third turn still has the topic); ``topic`` the short line an answer shows
    when it takes a follow-up as continuing it; ``item_id`` the answer's main item.
    """

    question: str
    item_id: str
    language: Language
    asked_at: float  # time.time(): the context outlives a restart and is shared by processes
    topic: str = ""

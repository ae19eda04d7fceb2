"""The knowledge files: the real ones load and are clean; broken copies fail with clear messages."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import opencc
import pytest

from bot.knowledge.loader import (
    Knowledge,
    KnowledgeError,
    fill_blanks,
    item_hash,
    load_knowledge,
    unfilled,
)
from bot.settings import ROOT
from bot.types import KINDS, RELATIONS, Parameter
from tests.conftest import run_cli

REPO = ROOT
KNOWLEDGE_DIR = REPO / "knowledge"

EXPECTED_IDS = [
    "header",
    *["1.1", "1.2", "1.3", "2.1", "2.2", "3.1", "3.2", "3.3", "4.1", "4.2", "4.3"],
    *["5.1", "5.2", "6.1", "7.1", "7.2"],
    "signing",
    "attachments",
    *[f"breach-{n}" for n in range(1, 5)],
    *[f"term-{n}" for n in range(1, 5)],
    *[f"problem-{n}" for n in range(1, 5)],
    *[f"scenario-{n}" for n in range(1, 4)],
]

# What the restored zh-Hans text may contain: CJK, the full-width punctuation of the original,
# digits and "." of the numbering, blanks, line breaks (header, signing, attachment list).
ALLOWED_TEXT = re.compile(r"^[\u4e00-\u9fff，：；（）、。0-9._\n]+$")
PINYIN = re.compile(r"\([a-zāáǎàēéěèīíǐìōóǒòūúǔùüǖǘǚǜ]+\)")


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge(KNOWLEDGE_DIR)


def _cli(*args: str, knowledge_dir: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("knowledge", *args, env={"BOT_KNOWLEDGE_DIR": str(knowledge_dir)}, timeout=60)


# ---- the real knowledge -----------------------------------------------------------------------


def test_cli_check_passes_on_real_knowledge() -> None:
    result = _cli("--check", knowledge_dir=KNOWLEDGE_DIR)
    assert result.returncode == 0, result.stderr
    assert "knowledge OK: 34 items" in result.stdout


def test_cli_json_exports_every_item() -> None:
    result = _cli("--json", knowledge_dir=KNOWLEDGE_DIR)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [obj["id"] for obj in data] == EXPECTED_IDS
    required = {"id", "kind", "title", "text", "text_en", "parties", "questions", "links"}
    for obj in data:
        assert required <= obj.keys()
        assert all(set(link) == {"rel", "to"} for link in obj["links"])


def test_all_expected_ids_in_document_order(knowledge: Knowledge) -> None:
    assert [item.id for item in knowledge.items] == EXPECTED_IDS
    assert list(knowledge.by_id) == EXPECTED_IDS
    assert knowledge.get("3.2") is knowledge.items[EXPECTED_IDS.index("3.2")]
    assert knowledge.get("scenario-4") is None  # cut off in the source, never invented
    kinds = [item.kind for item in knowledge.items]
    assert kinds == sorted(kinds, key=KINDS.index)


def test_item_sources_name_their_file(knowledge: Knowledge) -> None:
    assert knowledge.by_id["5.1"].source == "agreement.toml"
    assert knowledge.by_id["term-3"].source == "appendices.toml"


@pytest.mark.parametrize("item_id", EXPECTED_IDS)
def test_text_is_restored_simplified_chinese(knowledge: Knowledge, item_id: str) -> None:
    item = knowledge.by_id[item_id]
    t2s = opencc.OpenCC("t2s")
    for name in ("text", "title", "section"):
        value = getattr(item, name)
        assert t2s.convert(value) == value, f"{name} has traditional characters"
    assert not PINYIN.search(item.text)
    assert "?" not in item.text and "？" not in item.text
    # Only Chinese, full-width punctuation, numbering and blanks: no scraping debris left
    # (the source's ASCII ",:;()" and destroyed characters such as "Ψ", "Ц", "`").
    assert ALLOWED_TEXT.match(item.text), item.text


def test_blanks_keep_their_source_lengths(knowledge: Knowledge) -> None:
    runs = [len(run) for item in knowledge.items for run in re.findall("_+", item.text)]
    assert runs == [10, 10, 10, 23, 5, 20, 10, 10, 10]
    names = [name for item in knowledge.items for name in item.blanks]
    assert names == [
        "contract_number",
        "term_years",
        "fee_amount",
        "fee_amount_words",
        "bank",
        "account",
        "signing_year",
        "signing_month",
        "signing_day",
    ]
    assert list(knowledge.parameters) == names


def test_restored_wording_of_destroyed_passages(knowledge: Knowledge) -> None:
    # These three passages were garbled in the scraped source ("向?qū)Ψ街Ц哆`約金" ...).
    assert "向对方支付违约金" in knowledge.by_id["5.1"].text
    assert knowledge.by_id["term-3"].text.endswith("应向对方支付的金钱。")
    assert knowledge.by_id["problem-3"].text.endswith("确保客户满意度。")


def test_questions_are_many_mixed_and_not_the_clause_text(knowledge: Knowledge) -> None:
    for item in knowledge.items:
        assert len(item.questions) >= 5, item.id
        assert any(re.search(r"[\u4e00-\u9fff]", q) for q in item.questions), item.id
        assert any(re.fullmatch(r"[\x20-\x7e]+", q) for q in item.questions), item.id
        for question in item.questions:
            assert question.rstrip("？?") not in item.text, (item.id, question)


def test_terms_can_be_found_by_name(knowledge: Knowledge) -> None:
    for item in knowledge.items:
        if item.kind == "term":
            assert item.title in item.aliases
            assert any(re.fullmatch(r"[\x20-\x7e]+", alias) for alias in item.aliases)
    assert {"违约金", "liquidated damages", "penalty"} <= set(knowledge.by_id["term-3"].aliases)


def _walk(knowledge: Knowledge, start: str, *steps: tuple[str, str]) -> None:
    here = start
    for rel, to in steps:
        assert to in knowledge.by_id[here].linked(rel), f"{here} -{rel}-> {to} missing"
        here = to


def test_obligation_breach_remedy_procedure_walks(knowledge: Knowledge) -> None:
    _walk(knowledge, "1.3", ("breach", "breach-4"), ("remedy", "5.1"))
    _walk(knowledge, "breach-4", ("procedure", "problem-4"))
    _walk(knowledge, "3.2", ("breach", "breach-1"), ("remedy", "5.1"))
    _walk(knowledge, "breach-1", ("procedure", "problem-1"))
    _walk(knowledge, "4.3", ("procedure", "problem-3"), ("document", "attachments"))
    for clause in ("1.1", "1.2", "4.1"):
        _walk(knowledge, clause, ("breach", "breach-2"), ("remedy", "5.2"))
    _walk(knowledge, "breach-2", ("remedy", "5.1"))
    _walk(knowledge, "breach-2", ("procedure", "problem-2"))
    _walk(knowledge, "5.1", ("definition", "term-3"))
    _walk(knowledge, "5.1", ("procedure", "6.1"), ("definition", "term-4"))
    _walk(knowledge, "2.2", ("related", "2.1"))
    assert "客户投诉处理流程" in knowledge.by_id["attachments"].text


def test_links_are_typed_and_consistent(knowledge: Knowledge) -> None:
    for item in knowledge.items:
        for link in item.links:
            assert link.rel in RELATIONS
            target = knowledge.by_id[link.to]
            if link.rel == "breach":
                assert target.kind == "breach" and item.id in target.linked("obligation")
            if link.rel == "obligation":
                assert item.kind == "breach" and target.kind == "clause"
            if link.rel == "definition":
                assert target.kind == "term"
            if link.rel == "document":
                assert target.kind == "attachments"
        if item.kind == "breach":
            assert item.linked("remedy") and item.linked("procedure"), item.id
        if item.kind == "problem":
            related = [knowledge.by_id[to].kind for to in item.linked("related")]
            assert "clause" in related, item.id


def test_translations_keep_the_blanks(knowledge: Knowledge) -> None:
    for item in knowledge.items:
        assert len(re.findall("_+", item.text_en)) == len(item.blanks), item.id
        assert not re.search(r"[\u4e00-\u9fff]", item.text_en), item.id


# ---- blanks and parameters ----------------------------------------------------------------------


PARAMS = {
    "term_years": Parameter("term_years", "有效期（年）", "term (years)", "3"),
    "fee_amount": Parameter("fee_amount", "服务费用", "fee", ""),
    "fee_amount_words": Parameter("fee_amount_words", "大写", "in words", "  "),
}


def test_fill_blanks_with_and_without_values() -> None:
    assert fill_blanks("有效期为____年。", ["term_years"], PARAMS) == "有效期为3年。"
    # Unset (empty or blank) values leave the blank for the caller to call out.
    text = "人民币__元整（大写：____元整）"
    assert fill_blanks(text, ["fee_amount", "fee_amount_words"], PARAMS, "en") == text
    assert fill_blanks("a __ b ___", ["term_years", "fee_amount"], PARAMS) == "a 3 b ___"
    with pytest.raises(ValueError, match="2 blanks"):
        fill_blanks("__ and __", ["term_years"], PARAMS)


def test_unfilled_lists_parameters_without_value(knowledge: Knowledge) -> None:
    fee = knowledge.by_id["3.1"]
    assert [p.name for p in unfilled(fee, PARAMS)] == ["fee_amount", "fee_amount_words"]
    assert unfilled(knowledge.by_id["2.1"], PARAMS) == []
    assert [p.label for p in knowledge.unfilled("3.3")] == ["转账银行", "收款账号"]
    assert knowledge.unfilled("1.1") == []


def test_parameter_values_and_overrides_fill_answers(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    _edit(
        copy,
        "parameters.toml",
        'label_en = "bank for transfers"\nvalue = ""',
        'label_en = "bank for transfers"\nvalue = "中国银行"',
    )
    loaded = load_knowledge(copy, overrides={"account": "6222 0000 1111"})
    assert loaded.fill("3.3") == "付款方式为：中国银行银行转账，账号为：6222 0000 1111。"
    assert loaded.fill("3.3", "en").endswith("account number: 6222 0000 1111.")
    assert loaded.unfilled("3.3") == []
    assert loaded.fill("2.1") == loaded.by_id["2.1"].text  # still blank: left as is
    assert [p.name for p in loaded.unfilled("2.1")] == ["term_years"]
    # Filling in values changes no indexed content.
    assert loaded.content_hash() == load_knowledge(KNOWLEDGE_DIR).content_hash()
    with pytest.raises(KnowledgeError, match='overrides: unknown parameter "acount"'):
        load_knowledge(copy, overrides={"acount": "1"})


# ---- hashes -------------------------------------------------------------------------------------


def test_content_hash_ignores_formatting_and_tracks_content(tmp_path: Path) -> None:
    original = load_knowledge(KNOWLEDGE_DIR)
    copy = _copy(tmp_path)
    path = copy / "agreement.toml"
    # Comments, blank lines and key order are formatting, not content.
    reformatted = "# edited by an admin\n\n" + path.read_text(encoding="utf-8").replace(
        'id = "2.2"\nkind = "clause"', 'kind = "clause"\n\nid = "2.2"'
    )
    path.write_text(reformatted, encoding="utf-8")
    assert load_knowledge(copy).content_hash() == original.content_hash()

    _edit(copy, "agreement.toml", "应提前一个月书面通知对方。", "应提前两个月书面通知对方。")
    changed = load_knowledge(copy)
    assert changed.content_hash() != original.content_hash()
    differing = [
        item.id for item in changed.items if item_hash(item) != item_hash(original.by_id[item.id])
    ]
    assert differing == ["2.2"]


# ---- broken copies ------------------------------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, target)
    return target


def _edit(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"test anchor {old!r} not found in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _keep_questions(directory: Path, name: str, item_id: str, keep: int) -> None:
    """Cut one item's questions down to its first ``keep``, however many it has."""
    path = directory / name
    text = path.read_text(encoding="utf-8")
    start = text.index(f'id = "{item_id}"')
    first = text.index("questions = [\n", start) + len("questions = [\n")
    end = text.index("\n]", first)
    kept = text[first:end].split("\n")[:keep]
    path.write_text(text[:first] + "\n".join(kept) + text[end:], encoding="utf-8")


def _errors(directory: Path) -> str:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(directory)
    message = str(info.value)
    assert message.splitlines() == list(info.value.messages)
    return message


Break = Callable[[Path], None]

BROKEN: dict[str, tuple[Break, list[str]]] = {
    "bad syntax": (
        lambda d: _edit(d, "appendices.toml", 'title = "违约金"', 'title = "违约金'),
        ["appendices.toml: invalid TOML:", "line "],
    ),
    "duplicate id": (
        lambda d: _edit(d, "appendices.toml", 'id = "scenario-3"', 'id = "2.1"'),
        ['appendices.toml: item "2.1": field "id": duplicate id (first defined in agreement.toml)'],
    ),
    "dangling link": (
        lambda d: _edit(d, "agreement.toml", 'to = "breach-4"', 'to = "breach-9"'),
        ['agreement.toml: item "1.3": field "links[0].to": links to unknown item "breach-9"'],
    ),
    "empty text": (
        lambda d: _edit(
            d, "agreement.toml", '"如双方同意续约，应提前一个月书面通知对方。"', '"  "'
        ),
        ['agreement.toml: item "2.2": field "text": must not be empty'],
    ),
    "unknown kind": (
        lambda d: _edit(
            d, "agreement.toml", 'id = "7.1"\nkind = "clause"', 'id = "7.1"\nkind = "clasue"'
        ),
        ['agreement.toml: item "7.1": field "kind": unknown kind \'clasue\''],
    ),
    "unknown field": (
        lambda d: _edit(
            d, "agreement.toml", 'title_en = "Counterparts"', 'titel_en = "Counterparts"'
        ),
        [
            'agreement.toml: item "7.1": field "titel_en": unknown field;'
            " did you mean 'title_en'?",
            'agreement.toml: item "7.1": field "title_en": missing (required)',
        ],
    ),
    "blank count mismatch": (
        lambda d: _edit(d, "agreement.toml", "valid for __________ years", "valid for some years"),
        ['agreement.toml: item "2.1": field "text_en": has 0 runs of _ but "text" has 1'],
    ),
    "unknown parameter": (
        lambda d: _edit(d, "agreement.toml", 'blanks = ["term_years"]', 'blanks = ["term_yeers"]'),
        ['agreement.toml: item "2.1": field "blanks[0]": unknown parameter "term_yeers"'],
    ),
    "missing id": (
        lambda d: _edit(d, "agreement.toml", 'id = "header"\n', ""),
        ['agreement.toml: items[0]: field "id": missing (required)'],
    ),
    "unknown relation": (
        lambda d: _edit(
            d,
            "agreement.toml",
            '{ rel = "breach", to = "breach-4" }',
            '{ rel = "breaks", to = "breach-4" }',
        ),
        ['agreement.toml: item "1.3": field "links[0].rel": unknown relation \'breaks\''],
    ),
    "unknown party": (
        lambda d: _edit(
            d,
            "appendices.toml",
            'parties = ["乙方"]\ntext = "客户投诉',
            'parties = ["丙方"]\ntext = "客户投诉',
        ),
        ['appendices.toml: item "problem-3": field "parties[0]"'],
    ),
    "too few questions": (
        lambda d: _keep_questions(d, "agreement.toml", "7.1", 4),
        ['agreement.toml: item "7.1": field "questions": needs at least 5 questions, has 4'],
    ),
    "bad parameter field": (
        lambda d: _edit(
            d,
            "parameters.toml",
            'label_en = "account number"\nvalue',
            'label_en = "account number"\nvaleu',
        ),
        ['parameters.toml: parameter "account": field "valeu": unknown field'],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_copy_names_file_item_and_field(tmp_path: Path, case: str) -> None:
    breaker, expected = BROKEN[case]
    copy = _copy(tmp_path)
    breaker(copy)
    message = _errors(copy)
    for fragment in expected:
        assert fragment in message, message


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    for case in ("dangling link", "empty text", "unknown parameter", "bad parameter field"):
        BROKEN[case][0](copy)
    message = _errors(copy)
    for case in ("dangling link", "empty text", "unknown parameter", "bad parameter field"):
        assert all(fragment in message for fragment in BROKEN[case][1]), case


def test_missing_directory_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="BOT_KNOWLEDGE_DIR"):
        load_knowledge(tmp_path / "nowhere")


def test_cli_check_fails_on_broken_copy(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    BROKEN["dangling link"][0](copy)
    result = _cli("--check", knowledge_dir=copy)
    assert result.returncode == 1
    assert 'agreement.toml: item "1.3": field "links[0].to"' in result.stderr


def test_one_mistake_gives_one_message_not_a_cascade(tmp_path: Path) -> None:
    # An invalid item or parameter still counts as defined, and a file that does not parse
    # hides its items' references: the admin sees the real mistake, not dozens of echoes.
    copy = _copy(tmp_path)
    _edit(copy, "agreement.toml", 'title_en = "Internet Product', 'titel_en = "Internet Product')
    _edit(copy, "parameters.toml", 'label_en = "term (years)"', 'label_en = ""')
    message = _errors(copy)
    assert 'agreement.toml: item "header": field "titel_en"' in message
    assert 'parameters.toml: parameter "term_years": field "label_en": must not be empty' in message
    assert "unknown item" not in message and "unknown parameter" not in message
    assert len(message.splitlines()) == 3  # titel_en unknown, title_en missing, label_en empty

    copy = _copy(tmp_path / "syntax")
    _edit(copy, "appendices.toml", 'id = "attachments"', "id = attachments")
    lines = (copy / "appendices.toml").read_text(encoding="utf-8").splitlines()
    line = lines.index("id = attachments") + 1
    assert _errors(copy).splitlines() == [
        f"appendices.toml: invalid TOML: Invalid value (at line {line}, column 6)"
    ]

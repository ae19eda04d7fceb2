"""The coverage map (knowledge/coverage.toml): the real one is complete and consistent with the
agreement; broken copies fail with messages naming file, category and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.knowledge.coverage import (
    EXAMPLE_LANGUAGES,
    MIN_EXAMPLES,
    chinese_number,
    load_coverage,
    script_of,
)
from bot.knowledge.loader import Knowledge, KnowledgeError, load_knowledge
from bot.settings import ROOT

KNOWLEDGE_DIR = ROOT / "knowledge"


@pytest.fixture(scope="module")
def real() -> Knowledge:
    return load_knowledge(KNOWLEDGE_DIR)


def test_the_map_is_a_lawyers_checklist(real: Knowledge) -> None:
    categories = real.coverage.categories
    assert 35 <= len(categories) <= 50
    ids = {c.id for c in categories}
    for expected in (
        "parties",
        "term",
        "renewal",
        "fees",
        "payment_terms",
        "liability_cap",
        "force_majeure",
        "subcontracting",
        "governing_law",
        "intellectual_property",
        "personal_data",
        "liquidated_damages_amount",
        "termination_convenience",
        "notices",
    ):
        assert expected in ids, expected
    covered = {c.covered for c in categories}
    assert covered == {"yes", "partly", "no"}
    # What the issue found the agreement silent on is "no" in the map, never "yes".
    for silent in ("governing_law", "subcontracting", "force_majeure", "liability_cap"):
        assert real.coverage.get(silent).covered == "no"  # type: ignore[union-attr]


def test_gaps_have_statements_nearest_items_and_examples_in_three_languages(
    real: Knowledge,
) -> None:
    for category in real.coverage.gaps:
        assert category.not_stated.startswith("本协议"), category.id
        assert "the agreement" in category.not_stated_en.lower(), category.id
        assert 1 <= len(category.nearest) <= 3
        assert all(real.get(i) is not None for i in category.nearest + category.clauses)
        assert len(category.examples) >= MIN_EXAMPLES
        assert {script_of(e) for e in category.examples} == set(EXAMPLE_LANGUAGES), category.id
    for category in real.coverage.categories:
        if category.covered == "yes":
            assert category.clauses and not category.examples and not category.not_stated


def test_law_pointers_are_civil_code_articles_apart_from_the_agreement(real: Knowledge) -> None:
    pointers = [law for c in real.coverage.gaps for law in c.law]
    assert pointers, "some gaps name the default rule"
    for law in pointers:
        assert law.article.startswith("第") and law.article.endswith("条")
        assert 1 <= law.number <= 1260  # the Civil Code has 1260 articles
        assert law.topic and law.topic_en
        assert "本协议" not in law.topic  # a topic of the law, never worded as the agreement's
    numbers = {law.number for law in pointers}
    assert {585, 590, 555} <= numbers


def test_the_acceptance_gaps_point_to_their_clauses(real: Knowledge) -> None:
    subcontracting = real.coverage.get("subcontracting")
    damages = real.coverage.get("liquidated_damages_amount")
    assert subcontracting is not None and "1.3" in subcontracting.nearest
    assert damages is not None and damages.nearest[0] == "5.1"
    assert "数额或计算方法" in damages.not_stated
    assert [law.number for law in damages.law] == [585]


def test_examples_hash_changes_with_examples_only(real: Knowledge) -> None:
    from dataclasses import replace

    from bot.knowledge.coverage import Coverage

    categories = list(real.coverage.categories)
    first_gap = next(i for i, c in enumerate(categories) if c.gap)
    base = real.coverage.examples_hash()
    reworded = categories.copy()
    reworded[first_gap] = replace(categories[first_gap], not_stated="本协议没有约定别的。")
    assert Coverage(tuple(reworded)).examples_hash() == base
    more = categories.copy()
    more[first_gap] = replace(
        categories[first_gap], examples=(*categories[first_gap].examples, "新的问题？")
    )
    assert Coverage(tuple(more)).examples_hash() != base


def test_chinese_numbers() -> None:
    assert chinese_number("五百八十五") == 585
    assert chinese_number("一千零三十四") == 1034
    assert chinese_number("十二") == 12
    assert chinese_number("五百一十") == 510
    with pytest.raises(ValueError):
        chinese_number("585a")


def test_script_of_tells_the_three_languages_apart() -> None:
    assert script_of("乙方可以转包吗？") == "zh-Hans"
    assert script_of("乙方可以轉包嗎？") == "zh-Hant"
    assert script_of("Can Party B subcontract?") == "en"


# ---- broken copies ------------------------------------------------------------------------------

GOOD = """
[[category]]
id = "subcontracting"
name = "转包和分包"
name_en = "Subcontracting"
covered = "no"
clauses = []
not_stated = "本协议没有约定乙方能否转包。"
not_stated_en = "The agreement does not say whether Party B may subcontract."
nearest = ["1.3"]
examples = ["乙方能转包吗？", "可以分包吗？", "乙方能轉包嗎？",
    "Can Party B subcontract?", "outsourcing ok?"]
"""


def _messages(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "coverage.toml"
    path.write_text(text, encoding="utf-8")
    return load_coverage(path, {"1.3", "5.1"})[1]


def test_a_good_category_loads(tmp_path: Path) -> None:
    path = tmp_path / "coverage.toml"
    path.write_text(GOOD, encoding="utf-8")
    coverage, messages = load_coverage(path, {"1.3"})
    assert messages == []
    assert [c.id for c in coverage.gaps] == ["subcontracting"]
    assert coverage.examples()[0] == ("subcontracting", "乙方能转包吗？")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ('nearest = ["1.3"]', 'nearest = ["9.9"]'),
            'coverage.toml: category "subcontracting": field "nearest[0]": unknown item "9.9"',
        ),
        (
            ("clauses = []", 'clauses = ["1.3"]'),
            'coverage.toml: category "subcontracting": field "clauses": a category with covered = '
            '"no" cannot cite covering clauses',
        ),
        (
            (', "乙方能轉包嗎？"', ', "乙方能转包吗2？"'),
            'coverage.toml: category "subcontracting": field "examples": no example in zh-Hant',
        ),
        (
            ('not_stated_en = "The agreement does not say whether Party B may subcontract."\n', ""),
            'coverage.toml: category "subcontracting": field "not_stated_en": missing',
        ),
        (
            ('covered = "no"', 'covered = "maybe"'),
            'coverage.toml: category "subcontracting": field "covered": must be "yes", "partly" '
            'or "no"',
        ),
        (
            ('name_en = "Subcontracting"', 'name_en = "Subcontracting"\nnmae = "x"'),
            'coverage.toml: category "subcontracting": field "nmae": unknown field',
        ),
        (
            (
                "clauses = []",
                'clauses = []\nlaw = [{ article = "585", topic = "t", topic_en = "t" }]',
            ),
            'coverage.toml: category "subcontracting": field "law[0].article": must be an article '
            "number such as 第五百八十五条",
        ),
        (
            ('examples = ["乙方能转包吗？", "可以分包吗？", ', "examples = ["),
            'coverage.toml: category "subcontracting": field "examples": needs at least 5',
        ),
    ],
)
def test_broken_categories_name_file_category_and_field(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    assert old in GOOD
    messages = _messages(tmp_path, GOOD.replace(old, new))
    assert any(m.startswith(expected) for m in messages), messages


def test_duplicate_categories_and_yes_with_statements(tmp_path: Path) -> None:
    yes = GOOD.replace('covered = "no"\nclauses = []', 'covered = "yes"\nclauses = ["1.3"]')
    messages = _messages(tmp_path, yes + yes)
    assert any('field "id": duplicate id' in m for m in messages)
    assert any('field "not_stated": only for categories' in m for m in messages)


def test_knowledge_loader_reads_coverage_as_a_map_not_items(tmp_path: Path) -> None:
    knowledge_dir = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, knowledge_dir)
    assert len(load_knowledge(knowledge_dir).items) == 34  # coverage.toml adds no items
    path = knowledge_dir / "coverage.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('nearest = ["1.1", "1.3"]', 'nearest = ["8.8"]'),
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(knowledge_dir)
    assert any(
        m.startswith('coverage.toml: category "subcontracting": field "nearest[0]"')
        for m in caught.value.messages
    )


def test_no_map_is_an_empty_map(tmp_path: Path) -> None:
    knowledge_dir = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, knowledge_dir)
    (knowledge_dir / "coverage.toml").unlink()
    assert load_knowledge(knowledge_dir).coverage.categories == ()

"""The command line as a user runs it: `ask`, `ask --json`, `ask --json -`, `chat` / `run`.

Each subprocess loads the model and the index (a few seconds), so there are only a few.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.conftest import run_cli

KEYS = ["question", "language", "abstained", "coverage", "confidence", "citations", "answer"]


@pytest.fixture(scope="module")
def index_env(settings: Settings, built_index: object) -> dict[str, str]:
    """The session's private index (conftest builds it once), for the subprocesses."""
    return {"BOT_INDEX_DIR": str(settings.index_dir)}


def _check_shape(obj: dict[str, object]) -> None:
    assert list(obj) == KEYS
    assert obj["language"] in ("zh-Hans", "zh-Hant", "en")
    assert isinstance(obj["abstained"], bool)
    confidence = obj["confidence"]
    assert isinstance(confidence, float | int) and 0.0 <= confidence <= 1.0
    assert isinstance(obj["citations"], list)
    for citation in obj["citations"]:
        assert set(citation) == {"id", "kind", "score"}
    assert isinstance(obj["answer"], str) and obj["answer"]


def test_ask_json_one_question(index_env: dict[str, str]) -> None:
    proc = run_cli("ask", "--json", "甲方什么时候付款？", env=index_env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    _check_shape(obj)
    assert obj["question"] == "甲方什么时候付款？"
    assert obj["language"] == "zh-Hans"
    assert obj["abstained"] is False
    assert obj["citations"][0]["id"] == "3.2"
    assert obj["citations"][0]["kind"] == "clause"
    assert "于每季度第一个月内支付乙方上一季度的服务费用" in obj["answer"]


def test_ask_json_reads_one_question_per_line(index_env: dict[str, str]) -> None:
    stdin = "合同有效期多久？\n\n違約金是什麼？\nHow do I complain?\n"
    # An operator-filled blank (BOT_PARAMETERS) shows in the answer instead of the blank.
    proc = run_cli(
        "ask",
        "--json",
        "-",
        stdin=stdin,
        env={**index_env, "BOT_PARAMETERS": '{"term_years": "3"}'},
    )
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert len(objs) == 3  # the blank line is skipped
    for obj in objs:
        _check_shape(obj)
    assert [o["language"] for o in objs] == ["zh-Hans", "zh-Hant", "en"]
    assert objs[0]["citations"][0]["id"] == "2.1"
    assert "本协议的有效期为3年" in objs[0]["answer"]
    assert objs[1]["citations"][0]["id"] == "term-3"
    assert "4.3" in [c["id"] for c in objs[2]["citations"]]


def test_run_without_token_is_the_console_chat(index_env: dict[str, str]) -> None:
    # What `echo "合同有效期多久？" | make run` does when no token is set.
    proc = run_cli("run", stdin="合同有效期多久？\n", env={**index_env, "BOT_TELEGRAM_TOKEN": ""})
    assert proc.returncode == 0, proc.stderr
    assert "【第2.1条】本协议的有效期为__________年" in proc.stdout
    assert "本模板此处留空" in proc.stdout
    assert "问 ›" not in proc.stdout  # no prompt when piped


def test_stale_index_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.console import ask

    settings = Settings(_env_file=None, index_dir=tmp_path / "no-index")  # type: ignore[call-arg]
    assert ask(settings, "合同有效期多久？", as_json=True) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "index" in captured.err.lower()


def test_ask_json_dialogue_one_object_per_question_in_order(index_env: dict[str, str]) -> None:
    stdin = (
        "甲方拖欠服务费怎么办\n那乙方呢？\n\n\n"  # two blank lines: still one separator
        "How much notice is needed to renew the agreement?\ndoes it have to be in writing?\n\n"
        "那乙方呢？\n"  # a dialogue of its own: nothing to follow up
    )
    proc = run_cli("ask", "--json", "--dialogue", "-", stdin=stdin, env=index_env)
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert [(o["dialogue"], o["turn"], o["follow_up"]) for o in objs] == [
        (1, 1, False),
        (1, 2, True),
        (2, 1, False),
        (2, 2, True),
        (3, 1, False),
    ]
    for obj in objs:
        assert list(obj)[: len(KEYS)] == KEYS
    assert [o["question"] for o in objs][:2] == ["甲方拖欠服务费怎么办", "那乙方呢？"]
    assert objs[1]["answer"].startswith("（接上一问：甲方拖欠服务费怎么办）")
    assert objs[3]["citations"][0]["id"] == "2.2" and objs[3]["language"] == "en"
    assert "接上一问" not in objs[4]["answer"]
    # Without --dialogue every question stands alone, as before.
    alone = run_cli("ask", "--json", "-", stdin="甲方拖欠服务费怎么办\n那乙方呢？\n", env=index_env)
    assert "接上一问" not in alone.stdout
    refused = run_cli("ask", "--dialogue", "合同有效期多久？", env=index_env)
    assert refused.returncode == 2 and "stdin" in refused.stderr


def test_chat_reads_follow_ups_in_context(index_env: dict[str, str]) -> None:
    proc = run_cli(
        "chat", stdin="甲方拖欠服务费怎么办\n那乙方呢？\n合同一式几份？\n", env=index_env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("（接上一问：甲方拖欠服务费怎么办）") == 1
    assert "【第7.1条】本协议一式两份" in proc.stdout


def test_ask_says_what_the_agreement_does_not_say(index_env: dict[str, str]) -> None:
    """The acceptance questions of issue #12, as a user runs them (one process, one per line)."""
    questions = [
        "售后能不能外包给第三方公司做？",
        "要赔的违约金有没有写明数额",
        "房东要涨房租，我能提前退租吗",
        "续约要提前多久通知",
    ]
    proc = run_cli("ask", "--json", "-", env=index_env, stdin="\n".join(questions) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    for obj in out:
        _check_shape(obj)
    subcontract, amount, landlord, renewal = out
    assert subcontract["coverage"] == "not_stated" and not subcontract["abstained"]
    assert subcontract["citations"][0]["id"] == "1.3"
    assert subcontract["answer"].startswith("本协议没有约定")
    assert amount["coverage"] == "not_stated" and amount["citations"][0]["id"] == "5.1"
    assert "没有约定违约金的数额或计算方法" in amount["answer"]
    assert landlord["coverage"] == "out_of_scope" and landlord["abstained"]
    assert renewal["coverage"] == "answered" and renewal["citations"][0]["id"] == "2.2"

"""Settings: env parsing, the secret token, and .env.example staying complete."""

from __future__ import annotations

import re

import pytest

from bot.settings import ROOT, Settings

TOKEN = "123456:SECRET-token-value"


def test_token_never_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TELEGRAM_TOKEN", TOKEN)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.telegram_token is not None
    assert settings.telegram_token.get_secret_value() == TOKEN
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert TOKEN not in text


def test_user_id_key_never_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_USER_ID_KEY", "very-secret-user-id-key")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.user_id_key is not None
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert "very-secret-user-id-key" not in text


def test_admin_ids_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_ADMIN_IDS", "42, 7,")
    assert Settings(_env_file=None).admin_ids == frozenset({42, 7})  # type: ignore[call-arg]


def test_bad_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_WEBHOOK_PORT", "not-a-port")
    with pytest.raises(ValueError, match="webhook_port"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_relative_paths_anchor_at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_INDEX_DIR", "elsewhere/idx")
    assert Settings(_env_file=None).index_dir == ROOT / "elsewhere/idx"  # type: ignore[call-arg]


def test_env_example_documents_every_setting() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*BOT_([A-Z0-9_]+)=", example, flags=re.M))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_cli_reports_invalid_settings_without_the_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.setenv("BOT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("BOT_USER_RATE_LIMIT", "zero")
    assert main(["knowledge", "--check"]) == 2
    err = capsys.readouterr().err
    assert "user_rate_limit" in err
    assert TOKEN not in err

"""The one settings class. Built once in ``main()`` and passed down; never a global."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: The repository root (the package is installed editable, so this is the checkout).
ROOT = Path(__file__).resolve().parent.parent

DEFAULT_MODEL = "intfloat/multilingual-e5-small"


class Settings(BaseSettings):
    """Every setting of the bot, read from ``BOT_*`` environment variables and ``.env``.

    Relative paths are taken relative to the repository root, so the bot behaves the same
    whatever directory it is started from.
    """

    model_config = SettingsConfigDict(
        env_prefix="BOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        use_attribute_docstrings=True,
    )

    # --- Telegram ---------------------------------------------------------------------------
    telegram_token: SecretStr | None = None
    """Bot token from @BotFather; without it `make run` starts the console chat."""
    telegram_api_url: str = "https://api.telegram.org/bot"
    """Bot API base URL in python-telegram-bot's base_url form (the token is appended)."""
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    """Comma-separated Telegram user ids allowed to use the admin commands."""
    webhook_url: str | None = None
    """Public HTTPS URL Telegram posts updates to; setting it selects webhook mode."""
    webhook_listen: str = "127.0.0.1"
    """Address the webhook server binds."""
    webhook_port: int = Field(default=8443, ge=0, le=65535)
    """Port the webhook server binds."""
    webhook_secret: SecretStr | None = None
    """Secret token Telegram sends with every webhook request."""
    webhook_register: bool = True
    """Call setWebhook at start-up; false on replicas (one `contract-bot webhook set` instead)."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Polling mode: serve /healthz and /metrics on this loopback port (unset: off)."""
    storage_path: Path = Path("data/bot.sqlite3")
    """SQLite file for the question log, feedback votes and per-user languages."""
    storage_url: SecretStr | None = None
    """sqlite:///path or postgresql://user:password@host:port/db; unset: the file storage_path."""
    user_id_key: SecretStr | None = None
    """Key of the HMAC that stands for Telegram user ids in storage; unset: a generated key
    kept in BOT_USER_ID_KEY_FILE."""
    user_id_key_file: Path | None = None
    """File of the generated user-id key (mode 0600); unset: <storage name>.user-id.key beside
    the database."""
    retention_days: int = Field(default=90, ge=0)
    """Question texts and votes older than this many days are deleted (0: kept forever)."""
    user_rate_limit: int = Field(default=20, ge=1)
    """Questions one user may ask per minute before a polite notice."""
    max_question_chars: int = Field(default=500, ge=10)
    """Longer questions are cut to this many characters before retrieval."""
    max_concurrent_updates: int = Field(default=32, ge=1)
    """Updates handled at once (one chat's updates always one after another)."""
    send_rate_limit: float = Field(default=30.0, ge=0)
    """Messages per second the bot sends at most overall (Telegram's limit); 0: no throttle."""
    shutdown_timeout: float = Field(default=10.0, ge=0)
    """Seconds to finish the updates already received after SIGINT/SIGTERM."""
    dialogue_timeout: float = Field(default=600.0, ge=0)
    """Seconds a chat's last question stays the context of a follow-up ("那乙方呢？"); 0: never."""

    # --- Knowledge, model, index -------------------------------------------------------------
    knowledge_dir: Path = Path("knowledge")
    """Folder of the knowledge TOML files."""
    parameters: dict[str, str] = {}
    """Template blank values as JSON, e.g. {"term_years": "3"}; override parameters.toml."""
    index_dir: Path = Path("index")
    """Folder of the built index."""
    embedding_model: str = DEFAULT_MODEL
    """Embedding model: a hub id (fetched or converted into the model cache) or a local path."""
    model_cache_dir: Path = Path(".cache/models")
    """Where fetched or converted models are kept."""
    embedding_backend: Literal["onnx", "onnx-int8", "torch"] = "onnx-int8"
    """What embeds questions: ONNX Runtime with the model quantized to int8 (onnx-int8), ONNX
    Runtime in fp32 (onnx), or sentence-transformers on torch (the reference form; it builds
    the index)."""
    int8_recheck: bool = True
    """With onnx-int8: a question whose answer the int8 model's small error could change is
    embedded again by the fp32 export (both are loaded)."""
    onnx_threads: int = Field(default=1, ge=0)
    """ONNX Runtime threads per question; 1: least CPU per answer; 0: one per core."""
    log_level: str = "INFO"
    """Python logging level."""

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            return frozenset(int(p) for p in parts if p)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator(
        "storage_path",
        "user_id_key_file",
        "knowledge_dir",
        "index_dir",
        "model_cache_dir",
        mode="after",
    )
    @classmethod
    def _anchor(cls, value: Path | None) -> Path | None:
        return value if value is None or value.is_absolute() else ROOT / value

    def model_path(self) -> Path:
        """Where the configured embedding model's sentence-transformers directory lives."""
        candidate = Path(self.embedding_model).expanduser()
        if candidate.is_absolute() or candidate.exists() or self.embedding_model.startswith("."):
            return candidate if candidate.is_absolute() else (Path.cwd() / candidate).resolve()
        return self.model_cache_dir / self.embedding_model.replace("/", "__")

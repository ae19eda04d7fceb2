"""Opening the configured storage backend: ``BOT_STORAGE_URL`` (or the SQLite file
``BOT_STORAGE_PATH`` when it is unset)."""

from __future__ import annotations

from pathlib import Path

from bot.settings import ROOT, Settings
from bot.storage.base import Storage, StorageError

SCHEMES = ("sqlite:///", "postgresql://", "postgres://")


def storage_location(settings: Settings) -> tuple[str, str]:
    """(backend, location): ("sqlite", file path) or ("postgres", URL). A relative sqlite path is
    taken from the repository root, like every other path setting."""
    if settings.storage_url is None or not settings.storage_url.get_secret_value().strip():
        return "sqlite", str(settings.storage_path)
    url = settings.storage_url.get_secret_value().strip()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return "sqlite", str(path if path.is_absolute() else ROOT / path)
    if url.startswith(("postgresql://", "postgres://")):
        return "postgres", url
    scheme = url.split(":", 1)[0] if ":" in url else url[:12]
    raise StorageError(
        f"BOT_STORAGE_URL has an unknown scheme {scheme!r}: use sqlite:///path/to/bot.sqlite3 "
        "or postgresql://user:password@host:port/database"
    )


def open_storage(settings: Settings) -> Storage:
    """The storage the settings name, with the user-id key ``BOT_USER_ID_KEY`` or the one kept
    in ``BOT_USER_ID_KEY_FILE``; ``StorageError`` (with the fix) when it cannot be used."""
    from bot.storage.keys import key_bytes

    backend, location = storage_location(settings)
    secret = settings.user_id_key.get_secret_value() if settings.user_id_key else ""
    key = key_bytes(secret) if secret.strip() else None
    if backend == "postgres":
        from bot.storage.postgres import PostgresStorage

        return PostgresStorage(location, key, key_file=settings.user_id_key_file)
    from bot.storage.sqlite import SqliteStorage

    return SqliteStorage(Path(location), key, key_file=settings.user_id_key_file)

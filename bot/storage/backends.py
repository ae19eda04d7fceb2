"""Opening the configured storage backend."""

from __future__ import annotations

from bot.settings import Settings
from bot.storage.base import Storage


def open_storage(settings: Settings) -> Storage:
    """The storage the settings name (today: the SQLite file ``BOT_STORAGE_PATH``), with the
    user-id key ``BOT_USER_ID_KEY`` or the one kept in ``BOT_USER_ID_KEY_FILE``."""
    from bot.storage.sqlite import SqliteStorage, key_bytes

    secret = settings.user_id_key.get_secret_value() if settings.user_id_key else ""
    return SqliteStorage(
        settings.storage_path,
        key_bytes(secret) if secret.strip() else None,
        key_file=settings.user_id_key_file,
    )

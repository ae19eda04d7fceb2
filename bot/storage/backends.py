"""Opening the configured storage backend."""

from __future__ import annotations

from bot.settings import Settings
from bot.storage.base import Storage


def open_storage(settings: Settings) -> Storage:
    """The storage the settings name (today: the SQLite file ``BOT_STORAGE_PATH``)."""
    from bot.storage.sqlite import SqliteStorage

    return SqliteStorage(settings.storage_path)

"""The user-id key: what turns a Telegram user id into the hash every stored row carries.

It is never in the database (whoever holds the database alone cannot confirm a guessed user id):
it is ``BOT_USER_ID_KEY``, or a random key generated on first use into a file of its own with
mode 0600 (``BOT_USER_ID_KEY_FILE``; for SQLite by default beside the database). The database
keeps only a fingerprint (``key_check``), to refuse a wrong key rather than silently lose every
user.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from bot.storage.base import StorageError

#: HMAC of this text with the key: how the database recognises its key without holding it.
KEY_CHECK = b"contract-bot user-id key check"


def key_bytes(text: str) -> bytes:
    """A key as configured or stored: hex (as generated) or any other text, as UTF-8."""
    text = text.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode("utf-8")


def key_check(key: bytes) -> str:
    return hmac.new(key, KEY_CHECK, hashlib.sha256).hexdigest()


def user_hash(key: bytes, user_id: int) -> str:
    return hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()


def owner_only_dirs(folder: Path) -> None:
    """Create ``folder`` (and missing parents) readable by the owner only; existing folders
    are left as they are (the database may live in a shared one like /var/lib)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir(mode=0o700)
        created.chmod(0o700)  # whatever the umask


def read_or_create_key(path: Path, value: str | None = None) -> tuple[bytes, bool]:
    """The key in ``path``; if there is none, ``value`` (or a new random key) written there
    with mode 0600 first. Returns the key and whether the file was written."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    else:
        if not text.strip():
            raise StorageError(f"the user-id key file {path} is empty; restore it or delete it")
        return key_bytes(text), False
    owner_only_dirs(path.parent)
    value = value or secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(value + "\n")
    return key_bytes(value), True

"""Outgoing messages: every send of the Telegram layer goes through here (HTML split into parts
of at most 4096 characters, the keyboard on the last part, replies in groups), and every Bot API
request but ``getUpdates`` goes through ``ReliableSender``, the application's rate limiter: the one
place that throttles, retries and reports what Telegram did not take.

Retries (``RetryPolicy``): network errors, timeouts, HTTP 5xx and 429 are retried up to 5 tries
within about a minute, with exponential backoff and jitter; a 429's ``retry_after`` is honoured
and pauses every request, as Telegram asks. A group that became a supergroup (``ChatMigrated``)
is sent to under its new id (remembered for later sends). A request Telegram refuses for good
(403: the user blocked the bot; 400: chat not found, no rights) is not retried. Both a refusal
and a request given up after its tries are logged once, without a traceback, naming the request,
the chat and the answer id, and raise ``Undelivered`` (the error handler knows it is logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import html
import logging
import random
import time
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiolimiter import AsyncLimiter
from telegram import InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

from bot.telegram.format import split_html
from bot.telegram.state import Context, is_group

if TYPE_CHECKING:
    from telegram import Message

log = logging.getLogger(__name__)


NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

#: What Telegram says, in a 400, about a chat the bot cannot write to (not worth a retry).
UNREACHABLE = (
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "bot was kicked",
    "bot is not a member",
    "not enough rights",
    "have no rights",
    "chat_write_forbidden",
    "group chat was deactivated",
    "user is deactivated",
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a request Telegram did not take."""

    tries: int = 5  # attempts in all, the first included
    base_delay: float = 0.5  # the first backoff (seconds); doubled after each failure
    max_delay: float = 16.0
    deadline: float = 60.0  # no retry starts later than this after the first attempt

    def backoff(self, failures: int, rng: random.Random | None = None) -> float:
        """The wait before the next try after ``failures`` failures: exponential, capped, with
        jitter (between half and all of it) so that many failed requests do not retry in step."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(failures - 1, 0))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True)
class SendTag:
    """Passed as ``rate_limit_args`` with a request: what to name in the log if it fails."""

    answer_id: str | None = None


class Undelivered(TelegramError):
    """A request Telegram refused for good, or that was given up after its tries (already
    logged by ``ReliableSender``)."""

    def __init__(self, message: str, cause: TelegramError, *, permanent: bool) -> None:
        super().__init__(message)
        self.cause = cause
        self.permanent = permanent


def is_unreachable(error: TelegramError) -> bool:
    """Whether ``error`` says the chat cannot be written to at all (blocked, gone, no rights)."""
    if isinstance(error, Forbidden):
        return True
    return isinstance(error, BadRequest) and any(
        phrase in error.message.lower() for phrase in UNREACHABLE
    )


#: Telegram's descriptions of the 5xx statuses python-telegram-bot reports as NetworkError.
_STATUS_PHRASES = {
    "internal server error": "500",
    "bad gateway": "502",
    "service unavailable": "503",
    "gateway timeout": "504",
}


def status_of(error: TelegramError) -> str:
    """The HTTP status behind an error, for the metrics ("network" when there was none)."""
    if isinstance(error, RetryAfter):
        return "429"
    if isinstance(error, (BadRequest, ChatMigrated)):
        return "400"
    if isinstance(error, Forbidden):
        return "403"
    if isinstance(error, TimedOut):
        return "timeout"
    text = error.message.lower()
    return next((code for phrase, code in _STATUS_PHRASES.items() if phrase in text), "network")


def retry_after_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB warns that the int will become a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


Callback = Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]]


class ReliableSender(BaseRateLimiter[SendTag]):
    """Python-telegram-bot's rate-limiter hook, which wraps every Bot API request but
    ``getUpdates``: throttling like ``AIORateLimiter`` (aiolimiter buckets for the requests with
    a chat: 30 a second overall, 20 a minute per group), plus the retries of ``RetryPolicy``.
    Unlike ``AIORateLimiter``'s buckets, which hold a whole second's (or minute's) worth and so
    let twice the rate through in a burst, ours hold a tenth of a second's worth overall and 3
    messages per group: no window of a second (a minute) sees much more than the rate.

    ``overall_rate`` 0 turns the overall throttle off (a self-hosted Bot API server, a load test).
    ``chat_label`` says how a chat is named in the log (the application replaces it with the
    user-id hash for private chats, so no Telegram user id reaches the log).
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        overall_rate: float = 30.0,
        group_rate: float = 20.0,
        group_period: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._overall = (
            AsyncLimiter(max(1.0, overall_rate / 10), max(1.0, overall_rate / 10) / overall_rate)
            if overall_rate > 0
            else None
        )
        self._group_rate, self._group_period = group_rate, group_period
        self._groups: dict[int | str, AsyncLimiter] = {}
        self._paused_until = 0.0  # monotonic time before which no request starts (after a 429)
        self._migrated: dict[int | str, int] = {}
        self._rng = rng or random.Random()
        self.chat_label: Callable[[object], str] = lambda chat: f"chat {chat}"
        #: told of every failed request: (method, status, whether it is retried)
        self.observe: Callable[[str, str, bool], None] = lambda method, status, retried: None

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    # --- throttling --------------------------------------------------------------------------

    def _group(self, chat: int | str) -> AsyncLimiter | None:
        if not self._group_rate or not (isinstance(chat, str) or chat < 0):
            return None
        if len(self._groups) > 512:  # forget idle groups (a full bucket is an idle one)
            for key, limiter in list(self._groups.items()):
                if key != chat and limiter.has_capacity(limiter.max_rate):
                    del self._groups[key]
        if chat not in self._groups:
            burst = min(3.0, self._group_rate)
            self._groups[chat] = AsyncLimiter(burst, burst * self._group_period / self._group_rate)
        return self._groups[chat]

    async def _call(self, callback: Callback, args: Any, kwargs: dict[str, Any], chat: Any) -> Any:
        while (wait := self._paused_until - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        group = self._group(chat) if chat is not None else None
        overall = self._overall if chat is not None else None
        async with group or contextlib.nullcontext(), overall or contextlib.nullcontext():
            return await callback(*args, **kwargs)

    # --- retrying ----------------------------------------------------------------------------

    def _describe(self, endpoint: str, chat: Any, tag: SendTag | None) -> str:
        where = f" to {self.chat_label(chat)}" if chat is not None else ""
        answer = f" (answer {tag.answer_id})" if tag is not None and tag.answer_id else ""
        return f"{endpoint}{where}{answer}"

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: SendTag | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        policy = self.policy
        started = time.monotonic()
        failures = 0
        while True:
            chat = data.get("chat_id")
            if chat in self._migrated:
                # ``data`` is the dict the request is built from when ``callback`` runs
                data["chat_id"] = chat = self._migrated[chat]
            try:
                result: bool | dict[str, Any] | list[dict[str, Any]] = await self._call(
                    callback, args, kwargs, chat
                )
                return result
            except ChatMigrated as exc:
                if chat is None or exc.new_chat_id == chat or failures >= policy.tries:
                    raise
                self.observe(endpoint, "400", True)
                log.info(
                    "%s: the group became a supergroup; sending to its new id",
                    self._describe(endpoint, chat, rate_limit_args),
                )
                self._migrated[chat] = exc.new_chat_id
                data["chat_id"] = exc.new_chat_id
                failures += 1
                continue
            except RetryAfter as exc:
                delay = retry_after_seconds(exc) + 0.1
                reason: TelegramError = exc
                # Telegram asks the whole bot to wait: hold every request, not only this one.
                self._paused_until = max(self._paused_until, time.monotonic() + delay)
            except (BadRequest, Forbidden) as exc:
                self.observe(endpoint, status_of(exc), False)
                if is_unreachable(exc):
                    message = f"{self._describe(endpoint, chat, rate_limit_args)}: {exc.message}"
                    log.warning("Telegram refused %s; not retried", message)
                    raise Undelivered(message, exc, permanent=True) from exc
                raise  # a bad request of ours (the error handler reports it with a traceback)
            except NetworkError as exc:  # timeouts, connection errors, HTTP 5xx
                reason = exc
                delay = policy.backoff(failures + 1, self._rng)
            failures += 1
            elapsed = time.monotonic() - started
            what = self._describe(endpoint, chat, rate_limit_args)
            retried = not (failures >= policy.tries or elapsed + delay > policy.deadline)
            self.observe(endpoint, status_of(reason), retried)
            if not retried:
                message = (
                    f"{what}: gave up after {failures} tries in {elapsed:.1f} s: {reason.message}"
                )
                log.error("%s", message)
                raise Undelivered(message, reason, permanent=False) from reason
            log.warning(
                "%s failed (%s); will retry in %.1f s (try %d of %d)",
                what,
                reason.message,
                delay,
                failures + 1,
                policy.tries,
            )
            await asyncio.sleep(delay)


# --- sending -------------------------------------------------------------------------------


async def send_html(
    context: Context,
    chat_id: int,
    text: str,
    keyboard: InlineKeyboardMarkup | None = None,
    reply_to: int | None = None,
    *,
    answer_id: str | None = None,
) -> Message | None:
    """Send HTML, split into messages of at most 4096 characters; the keyboard goes last.

    ``answer_id`` (the stored answer being sent) is named in the log should Telegram not take
    it."""
    chunks = split_html(text)
    tag = SendTag(answer_id) if answer_id is not None else None
    sent = None
    for index, chunk in enumerate(chunks):
        sent = await context.bot.send_message(
            chat_id,
            chunk,
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard if index == len(chunks) - 1 else None,
            reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to is not None and index == 0
            else None,
            link_preview_options=NO_PREVIEW,
            # (the handlers' context types its bot as ExtBot[None]; ours takes a SendTag)
            rate_limit_args=tag,  # type: ignore[arg-type]
        )
    return sent


async def reply_text(update: Update, context: Context, text: str) -> None:
    """A plain (escaped) notice to the update's chat; in groups as a reply."""
    chat = update.effective_chat
    if chat is None:
        return
    message = update.effective_message
    reply_to = message.message_id if message is not None and is_group(update) else None
    await send_html(context, chat.id, html.escape(text), reply_to=reply_to)


async def reply_html(
    update: Update, context: Context, text: str, keyboard: InlineKeyboardMarkup | None = None
) -> None:
    chat = update.effective_chat
    message = update.effective_message
    if chat is None:
        return
    reply_to = message.message_id if message is not None and is_group(update) else None
    await send_html(context, chat.id, text, keyboard, reply_to)

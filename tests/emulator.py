"""A local Telegram Bot API emulator for end-to-end tests.

It speaks the Bot API over real HTTP on 127.0.0.1 (a free port), so the real python-telegram-bot
``Application`` runs against it unchanged (``base_url=emu.base_url``). Tests play users with
``user_message`` / ``press_button`` / ``inline_query`` / ... and await the bot's replies with
``wait_for_sent``.

What it does like Telegram (as far as the bot can tell):
- ``/bot<token>/<method>`` routes, GET or POST, JSON, form-encoded (PTB's default: strings as is,
  everything else JSON-encoded) or multipart bodies; a wrong token gets 401, an unknown method 400
  (a 404 would make PTB report an invalid token).
- Long polling ``getUpdates`` with ``offset``/``limit``/``timeout``/``allowed_updates``; a waiting
  poll wakes on a new update and when the emulator shuts down.
- Telegram-style errors: empty or too long text, HTML that does not parse (unknown or unbalanced
  tags), callback data over 64 bytes, unknown chats/messages, "message is not modified", answering
  a callback query twice, getUpdates while a webhook is set (409).
- Webhook mode: after ``setWebhook`` new updates are POSTed to the URL with the
  ``X-Telegram-Bot-Api-Secret-Token`` header instead of being queued for ``getUpdates``: one
  chat's updates one after another (the next once the bot answered the last), different chats'
  at once, up to ``max_connections``; a request that fails is tried again (5 tries).
- Fault injection: ``inject(method, status=429, retry_after=1, times=1)``, 5xx statuses, 403,
  409 (another poller), delays. Chat states: ``migrate_chat`` (a group became a supergroup:
  sends to the old id get 400 with ``migrate_to_chat_id``), ``block`` (the user blocked the bot:
  403). ``reply_parameters.allow_sending_without_reply`` is honoured.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

JSON = dict[str, Any]

DEFAULT_TOKEN = "123456789:TEST-emulator-token_abcdefghijklmnop"
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64

# Tags Telegram's HTML parse mode accepts (https://core.telegram.org/bots/api#html-style).
HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code"}
    | {"pre", "blockquote", "tg-emoji"}
)

# Parameters that are plain strings even when they look like JSON (PTB sends strings unencoded).
STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "url",
        "secret_token",
        "callback_query_id",
        "inline_query_id",
        "action",
        "description",
        "short_description",
        "name",
        "language_code",
        "inline_message_id",
        "next_offset",
        "query",
        "ip_address",
    }
)


class ApiError(Exception):
    """A Bot API error reply: HTTP status = error_code, plus optional ``parameters``."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(text: str) -> ApiError:
    return ApiError(400, f"Bad Request: {text}")


_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)?([^<>]*)>")


def parse_html(text: str) -> str:
    """Check ``text`` as Telegram's HTML parse mode would and return the visible text.

    Raises ``ApiError`` (400 "can't parse entities") on an unknown tag, a stray ``<``, or
    unbalanced/mis-nested tags, like Telegram does.
    """
    stack: list[tuple[str, int]] = []
    visible: list[str] = []
    pos = 0

    def offset(index: int) -> int:
        return len(text[:index].encode("utf-8"))

    while pos < len(text):
        lt = text.find("<", pos)
        if lt < 0:
            visible.append(text[pos:])
            break
        visible.append(text[pos:lt])
        match = _TAG.match(text, lt)
        if match is None or match.group(2) is None:
            raise bad_request(
                f"can't parse entities: Unsupported start tag at byte offset {offset(lt)}"
            )
        closing, name = match.group(1) == "/", match.group(2).lower()
        if name not in HTML_TAGS:
            kind = "end" if closing else "start"
            raise bad_request(
                f'can\'t parse entities: Unsupported {kind} tag "{name}" '
                f"at byte offset {offset(lt)}"
            )
        if closing:
            if not stack:
                raise bad_request(
                    f"can't parse entities: Unexpected end tag at byte offset {offset(lt)}"
                )
            open_name, _ = stack.pop()
            if open_name != name:
                raise bad_request(
                    "can't parse entities: Unmatched end tag at byte offset "
                    f'{offset(lt)}, expected "</{open_name}>", found "</{name}>"'
                )
        else:
            stack.append((name, lt))
        pos = match.end()
    if stack:
        name, _ = stack[-1]
        raise bad_request(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{name}\""
        )
    return html.unescape("".join(visible))


PHRASES = {
    403: "Forbidden: bot was blocked by the user",
    409: (
        "Conflict: terminated by other getUpdates request; make sure that only one bot "
        "instance is running"
    ),
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Fault:
    """One injected fault for the next call(s) of a method."""

    status: int | None = 429  # None: no error, only the delay
    retry_after: int = 1
    delay: float = 0.0
    times: int = 1
    description: str | None = None
    chat_id: int | None = None  # only calls to this chat


@dataclass
class Sent:
    """A message the bot sent (or its latest edit)."""

    chat_id: int
    message_id: int
    text: str  # visible text (HTML parsed)
    raw: str  # as sent
    parse_mode: str | None
    reply_markup: JSON | None
    reply_to: int | None
    message: JSON  # the Message object as returned to the bot
    edits: int = 0
    at: float = field(default_factory=time.monotonic)  # when it was sent

    def buttons(self) -> list[JSON]:
        """All inline keyboard buttons, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    def button(self, label: str) -> JSON:
        """The first button whose text contains ``label``."""
        for button in self.buttons():
            if label in button.get("text", ""):
                return button
        raise AssertionError(
            f"no button containing {label!r}: {[b.get('text') for b in self.buttons()]}"
        )


@dataclass
class Call:
    method: str
    params: JSON
    status: int


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int = 40
    last_error: str | None = None
    last_error_date: int | None = None


def make_user(
    user_id: int = 1001,
    first_name: str = "Alice",
    *,
    language_code: str | None = "zh-hans",
    username: str | None = None,
) -> JSON:
    user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code:
        user["language_code"] = language_code
    if username:
        user["username"] = username
    return user


@dataclass
class BotApiEmulator:
    """The emulator; use ``async with BotApiEmulator() as emu:``."""

    token: str = DEFAULT_TOKEN
    bot_username: str = "contract_test_bot"
    bot_first_name: str = "Contract Bot"

    calls: list[Call] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    callback_answers: dict[str, JSON] = field(default_factory=dict)
    inline_answers: dict[str, JSON] = field(default_factory=dict)
    chat_actions: list[JSON] = field(default_factory=list)
    commands: dict[tuple[str, str], list[JSON]] = field(default_factory=dict)
    webhook_deliveries: list[tuple[int, int | str]] = field(default_factory=list)
    #: update id -> when getUpdates first returned it (time.monotonic())
    delivered: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bot_id = int(self.token.split(":", 1)[0])
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._message_ids: defaultdict[int, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )
        self._query_ids = itertools.count(1)
        self._messages: dict[tuple[int, int], JSON] = {}
        self._sent_by_key: dict[tuple[int, int], Sent] = {}
        self._chats: dict[int, JSON] = {}
        self._faults: defaultdict[str, list[Fault]] = defaultdict(list)
        self._migrated: dict[int, int] = {}
        self._in_flight: defaultdict[str, int] = defaultdict(int)
        self._blocked: set[int] = set()
        self._changed = asyncio.Event()
        self._closing = False
        self._webhook: _Webhook | None = None
        self._webhook_queue: asyncio.Queue[JSON] = asyncio.Queue()
        self._webhook_task: asyncio.Task[None] | None = None
        self._connections = asyncio.Semaphore(40)
        self._session: ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._read_cursor: defaultdict[int, int] = defaultdict(int)
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The value for PTB's ``base_url`` (the token is appended by PTB)."""
        return f"{self.url}/bot"

    @property
    def bot_user(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }

    async def start(self) -> BotApiEmulator:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = ClientSession(timeout=ClientTimeout(total=10))
        self._webhook_task = asyncio.create_task(self._deliver_webhooks())
        return self

    async def stop(self) -> None:
        self._closing = True
        self._wake()  # waiting long polls return at once
        if self._webhook_task:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> BotApiEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def reset(self) -> None:
        """Forget recorded traffic and faults (between tests sharing one emulator)."""
        self.calls.clear()
        self._faults.clear()
        for chat_id in list(self._read_cursor):
            self._read_cursor[chat_id] = len(self.sent_to(chat_id))

    # --- fault injection ---------------------------------------------------------------------

    def inject(
        self,
        method: str,
        *,
        status: int | None = 429,
        retry_after: int = 1,
        times: int = 1,
        delay: float = 0.0,
        description: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (to ``chat_id`` only, if given) fail with
        ``status`` (None: only delay)."""
        fault = Fault(status, retry_after, delay, times, description, chat_id)
        self._faults[method.lower()].append(fault)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    # --- HTTP handling -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        if token != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params = await self._params(request)
        self._in_flight[method.lower()] += 1
        self._wake()
        try:
            await self._apply_fault(method, params)
            handler = getattr(self, f"_api_{method.lower()}", None)
            if handler is None:
                raise bad_request("method not found")
            result = await handler(params)
        except ApiError as err:
            self.calls.append(Call(method, params, err.code))
            return web.json_response(err.body(), status=err.code)
        finally:
            self._in_flight[method.lower()] -= 1
        self.calls.append(Call(method, params, 200))
        return web.json_response({"ok": True, "result": result})

    def requests_in_flight(self, method: str) -> int:
        """Requests of ``method`` received and not answered yet (e.g. held by a delay)."""
        return self._in_flight[method.lower()]

    async def _params(self, request: web.Request) -> JSON:
        params: JSON = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
                return params
            form = await request.post()
            for key, value in form.items():
                params[key] = value if isinstance(value, str) else value.file.read()
        for key, value in list(params.items()):
            if isinstance(value, str) and key not in STRING_PARAMS:
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
        return params

    async def _apply_fault(self, method: str, params: JSON) -> None:
        faults = self._faults.get(method.lower())
        chat = params.get("chat_id")
        fault = next(
            (f for f in faults or () if f.chat_id is None or str(f.chat_id) == str(chat)), None
        )
        if faults is None or fault is None:
            return
        fault.times -= 1
        if fault.times <= 0:
            faults.remove(fault)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is None:
            return
        if fault.status == 429:
            raise ApiError(
                429,
                fault.description or f"Too Many Requests: retry after {fault.retry_after}",
                {"retry_after": fault.retry_after},
            )
        raise ApiError(fault.status, fault.description or PHRASES.get(fault.status, "Error"))

    def migrate_chat(self, chat: JSON, new_id: int) -> JSON:
        """The group ``chat`` becomes a supergroup with id ``new_id`` (returned as a chat)."""
        new_chat = {**chat, "id": new_id, "type": "supergroup"}
        self._chats[new_id] = new_chat
        self._migrated[int(chat["id"])] = new_id
        return new_chat

    def block(self, chat_id: int) -> None:
        """The user of private chat ``chat_id`` blocks the bot: sends to it get 403."""
        self._blocked.add(chat_id)

    # --- updates -----------------------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def push_update(self, payload: JSON) -> JSON:
        """Queue an update (``payload`` without ``update_id``); returns the full update."""
        update = {"update_id": next(self._update_ids), **payload}
        if self._webhook is not None:
            self._webhook_queue.put_nowait(update)
        else:
            self._updates.append(update)
        self._wake()
        return update

    @property
    def pending_updates(self) -> list[JSON]:
        return list(self._updates)

    async def _api_getupdates(self, params: JSON) -> list[JSON]:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = float(params.get("timeout") or 0)
        allowed = params.get("allowed_updates") or None
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while True:
            ready = [u for u in self._updates if _allowed(u, allowed)][:limit]
            remaining = deadline - time.monotonic()
            if ready or self._closing or remaining <= 0:
                now = time.monotonic()
                for update in ready:
                    self.delivered.setdefault(update["update_id"], now)
                return ready
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def _deliver_webhooks(self) -> None:
        """Hand each update to a delivery task: per chat in order, chats in parallel."""
        chains: dict[object, asyncio.Task[None]] = {}
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                update = await self._webhook_queue.get()
                key = _update_chat(update)
                previous = chains.get(key)
                task = asyncio.create_task(self._deliver(update, previous))
                chains[key] = task
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()

    async def _deliver(self, update: JSON, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        hook = self._webhook
        if hook is None:  # webhook removed meanwhile: fall back to getUpdates
            self._updates.append(update)
            self._updates.sort(key=lambda u: u["update_id"])
            self._wake()
            return
        if not _allowed(update, hook.allowed_updates):
            return
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        status: int | str = "not sent"
        async with self._connections:
            for attempt in range(5):
                assert self._session is not None
                try:
                    async with self._session.post(
                        hook.url, data=json.dumps(update), headers=headers
                    ) as resp:
                        status = resp.status
                        if resp.status < 300:
                            break
                        hook.last_error = f"Wrong response from the webhook: {resp.status}"
                except (ClientError, TimeoutError) as exc:
                    status = f"{type(exc).__name__}: {exc}"
                    hook.last_error = f"Connection error: {status}"
                hook.last_error_date = int(time.time())
                await asyncio.sleep(0.1 * (attempt + 1))
        self.webhook_deliveries.append((update["update_id"], status))

    # --- playing users -----------------------------------------------------------------------

    def _chat_for(self, user: JSON, chat: JSON | None, chat_type: str) -> JSON:
        if chat is None:
            if chat_type == "private":
                chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
                if "username" in user:
                    chat["username"] = user["username"]
            else:
                chat = {"id": -1000000000000 - user["id"], "type": chat_type, "title": "Test group"}
        self._chats[chat["id"]] = chat
        return chat

    def _auto_entities(self, text: str) -> list[JSON]:
        """Entities Telegram itself adds: bot commands and @mentions."""
        entities: list[JSON] = []
        for match in re.finditer(
            r"(?<![\w/])/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?|@[A-Za-z0-9_]{5,}", text
        ):
            kind = "bot_command" if match.group().startswith("/") else "mention"
            if kind == "bot_command" and match.start() != 0:
                continue
            entities.append(
                {
                    "type": kind,
                    "offset": _utf16_len(text[: match.start()]),
                    "length": _utf16_len(match.group()),
                }
            )
        return entities

    def _new_message(
        self,
        user: JSON | None,
        chat: JSON | None,
        chat_type: str,
        reply_to: JSON | Sent | None,
        **content: Any,
    ) -> JSON:
        user = user or make_user()
        chat = self._chat_for(user, chat, chat_type)
        message: JSON = {
            "message_id": next(self._message_ids[chat["id"]]),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        if reply_to is not None:
            message["reply_to_message"] = (
                reply_to.message if isinstance(reply_to, Sent) else reply_to
            )
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    def user_message(
        self,
        text: str,
        *,
        user: JSON | None = None,
        chat: JSON | None = None,
        chat_type: str = "private",
        entities: list[JSON] | None = None,
        reply_to: JSON | Sent | None = None,
    ) -> JSON:
        """A user sends ``text``; returns the Message (commands/mentions get entities)."""
        ents = self._auto_entities(text) if entities is None else entities
        content: JSON = {"text": text}
        if ents:
            content["entities"] = ents
        message = self._new_message(user, chat, chat_type, reply_to, **content)
        self.push_update({"message": message})
        return message

    def edit_message(self, message: JSON, text: str, *, entities: list[JSON] | None = None) -> JSON:
        """The user edits one of their messages."""
        edited = {**message, "text": text, "edit_date": int(time.time())}
        ents = self._auto_entities(text) if entities is None else entities
        edited.pop("entities", None)
        if ents:
            edited["entities"] = ents
        self._messages[(edited["chat"]["id"], edited["message_id"])] = edited
        self.push_update({"edited_message": edited})
        return edited

    def _media(
        self,
        chat_type: str,
        user: JSON | None,
        chat: JSON | None,
        reply_to: JSON | Sent | None = None,
        **content: Any,
    ) -> JSON:
        message = self._new_message(user, chat, chat_type, reply_to, **content)
        self.push_update({"message": message})
        return message

    @staticmethod
    def _caption(
        caption: str | None, entities: list[JSON] | None, media_group_id: str | None
    ) -> JSON:
        extra: JSON = {"caption": caption} if caption else {}
        if caption and entities:
            extra["caption_entities"] = entities
        if media_group_id:
            extra["media_group_id"] = media_group_id
        return extra

    def sticker(
        self, *, user: JSON | None = None, chat: JSON | None = None, chat_type: str = "private"
    ) -> JSON:
        sticker = {
            "file_id": "CAACAgIAAxkBAAEStickerFileId",
            "file_unique_id": "AgADsticker",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return self._media(chat_type, user, chat, sticker=sticker)

    def photo(
        self,
        *,
        user: JSON | None = None,
        chat: JSON | None = None,
        chat_type: str = "private",
        caption: str | None = None,
        caption_entities: list[JSON] | None = None,
        media_group_id: str | None = None,
        reply_to: JSON | Sent | None = None,
    ) -> JSON:
        """A photo; with ``media_group_id``, one item of an album (send each item)."""
        sizes = [
            {"file_id": f"AgACphoto{n}", "file_unique_id": f"AQADphoto{n}", "width": w, "height": w}
            for n, w in enumerate((90, 320, 800))
        ]
        extra = self._caption(caption, caption_entities, media_group_id)
        return self._media(chat_type, user, chat, reply_to, photo=sizes, **extra)

    def document(
        self,
        *,
        user: JSON | None = None,
        chat: JSON | None = None,
        chat_type: str = "private",
        caption: str | None = None,
        caption_entities: list[JSON] | None = None,
        media_group_id: str | None = None,
    ) -> JSON:
        document = {
            "file_id": "BQACdocument",
            "file_unique_id": "AgADdocument",
            "file_name": "合同.pdf",
            "mime_type": "application/pdf",
            "file_size": 12345,
        }
        extra = self._caption(caption, caption_entities, media_group_id)
        return self._media(chat_type, user, chat, document=document, **extra)

    def video(
        self,
        *,
        user: JSON | None = None,
        chat: JSON | None = None,
        chat_type: str = "private",
        caption: str | None = None,
        caption_entities: list[JSON] | None = None,
        media_group_id: str | None = None,
    ) -> JSON:
        video = {
            "file_id": "BAACvideo",
            "file_unique_id": "AgADvideo",
            "width": 640,
            "height": 360,
            "duration": 5,
        }
        extra = self._caption(caption, caption_entities, media_group_id)
        return self._media(chat_type, user, chat, video=video, **extra)

    def location(
        self,
        latitude: float = 31.23,
        longitude: float = 121.47,
        *,
        user: JSON | None = None,
        chat: JSON | None = None,
        chat_type: str = "private",
    ) -> JSON:
        return self._media(
            chat_type, user, chat, location={"latitude": latitude, "longitude": longitude}
        )

    def voice(
        self, *, user: JSON | None = None, chat: JSON | None = None, chat_type: str = "private"
    ) -> JSON:
        voice = {
            "file_id": "AwACvoice",
            "file_unique_id": "AgADvoice",
            "duration": 3,
            "mime_type": "audio/ogg",
        }
        return self._media(chat_type, user, chat, voice=voice)

    def press_button(
        self,
        message: Sent | JSON,
        callback_data: str,
        *,
        user: JSON | None = None,
        check: bool = True,
    ) -> str:
        """A user presses the inline button with ``callback_data`` on a bot message.

        Returns the callback query id (see ``wait_for_callback_answer``). Fails if the message has
        no such button, because a real user could not press it (``check=False`` skips that, to
        play buttons from an older version of the bot).
        """
        msg = message.message if isinstance(message, Sent) else message
        key = (msg["chat"]["id"], msg["message_id"])
        current = self._sent_by_key.get(key)
        markup = current.reply_markup if current else msg.get("reply_markup")
        rows = (markup or {}).get("inline_keyboard", [])
        pressable = any(b.get("callback_data") == callback_data for row in rows for b in row)
        if check and not pressable:
            raise AssertionError(
                f"message {key} has no button with callback_data {callback_data!r}"
            )
        user = user or make_user()
        query_id = str(next(self._query_ids) * 1000 + 7)
        payload = {
            "id": query_id,
            "from": user,
            "message": current.message if current and check else msg,
            "chat_instance": str(abs(msg["chat"]["id"])),
            "data": callback_data,
        }
        self.push_update({"callback_query": payload})
        return query_id

    def inline_query(self, query: str, *, user: JSON | None = None, offset: str = "") -> str:
        """A user types ``@bot <query>``; returns the inline query id."""
        query_id = str(next(self._query_ids) * 1000 + 9)
        user = user or make_user()
        self.push_update(
            {
                "inline_query": {
                    "id": query_id,
                    "from": user,
                    "query": query,
                    "offset": offset,
                    "chat_type": "private",
                }
            }
        )
        return query_id

    # --- waiting for the bot -----------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked whenever the bot calls the API)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for the bot")
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.2))

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    async def wait_for_sent(self, chat_id: int, n: int = 1, timeout: float = 10.0) -> list[Sent]:
        """The next ``n`` messages the bot sends to ``chat_id`` (not returned before)."""
        start = self._read_cursor[chat_id]

        def ready() -> list[Sent] | None:
            got = self.sent_to(chat_id)[start : start + n]
            return got if len(got) >= n else None

        got: list[Sent] = await self.wait_until(ready, timeout)
        self._read_cursor[chat_id] = start + n
        return got

    async def expect_silence(self, chat_id: int, seconds: float = 0.5) -> None:
        """Assert the bot sends nothing (new) to ``chat_id`` within ``seconds``."""
        before = len(self.sent_to(chat_id))
        await asyncio.sleep(seconds)
        new = self.sent_to(chat_id)[before:]
        assert not new, f"bot unexpectedly sent: {[s.text[:80] for s in new]}"

    async def wait_for_callback_answer(self, query_id: str, timeout: float = 10.0) -> JSON:
        answer: JSON = await self.wait_until(lambda: self.callback_answers.get(query_id), timeout)
        return answer

    async def wait_for_inline_answer(self, query_id: str, timeout: float = 10.0) -> JSON:
        answer: JSON = await self.wait_until(lambda: self.inline_answers.get(query_id), timeout)
        return answer

    # --- Bot API methods ---------------------------------------------------------------------

    async def _api_getme(self, params: JSON) -> JSON:
        return self.bot_user

    async def _api_logout(self, params: JSON) -> bool:
        return True

    async def _api_close(self, params: JSON) -> bool:
        return True

    def _chat(self, params: JSON) -> JSON:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise bad_request("chat_id is empty")
        try:
            number = int(chat_id)
        except ValueError:
            raise bad_request("chat not found") from None
        if number in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[number]},
            )
        if number in self._blocked:
            raise ApiError(403, PHRASES[403])
        try:
            return self._chats[number]
        except KeyError:
            raise bad_request("chat not found") from None

    def _check_text(self, params: JSON) -> tuple[str, str]:
        raw = params.get("text")
        if raw is None or str(raw) == "":
            raise bad_request("message text is empty")
        raw = str(raw)
        mode = (params.get("parse_mode") or "").lower()
        text = parse_html(raw) if mode == "html" else raw
        if not text.strip():
            raise bad_request("message text is empty")
        if len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        return raw, text

    def _check_markup(self, params: JSON) -> JSON | None:
        markup = params.get("reply_markup")
        if markup in (None, ""):
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise bad_request("text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                    raise bad_request("BUTTON_DATA_INVALID")
                kinds = {
                    "url",
                    "callback_data",
                    "switch_inline_query",
                    "switch_inline_query_current_chat",
                    "web_app",
                    "login_url",
                    "pay",
                    "copy_text",
                    "switch_inline_query_chosen_chat",
                    "callback_game",
                }
                if not kinds & button.keys():
                    raise bad_request("text buttons are unallowed in the inline keyboard")
        return markup

    async def _api_sendmessage(self, params: JSON) -> JSON:
        chat = self._chat(params)
        raw, text = self._check_text(params)
        markup = self._check_markup(params)
        reply_to = None
        without_reply = False
        reply_parameters = params.get("reply_parameters")
        if isinstance(reply_parameters, dict):
            reply_to = reply_parameters.get("message_id")
            without_reply = bool(reply_parameters.get("allow_sending_without_reply"))
        elif params.get("reply_to_message_id"):
            reply_to = int(params["reply_to_message_id"])
        if reply_to is not None and (chat["id"], reply_to) not in self._messages:
            if not without_reply:
                raise bad_request("message to be replied not found")
            reply_to = None
        message: JSON = {
            "message_id": next(self._message_ids[chat["id"]]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        if markup:
            message["reply_markup"] = markup
        if reply_to is not None:
            message["reply_to_message"] = self._messages[(chat["id"], reply_to)]
        self._messages[(chat["id"], message["message_id"])] = message
        sent = Sent(
            chat["id"],
            message["message_id"],
            text,
            raw,
            params.get("parse_mode"),
            markup,
            reply_to,
            message,
        )
        self.sent.append(sent)
        self._sent_by_key[(chat["id"], message["message_id"])] = sent
        self._wake()
        return message

    def _bot_message(self, params: JSON) -> Sent:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")  # inline messages are not emulated
        self._chat(params)
        key = (int(params["chat_id"]), int(params.get("message_id") or 0))
        sent = self._sent_by_key.get(key)
        if sent is None:
            raise bad_request("message to edit not found")
        return sent

    async def _api_editmessagetext(self, params: JSON) -> JSON:
        sent = self._bot_message(params)
        raw, text = self._check_text(params)
        markup = self._check_markup(params)
        if text == sent.text and markup == sent.reply_markup:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        sent.text, sent.raw, sent.reply_markup = text, raw, markup
        sent.parse_mode = params.get("parse_mode")
        sent.edits += 1
        sent.message = {**sent.message, "text": text, "edit_date": int(time.time())}
        sent.message.pop("reply_markup", None)
        if markup:
            sent.message["reply_markup"] = markup
        self._wake()
        return sent.message

    async def _api_editmessagereplymarkup(self, params: JSON) -> JSON:
        sent = self._bot_message(params)
        markup = self._check_markup(params)
        if markup == sent.reply_markup:
            raise bad_request("message is not modified")
        sent.reply_markup = markup
        sent.edits += 1
        sent.message = {**sent.message, "edit_date": int(time.time())}
        sent.message.pop("reply_markup", None)
        if markup:
            sent.message["reply_markup"] = markup
        self._wake()
        return sent.message

    async def _api_answercallbackquery(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if not query_id or query_id in self.callback_answers:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(params.get("text") or "")) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self.callback_answers[query_id] = {"text": None, "show_alert": False, **params}
        self._wake()
        return True

    async def _api_answerinlinequery(self, params: JSON) -> bool:
        query_id = str(params.get("inline_query_id") or "")
        if not query_id or query_id in self.inline_answers:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        results = params.get("results")
        if not isinstance(results, list):
            raise bad_request("can't parse inline query results")
        if len(results) > 50:
            raise bad_request("RESULTS_TOO_MUCH")
        ids = [r.get("id") for r in results]
        if len(set(ids)) != len(ids) or any(not i or len(str(i).encode()) > 64 for i in ids):
            raise bad_request("RESULT_ID_INVALID")
        for result in results:
            content = result.get("input_message_content") or {}
            if result.get("type") == "article":
                if not result.get("title"):
                    raise bad_request("RESULT_TITLE_EMPTY")
                text = content.get("message_text", "")
                if not text:
                    raise bad_request("MESSAGE_EMPTY")
                if (content.get("parse_mode") or "").lower() == "html":
                    parse_html(text)
            self._check_markup({"reply_markup": result.get("reply_markup")})
        self.inline_answers[query_id] = params
        self._wake()
        return True

    async def _api_sendchataction(self, params: JSON) -> bool:
        self._chat(params)
        self.chat_actions.append(params)
        return True

    @staticmethod
    def _commands_key(params: JSON) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _api_setmycommands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands")
        for command in commands:
            name, description = command.get("command", ""), command.get("description", "")
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = commands
        return True

    async def _api_getmycommands(self, params: JSON) -> list[JSON]:
        scope, lang = self._commands_key(params)
        return self.commands.get((scope, lang), [])

    async def _api_deletemycommands(self, params: JSON) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    async def _api_setwebhook(self, params: JSON) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._api_deletewebhook(params)
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        connections = int(params.get("max_connections") or 40)
        self._webhook = _Webhook(
            url, secret and str(secret), params.get("allowed_updates"), connections
        )
        self._connections = asyncio.Semaphore(connections)
        # updates that were waiting for getUpdates are now delivered to the webhook
        for update in self._updates:
            self._webhook_queue.put_nowait(update)
        self._updates.clear()
        self._wake()
        return True

    async def _api_deletewebhook(self, params: JSON) -> bool:
        self._webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._wake()
        return True

    async def _api_getwebhookinfo(self, params: JSON) -> JSON:
        hook = self._webhook
        info: JSON = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": self._webhook_queue.qsize() if hook else len(self._updates),
        }
        if hook and hook.last_error:
            info["last_error_message"] = hook.last_error
            info["last_error_date"] = hook.last_error_date
        if hook and hook.allowed_updates:
            info["allowed_updates"] = hook.allowed_updates
        return info


def _update_chat(update: JSON) -> object:
    """The chat an update belongs to (its user's for inline queries), for delivery order."""
    for value in update.values():
        if isinstance(value, dict):
            chat = value.get("chat") or (value.get("message") or {}).get("chat")
            if isinstance(chat, dict):
                return chat.get("id")
            sender = value.get("from")
            if isinstance(sender, dict):
                return ("user", sender.get("id"))
    return ("update", update.get("update_id"))


def _allowed(update: JSON, allowed: list[str] | None) -> bool:
    if not allowed:
        return True
    return any(key in update for key in allowed)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2

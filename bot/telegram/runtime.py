"""Running the bot: fetching updates, handling them in order per chat with bounded concurrency,
and stopping without losing any.

- ``Dispatcher``: every update is handled by python-telegram-bot's ``Application.process_update``
  (handlers, error handler) in a task of its own; one chat's updates one after another (a user's
  second question is never answered before the first), at most ``max_concurrent_updates`` at once.
- ``Poller``: long polling that acknowledges only what was handled. Telegram forgets the updates
  below the ``offset`` of a ``getUpdates`` call, so the offset sent is the oldest update still
  being handled: one in flight when the process stops is fetched again by the next one. Updates
  are read as JSON and only new ones are parsed; while updates are in flight it polls only after
  one finishes (at most every ``pace`` seconds), and only with room in the window of 100 updates
  Telegram returns, so a flood is taken in batches and drained at the bot's pace (the rest waits
  at Telegram: the queue is bounded) instead of one round trip per update.
  409 Conflict (another process polls with the same token) is logged once, then retried slowly.
- ``WebhookServer``: the webhook mode's HTTP server (tornado, as python-telegram-bot's own):
  Telegram's request is answered only once its update is handled, so an update the bot could
  not finish is delivered again.
- ``running``: start-up, the retention purge (at start and daily), and the graceful stop: fetch
  nothing more, finish what was received (at most ``shutdown_timeout`` seconds; a second signal
  cuts it short), acknowledge what was handled, shut down.
- ``/healthz`` and ``/metrics`` on the webhook server (or, polling, on ``BOT_METRICS_PORT``);
  the index is reloaded in place on SIGHUP, or when ``/reload all`` raised the reload generation
  in the storage every replica shares (looked at every ``RELOAD_POLL`` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode, urlparse

from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError

from bot.settings import Settings
from bot.telegram.request import AiohttpRequest
from bot.telegram.send import RetryPolicy, retry_after_seconds
from bot.telegram.state import RELOAD_POLL, BotState, index_build, load_errors

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.ext import Application

log = logging.getLogger(__name__)

MAX_UPDATES = 100  # Telegram returns at most 100 updates per getUpdates
DAY = 24 * 3600.0


def chat_key(update: Update) -> object:
    """What orders updates: the chat (a group's updates are one queue), else the user."""
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return ("user", update.effective_user.id)
    return ("update", update.update_id)


class Dispatcher:
    """Handles updates in tasks: per chat in order of arrival, at most ``max_running`` at once.

    ``pending`` are the ids submitted and not finished; ``abandoned`` those cancelled at
    shutdown (never acknowledged). ``handled`` counts the finished ones.
    """

    def __init__(self, process: Callable[[Update], Awaitable[None]], max_running: int) -> None:
        self._process = process
        self._running = asyncio.Semaphore(max_running)
        self._tails: dict[object, asyncio.Task[None]] = {}
        self._pending: dict[int, asyncio.Task[None]] = {}
        self.abandoned: set[int] = set()
        self.handled = 0
        self._changed = asyncio.Event()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def oldest_unfinished(self) -> int | None:
        ids = self._pending.keys() | self.abandoned
        return min(ids) if ids else None

    def submit(self, update: Update) -> asyncio.Task[None]:
        """Start handling ``update`` after the chat's previous one (call in arrival order)."""
        key = chat_key(update)
        previous = self._tails.get(key)
        task = asyncio.create_task(self._run(update, previous), name=f"update-{update.update_id}")
        self._tails[key] = task
        self._pending[update.update_id] = task
        task.add_done_callback(lambda done: self._finished(key, update.update_id, done))
        return task

    async def _run(self, update: Update, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        async with self._running:
            await self._process(update)

    def _finished(self, key: object, update_id: int, task: asyncio.Task[None]) -> None:
        self._pending.pop(update_id, None)
        if self._tails.get(key) is task:
            del self._tails[key]
        if task.cancelled():
            self.abandoned.add(update_id)
        else:
            self.handled += 1
            if task.exception() is not None:  # process_update reports handler errors itself
                log.error("update %d failed", update_id, exc_info=task.exception())
        self._changed.set()

    async def changed(self, timeout: float) -> None:
        """Wait until an update finishes (or ``timeout`` seconds pass)."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def drain(self, timeout: float, hurry: asyncio.Event | None = None) -> list[int]:
        """Wait until every submitted update is handled, at most ``timeout`` seconds (or until
        ``hurry`` is set); cancel the rest. Returns the ids of those cancelled."""
        deadline = time.monotonic() + timeout
        while self._pending and (remaining := deadline - time.monotonic()) > 0:
            waits: list[asyncio.Future[Any]] = list(self._pending.values())
            hurried = asyncio.ensure_future(hurry.wait()) if hurry is not None else None
            if hurried is not None:
                waits.append(hurried)
            await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if hurried is not None:
                if hurried.done():
                    break
                hurried.cancel()
        left = list(self._pending.values())
        ids = sorted(self._pending)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        return ids


class Poller:
    """Long polling that acknowledges an update only once it is handled (see the module
    docstring). ``run`` until ``stop``; then ``acknowledge`` what was handled."""

    def __init__(
        self,
        bot: Bot,
        dispatcher: Dispatcher,
        *,
        allowed_updates: Sequence[str] | None = None,
        long_poll: float = 10.0,
        pace: float = 0.02,
        min_room: int = 10,
        idle_poll: float = 0.25,
        backlog: int = 20,
        conflict_retry: float = 15.0,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.allowed_updates = list(allowed_updates) if allowed_updates is not None else None
        self.long_poll = long_poll
        self.pace = pace
        self.min_room = min_room
        self.idle_poll = idle_poll
        self.backlog = backlog
        self.conflict_retry = conflict_retry
        self.policy = policy or RetryPolicy(base_delay=1.0, max_delay=30.0)
        self.next_id = 0  # one more than the newest update fetched
        self.polls = 0
        self._dry = False  # the last poll brought nothing new
        self._request = AiohttpRequest(1, read_timeout=long_poll + 10.0, connect_timeout=10.0)
        self._stopping = asyncio.Event()
        self._conflict = False
        self.task: asyncio.Task[None] | None = None  # set by ``running``

    @property
    def offset(self) -> int:
        """What to send as ``offset``: the oldest update not handled yet, else the next one."""
        oldest = self.dispatcher.oldest_unfinished()
        return oldest if oldest is not None else self.next_id

    async def _get_updates(self, offset: int, timeout: float, limit: int) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"offset": offset, "limit": limit, "timeout": int(timeout)}
        if self.allowed_updates is not None:
            query["allowed_updates"] = json.dumps(self.allowed_updates)
        url = f"{self.bot.base_url}/getUpdates?{urlencode(query)}"
        result = await self._request.post(url, read_timeout=timeout + 10.0)
        self.polls += 1
        return result if isinstance(result, list) else []

    async def _wait_for_turn(self, last_poll: float) -> None:
        """While updates are in flight, poll again only once one finished (or ``idle_poll``
        seconds passed: a slow one, e.g. a reply being retried, does not hold up the others),
        ``pace`` after the last poll, and with room for ``min_room`` new updates. While a
        backlog drains (``backlog`` or more in flight) and the last poll brought nothing new,
        ``idle_poll`` after it instead: each answer sent would otherwise cost a round trip
        returning the whole backlog again; with a few in flight, a new question must not wait."""
        dispatcher = self.dispatcher
        while dispatcher.pending and not self._stopping.is_set():
            in_flight = self.next_id - self.offset
            room = MAX_UPDATES - in_flight
            if room >= self.min_room:
                await dispatcher.changed(self.idle_poll)
                draining = self._dry and in_flight >= self.backlog
                gap = self.idle_poll if draining else self.pace
                wait = gap - (time.monotonic() - last_poll)
                if wait > 0:
                    await self._sleep(wait)
                return
            await dispatcher.changed(self.idle_poll)

    async def run(self) -> None:
        await self.bot.delete_webhook()  # getUpdates is refused while a webhook is set
        failures = 0
        last_poll = 0.0
        await self._request.initialize()
        try:
            while not self._stopping.is_set():
                await self._wait_for_turn(last_poll)
                if self._stopping.is_set():
                    break
                timeout = 0.0 if self.dispatcher.pending else self.long_poll
                last_poll = time.monotonic()
                try:
                    raw = await self._interruptible(self._get_updates(self.offset, timeout, 100))
                except InvalidToken:
                    raise
                except Conflict as exc:
                    if not self._conflict:
                        log.error(
                            "Telegram refuses to give this process updates: another process is "
                            "polling with the same bot token, or a webhook is set (409 %s). Stop "
                            "the other one; retrying every %.0f s meanwhile",
                            exc.message,
                            self.conflict_retry,
                        )
                    self._conflict = True
                    await self._sleep(self.conflict_retry)
                    continue
                except RetryAfter as exc:
                    await self._sleep(retry_after_seconds(exc))
                    continue
                except (NetworkError, TelegramError) as exc:
                    failures += 1
                    delay = self.policy.backoff(failures)
                    log.warning("getUpdates failed (%s); will retry in %.1f s", exc, delay)
                    await self._sleep(delay)
                    continue
                if raw is None:  # stopped while waiting
                    break
                if self._conflict:
                    log.info("getUpdates works again (the other process stopped)")
                    self._conflict = False
                failures = 0
                self._dry = self._take(raw) == 0
        finally:
            await self._request.shutdown()

    def _take(self, raw: list[dict[str, Any]]) -> int:
        """Submit the updates not fetched before; returns how many there were."""
        new = 0
        for data in raw:
            update_id = data.get("update_id")
            if not isinstance(update_id, int) or update_id < self.next_id:
                continue  # in flight or handled already (the offset is the oldest unfinished)
            self.next_id = update_id + 1
            new += 1
            try:
                update = Update.de_json(data, self.bot)
            except Exception:  # a malformed update must not stop polling
                log.exception("could not read update %d; skipped", update_id)
                continue
            self.dispatcher.submit(update)
        return new

    async def _interruptible(self, call: Awaitable[Any]) -> Any:
        """``call``'s result, or None when ``stop`` comes first (the call is cancelled: what it
        would have returned is not acknowledged and comes again next time)."""
        task = asyncio.ensure_future(call)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return None
        return task.result()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def stop(self) -> None:
        """Fetch nothing more (a long poll in progress is abandoned)."""
        self._stopping.set()

    async def acknowledge(self) -> None:
        """Tell Telegram which updates are handled (all below the oldest unfinished one)."""
        if self.next_id == 0:
            return  # nothing was fetched
        request = AiohttpRequest(1, read_timeout=10.0)
        await request.initialize()
        self._request = request
        try:
            await self._get_updates(self.offset, 0, 1)
        except TelegramError as exc:
            log.warning("could not acknowledge the handled updates (%s): they come again", exc)
        finally:
            await request.shutdown()


class WebhookServer:
    """Receives updates from Telegram's webhook requests (tornado, as python-telegram-bot's own
    server); answers each request once its update is handled, 403 without the secret token,
    503 while stopping (Telegram delivers it again later)."""

    def __init__(
        self,
        bot: Bot,
        dispatcher: Dispatcher,
        *,
        listen: str,
        port: int,
        path: str,
        secret: str | None,
        max_pending: int,
        state: BotState | None = None,
    ) -> None:
        import tornado.httpserver
        import tornado.web

        server = self

        class Handler(tornado.web.RequestHandler):
            async def post(self) -> None:
                await server.handle(self)

        self.bot = bot
        self.dispatcher = dispatcher
        self.secret = secret
        self.max_pending = max_pending
        self.stopping = False
        routes: list[Any] = [(rf"/{path.strip('/')}/?", Handler)]
        if state is not None:
            routes = observability_routes(state, lambda: server.stopping) + routes
        app = tornado.web.Application(routes)
        app.log_request = lambda handler: None  # type: ignore[method-assign]
        self._server = tornado.httpserver.HTTPServer(app)
        self.listen, self.port = listen, port

    async def handle(self, request: Any) -> None:
        given = request.request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if self.secret is not None and not hmac.compare_digest(given, self.secret):
            log.info("webhook request without the right secret token refused")
            request.set_status(403)
            return
        if self.stopping:
            request.set_status(503)
            return
        try:
            data = json.loads(request.request.body)
            update = Update.de_json(data, self.bot)
        except Exception:  # not an update: say so, keep serving
            request.set_status(400)
            return
        if update is None:
            request.set_status(400)
            return
        while self.dispatcher.pending >= self.max_pending and not self.stopping:
            await self.dispatcher.changed(1.0)  # back-pressure: Telegram waits and queues
        task = self.dispatcher.submit(update)
        await asyncio.wait([task])
        request.set_status(503 if task.cancelled() else 200)

    async def start(self) -> None:
        self._server.listen(self.port, address=self.listen)

    def stop_accepting(self) -> None:
        self.stopping = True
        self._server.stop()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.close_all_connections(), 2.0)


# --- health and metrics ----------------------------------------------------------------------

#: Seconds a health check waits for the storage.
HEALTH_TIMEOUT = 2.0


async def health(state: BotState, stopping: bool = False) -> tuple[bool, dict[str, Any]]:
    """(healthy, report): the process is up and not stopping, an index is loaded, and the
    storage answers."""
    report: dict[str, Any] = {"stopping": stopping}
    healthy = not stopping
    if state.retriever is None:
        report["index"], healthy = None, False
    else:
        build, built_at = index_build(state.retriever)
        report["index"] = {"build": build, "built_at": built_at}
    if state.storage is None:
        report["storage"], healthy = "not open", False
    else:
        try:
            await asyncio.wait_for(state.off_loop(state.storage.ping), HEALTH_TIMEOUT)
            report["storage"] = "ok"
        except Exception as exc:  # any failure is "unhealthy"; say which, never the URL
            report["storage"], healthy = f"unreachable ({type(exc).__name__})", False
    report["status"] = "ok" if healthy else "unhealthy"
    return healthy, report


def observability_routes(state: BotState, stopping: Callable[[], bool]) -> list[Any]:
    """tornado routes for ``GET /healthz`` (200 or 503, a JSON report) and ``GET /metrics``
    (the Prometheus text format)."""
    import tornado.web

    from bot.telegram.metrics import CONTENT_TYPE

    class Health(tornado.web.RequestHandler):
        async def get(self) -> None:
            healthy, report = await health(state, stopping())
            self.set_status(200 if healthy else 503)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(report))

    class Metrics(tornado.web.RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", CONTENT_TYPE)
            self.finish(state.metrics.render())

    return [(r"/healthz", Health), (r"/metrics", Metrics)]


class ObservabilityServer:
    """``/healthz`` and ``/metrics`` on a port of their own (long polling has no web server);
    on 127.0.0.1 only, for a local scraper or supervisor."""

    def __init__(self, state: BotState, port: int, listen: str = "127.0.0.1") -> None:
        import tornado.httpserver
        import tornado.web

        self.stopping = False
        app = tornado.web.Application(observability_routes(state, lambda: self.stopping))
        app.log_request = lambda handler: None  # type: ignore[method-assign]
        self._server = tornado.httpserver.HTTPServer(app)
        self.listen, self.port = listen, port

    async def start(self) -> None:
        self._server.listen(self.port, address=self.listen)

    async def close(self) -> None:
        self.stopping = True
        self._server.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.close_all_connections(), 2.0)


# --- index roll-out --------------------------------------------------------------------------


async def reload_now(state: BotState, why: str) -> None:
    """Reload the index for ``why`` (a signal, a request through storage); on failure keep the
    loaded one and log why."""
    if state.reload_lock.locked():
        log.info("reload (%s) skipped: one is already running", why)
        return
    started = time.monotonic()
    try:
        retriever = await state.reload()
    except load_errors() as exc:
        log.error("reload (%s) failed, keeping the loaded index: %s", why, exc)
        return
    log.info(
        "reloaded (%s): %d items in %.1f s, index %s",
        why,
        len(retriever.knowledge.items),
        time.monotonic() - started,
        index_build(retriever)[0],
    )


async def _reload_watch(state: BotState, interval: float = RELOAD_POLL) -> None:
    """Reload when another process (``/reload all``) raised the storage's reload generation."""
    while True:
        await asyncio.sleep(interval)
        try:
            generation = await state.off_loop(state.db.reload_generation)
        except Exception:  # the storage is away for a moment: look again next time
            log.debug("could not read the reload generation", exc_info=True)
            continue
        if generation > state.reload_seen:
            state.reload_seen = generation
            await reload_now(state, f"requested through storage, generation {generation}")


# --- retention -------------------------------------------------------------------------------


def retention_cutoff(now: float, days: int) -> float | None:
    """Question texts logged before this Unix time are purged; None keeps them forever."""
    return now - days * DAY if days > 0 else None


async def purge_old(state: BotState, now: float | None = None) -> None:
    cutoff = retention_cutoff(time.time() if now is None else now, state.settings.retention_days)
    if cutoff is None:
        return
    purged = await state.off_loop(state.db.purge, cutoff)
    if purged.questions or purged.votes:
        log.info(
            "retention: deleted %d questions and %d votes older than %d days",
            purged.questions,
            purged.votes,
            state.settings.retention_days,
        )


async def _retention_loop(state: BotState, interval: float = DAY) -> None:
    while True:
        try:
            await purge_old(state)
        except Exception:  # retry tomorrow; answering goes on
            log.exception("retention purge failed")
        await asyncio.sleep(interval)


# --- lifecycle -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(
    application: Application[Any, Any, Any, Any, Any, Any],
    settings: Settings,
    *,
    allowed_updates: Sequence[str] | None = None,
    webhook_secret: str | None = None,
    long_poll: float = 10.0,
    conflict_retry: float = 15.0,
    hurry: asyncio.Event | None = None,
) -> AsyncIterator[Poller | WebhookServer]:
    """The bot running inside the block: start-up (``post_init`` included), then updates from
    long polling, or from a webhook when ``settings.webhook_url`` is set; on leaving, the
    graceful stop of the module docstring."""
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        state = cast(BotState, application.bot_data["state"])
        dispatcher = Dispatcher(application.process_update, settings.max_concurrent_updates)
        source: Poller | WebhookServer
        if settings.webhook_url:
            source = WebhookServer(
                application.bot,
                dispatcher,
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                path=urlparse(settings.webhook_url).path,
                secret=webhook_secret,
                max_pending=MAX_UPDATES,
                state=state,
            )
            await source.start()
            if settings.webhook_register:
                await application.bot.set_webhook(
                    settings.webhook_url,
                    secret_token=webhook_secret,
                    allowed_updates=allowed_updates,
                    max_connections=40,
                )
            else:
                log.info("webhook not registered by this process (BOT_WEBHOOK_REGISTER=false)")
            fetching: asyncio.Task[None] | None = None
        else:
            source = Poller(
                application.bot,
                dispatcher,
                allowed_updates=allowed_updates,
                long_poll=long_poll,
                conflict_retry=conflict_retry,
            )
            fetching = source.task = asyncio.create_task(source.run(), name="poller")
        retention = asyncio.create_task(_retention_loop(state), name="retention")
        watch = asyncio.create_task(_reload_watch(state), name="reload-watch")
        observability = None
        if settings.metrics_port is not None and isinstance(source, Poller):
            observability = ObservabilityServer(state, settings.metrics_port)
            await observability.start()
        try:
            yield source
            if fetching is not None and fetching.done():
                fetching.result()  # the poller's fatal error (a revoked token) ends the bot
        finally:
            started = time.monotonic()
            if isinstance(source, Poller):
                source.stop()
                if fetching is not None:
                    await asyncio.gather(fetching, return_exceptions=True)
            else:
                source.stop_accepting()
            if dispatcher.pending:
                log.info(
                    "stopping: finishing %d updates already received (at most %.0f s)",
                    dispatcher.pending,
                    settings.shutdown_timeout,
                )
            abandoned = await dispatcher.drain(settings.shutdown_timeout, hurry)
            if abandoned:
                log.warning(
                    "stopped before %d updates were handled (%s); they are not acknowledged "
                    "and come again at the next start",
                    len(abandoned),
                    ", ".join(map(str, abandoned)),
                )
            if isinstance(source, Poller):
                await source.acknowledge()
            else:
                await source.close()
            retention.cancel()
            watch.cancel()
            await asyncio.gather(retention, watch, return_exceptions=True)
            if observability is not None:
                await observability.close()
            remaining = max(settings.shutdown_timeout - (time.monotonic() - started), 1.0)
            try:
                await asyncio.wait_for(application.stop(), remaining)
            except TimeoutError:
                log.warning("background tasks (e.g. a /reload) still running at exit")
    finally:
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
        await application.shutdown()


async def serve_until_signal(
    application: Application[Any, Any, Any, Any, Any, Any],
    settings: Settings,
    *,
    allowed_updates: Sequence[str] | None = None,
    webhook_secret: str | None = None,
    signals: Sequence[int] = (),
    reload_signal: int | None = None,
) -> None:
    """``running`` until one of ``signals`` arrives (a second one cuts the drain short), or
    until the poller stops by itself on a fatal error (then re-raised). ``reload_signal``
    (SIGHUP) reloads the index in place."""
    loop = asyncio.get_running_loop()
    stop, hurry = asyncio.Event(), asyncio.Event()

    def on_signal(number: int) -> None:
        if stop.is_set():
            log.warning("second stop signal: exiting without waiting for the rest")
            hurry.set()
            return
        log.info("stop signal received")
        stop.set()

    for number in signals:
        loop.add_signal_handler(number, on_signal, number)
    state = cast(BotState, application.bot_data["state"])
    reloading: set[asyncio.Task[None]] = set()

    def on_hangup() -> None:
        task = asyncio.ensure_future(reload_now(state, "SIGHUP"))
        reloading.add(task)
        task.add_done_callback(reloading.discard)

    if reload_signal is not None:
        loop.add_signal_handler(reload_signal, on_hangup)
    try:
        async with running(
            application,
            settings,
            allowed_updates=allowed_updates,
            webhook_secret=webhook_secret,
            hurry=hurry,
        ) as source:
            stopped = asyncio.ensure_future(stop.wait())
            waits: list[asyncio.Future[Any]] = [stopped]
            if isinstance(source, Poller) and source.task is not None:
                waits.append(source.task)
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
    finally:
        for number in signals:
            loop.remove_signal_handler(number)
        if reload_signal is not None:
            loop.remove_signal_handler(reload_signal)

"""Offline console chat: the real aiogram Dispatcher and handlers, driven from a terminal.

No network is touched: :class:`ConsoleSession` (an aiogram ``BaseSession``) answers every Bot API
call locally with properly typed results and renders it with rich; :class:`ConsoleChat` turns
typed lines into ``message`` updates and button numbers into ``callback_query`` updates.
The session's offline answers (result building, chat state) are :class:`bot.offline.OfflineSession`'s,
shared with the tests' :class:`bot.offline.RecordingSession`.

Typical use::

    bot = build_console_bot("var/console-files")
    await ConsoleChat(dp, bot, user={"id": 1001, "first_name": "Anna", "language_code": "lv"}).run()
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import (
    AnswerCallbackQuery,
    Close,
    DeleteMessage,
    DeleteMyCommands,
    DeleteWebhook,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    GetMyCommands,
    GetUpdates,
    GetWebhookInfo,
    LogOut,
    SendChatAction,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.types import (
    Update,
)
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from bot.offline import (
    Button,
    ButtonHandle,
    ChatId,
    JsonDict,
    OfflineCall,
    OfflineSession,
    say,
)
from bot.routers import coordinator, report
from bot.throttle import Throttle, install
from reporting_forms.texts import normalise_language
from storage.repositories import Repos

__all__ = [
    "CONSOLE_TOKEN",
    "DEFAULT_OUTPUT_DIR",
    "ConsoleChat",
    "ConsoleSession",
    "ConsoleView",
    "build_console_bot",
    "scripted_input",
]

InputFn = Callable[[str], "str | Awaitable[str]"]
"""Reads one line given a prompt; raises EOFError when there is no more input."""

CONSOLE_TOKEN = "1:console-offline"
DEFAULT_OUTPUT_DIR = Path("var/console-files")
DEFAULT_USER: JsonDict = {"id": 1001, "first_name": "Anna", "language_code": "lv"}
QUIT_COMMANDS = frozenset({"/quit", "/exit"})
BUTTON_PREFIX = re.compile(r"#\s*(\d+|[A-Za-z])")
"""``#2`` always presses button [2]; a bare ``2`` does only when the question expects no number.
``#X`` (or a bare ``X``) presses the navigation button lettered [X]."""
# --------------------------------------------------------------------------------------------
# Console rendering
# --------------------------------------------------------------------------------------------


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


class ConsoleSession(OfflineSession):
    """Offline session that renders every call to a rich Console and saves sent files."""

    def __init__(
        self,
        console: Console | None = None,
        output_dir: str | Path = DEFAULT_OUTPUT_DIR,
        *,
        bot_name: str = "resobot",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.console = console or Console()
        self.output_dir = Path(output_dir)
        self.bot_name = bot_name
        self.saved_files: list[Path] = []
        self._renderers: dict[type[TelegramMethod[Any]], Callable[[OfflineCall], None]] = {
            SendMessage: self._render_message,
            EditMessageText: self._render_edit,
            EditMessageCaption: self._render_edit,
            EditMessageReplyMarkup: self._render_markup_edit,
            SendDocument: self._render_file,
            SendPhoto: self._render_file,
            AnswerCallbackQuery: self._render_callback_answer,
            SendChatAction: self._render_chat_action,
            SetMyCommands: self._render_commands,
            DeleteMessage: self._render_delete,
            GetMe: self._render_nothing,
            GetUpdates: self._render_nothing,
            GetWebhookInfo: self._render_nothing,
            GetMyCommands: self._render_nothing,
            DeleteMyCommands: self._render_nothing,
            DeleteWebhook: self._render_nothing,
            Close: self._render_nothing,
            LogOut: self._render_nothing,
        }

    async def on_call(self, bot: Bot, call: OfflineCall) -> None:
        if self._elsewhere(call):
            await self._render_elsewhere(call)
            return
        self._renderers.get(type(call.method), self._render_other)(call)

    # -- calls for another chat (a contact told of a review, a reminder) -------------------------
    def _elsewhere(self, call: OfflineCall) -> bool:
        """The call went to a chat that is not the console user's."""
        return (
            self.user_chat_id is not None and call.chat_id is not None and call.chat_id != self.user_chat_id
        )

    async def _recipient_title(self, chat_id: ChatId) -> str:
        found = None
        if self.recipient is not None:
            try:  # the name is a courtesy: never let the lookup break or hold up the console
                found = await asyncio.wait_for(self.recipient(chat_id), timeout=2)
            except Exception:
                found = None
        name, institution = found if found else (None, None)
        return say(
            self.lang, "other_chat", bot=self.bot_name, name=name, institution=institution, chat=chat_id
        )

    async def _render_elsewhere(self, call: OfflineCall) -> None:
        """A message for another user: shown under a title naming its recipient, its buttons
        listed but not numbered (they are not the console user's to press)."""
        if call.message is None and call.text is None and call.file_name is None:
            return  # nothing to show (a deleted message, an answered query)
        assert call.chat_id is not None
        body = Text()
        if call.file_name is not None:
            path = self._save(call)
            body.append(f"📎 {call.file_name}", style="bold")
            body.append("\n" + say(self.lang, "saved_to", path=str(path)), style="dim")
        if call.text is not None and call.text.plain:
            if body.plain:
                body.append("\n")
            body.append_text(call.text)
        self._panel(body, await self._recipient_title(call.chat_id), "blue")
        for row in call.buttons or []:
            self.console.print(Text("  " + "  ".join(f"· {b.label}" for b in row), style="dim"))

    # -- helpers ------------------------------------------------------------------------------------
    def _panel(self, body: Text, title: str, border: str) -> None:
        self.console.print(
            Panel(body, title=Text(title), title_align="left", border_style=border, expand=False)
        )

    def _render_buttons(self, rows: list[list[Button]] | None) -> None:
        if not rows:
            return
        for row in rows:
            line = Text("  ")
            for index, button in enumerate(row):
                if index:
                    line.append("  ")
                if button.handle is not None:
                    line.append(f"[{button.handle}]", style="bold yellow")
                    line.append(f" {button.label}")
                elif button.kind == "url":
                    line.append(f"🔗 {button.label}", style="bright_blue")
                    line.append(f" ({button.value})", style="dim")
                else:
                    line.append(f"· {button.label}", style="dim")
            self.console.print(line)

    def _save(self, call: OfflineCall) -> Path:
        name = call.file_name or "document"
        path = self.output_dir / name
        stem, suffix = Path(name).stem, Path(name).suffix
        counter = 2
        while path in self.saved_files:  # same name twice in one session: keep both
            path = self.output_dir / f"{stem}-{counter}{suffix}"
            counter += 1
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(call.file_bytes or b"")
        self.saved_files.append(path)
        return path

    def _message_id(self, call: OfflineCall) -> str:
        return f"#{call.message['message_id']}" if call.message else "#?"

    # -- renderers (one per method type) -----------------------------------------------------------
    def _render_message(self, call: OfflineCall) -> None:
        self._panel(call.text or Text(""), f"{self.bot_name} · {self._message_id(call)}", "green")
        self._render_buttons(call.buttons)

    def _render_edit(self, call: OfflineCall) -> None:
        if call.message is None:
            self.console.print(Text(say(self.lang, "inline_edited"), style="dim"))
            return
        title = say(self.lang, "edited", bot=self.bot_name, id=self._message_id(call))
        self._panel(call.text or Text(""), title, "yellow")
        self._render_buttons(call.buttons)

    def _render_markup_edit(self, call: OfflineCall) -> None:
        if call.buttons == []:
            self.console.print(
                Text(say(self.lang, "buttons_removed", id=self._message_id(call)), style="dim")
            )
            return
        self.console.print(Text(say(self.lang, "new_buttons", id=self._message_id(call)), style="yellow"))
        self._render_buttons(call.buttons)

    def _render_file(self, call: OfflineCall) -> None:
        path = self._save(call)
        size = _human_size(len(call.file_bytes or b""))
        body = Text.assemble(("📎 ", ""), (call.file_name or "document", "bold"), (f"  {size}", "dim"))
        body.append("\n" + say(self.lang, "saved_to", path=str(path)), style="dim")
        if call.text is not None and call.text.plain:
            body.append("\n")
            body.append_text(call.text)
        self._panel(body, f"{self.bot_name} · {self._message_id(call)}", "green")
        self._render_buttons(call.buttons)

    def _render_callback_answer(self, call: OfflineCall) -> None:
        method = call.method
        assert isinstance(method, AnswerCallbackQuery)
        if method.text:
            style = "bold magenta" if method.show_alert else "magenta"
            prefix = "⚠ " if method.show_alert else "🔔 "
            self.console.print(Text(prefix + method.text, style=style))

    def _render_chat_action(self, call: OfflineCall) -> None:
        method = call.method
        assert isinstance(method, SendChatAction)
        line = say(self.lang, "chat_action", bot=self.bot_name, action=method.action)
        self.console.print(Text(line, style="dim italic"))

    def _render_commands(self, call: OfflineCall) -> None:
        method = call.method
        assert isinstance(method, SetMyCommands)
        names = ", ".join(f"/{c.command}" for c in method.commands)
        scope = method.scope.type if method.scope else "default"
        scope_name = str(getattr(scope, "value", scope))
        line = say(self.lang, "commands", scope=scope_name, language=method.language_code, names=names)
        self.console.print(Text(line, style="dim"))

    def _render_delete(self, call: OfflineCall) -> None:
        method = call.method
        assert isinstance(method, DeleteMessage)
        self.console.print(Text(say(self.lang, "deleted", id=method.message_id), style="dim"))

    def _render_nothing(self, call: OfflineCall) -> None:
        return None

    def _render_other(self, call: OfflineCall) -> None:
        if call.message is not None:
            self._render_message(call)
        else:
            self.console.print(Text(f"· {call.api_method}", style="dim"))


# --------------------------------------------------------------------------------------------
# The chat loop
# --------------------------------------------------------------------------------------------


def scripted_input(lines: Iterable[str]) -> InputFn:
    """An ``input_fn`` that returns the given lines one by one, then raises EOFError."""
    iterator = iter(lines)

    async def read(prompt: str) -> str:
        try:
            return next(iterator)
        except StopIteration:
            raise EOFError from None

    return read


async def _read_stdin(console: Console, prompt: str) -> str:
    """Read a line without blocking the loop.

    Uses a daemon thread (not ``asyncio.to_thread``) so Ctrl-C/exit never waits on a blocked
    ``input()``.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(line: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(line or "")

    def worker() -> None:
        try:
            line = console.input(prompt)
        except BaseException as exc:  # EOFError / KeyboardInterrupt travel to the loop
            loop.call_soon_threadsafe(deliver, None, exc if isinstance(exc, Exception) else EOFError())
        else:
            loop.call_soon_threadsafe(deliver, line, None)

    threading.Thread(target=worker, name="console-input", daemon=True).start()
    return await future


@dataclass(frozen=True)
class ConsoleView:
    """What the console needs to know about the user's current step."""

    expects_number: bool = False
    """The question is answered with a typed number: a bare "1" is then the answer, not button [1]."""
    lang: str | None = None
    """The user's language now (after /language), for the console's own text."""


ViewFn = Callable[[], Awaitable[ConsoleView]]


class ConsoleChat:
    """Feeds typed lines to the Dispatcher as updates from one private-chat user.

    Buttons are picked by number: ``#2`` always presses button [2]; a bare ``2`` does too,
    except when the current question expects a typed number (a count or a percentage) — then
    ``2`` is the answer. Navigation buttons have a letter instead, the same on every question
    (Atpakaļ [A], Izlaist [I], Atcelt [X]; in English B, S, X): ``#A`` or ``A``. After every
    step the console prints which rule applies.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        user: Mapping[str, Any] | None = None,
        console: Console | None = None,
        input_fn: InputFn | None = None,
        *,
        echo: bool | None = None,
        prompt: str = "› ",
        first_update_id: int | None = None,
        view: ViewFn | None = None,
        **feed_kwargs: Any,
    ) -> None:
        """
        :param user: {"id", "first_name", "language_code", optional "last_name"/"username"}.
        :param console: where to print (default: the ConsoleSession's console).
        :param input_fn: reads a line given a prompt (sync or async); EOFError ends the chat.
        :param echo: print the user's lines (default: only when input_fn is given).
        :param first_update_id: update ids count up from here (default: the clock in ms, so ids
            never repeat across console sessions — the bot drops update ids it has seen before).
        :param view: tells whether the current question expects a typed number, and the user's
            language (default: asks resobot's report flow; any other dispatcher: no and unchanged).
        :param feed_kwargs: extra keyword data passed to ``dispatcher.feed_update``.
        """
        if not isinstance(bot.session, OfflineSession):
            raise TypeError("ConsoleChat needs a bot with an OfflineSession (see build_console_bot)")
        self.dispatcher = dispatcher
        self.bot = bot
        self.session: OfflineSession = bot.session
        data = dict(user or DEFAULT_USER)
        self.user: JsonDict = {"is_bot": False, **data}
        self.user_id = int(self.user["id"])
        self.chat: JsonDict = {"id": self.user_id, "type": "private", "first_name": self.user["first_name"]}
        for key in ("last_name", "username"):
            if self.user.get(key):
                self.chat[key] = self.user[key]
        self.session.remember_chat(self.chat)
        self.session.user_chat_id = self.user_id
        if self.session.recipient is None:
            self.session.recipient = self.resobot_recipient
        default_console = self.session.console if isinstance(self.session, ConsoleSession) else None
        self.console = console or default_console or Console()
        self.input_fn = input_fn
        self.echo = input_fn is not None if echo is None else echo
        self.prompt = prompt
        self.feed_kwargs = feed_kwargs
        self.errors: list[Exception] = []
        self._update_ids = itertools.count(first_update_id or int(time.time() * 1000))
        self._callback_ids = itertools.count(1)
        self._view_fn: ViewFn = view or self.resobot_view
        self._view: ConsoleView | None = None
        self._introduced = False
        self._hinted: tuple[Any, ...] | None = None
        self.lang = normalise_language(self.user.get("language_code"))

    @property
    def lang(self) -> str:
        """The language of the console's own text: the user's."""
        return self._lang

    @lang.setter
    def lang(self, value: str) -> None:
        self._lang = normalise_language(value)
        self.session.lang = self._lang

    # -- the current step -------------------------------------------------------------------------
    async def resobot_view(self) -> ConsoleView:
        """resobot's flows: a count or percent question of a report, and the value of /indicator,
        expect a typed number."""
        catalog = self.dispatcher.workflow_data.get("catalog")
        services = self.dispatcher.workflow_data.get("services")
        if catalog is None or services is None:
            return ConsoleView()
        key = StorageKey(bot_id=self.bot.id, chat_id=self.user_id, user_id=self.user_id)
        async with services.db.bound() as session:
            state = await self.dispatcher.storage.get_state(key)
            data = await self.dispatcher.storage.get_data(key)
            contact = await Repos(session).people.contact_by_telegram(self.user_id)
        expects = report.expects_typed_number(catalog, state, data) or coordinator.expects_typed_number(state)
        return ConsoleView(expects, contact.language if contact else None)

    async def resobot_recipient(self, chat_id: ChatId) -> tuple[str, str] | None:
        """resobot's contact in a chat: (display name, institution); None when not a contact."""
        services = self.dispatcher.workflow_data.get("services")
        if services is None or not isinstance(chat_id, int):
            return None
        async with services.db.current() as session:
            repos = Repos(session)
            contact = await repos.people.contact_by_telegram(chat_id)
            if contact is None:
                return None
            institution = await repos.people.institution_by_id(contact.institution_id)
        return contact.display_name, institution.abbr if institution else ""

    async def refresh_view(self) -> ConsoleView:
        try:
            self._view = await self._view_fn()
        except Exception as exc:  # the console keeps going; numbers then press buttons
            self.console.print(Text(f"✖ {type(exc).__name__}: {exc}", style="bold red"))
            self._view = ConsoleView()
        if self._view.lang:
            self.lang = self._view.lang
        return self._view

    def introduce(self) -> None:
        """The how-to line, once, before the first exchange."""
        if not self._introduced:
            self._introduced = True
            self.console.print(Text(say(self.lang, "intro"), style="dim"))

    def _hint(self, *, again: bool = False) -> None:
        """How to pick the buttons now shown (a number, or # when numbers are answers); said
        when the buttons or the rule change, or ``again``."""
        shown = self.session.buttons(self.user_id)
        numbers = sorted(h for h in shown if isinstance(h, int))
        letters = [h for h in shown if isinstance(h, str)]
        expects_number = bool(self._view and self._view.expects_number)
        key = (expects_number, tuple((h, b.value, id(b.message)) for h, b in shown.items()))
        if not shown or (key == self._hinted and not again):
            return
        self._hinted = key
        name = "hint_numbers" if expects_number else "hint_buttons"
        first, last = (numbers[0], numbers[-1]) if numbers else (None, None)
        self.console.print(Text(say(self.lang, name, first=first, last=last, keys=letters), style="dim"))

    def pick(self, line: str, view: ConsoleView) -> Button | ButtonHandle | None:
        """The button a line presses: "#N" and "#X" always; a bare number unless numbers are
        answers; a bare letter when a navigation button has it. An int or str: the number or
        letter of a button that is not shown; None: the line is a message."""
        command = line.strip()
        shown = self.session.buttons(self.user_id)
        prefixed = BUTTON_PREFIX.fullmatch(command)
        if prefixed is not None:
            raw = prefixed.group(1)
            handle: ButtonHandle = int(raw) if raw.isdecimal() else raw.upper()
            return shown.get(handle, handle)
        if len(command) == 1 and command.upper() in shown:  # a navigation letter
            return shown[command.upper()]
        if not command.isdecimal() or view.expects_number:
            return None
        return shown.get(int(command))

    # -- loop ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Read lines until /quit, /exit or EOF; every line becomes an update."""
        self.introduce()
        while True:
            try:
                line = await self._read()
            except (EOFError, KeyboardInterrupt):
                break
            if not await self.handle_line(line):
                break

    async def _read(self) -> str:
        if self.input_fn is None:
            return await _read_stdin(self.console, self.prompt)
        result = self.input_fn(self.prompt)
        if inspect.isawaitable(result):
            return await result
        return result

    async def handle_line(self, line: str, *, echo: bool | None = None) -> bool:
        """Process one input line; returns False when the chat should end. ``echo=True`` shows
        the line too (one typed on the user's behalf); by default as ``self.echo`` says."""
        echo = self.echo if echo is None else echo
        text = line.rstrip("\r\n")
        command = text.strip()
        if command in QUIT_COMMANDS:
            return False
        if not command:
            return True
        self.introduce()
        button = self.pick(command, self._view or await self.refresh_view())
        if isinstance(button, int | str):
            self.console.print(Text(say(self.lang, "no_such_button", number=button), style="magenta"))
            self._hint(again=True)
            return True
        if button is not None:
            if echo:
                self.console.print(
                    Text.assemble(
                        (f"{self.user['first_name']} › ", "bold"),
                        f"[{command}] ",
                        (button.label, "bold yellow"),
                    )
                )
            if button.kind == "callback":
                await self.feed(self.callback_update(button))
            else:
                await self.feed(self.message_update(button.value or button.label))
        else:
            if echo:
                self.console.print(Text.assemble((f"{self.user['first_name']} › ", "bold"), text))
            await self.feed(self.message_update(text))
        await self.refresh_view()
        self._hint()
        return True

    # -- updates --------------------------------------------------------------------------------------
    def message_update(self, text: str) -> Update:
        """A ``message`` update from the user (commands get a bot_command entity)."""
        message: JsonDict = {
            "message_id": self.session.next_message_id(self.user_id),
            "date": int(time.time()),
            "chat": dict(self.chat),
            "from": dict(self.user),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}
            ]
        self.session.store_message(message)
        return self._update({"message": message})

    def callback_update(self, button: Button) -> Update:
        """A ``callback_query`` update for an inline button (message = the keyboard's message)."""
        if button.kind != "callback" or button.message is None:
            raise ValueError(f"button {button.label!r} is not a callback button")
        chat_id = button.message["chat"]["id"]
        message = self.session.messages.get((chat_id, button.message["message_id"]), button.message)
        query = {
            "id": f"console-{next(self._callback_ids)}",
            "from": dict(self.user),
            "chat_instance": f"console-{chat_id}",
            "message": message,
            "data": button.value,
        }
        return self._update({"callback_query": query})

    def _update(self, payload: JsonDict) -> Update:
        data = {"update_id": next(self._update_ids), **payload}
        return Update.model_validate(data, context={"bot": self.bot})

    async def send_text(self, text: str) -> Any:
        """Feed a text message (programmatic use, e.g. benchmarks)."""
        return await self.feed(self.message_update(text))

    async def click(self, number: ButtonHandle) -> Any:
        """Click the currently shown button ``number`` (or navigation letter)."""
        button = self.session.buttons(self.user_id).get(number)
        if button is None:
            raise LookupError(f"no button [{number}] is shown")
        if button.kind == "callback":
            return await self.feed(self.callback_update(button))
        return await self.feed(self.message_update(button.value or button.label))

    async def feed(self, update: Update) -> Any:
        """Feed one update; handler errors are printed (and kept in ``errors``), never raised."""
        try:
            result = await self.dispatcher.feed_update(self.bot, update, **self.feed_kwargs)
            if isinstance(result, TelegramMethod):  # webhook-style "return SendMessage(...)"
                result = await self.bot(result)
        except Exception as exc:
            self.errors.append(exc)
            self.console.print(Text(f"✖ {type(exc).__name__}: {exc}", style="bold red"))
            return None
        if result is UNHANDLED:
            self.console.print(Text(say(self.lang, "no_handler"), style="dim"))
        return result


def build_console_bot(
    output_dir: str | Path = DEFAULT_OUTPUT_DIR,
    console: Console | None = None,
    *,
    token: str = CONSOLE_TOKEN,
    throttle: Throttle | None = None,
) -> Bot:
    """An aiogram Bot with a :class:`ConsoleSession` and HTML as the default parse mode; its
    requests pass the rate limits of bot/throttle.py like the Telegram bot's (default limits
    unless ``throttle`` is given)."""
    session = ConsoleSession(console=console, output_dir=output_dir)
    bot = Bot(token=token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    install(bot, throttle)
    return bot

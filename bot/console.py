"""Offline console chat: the real aiogram Dispatcher and handlers, driven from a terminal.

No network is touched: :class:`ConsoleSession` (an aiogram ``BaseSession``) answers every Bot API
call locally with properly typed results and renders it with rich; :class:`ConsoleChat` turns
typed lines into ``message`` updates and button numbers into ``callback_query`` updates.

:class:`RecordingSession` shares the result building without rendering - for unit tests and
benchmarks (``session.requests`` holds the method objects).

Typical use::

    bot = build_console_bot("var/console-files")
    await ConsoleChat(dp, bot, user={"id": 1001, "first_name": "Anna", "language_code": "lv"}).run()
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import mimetypes
import re
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

from aiogram import Bot, Dispatcher
from aiogram.client.default import Default, DefaultBotProperties
from aiogram.client.session.base import BaseSession
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
    Response,
    SendChatAction,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    InlineKeyboardMarkup,
    InputFile,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from rich.console import Console
from rich.panel import Panel
from rich.style import Style
from rich.text import Text

from bot.throttle import Throttle, install
from reporting_forms.texts import LANGUAGES, normalise_language, plain

__all__ = [
    "CONSOLE_TOKEN",
    "DEFAULT_OUTPUT_DIR",
    "Button",
    "ConsoleChat",
    "ConsoleSession",
    "ConsoleView",
    "OfflineCall",
    "OfflineSession",
    "RecordingSession",
    "build_console_bot",
    "html_to_rich",
    "scripted_input",
]

JsonDict = dict[str, Any]
ChatId = int | str
InputFn = Callable[[str], "str | Awaitable[str]"]
"""Reads one line given a prompt; raises EOFError when there is no more input."""

CONSOLE_TOKEN = "1:console-offline"
DEFAULT_OUTPUT_DIR = Path("var/console-files")
DEFAULT_USER: JsonDict = {"id": 1001, "first_name": "Anna", "language_code": "lv"}
QUIT_COMMANDS = frozenset({"/quit", "/exit"})
BUTTON_PREFIX = re.compile(r"#\s*(\d+|[A-Za-z])")
"""``#2`` always presses button [2]; a bare ``2`` does only when the question expects no number.
``#X`` (or a bare ``X``) presses the navigation button lettered [X]."""
ButtonHandle = int | str
"""How a shown button is picked: its number, or a navigation button's letter."""

# Navigation buttons keep one letter on every question instead of a number that depends on the
# buttons before them: the templates' labels of each (both languages) → what it does.
NAV_BUTTONS: dict[str, tuple[str, ...]] = {
    "back": ("report.btn_back",),
    "skip": ("report.btn_skip", "coordinator.btn_skip"),
    "cancel": ("report.btn_cancel", "coordinator.btn_cancel", "reminders.btn_cancel"),
}


@functools.cache
def _nav_keys() -> dict[str, str]:
    """Each navigation label → its letter in the label's language (console.nav_key)."""
    keys: dict[str, str] = {}
    for lang in LANGUAGES:
        for action, names in NAV_BUTTONS.items():
            for name in names:
                keys.setdefault(plain(lang, name), say(lang, "nav_key", action=action))
    return keys


def nav_key(label: str) -> str | None:
    """The letter of a navigation button ("◀ Atpakaļ" → "A"; English "◀ Back" → "B"), or None
    for any other button (those are numbered)."""
    return _nav_keys().get(label)


def say(lang: str, name: str, /, **params: Any) -> str:
    """The console's own frame text (templates/<lang>/console.j2), as plain text."""
    return plain(lang, f"console.{name}", **params)


# --------------------------------------------------------------------------------------------
# Telegram HTML -> rich Text
# --------------------------------------------------------------------------------------------

_TAG_STYLES: dict[str, Style] = {
    "b": Style(bold=True),
    "strong": Style(bold=True),
    "i": Style(italic=True),
    "em": Style(italic=True),
    "u": Style(underline=True),
    "ins": Style(underline=True),
    "s": Style(strike=True),
    "strike": Style(strike=True),
    "del": Style(strike=True),
    "code": Style(color="cyan"),
    "pre": Style(color="cyan"),
    "tg-spoiler": Style(reverse=True),
    "blockquote": Style(italic=True, dim=True),
    "tg-emoji": Style(),
}
_SPOILER = Style(reverse=True)


class _HtmlToRich(HTMLParser):
    """Converts Telegram's HTML subset to a rich Text; unknown tags are kept literally."""

    def __init__(self, show_links: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.text = Text()
        self.show_links = show_links
        self._stack: list[tuple[str, Style, str | None, int]] = []  # tag, style, href, start offset

    def _style(self) -> Style | None:
        styles = [style for _, style, _, _ in self._stack]
        return Style.combine(styles) if styles else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        start = len(self.text)
        if tag == "a":
            href = attributes.get("href") or None
            self._stack.append((tag, Style(color="bright_blue", underline=True, link=href), href, start))
        elif tag == "span" and attributes.get("class") == "tg-spoiler":
            self._stack.append((tag, _SPOILER, None, start))
        elif tag in _TAG_STYLES:
            self._stack.append((tag, _TAG_STYLES[tag], None, start))
        elif tag == "br":
            self.text.append("\n")
        else:
            self.text.append(self.get_starttag_text() or f"<{tag}>", style=self._style())

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                _, _, href, start = self._stack[index]
                del self._stack[index:]
                if href and self.show_links and self.text.plain[start:] != href:
                    self.text.append(f" ({href})", style="dim")
                return
        if tag != "br":
            self.text.append(f"</{tag}>", style=self._style())

    def handle_data(self, data: str) -> None:
        self.text.append(data, style=self._style())


def html_to_rich(source: str, *, show_links: bool = True) -> Text:
    """Render Telegram-flavoured HTML (<b>, <i>, <u>, <s>, <code>, <pre>, <a href>, spoilers,
    entities like ``&lt;``) as a rich Text. ``show_links`` appends "(url)" after link texts."""
    parser = _HtmlToRich(show_links)
    parser.feed(source)
    parser.close()
    return parser.text


# --------------------------------------------------------------------------------------------
# Shared offline result building
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Button:
    """A keyboard button as shown in the console; ``number`` is None for navigation buttons
    (they have a ``key`` letter) and non-clickable ones (neither)."""

    number: int | None
    label: str
    kind: Literal["callback", "text", "url", "other"]
    value: str | None
    """callback_data (callback), the text to send (text, from a reply keyboard) or the url."""
    message: JsonDict | None = None
    """The message that carries the inline keyboard (for callback queries)."""
    key: str | None = None
    """A navigation button's letter (Atpakaļ [A], Izlaist [I], Atcelt [X]), the same everywhere."""

    @property
    def handle(self) -> ButtonHandle | None:
        """What picks it: the number, or the letter; None when it cannot be clicked."""
        return self.number if self.number is not None else self.key


@dataclass
class OfflineCall:
    """One Bot API call answered offline."""

    method: TelegramMethod[Any]
    result: Any = None
    raw_result: Any = None
    chat_id: ChatId | None = None
    message: JsonDict | None = None
    text: Text | None = None
    """Rendered text (message text or caption) if the call carried one."""
    file_name: str | None = None
    file_bytes: bytes | None = None
    buttons: list[list[Button]] | None = None
    """The keyboard this call showed (None: the call did not change the visible keyboard)."""
    extra: JsonDict = field(default_factory=dict)

    @property
    def api_method(self) -> str:
        return self.method.__api_method__


_Builder = Callable[[Bot, Any, OfflineCall], Awaitable[Any]]
RecipientFn = Callable[[ChatId], Awaitable["tuple[str, str] | None"]]
"""Who uses a chat: (display name, institution abbreviation), or None when unknown."""


def _default(bot: Bot, value: Any) -> Any:
    """Resolve aiogram's ``Default("...")`` placeholders against the bot's defaults."""
    return bot.default[value.name] if isinstance(value, Default) else value


class OfflineSession(BaseSession):
    """Answers Bot API calls locally with typed results; subclasses decide what to show/record.

    Keeps a small chat state: increasing message ids per chat (shared with incoming user
    messages via :meth:`next_message_id`), the current state of sent messages, bot commands and
    the numbered buttons currently shown per chat (:meth:`buttons`).
    """

    def __init__(
        self,
        *,
        bot_first_name: str = "Resobot",
        bot_username: str = "resobot_console",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bot_first_name = bot_first_name
        self.bot_username = bot_username
        self.messages: dict[tuple[ChatId, int], JsonDict] = {}
        self.chats: dict[ChatId, JsonDict] = {}
        self.commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._message_ids: dict[ChatId, int] = {}
        self._buttons: dict[ChatId, dict[int, Button]] = {}
        self._keyboard_owner: dict[ChatId, int | Literal["reply"] | None] = {}
        """Per chat: the message id whose inline keyboard is numbered, "reply" or None."""
        self._file_ids = itertools.count(1)
        self.lang = "lv"
        """The language of the console's own text (ConsoleChat sets the user's)."""
        self.user_chat_id: ChatId | None = None
        """The console user's chat (set by ConsoleChat): calls for other chats are someone else's."""
        self.recipient: RecipientFn | None = None
        """Names the user of another chat: (name, institution) or None (set by ConsoleChat)."""
        self._builders: dict[type[TelegramMethod[Any]], _Builder] = {
            GetMe: self._build_get_me,
            GetUpdates: self._build_get_updates,
            GetWebhookInfo: self._build_webhook_info,
            SendMessage: self._build_send_message,
            EditMessageText: self._build_edit_text,
            EditMessageCaption: self._build_edit_caption,
            EditMessageReplyMarkup: self._build_edit_markup,
            SendDocument: self._build_send_document,
            SendPhoto: self._build_send_photo,
            DeleteMessage: self._build_delete_message,
            SetMyCommands: self._build_set_commands,
            GetMyCommands: self._build_get_commands,
            DeleteMyCommands: self._build_delete_commands,
        }

    # -- BaseSession --------------------------------------------------------------------------
    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        call = await self.execute(bot, method)
        result: TelegramType = call.result
        return result

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError("downloads are not available offline")
        yield b""  # pragma: no cover - makes this an async generator

    async def close(self) -> None:
        return None

    # -- public helpers -------------------------------------------------------------------------
    async def execute(self, bot: Bot, method: TelegramMethod[Any]) -> OfflineCall:
        """Answer one call: build the raw result, validate it into the typed result, then hook."""
        call = OfflineCall(method=method)
        builder = self._builders.get(type(method), self._build_fallback)
        call.raw_result = await builder(bot, method, call)
        response = Response[method.__returning__].model_validate(  # type: ignore[name-defined]
            {"ok": True, "result": call.raw_result}, context={"bot": bot}
        )
        call.result = response.result
        await self.on_call(bot, call)
        return call

    async def on_call(self, bot: Bot, call: OfflineCall) -> None:
        """Hook for subclasses (render, record); called after the result was built."""

    def remember_chat(self, chat: JsonDict) -> None:
        """Register a chat dict ({"id", "type", "first_name", ...}) used in built messages."""
        self.chats[chat["id"]] = dict(chat)

    def next_message_id(self, chat_id: ChatId) -> int:
        """Next message id in a chat (user and bot messages share the sequence, as in Telegram)."""
        self._message_ids[chat_id] = self._message_ids.get(chat_id, 0) + 1
        return self._message_ids[chat_id]

    def store_message(self, message: JsonDict) -> None:
        self.messages[(message["chat"]["id"], message["message_id"])] = message

    def buttons(self, chat_id: ChatId) -> dict[ButtonHandle, Button]:
        """The clickable buttons currently shown in a chat, by number or navigation letter."""
        return dict(self._buttons.get(chat_id, {}))

    def bot_user(self, bot: Bot) -> JsonDict:
        return {
            "id": bot.id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def chat(self, chat_id: ChatId) -> JsonDict:
        if chat_id in self.chats:
            return dict(self.chats[chat_id])
        if isinstance(chat_id, str):
            return {
                "id": -1000000000001,
                "type": "channel",
                "title": chat_id,
                "username": chat_id.lstrip("@"),
            }
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}

    # -- building blocks --------------------------------------------------------------------------
    def _text(self, bot: Bot, call: OfflineCall, source: str | None, parse_mode: Any) -> str | None:
        """Set ``call.text`` (rendered) and return the plain text Telegram would store."""
        if source is None:
            return None
        mode = _default(bot, parse_mode)
        if isinstance(mode, str) and mode.upper() == "HTML":
            call.text = html_to_rich(source)
            if "<a" not in source.lower():  # no link: the text without "(url)"s is the same
                return call.text.plain
            return html_to_rich(source, show_links=False).plain
        call.text = Text(source)
        return source

    def _new_message(self, bot: Bot, chat_id: ChatId, call: OfflineCall, **content: Any) -> JsonDict:
        message: JsonDict = {
            "message_id": self.next_message_id(chat_id),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": self.bot_user(bot),
            **{key: value for key, value in content.items() if value is not None},
        }
        self.store_message(message)
        call.chat_id = chat_id
        call.message = message
        return message

    def _existing_message(self, bot: Bot, chat_id: ChatId, message_id: int) -> JsonDict:
        stored = self.messages.get((chat_id, message_id))
        if stored is not None:
            return dict(stored)
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": self.bot_user(bot),
        }

    def _show_keyboard(
        self, chat_id: ChatId, markup: Any, message: JsonDict, *, edit: bool = False
    ) -> list[list[Button]] | None:
        """Track the keyboard a message shows; returns the numbered rows (None = unchanged)."""
        if isinstance(markup, InlineKeyboardMarkup):
            message["reply_markup"] = markup.model_dump(mode="json", exclude_none=True)
            numbers = itertools.count(1)
            rows: list[list[Button]] = []
            for row in markup.inline_keyboard:
                shown: list[Button] = []
                for button in row:
                    if button.callback_data is not None:
                        key = nav_key(button.text)
                        number = None if key else next(numbers)
                        shown.append(
                            Button(number, button.text, "callback", button.callback_data, message, key=key)
                        )
                    elif button.url is not None:
                        shown.append(Button(None, button.text, "url", button.url))
                    else:
                        shown.append(Button(None, button.text, "other", None))
                rows.append(shown)
            self._set_buttons(chat_id, rows, message["message_id"])
            return rows
        if isinstance(markup, ReplyKeyboardMarkup):
            numbers = itertools.count(1)
            rows = [[Button(next(numbers), b.text, "text", b.text) for b in row] for row in markup.keyboard]
            self._set_buttons(chat_id, rows, "reply")
            return rows
        if isinstance(markup, ReplyKeyboardRemove):
            if self._keyboard_owner.get(chat_id) == "reply":
                self._set_buttons(chat_id, [], None)
                return []
            return None
        if edit:
            message.pop("reply_markup", None)  # an edit without reply_markup removes the keyboard
            if self._keyboard_owner.get(chat_id) == message["message_id"]:
                self._set_buttons(chat_id, [], None)
                return []
        return None

    def _set_buttons(
        self, chat_id: ChatId, rows: list[list[Button]], owner: int | Literal["reply"] | None
    ) -> None:
        self._buttons[chat_id] = {b.handle: b for row in rows for b in row if b.handle is not None}
        self._keyboard_owner[chat_id] = owner

    async def _read_file(self, bot: Bot, file: InputFile | str, call: OfflineCall) -> JsonDict:
        if isinstance(file, InputFile):
            data = b"".join([chunk async for chunk in file.read(bot)])
            name = Path(file.filename or "document").name
        else:
            data = b""
            name = file.rstrip("/").rsplit("/", 1)[-1] or "document"
        call.file_name, call.file_bytes = name, data
        number = next(self._file_ids)
        return {
            "file_id": f"console-file-{number}",
            "file_unique_id": f"console-unique-{number}",
            "file_size": len(data),
            "file_name": name,
            "mime_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
        }

    # -- builders (one per method type) -----------------------------------------------------------
    async def _build_get_me(self, bot: Bot, method: GetMe, call: OfflineCall) -> JsonDict:
        return self.bot_user(bot)

    async def _build_get_updates(self, bot: Bot, method: GetUpdates, call: OfflineCall) -> list[JsonDict]:
        await asyncio.sleep(min(float(method.timeout or 0), 1.0))  # nothing ever arrives offline
        return []

    async def _build_webhook_info(self, bot: Bot, method: GetWebhookInfo, call: OfflineCall) -> JsonDict:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _build_send_message(self, bot: Bot, method: SendMessage, call: OfflineCall) -> JsonDict:
        text = self._text(bot, call, method.text, method.parse_mode)
        message = self._new_message(bot, method.chat_id, call, text=text)
        call.buttons = self._show_keyboard(method.chat_id, method.reply_markup, message)
        return message

    async def _build_edit_text(self, bot: Bot, method: EditMessageText, call: OfflineCall) -> JsonDict | bool:
        if method.inline_message_id or method.chat_id is None or method.message_id is None:
            return True
        message = self._existing_message(bot, method.chat_id, method.message_id)
        message["text"] = self._text(bot, call, method.text, method.parse_mode)
        message["edit_date"] = int(time.time())
        call.buttons = self._show_keyboard(method.chat_id, method.reply_markup, message, edit=True)
        self.store_message(message)
        call.chat_id, call.message = method.chat_id, message
        return message

    async def _build_edit_caption(
        self, bot: Bot, method: EditMessageCaption, call: OfflineCall
    ) -> JsonDict | bool:
        if method.inline_message_id or method.chat_id is None or method.message_id is None:
            return True
        message = self._existing_message(bot, method.chat_id, method.message_id)
        message["caption"] = self._text(bot, call, method.caption, method.parse_mode)
        message["edit_date"] = int(time.time())
        call.buttons = self._show_keyboard(method.chat_id, method.reply_markup, message, edit=True)
        self.store_message(message)
        call.chat_id, call.message = method.chat_id, message
        return message

    async def _build_edit_markup(
        self, bot: Bot, method: EditMessageReplyMarkup, call: OfflineCall
    ) -> JsonDict | bool:
        if method.inline_message_id or method.chat_id is None or method.message_id is None:
            return True
        message = self._existing_message(bot, method.chat_id, method.message_id)
        message["edit_date"] = int(time.time())
        call.buttons = self._show_keyboard(method.chat_id, method.reply_markup, message, edit=True)
        self.store_message(message)
        call.chat_id, call.message = method.chat_id, message
        return message

    async def _build_send_document(self, bot: Bot, method: SendDocument, call: OfflineCall) -> JsonDict:
        document = await self._read_file(bot, method.document, call)
        caption = self._text(bot, call, method.caption, method.parse_mode)
        message = self._new_message(bot, method.chat_id, call, document=document, caption=caption)
        call.buttons = self._show_keyboard(method.chat_id, method.reply_markup, message)
        return message

    async def _build_send_photo(self, bot: Bot, method: SendPhoto, call: OfflineCall) -> JsonDict:
        file = await self._read_file(bot, method.photo, call)
        photo = [
            {key: file[key] for key in ("file_id", "file_unique_id", "file_size")}
            | {"width": 800, "height": 600}
        ]
        caption = self._text(bot, call, method.caption, method.parse_mode)
        message = self._new_message(bot, method.chat_id, call, photo=photo, caption=caption)
        call.buttons = self._show_keyboard(method.chat_id, method.reply_markup, message)
        return message

    async def _build_delete_message(self, bot: Bot, method: DeleteMessage, call: OfflineCall) -> bool:
        self.messages.pop((method.chat_id, method.message_id), None)
        if self._keyboard_owner.get(method.chat_id) == method.message_id:
            self._set_buttons(method.chat_id, [], None)
        call.chat_id = method.chat_id
        return True

    @staticmethod
    def _commands_key(method: SetMyCommands | GetMyCommands | DeleteMyCommands) -> tuple[str, str]:
        scope = method.scope.model_dump_json(exclude_none=True) if method.scope else '{"type":"default"}'
        return scope, method.language_code or ""

    async def _build_set_commands(self, bot: Bot, method: SetMyCommands, call: OfflineCall) -> bool:
        self.commands[self._commands_key(method)] = [c.model_dump(mode="json") for c in method.commands]
        return True

    async def _build_get_commands(self, bot: Bot, method: GetMyCommands, call: OfflineCall) -> list[JsonDict]:
        return list(self.commands.get(self._commands_key(method), []))

    async def _build_delete_commands(self, bot: Bot, method: DeleteMyCommands, call: OfflineCall) -> bool:
        self.commands.pop(self._commands_key(method), None)
        return True

    async def _build_fallback(self, bot: Bot, method: TelegramMethod[Any], call: OfflineCall) -> Any:
        returning = method.__returning__
        if returning is bool:
            return True
        chat_id = getattr(method, "chat_id", None)
        if returning is Message and chat_id is not None:
            text = getattr(method, "text", None)
            caption = getattr(method, "caption", None)
            parse_mode = getattr(method, "parse_mode", None)
            content = (
                {"text": self._text(bot, call, text, parse_mode)}
                if text
                else {"caption": self._text(bot, call, caption, parse_mode)}
            )
            message = self._new_message(bot, chat_id, call, **content)
            call.buttons = self._show_keyboard(chat_id, getattr(method, "reply_markup", None), message)
            return message
        raise NotImplementedError(f"{method.__api_method__} is not available offline")


class RecordingSession(OfflineSession):
    """Offline session that only records: ``requests`` (method objects) and ``calls`` (details)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: list[TelegramMethod[Any]] = []
        self.calls: list[OfflineCall] = []

    async def on_call(self, bot: Bot, call: OfflineCall) -> None:
        self.requests.append(call.method)
        self.calls.append(call)

    def of_type(self, method_type: type[TelegramMethod[Any]]) -> list[Any]:
        """Recorded method objects of one type, e.g. ``session.of_type(SendMessage)``."""
        return [m for m in self.requests if isinstance(m, method_type)]

    def clear(self) -> None:
        self.requests.clear()
        self.calls.clear()


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
        from bot.routers import coordinator, report
        from storage.repositories import Repos

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
        from storage.repositories import Repos

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

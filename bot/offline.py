"""The offline Bot API: an aiogram ``BaseSession`` that answers every call locally with typed
results, keeping a small chat state (message ids, messages, commands, the buttons shown).

:class:`OfflineSession` is the one fake session of the project: the offline console's
:class:`bot.console.ConsoleSession` renders its calls with rich, :class:`RecordingSession` only
records them — for unit tests and benchmarks (``session.requests`` holds the method objects).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import mimetypes
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    DeleteMessage,
    DeleteMyCommands,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    GetMyCommands,
    GetUpdates,
    GetWebhookInfo,
    Response,
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
)
from rich.style import Style
from rich.text import Text

from reporting_forms.texts import LANGUAGES, plain

__all__ = [
    "Button",
    "ButtonHandle",
    "ChatId",
    "JsonDict",
    "OfflineCall",
    "OfflineSession",
    "RecordingSession",
    "html_to_rich",
    "nav_key",
    "say",
]

JsonDict = dict[str, Any]
ChatId = int | str

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
        return self._edited(bot, method, call, ("text", method.text, method.parse_mode))

    async def _build_edit_caption(
        self, bot: Bot, method: EditMessageCaption, call: OfflineCall
    ) -> JsonDict | bool:
        return self._edited(bot, method, call, ("caption", method.caption, method.parse_mode))

    async def _build_edit_markup(
        self, bot: Bot, method: EditMessageReplyMarkup, call: OfflineCall
    ) -> JsonDict | bool:
        return self._edited(bot, method, call, None)

    def _edited(
        self,
        bot: Bot,
        method: EditMessageText | EditMessageCaption | EditMessageReplyMarkup,
        call: OfflineCall,
        body: tuple[str, str | None, Any] | None,
    ) -> JsonDict | bool:
        """A stored message edited: ``body`` (its field, the new text, the parse mode) if given,
        and its keyboard. True for an inline message (the Bot API returns no message then)."""
        if method.inline_message_id or method.chat_id is None or method.message_id is None:
            return True
        message = self._existing_message(bot, method.chat_id, method.message_id)
        if body is not None:
            field, value, parse_mode = body
            message[field] = self._text(bot, call, value, parse_mode)
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

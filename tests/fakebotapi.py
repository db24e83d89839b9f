"""A fake Telegram Bot API server for end-to-end tests of the real aiogram bot.

The server speaks enough of the Bot API (over real HTTP on 127.0.0.1) for an unmodified
``aiogram.Bot`` + ``Dispatcher.start_polling`` to run against it, and offers a scripting API
to play users, inspect what the bot sent and inject failures::

    async with FakeBotAPI() as server:
        bot = server.make_bot()
        async with server.polling(dp, bot):
            anna = server.user(1001, first_name="Anna")
            anna.send("/start")
            [reply] = await anna.replies(1)
            assert "Sveiki" in reply.text
            anna.click_text("Ziņot tagad")
            ...

Fidelity notes: HTML in ``parse_mode="HTML"`` is parsed like Telegram does (plain text +
entities in the returned Message, 400 "can't parse entities" on bad markup), edits without a
``reply_markup`` remove the inline keyboard, unchanged edits answer 400 "message is not
modified" and callback queries can be answered only once - all as the real API does.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import json
import logging
import math
import mimetypes
import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Self

from aiohttp import BodyPartReader, web
from aiohttp.web_request import FileField

if TYPE_CHECKING:
    from types import TracebackType

    from aiogram import Bot, Dispatcher

JsonDict = dict[str, Any]
logger = logging.getLogger(__name__)
Buttons = list[list[tuple[str, str | None]]]

DEFAULT_TOKEN = "123456789:TEST-fake-bot-api-token"

# Fields that are always strings in the Bot API: never JSON-decode them when they arrive as
# form fields (a text of "123" or "true" must stay a string).
_STRING_FIELDS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "url",
        "action",
        "description",
        "short_description",
        "name",
        "language_code",
        "business_connection_id",
        "message_effect_id",
        "emoji",
        "title",
        "question",
        "first_name",
        "last_name",
        "phone_number",
        "address",
        "vcard",
        "game_short_name",
        "payload",
        "provider_token",
        "currency",
        "start_parameter",
        "secret_token",
        "ip_address",
        "custom_emoji_id",
        "next_offset",
        "result_id",
        "query",
        "file_id",
        "document",
        "photo",
        "audio",
        "video",
        "voice",
        "animation",
        "video_note",
        "sticker",
        "thumbnail",
        "certificate",
    }
)
_BOOL_TRUE_METHODS = frozenset(
    {
        "close",
        "logOut",
        "deleteWebhook",
        "setChatMenuButton",
        "setMyDescription",
        "setMyShortDescription",
        "setMyName",
        "setMyDefaultAdministratorRights",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_MAX_TEXT = 4096
_MAX_CAPTION = 1024
_MAX_CALLBACK_DATA = 64


class TelegramError(Exception):
    """An error answer of the fake API (becomes ``{"ok": false, ...}``)."""

    def __init__(self, status: int, description: str, parameters: JsonDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(description: str) -> TelegramError:
    return TelegramError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------------------------
# Telegram-style HTML parsing (text + entities)
# --------------------------------------------------------------------------------------------

_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*?)?)\s*>")
_ATTR_RE = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[JsonDict]]:
    """Parse Telegram HTML like the Bot API: returns (plain text, entities with UTF-16 offsets).

    Raises :class:`TelegramError` (400 "can't parse entities") for unsupported or unbalanced tags
    and for a bare ``<``.
    """
    plain: list[str] = []
    length = 0  # UTF-16 length of the plain text so far
    stack: list[JsonDict] = []  # open tags: {"tag", "entity" (dict|None), "start"}
    entities: list[JsonDict] = []
    pos = 0
    while pos < len(source):
        lt = source.find("<", pos)
        chunk = source[pos:] if lt < 0 else source[pos:lt]
        if chunk:
            text = html.unescape(chunk)
            plain.append(text)
            length += _utf16_len(text)
        if lt < 0:
            break
        match = _TAG_RE.match(source, lt)
        offset = len(source[:lt].encode())
        if match is None:
            raise _bad_request(f'can\'t parse entities: Unsupported start tag "" at byte offset {offset}')
        closing, tag, raw_attrs = match.group(1) == "/", match.group(2).lower(), match.group(3)
        pos = match.end()
        if closing:
            if not stack or stack[-1]["tag"] != tag:
                expected = f'"</{stack[-1]["tag"]}>"' if stack else "nothing"
                raise _bad_request(
                    f"can't parse entities: Unmatched end tag at byte offset {offset}, expected {expected}, "
                    f'found "</{tag}>"'
                )
            opened = stack.pop()
            closed: JsonDict | None = opened["entity"]
            if closed is None:
                continue
            closed["length"] = length - closed["offset"]
            if closed["type"] == "code" and stack and stack[-1]["tag"] == "pre" and opened.get("language"):
                parent = stack[-1]["entity"]
                if parent is not None:
                    parent["language"] = opened["language"]
                continue
            if closed["length"] > 0:
                entities.append(closed)
            continue
        attrs = {
            m.group(1).lower(): next(g for g in m.groups()[1:] if g is not None)
            for m in _ATTR_RE.finditer(raw_attrs)
        }
        entity: JsonDict | None
        language: str | None = None
        if tag in _SIMPLE_TAGS:
            entity = {"type": _SIMPLE_TAGS[tag], "offset": length}
            if tag == "blockquote" and "expandable" in raw_attrs:
                entity["type"] = "expandable_blockquote"
            if tag == "code" and attrs.get("class", "").startswith("language-"):
                language = attrs["class"].removeprefix("language-")
        elif tag == "span" and attrs.get("class") == "tg-spoiler":
            entity = {"type": "spoiler", "offset": length}
        elif tag == "a":
            href = attrs.get("href")
            entity = {"type": "text_link", "offset": length, "url": href} if href else None
        elif tag == "tg-emoji":
            entity = {"type": "custom_emoji", "offset": length, "custom_emoji_id": attrs.get("emoji-id", "")}
        else:
            raise _bad_request(
                f'can\'t parse entities: Unsupported start tag "{tag}" at byte offset {offset}'
            )
        stack.append({"tag": tag, "entity": entity, "language": language})
    if stack:
        raise _bad_request(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]['tag']}\""
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(plain), entities


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class BotOutput:
    """One visible bot output to a chat: sendMessage, editMessageText or sendDocument."""

    method: str
    chat_id: int
    message_id: int
    text: str | None
    """Plain text (HTML already parsed) of the message/caption; see ``raw_text`` for the source."""
    raw_text: str | None
    parse_mode: str | None
    buttons: Buttons
    """Inline keyboard rows of (text, callback_data); callback_data is None for url/other buttons."""
    keyboard: list[list[str]] | None = None
    """Reply keyboard (button texts) sent with the message, if any."""
    reply_markup: JsonDict | None = None
    document_name: str | None = None
    document_bytes: bytes | None = None
    mime_type: str | None = None
    params: JsonDict = field(default_factory=dict)
    message: JsonDict = field(default_factory=dict)
    at: float = 0.0

    @property
    def is_edit(self) -> bool:
        return self.method.startswith("edit")

    @property
    def button_texts(self) -> list[str]:
        return [text for row in self.buttons for text, _ in row]

    @property
    def callback_data(self) -> list[str]:
        return [data for row in self.buttons for _, data in row if data is not None]

    def __str__(self) -> str:
        extra = f" [{self.document_name}]" if self.document_name else ""
        return f"{self.method}#{self.message_id}{extra}: {self.text!r} {self.button_texts or ''}"


@dataclass
class _Queued:
    update: JsonDict
    delivered: bool = False
    sticky: bool = False  # a forced re-delivery that survives one offset confirmation

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])

    @property
    def kind(self) -> str:
        return next((k for k in self.update if k != "update_id"), "")


@dataclass
class _Chat:
    info: JsonDict
    next_message_id: int = 1
    messages: dict[int, JsonDict] = field(default_factory=dict)
    bot_message_ids: list[int] = field(default_factory=list)
    reply_keyboard: list[list[str]] | None = None


@dataclass
class _Failure:
    status: int
    description: str
    times: int


def _buttons_of(markup: JsonDict | None) -> Buttons:
    if not markup or "inline_keyboard" not in markup:
        return []
    return [[(b.get("text", ""), b.get("callback_data")) for b in row] for row in markup["inline_keyboard"]]


def _error_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# --------------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------------


class FakeUser:
    """A Telegram user chatting privately with the bot (chat id == user id)."""

    def __init__(
        self,
        server: FakeBotAPI,
        user_id: int,
        first_name: str,
        language_code: str | None,
        last_name: str | None = None,
        username: str | None = None,
    ) -> None:
        self.server = server
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.last_name = last_name
        self.username = username
        self._cursor = 0
        self.callback_answers: list[JsonDict] = []
        """answerCallbackQuery calls for this user's clicks: {"data", "text", "show_alert", "url"}."""

    # -- identities ------------------------------------------------------------------------
    @property
    def as_dict(self) -> JsonDict:
        user: JsonDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if (value := getattr(self, key)) is not None:
                user[key] = value
        return user

    @property
    def chat(self) -> JsonDict:
        chat: JsonDict = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat

    # -- sending updates ----------------------------------------------------------------------
    def _message(self, **content: Any) -> JsonDict:
        chat = self.server._chat(self.id)
        message_id = chat.next_message_id
        chat.next_message_id += 1
        message: JsonDict = {
            "message_id": message_id,
            "from": self.as_dict,
            "chat": self.chat,
            "date": int(time.time()),
            **{k: v for k, v in content.items() if v is not None},
        }
        chat.messages[message_id] = message
        return message

    def send(self, text: str, *, reply_to: int | None = None) -> JsonDict:
        """Queue a text message update (``/commands`` get a bot_command entity) and return it."""
        entities = None
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            entities = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        reply = None
        if reply_to is not None:
            reply = copy.deepcopy(self.server._chat(self.id).messages.get(reply_to))
            if reply is None:
                raise AssertionError(f"user {self.id}: no message #{reply_to} to reply to")
        message = self._message(text=text, entities=entities, reply_to_message=reply)
        return self.server.queue_raw({"message": message})

    def send_sticker(self, emoji: str = "👍") -> JsonDict:
        n = self.server._next_file_number()
        sticker = {
            "file_id": f"sticker-{n}",
            "file_unique_id": f"u-sticker-{n}",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self.server.queue_raw({"message": self._message(sticker=sticker)})

    def send_photo(self, caption: str | None = None) -> JsonDict:
        n = self.server._next_file_number()
        sizes = [
            {
                "file_id": f"photo-{n}-{w}",
                "file_unique_id": f"u-photo-{n}-{w}",
                "width": w,
                "height": w,
                "file_size": w * 40,
            }
            for w in (90, 320, 800)
        ]
        return self.server.queue_raw({"message": self._message(photo=sizes, caption=caption)})

    def send_voice(self, duration: int = 3) -> JsonDict:
        n = self.server._next_file_number()
        voice = {
            "file_id": f"voice-{n}",
            "file_unique_id": f"u-voice-{n}",
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": duration * 4000,
        }
        return self.server.queue_raw({"message": self._message(voice=voice)})

    def send_document(
        self, filename: str, data: bytes, *, caption: str | None = None, mime_type: str | None = None
    ) -> JsonDict:
        """Queue a document message; the bot can download it via getFile + the file URL."""
        document = self.server._store_file("documents", filename, data, mime_type)
        return self.server.queue_raw({"message": self._message(document=document, caption=caption)})

    def edit(self, message_id: int, text: str) -> JsonDict:
        """Queue an ``edited_message`` update for one of this user's own messages."""
        message = self.server._chat(self.id).messages.get(message_id)
        if message is None or message.get("from", {}).get("id") != self.id:
            raise AssertionError(f"user {self.id}: message #{message_id} is not the user's message")
        message["text"] = text
        message["edit_date"] = int(time.time())
        return self.server.queue_raw({"edited_message": copy.deepcopy(message)})

    # -- clicking buttons ---------------------------------------------------------------------
    def _keyboard_messages(self, message_id: int | None) -> list[JsonDict]:
        chat = self.server._chat(self.id)
        if message_id is not None:
            message = chat.messages.get(message_id)
            if message is None or message_id not in chat.bot_message_ids:
                raise AssertionError(f"user {self.id}: no bot message #{message_id}")
            return [message]
        return [
            chat.messages[mid]
            for mid in reversed(chat.bot_message_ids)
            if mid in chat.messages and _buttons_of(chat.messages[mid].get("reply_markup"))
        ]

    def _describe_keyboards(self, messages: list[JsonDict]) -> str:
        if not messages:
            return "no bot message with an inline keyboard"
        return "; ".join(f"#{m['message_id']}: {_buttons_of(m.get('reply_markup'))}" for m in messages[:3])

    def click(self, callback_data: str, message_id: int | None = None) -> JsonDict:
        """Queue a callback_query for a button with this callback_data.

        Without ``message_id`` the newest bot message whose *current* inline keyboard has such a
        button is used. Raises AssertionError when no such button exists.
        """
        candidates = self._keyboard_messages(message_id)
        for message in candidates:
            if callback_data in [d for row in _buttons_of(message.get("reply_markup")) for _, d in row]:
                return self.server._queue_callback(self, message, callback_data)
        raise AssertionError(
            f"user {self.id}: no button with callback_data={callback_data!r} "
            f"({self._describe_keyboards(candidates)})"
        )

    def click_text(self, text: str, message_id: int | None = None) -> JsonDict:
        """Click the button with this visible text on the latest bot message with a keyboard."""
        candidates = self._keyboard_messages(message_id)
        if not candidates:
            raise AssertionError(f"user {self.id}: no bot message with an inline keyboard")
        message = candidates[0]
        for row in _buttons_of(message.get("reply_markup")):
            for label, data in row:
                if label == text or label.strip() == text.strip():
                    if data is None:
                        raise AssertionError(f"user {self.id}: button {text!r} has no callback_data")
                    return self.server._queue_callback(self, message, data)
        raise AssertionError(
            f"user {self.id}: no button {text!r} on message #{message['message_id']} "
            f"(buttons: {_buttons_of(message.get('reply_markup'))})"
        )

    # -- reading bot output -------------------------------------------------------------------
    @property
    def transcript(self) -> list[BotOutput]:
        """All bot outputs (sendMessage/editMessageText/sendDocument) to this user, oldest first."""
        return [o for o in self.server.outputs if o.chat_id == self.id]

    @property
    def last(self) -> BotOutput:
        """The latest bot output to this user (AssertionError if there is none)."""
        transcript = self.transcript
        if not transcript:
            raise AssertionError(f"user {self.id}: the bot has sent nothing yet")
        return transcript[-1]

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """The reply keyboard currently shown to the user (None if removed / never sent)."""
        return self.server._chat(self.id).reply_keyboard

    def message(self, message_id: int) -> JsonDict:
        """Current state (after edits) of a message in this chat."""
        return copy.deepcopy(self.server._chat(self.id).messages[message_id])

    async def replies(self, n: int = 1, timeout: float = 5.0) -> list[BotOutput]:
        """Wait for ``n`` new outputs since the previous call and return exactly those ``n``.

        Outputs beyond ``n`` stay for the next call. AssertionError on timeout (with what came).
        """
        start = self._cursor
        ok = await self.server._wait_until(lambda: len(self.transcript) >= start + n, timeout)
        transcript = self.transcript
        if not ok:
            got = [str(o) for o in transcript[start:]]
            raise AssertionError(
                f"user {self.id}: expected {n} new bot output(s) within {timeout}s, got {got}"
            )
        self._cursor = start + n
        return transcript[start : start + n]

    async def reply(self, timeout: float = 5.0) -> BotOutput:
        """Shortcut for ``(await replies(1))[0]``."""
        return (await self.replies(1, timeout))[0]

    async def assert_no_replies(self, wait: float = 0.2) -> None:
        """Assert that no new output (beyond the replies() cursor) arrives within ``wait`` s."""
        start = self._cursor
        if await self.server._wait_until(lambda: len(self.transcript) > start, wait):
            raise AssertionError(f"user {self.id}: unexpected bot output {self.transcript[start]}")


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class FakeBotAPI:
    """A fake Bot API HTTP server (``/bot{token}/{method}``) with a scripting API for tests."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "resobot_test_bot",
        *,
        bot_first_name: str = "Resobot",
        strict_chats: bool = False,
        strict_html: bool = True,
    ) -> None:
        """
        :param strict_chats: answer 400 "chat not found" for chats no user/update introduced
            (default: unknown chat ids are auto-created as private chats).
        :param strict_html: reject bad HTML with 400 like Telegram (default True).
        """
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: JsonDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.strict_chats = strict_chats
        self.strict_html = strict_html
        self.calls: list[tuple[str, JsonDict]] = []
        """Every request (including failed/injected ones) as (method, decoded params)."""
        self.outputs: list[BotOutput] = []
        """Every successful sendMessage/editMessageText/sendDocument, all chats."""
        self.stats: Counter[str] = Counter()
        """Counters: "requests", "ok", "429", "403", "5xx", "4xx" and "<method>" per method name."""
        self.errors: list[Exception] = []
        """Exceptions raised inside the fake itself (answered as 500); should stay empty."""
        self.files: dict[str, tuple[str, bytes, str]] = {}
        """file_id -> (file_name, bytes, mime_type) for documents sent by the bot or users."""
        self._file_paths: dict[str, str] = {}
        self._users: dict[int, FakeUser] = {}
        self._chats: dict[int, _Chat] = {}
        self._queue: list[_Queued] = []
        self._last_update: JsonDict | None = None
        self._next_update_id = 10_000
        self._file_counter = 0
        self._callback_counter = 0
        self._callbacks: dict[str, JsonDict] = {}
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._allowed_updates: list[str] | None = None
        self.webhook: JsonDict = {}
        """The last setWebhook's url, secret_token and allowed_updates ({} when none is set)."""
        self._failures: dict[str, deque[_Failure]] = {}
        self._delays: dict[str, tuple[float, bool]] = {}
        self._blocked: set[int] = set()
        self._rate: tuple[float, int | None, frozenset[str] | None] | None = None
        self._rate_window: deque[float] = deque()
        self._inflight = 0
        self._polls_waiting = 0
        self._last_activity = 0.0
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers: dict[str, Callable[[JsonDict, JsonDict], Awaitable[Any]]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "getWebhookInfo": self._get_webhook_info,
            "setWebhook": self._set_webhook,
            "setMyCommands": self._set_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getMyCommands": self._get_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendDocument": self._send_document,
            "sendChatAction": self._send_chat_action,
            "getFile": self._get_file,
            **{name: self._true for name in _BOOL_TRUE_METHODS},
        }
        self._method_names = {name.lower(): name for name in self._handlers}

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> Self:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._closing = False
        return self

    async def stop(self) -> None:
        self._closing = True
        self._notify()  # wake waiting getUpdates so they answer at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` - pass to ``TelegramAPIServer.from_base``."""
        if self._port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return f"http://127.0.0.1:{self._port}"

    # -- aiogram helpers ----------------------------------------------------------------------
    def make_bot(self, **bot_kwargs: Any) -> Bot:
        """A real aiogram Bot (AiohttpSession) talking to this server. Close its session after use."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(api=TelegramAPIServer.from_base(self.base_url))
        return Bot(token=self.token, session=session, **bot_kwargs)

    @contextlib.asynccontextmanager
    async def polling(self, dispatcher: Dispatcher, bot: Bot, **polling_kwargs: Any) -> AsyncIterator[None]:
        """Run ``dispatcher.start_polling(bot)`` in a task for the duration of the block.

        Waits until the first getUpdates arrived; stops polling cleanly (closing the bot session).
        """
        polling_kwargs.setdefault("handle_signals", False)
        start = len(self.calls)
        task = asyncio.create_task(dispatcher.start_polling(bot, **polling_kwargs))
        started = await self._wait_until(
            lambda: task.done() or any(m == "getUpdates" for m, _ in self.calls[start:]), 5.0
        )
        try:
            if task.done():
                await task  # propagate the start-up failure
                raise RuntimeError("polling finished before the first getUpdates")
            if not started:
                raise AssertionError("the bot did not start polling within 5 s")
            yield
        finally:
            if not task.done():
                with contextlib.suppress(RuntimeError):
                    await dispatcher.stop_polling()
            await task

    # -- scripting ------------------------------------------------------------------------------
    def user(
        self,
        user_id: int,
        first_name: str = "Anna",
        language_code: str | None = "lv",
        *,
        last_name: str | None = None,
        username: str | None = None,
    ) -> FakeUser:
        """Create (or return the existing) user; their private chat id equals ``user_id``."""
        if user_id not in self._users:
            user = FakeUser(self, user_id, first_name, language_code, last_name, username)
            self._users[user_id] = user
            self._chats.setdefault(user_id, _Chat(info=user.chat)).info = user.chat
        return self._users[user_id]

    def queue_raw(self, update: JsonDict) -> JsonDict:
        """Queue an update dict; ``update_id`` is assigned if missing. Returns the update."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
        for value in update.values():
            if isinstance(value, dict) and isinstance(value.get("chat"), dict):
                chat = value["chat"]
                self._chats.setdefault(int(chat["id"]), _Chat(info=chat))
        self._queue.append(_Queued(update=update))
        self._last_update = update
        self._touch()
        return update

    def duplicate_last_update(self) -> JsonDict:
        """Deliver the last queued update once more with the same update_id (as Telegram may)."""
        if self._last_update is None:
            raise AssertionError("no update was queued yet")
        self._queue.append(_Queued(update=copy.deepcopy(self._last_update), sticky=True))
        self._touch()
        return self._last_update

    def sent_to(self, chat_id: int) -> list[BotOutput]:
        """Messages delivered to a chat (sendMessage/sendDocument; edits excluded)."""
        return [o for o in self.outputs if o.chat_id == chat_id and not o.is_edit]

    def calls_of(self, method: str) -> list[JsonDict]:
        """Params of every request to ``method``."""
        return [params for name, params in self.calls if name == method]

    def commands(self, scope: JsonDict | None = None, language_code: str | None = None) -> list[JsonDict]:
        """Commands currently set for a scope (default {"type": "default"}) and language."""
        return copy.deepcopy(self._commands.get(self._commands_key(scope, language_code), []))

    @property
    def pending_updates(self) -> int:
        """Queued updates not yet delivered to the bot."""
        return sum(1 for q in self._queue if not q.delivered)

    @property
    def unconfirmed_updates(self) -> int:
        """Updates Telegram would still send: not delivered yet, or delivered and not yet
        confirmed by a later ``getUpdates`` offset."""
        return len(self._queue)

    async def idle(self, timeout: float = 5.0, quiet: float = 0.1) -> None:
        """Wait until every queued update was fetched and no request was in flight for ``quiet`` s.

        A waiting long-poll getUpdates does not count as in flight. AssertionError on timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            now = loop.time()
            if self.pending_updates == 0 and self._inflight == 0 and now - self._last_activity >= quiet:
                return
            if now >= deadline:
                raise AssertionError(
                    f"not idle after {timeout}s: {self.pending_updates} undelivered update(s), "
                    f"{self._inflight} request(s) in flight"
                )
            await asyncio.sleep(0.01)

    # -- failure injection ------------------------------------------------------------------------
    def rate_limit(
        self,
        per_second: float | None = 30,
        *,
        retry_after: int | None = None,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Answer 429 beyond ``per_second`` accepted calls in any 1 s window (None disables).

        Counts send*/edit*/copy*/forward* methods unless ``methods`` is given. ``retry_after``
        fixes the advertised delay (default: seconds until the window frees, at least 1).
        """
        if per_second is None:
            self._rate = None
        else:
            self._rate = (float(per_second), retry_after, frozenset(methods) if methods else None)
        self._rate_window.clear()

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sends/edits/chat actions to this chat answer 403."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def fail_next(
        self, method: str, status: int = 502, times: int = 1, description: str | None = None
    ) -> None:
        """The next ``times`` calls of ``method`` answer ``status`` (JSON error body)."""
        description = description or _error_phrase(status)
        self._failures.setdefault(method, deque()).append(_Failure(status, description, times))

    def delay(self, method: str, seconds: float | None, *, after: bool = False) -> None:
        """Answer ``method`` ``seconds`` late (None/0 clears).

        ``after=False`` sleeps before processing (a client timeout means "not delivered");
        ``after=True`` processes first, then sleeps (delivered, but the answer is lost on timeout).
        """
        if not seconds:
            self._delays.pop(method, None)
        else:
            self._delays[method] = (float(seconds), after)

    # -- internals: state ---------------------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _touch(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._last_activity = asyncio.get_running_loop().time()
        self._notify()

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.05))
        return True

    def _chat(self, chat_id: int) -> _Chat:
        if chat_id not in self._chats:
            self._chats[chat_id] = _Chat(
                info={"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
            )
        return self._chats[chat_id]

    def _next_file_number(self) -> int:
        self._file_counter += 1
        return self._file_counter

    def _store_file(self, folder: str, filename: str, data: bytes, mime_type: str | None) -> JsonDict:
        n = self._next_file_number()
        file_id = f"doc-{n}"
        mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self.files[file_id] = (filename, data, mime)
        suffix = "." + filename.rsplit(".", 1)[-1] if "." in filename else ""
        self._file_paths[file_id] = f"{folder}/file_{n}{suffix}"
        return {
            "file_id": file_id,
            "file_unique_id": f"u-doc-{n}",
            "file_name": filename,
            "mime_type": mime,
            "file_size": len(data),
        }

    def _queue_callback(self, user: FakeUser, message: JsonDict, data: str) -> JsonDict:
        self._callback_counter += 1
        query_id = f"{user.id}{self._callback_counter:06d}"
        self._callbacks[query_id] = {"user": user.id, "data": data, "answered": False}
        query = {
            "id": query_id,
            "from": user.as_dict,
            "message": copy.deepcopy(message),
            "chat_instance": f"ci-{user.id}",
            "data": data,
        }
        return self.queue_raw({"callback_query": query})

    @staticmethod
    def _commands_key(scope: JsonDict | None, language_code: str | None) -> tuple[str, str]:
        return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""

    # -- internals: HTTP --------------------------------------------------------------------------
    async def _read_params(self, request: web.Request) -> tuple[JsonDict, JsonDict]:
        params: JsonDict = {k: self._decode_field(k, v) for k, v in request.query.items()}
        files: JsonDict = {}
        if request.method != "POST" or not request.body_exists:
            return params, files
        content_type = request.content_type
        if content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    files[part.name] = (part.filename, bytes(await part.read()))
                else:
                    params[part.name] = self._decode_field(part.name, await part.text())
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = self._decode_field(key, value)
                elif isinstance(value, FileField):
                    files[key] = (value.filename, value.file.read())
        return params, files

    @staticmethod
    def _decode_field(name: str, value: str) -> Any:
        if name in _STRING_FIELDS:
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            return await self._dispatch(request)
        except Exception as exc:  # a bug in the fake itself: answer JSON and keep it for the test
            logger.exception("FakeBotAPI crashed on %s", request.path)
            self.errors.append(exc)
            body = {"ok": False, "error_code": 500, "description": f"Internal Server Error: {exc!r}"}
            return web.json_response(body, status=500)

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        requested = request.match_info["method"]
        method = self._method_names.get(requested.lower(), requested)
        params, files = await self._read_params(request)
        self.calls.append((method, params))
        self.stats["requests"] += 1
        self.stats[method] += 1
        handler = self._handlers.get(method)
        if handler is None:
            self.stats["4xx"] += 1
            body = {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
            return web.json_response(body, status=404)
        polling = method == "getUpdates"
        if not polling:
            self._inflight += 1
        try:
            result = await self._answer(method, handler, params, files)
        except TelegramError as error:
            status_key = {429: "429", 403: "403"}.get(error.status, "5xx" if error.status >= 500 else "4xx")
            self.stats[status_key] += 1
            return web.json_response(error.payload(), status=error.status)
        finally:
            if not polling:
                self._inflight -= 1
                self._touch()
        self.stats["ok"] += 1
        return web.json_response({"ok": True, "result": result})

    async def _answer(
        self,
        method: str,
        handler: Callable[[JsonDict, JsonDict], Awaitable[Any]],
        params: JsonDict,
        files: JsonDict,
    ) -> Any:
        delay, after = self._delays.get(method, (0.0, False))
        if delay and not after:
            await asyncio.sleep(delay)
        if failures := self._failures.get(method):
            failure = failures[0]
            failure.times -= 1
            if failure.times <= 0:
                failures.popleft()
            raise TelegramError(failure.status, failure.description)
        self._check_rate_limit(method)
        chat_id = params.get("chat_id")
        if isinstance(chat_id, int) and chat_id in self._blocked and method != "getUpdates":
            raise TelegramError(403, "Forbidden: bot was blocked by the user")
        result = await handler(params, files)
        if delay and after:
            await asyncio.sleep(delay)
        return result

    def _check_rate_limit(self, method: str) -> None:
        if self._rate is None:
            return
        per_second, retry_after, methods = self._rate
        limited = method in methods if methods else method.startswith(("send", "edit", "copy", "forward"))
        if not limited:
            return
        now = time.monotonic()
        while self._rate_window and now - self._rate_window[0] >= 1.0:
            self._rate_window.popleft()
        if len(self._rate_window) >= per_second:
            wait = (
                retry_after
                if retry_after is not None
                else max(1, math.ceil(1.0 - (now - self._rate_window[0])))
                if self._rate_window
                else 1
            )
            raise TelegramError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        self._rate_window.append(now)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for file_id, file_path in self._file_paths.items():
            if file_path == path:
                _, data, mime = self.files[file_id]
                return web.Response(body=data, content_type=mime)
        return web.Response(status=404)

    # -- internals: message helpers ---------------------------------------------------------------
    def _target_chat(self, params: JsonDict) -> _Chat:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        if not isinstance(chat_id, int):
            raise _bad_request("chat not found")
        if chat_id not in self._chats and self.strict_chats:
            raise _bad_request("chat not found")
        return self._chat(chat_id)

    def _parse_text(self, text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[JsonDict]]:
        if entities:
            return text, list(entities)
        if parse_mode and parse_mode.upper() == "HTML":
            if self.strict_html:
                return parse_html(text)
            with contextlib.suppress(TelegramError):
                return parse_html(text)
        return text, []

    @staticmethod
    def _check_markup(markup: Any) -> JsonDict | None:
        if markup in (None, "", {}):
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise _bad_request("text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and (not data or len(str(data).encode()) > _MAX_CALLBACK_DATA):
                    raise _bad_request("BUTTON_DATA_INVALID")
                if len(button) < 2:
                    raise _bad_request('can\'t find field "callback_data" or another button action')
        return markup

    def _apply_reply_keyboard(self, chat: _Chat, markup: JsonDict | None) -> list[list[str]] | None:
        if markup is None:
            return None
        if "keyboard" in markup:
            chat.reply_keyboard = [
                [b if isinstance(b, str) else b.get("text", "") for b in row] for row in markup["keyboard"]
            ]
            return chat.reply_keyboard
        if markup.get("remove_keyboard"):
            chat.reply_keyboard = None
        return None

    def _new_bot_message(self, chat: _Chat, **content: Any) -> JsonDict:
        message_id = chat.next_message_id
        chat.next_message_id += 1
        message: JsonDict = {
            "message_id": message_id,
            "from": dict(self.bot_user),
            "chat": dict(chat.info),
            "date": int(time.time()),
            **{k: v for k, v in content.items() if v not in (None, [])},
        }
        chat.messages[message_id] = message
        chat.bot_message_ids.append(message_id)
        return message

    def _record(
        self,
        method: str,
        chat: _Chat,
        message: JsonDict,
        params: JsonDict,
        *,
        keyboard: list[list[str]] | None = None,
        document: tuple[str, bytes, str] | None = None,
        raw_text: str | None = None,
    ) -> None:
        markup = message.get("reply_markup")
        self.outputs.append(
            BotOutput(
                method=method,
                chat_id=int(chat.info["id"]),
                message_id=int(message["message_id"]),
                text=message.get("text", message.get("caption")),
                raw_text=raw_text,
                parse_mode=params.get("parse_mode"),
                buttons=_buttons_of(markup),
                keyboard=keyboard,
                reply_markup=copy.deepcopy(markup),
                document_name=document[0] if document else None,
                document_bytes=document[1] if document else None,
                mime_type=document[2] if document else None,
                params=dict(params),
                message=copy.deepcopy(message),
                at=time.time(),
            )
        )
        self._notify()

    def _message_to_edit(self, params: JsonDict) -> tuple[_Chat, JsonDict]:
        chat = self._target_chat(params)
        message_id = params.get("message_id")
        message = chat.messages.get(message_id) if isinstance(message_id, int) else None
        if message is None:
            raise _bad_request("message to edit not found")
        if message_id not in chat.bot_message_ids:
            raise _bad_request("message can't be edited")
        return chat, message

    # -- method handlers ---------------------------------------------------------------------------
    async def _true(self, params: JsonDict, files: JsonDict) -> bool:
        return True

    async def _get_me(self, params: JsonDict, files: JsonDict) -> JsonDict:
        return dict(self.bot_user)

    async def _get_webhook_info(self, params: JsonDict, files: JsonDict) -> JsonDict:
        info = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": self.pending_updates,
        }
        if self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    async def _set_webhook(self, params: JsonDict, files: JsonDict) -> bool:
        url = params.get("url")
        if not isinstance(url, str):
            raise _bad_request('parameter "url" is required')
        if not url:  # an empty url removes the webhook, as in Telegram
            self.webhook = {}
            return True
        self.webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "allowed_updates": params.get("allowed_updates"),
        }
        return True

    async def deliver_webhook(self, *, secret: str | None = None, timeout: float = 10.0) -> list[int]:
        """POST every queued, undelivered update to the webhook url, one at a time, as Telegram
        does; with the registered secret unless ``secret`` is given. Returns the HTTP statuses; an
        update not answered 200 stays queued (Telegram would deliver it again)."""
        import aiohttp

        if not self.webhook:
            raise AssertionError("no webhook is set (setWebhook was not called)")
        token = self.webhook.get("secret_token") if secret is None else secret
        headers = {"X-Telegram-Bot-Api-Secret-Token": token} if token else {}
        allowed = self.webhook.get("allowed_updates")
        statuses = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            for queued in [q for q in self._queue if not q.delivered]:
                if allowed and queued.kind not in allowed:
                    continue
                async with http.post(self.webhook["url"], json=queued.update, headers=headers) as resp:
                    await resp.read()
                    statuses.append(resp.status)
                if resp.status == 200:
                    queued.delivered = True
                    self._queue.remove(queued)
                    self._touch()
        return statuses

    async def _get_updates(self, params: JsonDict, files: JsonDict) -> list[JsonDict]:
        offset = params.get("offset")
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = allowed or None
        if isinstance(offset, int) and offset > 0:
            self._queue = [q for q in self._queue if q.update_id >= offset or (q.sticky and not q.delivered)]
        elif isinstance(offset, int) and offset < 0:
            self._queue = self._queue[offset:]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._polls_waiting += 1
        try:
            while True:
                if self._allowed_updates:
                    self._queue = [q for q in self._queue if q.kind in self._allowed_updates]
                batch = self._queue[:limit]
                remaining = deadline - loop.time()
                if batch or self._closing or remaining <= 0:
                    break
                event = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            self._polls_waiting -= 1
        for queued in batch:
            queued.delivered = True
        if batch:
            self._touch()
        return [copy.deepcopy(q.update) for q in batch]

    async def _set_my_commands(self, params: JsonDict, files: JsonDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request('parameter "commands" is required')
        for command in commands:
            name = str(command.get("command", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(params.get("scope"), params.get("language_code"))] = commands
        return True

    async def _delete_my_commands(self, params: JsonDict, files: JsonDict) -> bool:
        self._commands.pop(self._commands_key(params.get("scope"), params.get("language_code")), None)
        return True

    async def _get_my_commands(self, params: JsonDict, files: JsonDict) -> list[JsonDict]:
        return self.commands(params.get("scope"), params.get("language_code"))

    async def _send_message(self, params: JsonDict, files: JsonDict) -> JsonDict:
        chat = self._target_chat(params)
        raw = params.get("text")
        if not isinstance(raw, str) or not raw.strip():
            raise _bad_request("message text is empty")
        text, entities = self._parse_text(raw, params.get("parse_mode"), params.get("entities"))
        if not text.strip():
            raise _bad_request("message text is empty")
        if _utf16_len(text) > _MAX_TEXT:
            raise _bad_request("message is too long")
        markup = self._check_markup(params.get("reply_markup"))
        keyboard = self._apply_reply_keyboard(chat, markup)
        inline = markup if markup and "inline_keyboard" in markup else None
        message = self._new_bot_message(chat, text=text, entities=entities, reply_markup=inline)
        self._record("sendMessage", chat, message, params, keyboard=keyboard, raw_text=raw)
        return message

    async def _edit_message_text(self, params: JsonDict, files: JsonDict) -> JsonDict | bool:
        if params.get("inline_message_id"):
            return True
        chat, message = self._message_to_edit(params)
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        raw = params.get("text")
        if not isinstance(raw, str) or not raw.strip():
            raise _bad_request("message text is empty")
        text, entities = self._parse_text(raw, params.get("parse_mode"), params.get("entities"))
        if _utf16_len(text) > _MAX_TEXT:
            raise _bad_request("MESSAGE_TOO_LONG")
        markup = self._check_markup(params.get("reply_markup"))
        inline = markup if markup and "inline_keyboard" in markup else None
        if (
            message.get("text") == text
            and message.get("entities", []) == entities
            and message.get("reply_markup") == inline
        ):
            raise _bad_request(_NOT_MODIFIED.removeprefix("Bad Request: "))
        message["text"] = text
        message["edit_date"] = int(time.time())
        for key, value in (("entities", entities), ("reply_markup", inline)):
            if value:
                message[key] = value
            else:
                message.pop(key, None)
        self._record("editMessageText", chat, message, params, raw_text=raw)
        return copy.deepcopy(message)

    async def _edit_message_reply_markup(self, params: JsonDict, files: JsonDict) -> JsonDict | bool:
        if params.get("inline_message_id"):
            return True
        _, message = self._message_to_edit(params)
        markup = self._check_markup(params.get("reply_markup"))
        inline = markup if markup and "inline_keyboard" in markup else None
        if message.get("reply_markup") == inline:
            raise _bad_request(_NOT_MODIFIED.removeprefix("Bad Request: "))
        if inline:
            message["reply_markup"] = inline
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        self._notify()
        return copy.deepcopy(message)

    async def _delete_message(self, params: JsonDict, files: JsonDict) -> bool:
        chat = self._target_chat(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int) or chat.messages.pop(message_id, None) is None:
            raise _bad_request("message to delete not found")
        if message_id in chat.bot_message_ids:
            chat.bot_message_ids.remove(message_id)
        self._notify()
        return True

    async def _answer_callback_query(self, params: JsonDict, files: JsonDict) -> bool:
        query = self._callbacks.get(str(params.get("callback_query_id", "")))
        if query is None or query["answered"]:
            raise TelegramError(400, _QUERY_TOO_OLD)
        query["answered"] = True
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise _bad_request("MESSAGE_TOO_LONG")
        if (user := self._users.get(query["user"])) is not None:
            user.callback_answers.append(
                {
                    "data": query["data"],
                    "text": text,
                    "show_alert": bool(params.get("show_alert")),
                    "url": params.get("url"),
                }
            )
        self._notify()
        return True

    async def _send_document(self, params: JsonDict, files: JsonDict) -> JsonDict:
        chat = self._target_chat(params)
        ref = params.get("document")
        upload: tuple[str, bytes] | None = None
        if "document" in files:
            upload = files["document"]
        elif isinstance(ref, str) and ref.startswith("attach://"):
            upload = files.get(ref.removeprefix("attach://"))
            if upload is None:
                raise _bad_request("wrong file identifier/HTTP URL specified")
        if upload is not None:
            document = self._store_file("documents", upload[0], upload[1], None)
        elif isinstance(ref, str) and ref in self.files:
            name, data, mime = self.files[ref]
            document = {
                "file_id": ref,
                "file_unique_id": f"u-{ref}",
                "file_name": name,
                "mime_type": mime,
                "file_size": len(data),
            }
        elif isinstance(ref, str) and ref.startswith(("http://", "https://")):
            name = ref.rstrip("/").rsplit("/", 1)[-1] or "document"
            document = self._store_file("documents", name, b"", None)
        else:
            raise _bad_request(
                "there is no document in the request"
                if not ref
                else "wrong file identifier/HTTP URL specified"
            )
        raw_caption = params.get("caption")
        caption: str | None = None
        caption_entities: list[JsonDict] = []
        if raw_caption:
            caption, caption_entities = self._parse_text(
                raw_caption, params.get("parse_mode"), params.get("caption_entities")
            )
            if _utf16_len(caption) > _MAX_CAPTION:
                raise _bad_request("message caption is too long")
        markup = self._check_markup(params.get("reply_markup"))
        keyboard = self._apply_reply_keyboard(chat, markup)
        inline = markup if markup and "inline_keyboard" in markup else None
        message = self._new_bot_message(
            chat, document=document, caption=caption, caption_entities=caption_entities, reply_markup=inline
        )
        stored = self.files[document["file_id"]]
        self._record(
            "sendDocument", chat, message, params, keyboard=keyboard, document=stored, raw_text=raw_caption
        )
        return message

    async def _send_chat_action(self, params: JsonDict, files: JsonDict) -> bool:
        self._target_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    async def _get_file(self, params: JsonDict, files: JsonDict) -> JsonDict:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            raise _bad_request("invalid file_id")
        data = self.files[file_id][1]
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(data),
            "file_path": self._file_paths[file_id],
        }


@contextlib.contextmanager
def served_in_thread(**server_kwargs: Any) -> Iterator[FakeBotAPI]:
    """A FakeBotAPI on an event loop in a thread of its own, for code that runs its own loop
    (the CLI's ``asyncio.run``)."""
    import threading

    loop = asyncio.new_event_loop()
    server = FakeBotAPI(**server_kwargs)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(5), "the fake Bot API did not start"
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()

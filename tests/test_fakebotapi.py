"""End-to-end tests of the fake Bot API server with a real aiogram bot (long polling)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import Command, CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from tests.fakebotapi import FakeBotAPI, TelegramError, parse_html

TOKEN = "42:TEST-token"


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN, bot_username="resobot_test_bot") as api:
        yield api
    assert api.errors == []  # the fake itself never crashed


@pytest.fixture
async def bot(server: FakeBotAPI) -> AsyncIterator[Bot]:
    bot = server.make_bot(default=DefaultBotProperties(parse_mode="HTML"))
    yield bot
    await bot.session.close()


def build_dispatcher(seen: list[int]) -> Dispatcher:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        assert message.from_user is not None
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    InlineKeyboardButton(text="Ziņot tagad", callback_data="report:now"),
                    InlineKeyboardButton(text="Atgādināt rīt", callback_data="remind:tomorrow"),
                ],
                [InlineKeyboardButton(text="Vietne", url="https://www.tm.gov.lv")],
            ]
        )
        await message.answer(f"<b>Sveiki</b>, {message.from_user.first_name}!", reply_markup=keyboard)

    @router.callback_query(F.data.in_({"report:now", "remind:tomorrow"}))
    async def choose(callback: CallbackQuery) -> None:
        assert isinstance(callback.message, Message)
        await callback.message.edit_text(f"Izvēle: <i>{callback.data}</i>")
        await callback.answer("Saņemts")

    @router.message(Command("doc"))
    async def document(message: Message) -> None:
        data = "Pārskats ✓".encode()
        await message.answer_document(BufferedInputFile(data, filename="parskats.txt"), caption="Pārskats")

    @router.edited_message(F.text)
    async def edited(message: Message) -> None:
        seen.append(message.message_id)
        await message.answer(f"Labots: {message.text}")

    @router.message(F.text)
    async def echo(message: Message) -> None:
        seen.append(message.message_id)
        await message.answer(f"Jūs rakstījāt: {message.html_text}")

    @router.message()
    async def other(message: Message) -> None:
        await message.answer("Lūdzu, rakstiet tekstu.")

    dp = Dispatcher()
    dp.include_router(router)
    return dp


async def test_real_bot_long_polling_end_to_end(server: FakeBotAPI, bot: Bot) -> None:
    seen: list[int] = []
    dp = build_dispatcher(seen)
    anna = server.user(1001, first_name="Anna", language_code="lv")
    bob = server.user(1002, first_name="Bob", language_code="en")

    async with server.polling(dp, bot, polling_timeout=5):
        # /start -> HTML parsed like Telegram, keyboard echoed
        anna.send("/start")
        [hello] = await anna.replies(1)
        assert hello.method == "sendMessage"
        assert hello.text == "Sveiki, Anna!"
        assert hello.raw_text == "<b>Sveiki</b>, Anna!"
        assert hello.parse_mode == "HTML"
        assert hello.message["entities"] == [{"type": "bold", "offset": 0, "length": 6}]
        assert hello.buttons == [
            [("Ziņot tagad", "report:now"), ("Atgādināt rīt", "remind:tomorrow")],
            [("Vietne", None)],
        ]
        assert hello.message["from"]["username"] == "resobot_test_bot"

        # click by text -> the handler edits the message, which drops the keyboard
        anna.click_text("Ziņot tagad")
        [edit] = await anna.replies(1)
        assert edit.method == "editMessageText"
        assert edit.message_id == hello.message_id
        assert edit.text == "Izvēle: report:now"
        assert edit.buttons == []
        await server.idle()
        assert anna.callback_answers[-1]["text"] == "Saņemts"
        with pytest.raises(AssertionError, match="no button"):
            anna.click("remind:tomorrow")
        with pytest.raises(AssertionError):
            anna.click_text("Nav tādas pogas")

        # text, then the user edits it; a duplicated update is processed twice
        sent = anna.send("sveiki <draugi>")
        [echo] = await anna.replies(1)
        assert echo.text == "Jūs rakstījāt: sveiki <draugi>"
        anna.edit(sent["message"]["message_id"], "labdien")
        assert (await anna.reply()).text == "Labots: labdien"
        server.duplicate_last_update()
        assert (await anna.reply()).text == "Labots: labdien"
        assert seen[-2:] == [sent["message"]["message_id"]] * 2

        # a document with bytes and file name
        anna.send("/doc")
        [doc] = await anna.replies(1)
        assert doc.method == "sendDocument"
        assert doc.document_name == "parskats.txt"
        assert doc.document_bytes == "Pārskats ✓".encode()
        assert doc.mime_type == "text/plain"
        assert doc.text == "Pārskats"

        # non-text messages and a second user in parallel
        anna.send_sticker()
        anna.send_photo()
        anna.send_voice()
        bob.send("hi")
        replies = await anna.replies(3)
        assert {r.text for r in replies} == {"Lūdzu, rakstiet tekstu."}
        assert (await bob.reply()).text == "Jūs rakstījāt: hi"
        await anna.assert_no_replies(0.05)

        await server.idle()
        assert server.pending_updates == 0
        assert [r.method for r in anna.transcript].count("sendMessage") == 7
        assert len(server.sent_to(1001)) == 8  # 7 messages + 1 document, edits excluded

        # message ids are shared by user and bot messages of a chat and increase
        ids = [r.message_id for r in server.sent_to(1001)]
        assert ids == sorted(ids)

        # commands with scopes are recorded and can be read back
        await bot.set_my_commands(
            [BotCommand(command="start", description="Sākt")],
            scope=BotCommandScopeChat(chat_id=1001),
            language_code="lv",
        )
        assert server.calls_of("setMyCommands")[-1]["scope"] == {"type": "chat", "chat_id": 1001}
        stored = await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=1001), language_code="lv")
        assert [c.command for c in stored] == ["start"]
        assert await bot.get_my_commands() == []

    methods = [name for name, _ in server.calls]
    assert methods[0] == "getMe"
    assert "getUpdates" in methods
    # offsets confirm updates: later polls carry an offset past the first update
    assert any(p.get("offset", 0) > 10_000 for p in server.calls_of("getUpdates"))


async def test_bot_errors_like_telegram(server: FakeBotAPI, bot: Bot) -> None:
    server.user(7, first_name="Ilze")
    message = await bot.send_message(7, "<b>ok</b>")
    assert message.text == "ok"
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(7, "1 < 2 <blink>")
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("<b>ok</b>", chat_id=7, message_id=message.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=7, message_id=999)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("nope")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(
            7,
            "x",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="x" * 65)]]
            ),
        )


async def test_failure_injection(server: FakeBotAPI, bot: Bot) -> None:
    server.user(1, first_name="A")
    server.user(2, first_name="B")

    # 429 beyond the rate
    server.rate_limit(per_second=2, retry_after=3)
    await bot.send_message(1, "a")
    await bot.send_message(1, "b")
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(1, "c")
    assert retry.value.retry_after == 3
    assert server.stats["429"] == 1
    server.rate_limit(None)

    # 403 for a blocked user only
    server.block(2)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(2, "hi")
    await bot.send_message(1, "still fine")
    server.unblock(2)
    await bot.send_message(2, "back")
    assert server.stats["403"] == 1

    # 5xx for the next N calls of a method
    server.fail_next("sendMessage", status=502, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(1, "x")
    await bot.send_message(1, "after outage")
    assert server.stats["5xx"] == 2

    # slow answers -> client timeouts; before: not delivered, after: delivered but answer lost
    server.delay("sendMessage", 0.5)
    with pytest.raises(TelegramNetworkError, match="timeout"):
        await bot.send_message(1, "lost", request_timeout=0.1)  # type: ignore[arg-type]
    server.delay("sendMessage", 0.5, after=True)
    with pytest.raises(TelegramNetworkError, match="timeout"):
        await bot.send_message(1, "delivered twice?", request_timeout=0.1)  # type: ignore[arg-type]
    server.delay("sendMessage", None)

    texts = [o.text for o in server.sent_to(1)]
    assert texts == ["a", "b", "still fine", "after outage", "delivered twice?"]
    assert [o.text for o in server.sent_to(2)] == ["back"]


async def test_raw_http_protocol(server: FakeBotAPI) -> None:
    base = f"{server.base_url}/bot{TOKEN}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/noSuchMethod", json={}) as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        async with http.post(f"{server.base_url}/bot1:wrong/getMe") as resp:
            assert resp.status == 401

        # form-urlencoded: JSON-looking strings are decoded except for string fields like text
        form = {
            "chat_id": "5",
            "text": "123",
            "reply_markup": '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}',
        }
        async with http.post(f"{base}/sendMessage", data=form) as resp:
            body = await resp.json()
        assert body["ok"] is True
        assert body["result"]["text"] == "123"
        assert body["result"]["chat"] == {"id": 5, "type": "private", "first_name": "User5"}
        assert server.sent_to(5)[0].buttons == [[("A", "a")]]

        # 429 answers carry retry_after in parameters
        server.rate_limit(per_second=0)
        async with http.post(f"{base}/sendMessage", json={"chat_id": 5, "text": "x"}) as resp:
            assert resp.status == 429
            body = await resp.json()
        assert body["parameters"] == {"retry_after": 1}
        assert body["description"] == "Too Many Requests: retry after 1"
        server.rate_limit(None)

        # long polling: a waiting getUpdates wakes up as soon as an update is queued
        user = server.user(9)

        async def later() -> None:
            await asyncio.sleep(0.05)
            user.send("ping")

        task = asyncio.create_task(later())
        started = time.monotonic()
        async with http.post(f"{base}/getUpdates", json={"timeout": 3}) as resp:
            updates = (await resp.json())["result"]
        await task
        assert time.monotonic() - started < 1.0
        assert [u["message"]["text"] for u in updates] == ["ping"]

        # unconfirmed updates come again; the offset confirms them; timeout=0 returns at once
        user.send("pong")
        with pytest.raises(AssertionError, match="1 undelivered update"):
            await server.idle(timeout=0.05)
        async with http.post(f"{base}/getUpdates", json={"limit": 1}) as resp:
            again = (await resp.json())["result"]
        assert again == updates
        offset = updates[0]["update_id"] + 1
        async with http.post(f"{base}/getUpdates", json={"offset": offset}) as resp:
            rest = (await resp.json())["result"]
        assert [u["message"]["text"] for u in rest] == ["pong"]
        async with http.post(f"{base}/getUpdates", json={"offset": rest[0]["update_id"] + 1}) as resp:
            assert (await resp.json())["result"] == []
        await server.idle(timeout=1.0)


def test_parse_html_like_telegram() -> None:
    text, entities = parse_html('😀 <b>bold <i>both</i></b> &lt;x&gt; <a href="https://a.lv">link</a>')
    assert text == "😀 bold both <x> link"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 9},
        {"type": "italic", "offset": 8, "length": 4},
        {"type": "text_link", "offset": 17, "length": 4, "url": "https://a.lv"},
    ]
    text, entities = parse_html('<pre><code class="language-python">x = 1</code></pre>')
    assert entities == [{"type": "pre", "offset": 0, "length": 5, "language": "python"}]
    for bad in ("<b>open", "a < b", "<b><i>x</b></i>", "<blink>x</blink>"):
        with pytest.raises(TelegramError):
            parse_html(bad)

"""Tests of the offline console chat (bot/console.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.filters import Command, CommandStart
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendDocument, SendMessage
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from rich.console import Console

from bot.console import (
    ConsoleChat,
    ConsoleSession,
    ConsoleView,
    build_console_bot,
    scripted_input,
)
from bot.offline import RecordingSession, html_to_rich
from bot.throttle import Throttle
from tests.chat_harness import HARNESS_RATE

USER_ID = 1001


def fast() -> Throttle:
    """The console bot's rate limits, loose enough for a script typing at machine speed."""
    return Throttle(HARNESS_RATE, HARNESS_RATE)


USER = {"id": USER_ID, "first_name": "Anna", "language_code": "lv"}
REPORT_BYTES = "Pārskats 2025 ✓".encode()


def toy_dispatcher() -> Dispatcher:
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
                [InlineKeyboardButton(text="Ministrija", url="https://www.tm.gov.lv")],
            ]
        )
        await message.answer(
            f"<b>Sveiki</b>, {message.from_user.first_name}! 1 &lt; 2 <code>kods</code>",
            reply_markup=keyboard,
        )

    @router.callback_query(F.data == "report:now")
    async def report_now(callback: CallbackQuery) -> None:
        assert isinstance(callback.message, Message)
        assert callback.message.text is not None and callback.message.text.startswith("Sveiki, Anna!")
        await callback.message.edit_text(f"Izvēlēts: <i>{callback.data}</i>")
        await callback.answer("Paldies!")

    @router.message(F.text == "doc")
    async def document(message: Message) -> None:
        sent = await message.answer_document(
            BufferedInputFile(REPORT_BYTES, filename="parskats.docx"), caption="<b>Jūsu</b> pārskats"
        )
        assert sent.document is not None
        assert sent.document.file_size == len(REPORT_BYTES)

    @router.message(F.text == "boom")
    async def boom(message: Message) -> None:
        raise ValueError("kaut kas nogāja greizi")

    @router.message(F.text == "menu")
    async def menu(message: Message) -> None:
        keyboard = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Jā"), KeyboardButton(text="Nē")]])
        await message.answer("Vai turpināt?", reply_markup=keyboard)

    @router.message(F.text.in_({"Jā", "Nē"}))
    async def answer(message: Message) -> SendMessage:
        return message.answer(f"Atbilde: {message.text}")  # webhook-style return

    @router.message(Command("commands"))
    async def commands(message: Message, bot: Bot) -> None:
        await bot.set_my_commands([BotCommand(command="start", description="Sākt")], language_code="lv")
        stored = await bot.get_my_commands(language_code="lv")
        await message.answer(", ".join(c.command for c in stored))

    dp = Dispatcher()
    dp.include_router(router)
    return dp


async def test_console_chat_end_to_end(tmp_path: Path) -> None:
    console = Console(record=True, width=100, color_system=None)
    bot = build_console_bot(tmp_path / "files", console=console, throttle=fast())
    assert isinstance(bot.session, ConsoleSession)
    me = await bot.get_me()
    assert me.is_bot and me.username == "resobot_console" and me.id == 1

    chat = ConsoleChat(
        toy_dispatcher(),
        bot,
        user=USER,
        console=console,
        input_fn=scripted_input(
            ["/start", "1", "1", "doc", "boom", "menu", "2", "/commands", "sveiki", "/quit", "never read"]
        ),
    )
    await chat.run()
    out = console.export_text()

    # /start: HTML rendered as text, entities decoded, numbered buttons + the url button
    assert "Sveiki, Anna! 1 < 2 kods" in out
    assert "<b>" not in out
    assert "[1] Ziņot tagad  [2] Atgādināt rīt" in out
    assert "🔗 Ministrija (https://www.tm.gov.lv)" in out
    # "1" clicked -> the message was edited (and lost its keyboard), the answer shown as a notice
    assert "labota #2" in out
    assert "Izvēlēts: report:now" in out
    assert "🔔 Paldies!" in out
    # the second "1" no longer matches a button: it became a text message (no handler)
    assert "(šai ziņai nav apstrādātāja)" in out
    # the document was saved with the right bytes and its path printed
    saved = tmp_path / "files" / "parskats.docx"
    assert saved.read_bytes() == REPORT_BYTES
    assert "parskats.docx" in out and "Jūsu pārskats" in out
    # a failing handler does not stop the loop
    assert "✖ ValueError: kaut kas nogāja greizi" in out
    assert len(chat.errors) == 1
    # reply keyboards are numbered too and send their text; webhook-style returns are executed
    assert "[1] Jā  [2] Nē" in out
    assert "Atbilde: Nē" in out
    assert "⚙ komandas (default, lv): /start" in out
    assert "sveiki" in out
    assert "never read" not in out


async def test_console_eof_ends_chat_and_files_keep_both_names(tmp_path: Path) -> None:
    console = Console(record=True, width=100, color_system=None)
    bot = build_console_bot(tmp_path, console=console, throttle=fast())
    chat = ConsoleChat(
        toy_dispatcher(), bot, user=USER, console=console, input_fn=scripted_input(["doc", "doc"])
    )
    await chat.run()  # ends on EOF
    assert (tmp_path / "parskats.docx").read_bytes() == REPORT_BYTES
    assert (tmp_path / "parskats-2.docx").read_bytes() == REPORT_BYTES


async def test_recording_session_records_typed_calls() -> None:
    session = RecordingSession()
    bot = Bot("1:console-offline", session=session, default=DefaultBotProperties(parse_mode="HTML"))
    chat = ConsoleChat(toy_dispatcher(), bot, user=USER, input_fn=scripted_input([]), echo=False)

    await chat.send_text("/start")
    [start] = session.of_type(SendMessage)
    assert start.chat_id == USER["id"]
    sent = session.calls[-1].result
    assert isinstance(sent, Message)
    assert sent.text == "Sveiki, Anna! 1 < 2 kods"
    assert sent.from_user is not None
    assert (sent.from_user.id, sent.from_user.is_bot, sent.from_user.username) == (1, True, "resobot_console")
    assert sent.message_id == 2  # the user's /start was message 1
    assert [b.label for b in session.buttons(USER_ID).values()] == ["Ziņot tagad", "Atgādināt rīt"]

    await chat.click(1)
    edit, answer = session.requests[-2:]
    assert isinstance(edit, EditMessageText) and edit.message_id == sent.message_id
    assert isinstance(answer, AnswerCallbackQuery) and answer.text == "Paldies!"
    assert session.buttons(USER_ID) == {}
    with pytest.raises(LookupError):
        await chat.click(1)

    await chat.send_text("doc")
    [doc] = session.of_type(SendDocument)
    assert session.calls[-1].file_bytes == REPORT_BYTES
    assert session.calls[-1].result.document.file_name == "parskats.docx"
    assert doc.caption == "<b>Jūsu</b> pārskats"
    assert [type(m).__name__ for m in session.requests] == [
        "SendMessage",
        "EditMessageText",
        "AnswerCallbackQuery",
        "SendDocument",
    ]
    session.clear()
    assert session.requests == []


def test_html_to_rich() -> None:
    text = html_to_rich(
        '<b>a</b> <i>b</i> <a href="https://x.lv">saite</a> &amp; <pre>p</pre> <blink>?</blink>'
    )
    assert text.plain == "a b saite (https://x.lv) & p <blink>?</blink>"
    assert html_to_rich('<a href="https://x.lv">saite</a>', show_links=False).plain == "saite"
    assert html_to_rich('<a href="https://x.lv">https://x.lv</a>').plain == "https://x.lv"
    bold = [span for span in text.spans if "bold" in str(span.style)]
    assert bold and (bold[0].start, bold[0].end) == (0, 1)


async def test_typed_numbers_are_answers_when_the_question_expects_one(tmp_path: Path) -> None:
    """The rule: "#N" always presses button N; a bare number does only when the current
    question expects no typed number. The console says which rule applies, in the user's language."""
    console = Console(record=True, width=100, color_system=None)
    bot = build_console_bot(tmp_path, console=console, throttle=fast())
    expects = {"number": True}

    async def view() -> ConsoleView:
        return ConsoleView(expects_number=expects["number"], lang="en")

    chat = ConsoleChat(
        toy_dispatcher(), bot, user=USER, console=console, input_fn=scripted_input([]), view=view
    )
    session = bot.session
    assert isinstance(session, ConsoleSession)
    await chat.handle_line("/start")
    await chat.handle_line("1")  # an answer: sent as text (the toy bot has no handler for it)
    assert [b.label for b in session.buttons(USER_ID).values()] == ["Ziņot tagad", "Atgādināt rīt"]
    await chat.handle_line("#1")  # the button
    assert session.buttons(USER_ID) == {}
    out = console.export_text()
    assert "A typed number answers the question; pick a button with #1–#2." in out
    assert "Anna › 1\n" in out and "(no handler for this update)" in out
    assert "Izvēlēts: report:now" in out
    expects["number"] = False
    await chat.handle_line("/start")
    await chat.handle_line("2")  # no number expected: the bare number presses [2]
    assert "Buttons: type 1–2 (or #1)." in console.export_text()
    assert chat.pick("#7", ConsoleView()) == 7  # a button that is not shown
    assert chat.pick("12,5", ConsoleView()) is None

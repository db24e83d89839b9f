"""Conversation states of every flow (aiogram FSM). The report form's current question lives in
the draft (its cursor), not here."""

from aiogram.fsm.state import State, StatesGroup


class ReportFlow(StatesGroup):
    choosing_measure = State()
    choosing_year = State()
    answering = State()  # a question or the summary card, as the draft's cursor says
    open_draft = State()  # /report found an unfinished draft: continue or start again


class MuteFlow(StatesGroup):
    choosing_measure = State()
    choosing_period = State()
    typing_reason = State()


class ReviewFlow(StatesGroup):
    comment = State()  # "Atgriezt" was pressed: the next text message is the comment


class IndicatorFlow(StatesGroup):
    indicator = State()
    year = State()
    value = State()
    source = State()

"""Conversation states. The current question lives in the draft (its cursor), not here."""

from aiogram.fsm.state import State, StatesGroup


class ReportFlow(StatesGroup):
    choosing_measure = State()
    choosing_year = State()
    answering = State()  # a question or the summary card, as the draft's cursor says
    open_draft = State()  # /report found an unfinished draft: continue or start again

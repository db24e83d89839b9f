"""Instructions, not seconds: bench_chat.py's SQLite report flows and their floor under callgrind.

bench_chat.py's wall-clock ratio moves by ±0.05 between runs on these machines, more than most
single changes to the hot path. ``valgrind --tool=callgrind`` counts the instructions executed,
the same for the same code whatever else the machine does, so a change can be judged by it:

    .venv/bin/python bench/instructions_chat.py [--kind report|year|answer|confirm]

runs the same flows (SQLite) and floor as bench_chat.py under callgrind (~3.5 minutes; needs valgrind
and gcc), collecting only inside the timed ``feed_update`` calls (with ``--kind``, only those of
that step), and prints both totals and their ratio. Instructions are not time — cache misses and
the database's own work weigh differently — so the wall-clock target stays bench_chat.py's; this
shows where a change moves the work. Not run by ``make bench`` (it takes minutes).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_chat as b
import time_machine

from bot.console import ConsoleChat

_TOGGLE_C = """#include <valgrind/callgrind.h>
void toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void dump(const char *what) { CALLGRIND_DUMP_STATS_AT(what); }
"""
_HELPER = "RESOBOT_CALLGRIND_HELPER"


def _outside(kind: str | None) -> None:
    """Compile the client-request helper, run this script under callgrind, print the totals."""
    with tempfile.TemporaryDirectory() as tmp:
        source, helper = Path(tmp) / "toggle.c", Path(tmp) / "toggle.so"
        source.write_text(_TOGGLE_C)
        subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(helper), str(source)], check=True)
        out = Path(tmp) / "callgrind.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            *(["--kind", kind] if kind else []),
        ]
        env = {**os.environ, _HELPER: str(helper), "PYTHONHASHSEED": "0"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"callgrind run failed:\n{done.stderr[-2000:]}")
        totals: dict[str, int] = {}
        for dump in Path(tmp).glob("callgrind.out.*"):
            body = dump.read_text(errors="replace")
            trigger = re.search(r"^desc: Trigger: Client Request: (\w+)", body, re.M)
            total = re.search(r"^totals: (\d+)", body, re.M)
            if trigger and total:
                totals[trigger.group(1)] = int(total.group(1))
    flows, floor = totals["flows"], totals["floor"]
    what = f"{kind} steps" if kind else "all steps"
    print(f"report flows (SQLite, {what}): {flows / 1e6:10.1f} M instructions in the timed updates")
    print(f"  floor (the flows' own Bot API calls + one raw row per update): {floor / 1e6:.1f} M")
    print(f"  floor / flows: {floor / flows:.3f}  (the wall-clock target, bench_chat.py: ≥ 0.6)")


def _inside(kind: str | None) -> None:
    """Under callgrind: the flows, then the floor, collecting inside their timed updates."""
    client = ctypes.CDLL(os.environ[_HELPER])
    kinds: list[str] = []  # the kind of each timed update, in order (the floor replays them)
    state = {"flows": False, "floor": False, "replayed": 0}
    feed = ConsoleChat.feed

    async def counted(self: ConsoleChat, update: object) -> object:
        if state["floor"]:
            step = kinds[state["replayed"]]
            state["replayed"] += 1
        elif state["flows"]:  # the update just planned; its untimed re-delivery is not counted
            step, state["flows"] = kinds[-1], False
        else:
            return await feed(self, update)  # type: ignore[arg-type]
        if kind is not None and step != kind:
            return await feed(self, update)  # type: ignore[arg-type]
        client.toggle()
        try:
            return await feed(self, update)  # type: ignore[arg-type]
        finally:
            client.toggle()

    planned = b.interleave

    def interleave(per_user: dict) -> object:
        for item in planned(per_user):
            kinds.append(item[2].kind)
            state["flows"] = True
            yield item

    ConsoleChat.feed = counted  # type: ignore[method-assign]
    b.interleave = interleave  # type: ignore[assignment]

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp, time_machine.travel(b.NOW, tick=True):
            await b.bare_echo(200, 4)  # warm up imports and pydantic models, as bench_chat.py
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            flows = await b.report_flows(url, b.CONTACTS_PER_INSTITUTION)
            client.dump(b"flows")
            state["floor"] = True
            floor_dir = Path(tmp) / "floor"
            floor_dir.mkdir()
            await b.floor(floor_dir, flows.replies, 2 * b.CONTACTS_PER_INSTITUTION)
            client.dump(b"floor")

    asyncio.run(run())


if __name__ == "__main__":
    args = sys.argv[1:]
    step = args[args.index("--kind") + 1] if "--kind" in args else None
    if step not in (None, "report", "year", "answer", "confirm"):
        raise SystemExit("--kind: report, year, answer or confirm")
    if _HELPER in os.environ:
        _inside(step)
    else:
        _outside(step)

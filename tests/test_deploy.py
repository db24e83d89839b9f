"""Deployment: the compose file, the Dockerfile, the lock files, and the README's Deployment
section followed on this machine — Docker's engine is not needed: the image's entrypoint
(docker/entrypoint.sh) runs here as written in the README, on a fresh database, against the
fake Bot API, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import aiohttp
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import PG_ADMIN_DSN, _pg_admin, _pg_reason
from tests.fakebotapi import FakeBotAPI
from tests.test_webhook import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def deployment_section() -> str:
    match = re.search(r"^## Deployment\n(.*?)(?=^## )", README, flags=re.S | re.M)
    assert match, "README has a Deployment section"
    return match.group(1)


def readme_commands() -> tuple[list[str], list[list[str]]]:
    """From the README's "Without Docker" block: the variables it exports and the entrypoint
    command lines, as written."""
    block = re.search(r"\*\*Without Docker\*\*.*?```sh\n(.*?)```", deployment_section(), flags=re.S)
    assert block, "the Deployment section shows the entrypoint without Docker"
    exported: list[str] = []
    commands: list[list[str]] = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            exported += [w.split("=", 1)[0] for w in words[1:]]
        elif words[:1] == ["docker/entrypoint.sh"]:
            commands.append(words)
    return exported, commands


# ---------------------------------------------------------------- docker-compose.yml, Dockerfile


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_has_bot_and_postgres_with_volumes_and_healthchecks() -> None:
    doc = compose()
    services, volumes = doc["services"], doc["volumes"]
    assert set(services) == {"bot", "db"}
    db, bot = services["db"], services["bot"]
    assert db["image"] == "postgres:16"
    assert bot["build"] == "." and (ROOT / "Dockerfile").is_file()
    for name, service in services.items():
        assert service["restart"] in ("unless-stopped", "always"), name
        check = service["healthcheck"]
        assert check["test"] and check["interval"] and check["retries"] >= 1, name
        for mount in service["volumes"]:  # named volumes, declared at the top
            volume = mount.split(":", 1)[0]
            assert volume in volumes, (name, mount)
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    env = bot["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://") and "@db:5432/" in env["DATABASE_URL"]
    assert env["DATA_DIR"] == "/data" and any(m.endswith(":/data") for m in bot["volumes"])
    # the bot's health check asks the port HEALTH_LISTEN opens, at /readyz
    port = env["HEALTH_LISTEN"].rsplit(":", 1)[1]
    assert f"127.0.0.1:{port}/readyz" in " ".join(bot["healthcheck"]["test"])
    text = (ROOT / "docker-compose.yml").read_text()
    for commented in ("# WEBHOOK_URL:", "# WEBHOOK_SECRET:", '# command: ["--webhook"'):
        assert commented in text  # webhook mode is one uncomment away


def docker_compose_reason() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "the docker client is not installed"
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"the docker compose plugin is missing: {(probe.stderr or probe.stdout).strip()[:120]}"
    return None


def test_docker_compose_config_validates() -> None:
    reason = docker_compose_reason()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "POSTGRES_PASSWORD": "pw", "TELEGRAM_BOT_TOKEN": "123:abc"}
    result = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_slim_non_root_locked_migrates_at_start() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [args for word, args in steps if word == "RUN"]
    assert any("pip install -r requirements.lock" in r for r in runs)
    assert any("pip install --no-deps -e ." in r for r in runs)
    users = [i for i, (word, _) in enumerate(steps) if word == "USER"]
    assert users and steps[users[-1]][1] not in ("root", "0")
    assert all(word != "RUN" for word, _ in steps[users[-1] :]), "nothing runs as root after USER"
    for word, args in steps:
        if word == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    entry = next(args for word, args in steps if word == "ENTRYPOINT")
    assert "docker/entrypoint.sh" in entry
    script = ROOT / "docker" / "entrypoint.sh"
    assert os.access(script, os.X_OK)
    assert "resobot init" in script.read_text() and 'exec resobot run "$@"' in script.read_text()
    env = " ".join(args for word, args in steps if word == "ENV")
    assert "DATA_DIR=/data" in env
    port = re.search(r"HEALTH_LISTEN=[\d.]+:(\d+)", env)
    health = next(args for word, args in steps if word == "HEALTHCHECK")
    assert port and f"127.0.0.1:{port.group(1)}/readyz" in health


# ---------------------------------------------------------------- the lock files


def pins(name: str) -> dict[str, str]:
    out = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        assert "==" in line, f"{name}: {line!r} is not pinned with =="
        package, version = line.split("==", 1)
        out[canonicalize_name(package)] = version
    return out


def test_lock_files_pin_every_dependency_within_pyproject_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert "-r requirements.lock" in (ROOT / "requirements-dev.lock").read_text()
    assert not set(runtime) & set(dev), "the dev lock adds to the runtime lock, never repins it"
    for group, locked in ((project["dependencies"], runtime), (project["optional-dependencies"]["dev"], dev)):
        for line in group:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            assert name in locked, f"{req.name} is not in the lock: run `make lock`"
            assert req.specifier.contains(locked[name], prereleases=True), (req, locked[name])
    # what the tests run on is what is locked (make install installs the lock files)
    stale = {
        name: (version, metadata.version(name))
        for name, version in {**runtime, **dev}.items()
        if metadata.version(name) != version
    }
    assert not stale, f"installed versions differ from the lock (run `make install`): {stale}"


def test_makefile_installs_from_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -r requirements-dev.lock" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    assert re.search(r"^lock:", makefile, flags=re.M) and "tools/lock.py" in makefile


# ---------------------------------------------------------------- the entrypoint, as in the README


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema): the entrypoint must migrate it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'resobot.db'}"
        return
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    name = f"resobot_entry_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    yield f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Entrypoint:
    """``docker/entrypoint.sh ARGS`` as a process, with the README's variables."""

    def __init__(self, server: FakeBotAPI, database_url: str, tmp: Path, health_port: int) -> None:
        exported, _ = readme_commands()
        values = {
            "DATABASE_URL": database_url,
            "TELEGRAM_BOT_TOKEN": server.token,
            "DATA_DIR": str(tmp / "data"),
        }
        assert set(exported) == set(values), f"the README exports {exported}"
        venv_bin = str(Path(sys.executable).parent)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_", "HEALTH_"))},
            **values,
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
            "TELEGRAM_API_BASE": server.base_url,
            "HEALTH_LISTEN": f"127.0.0.1:{health_port}",
            "REMINDERS_ENABLED": "false",
            "COMPILE_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
        self.tmp = tmp
        self.log = tmp / "entrypoint.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, words: list[str], **env: str) -> None:
        with self.log.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(ROOT / words[0]),
                *words[1:],
                cwd=self.tmp,
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def sigterm(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"no exit within 30 s of SIGTERM\n{self.output()}") from None

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def get(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


async def test_readme_entrypoint_migrates_and_long_polls(
    server: FakeBotAPI, fresh_database: str, tmp_path: Path
) -> None:
    _, commands = readme_commands()
    polling = next(c for c in commands if "--webhook" not in c)
    health = free_port()
    entry = Entrypoint(server, fresh_database, tmp_path, health)
    await entry.start(polling)
    try:
        ok = await server._wait_until(
            lambda: server.stats["getUpdates"] > 0 or entry.proc.returncode is not None, 90
        )
        assert ok and entry.proc.returncode is None, entry.output()
        assert "Database ready" in entry.output()  # resobot init ran first
        status, body = await get(f"http://127.0.0.1:{health}/readyz")
        assert status == 200 and body["database"] == "ok", body
        user = server.user(8101)
        user.send("/help")
        (reply,) = await user.replies(1, timeout=15)
        assert reply.text
        assert await entry.sigterm() == 0, entry.output()
    finally:
        await entry.kill()
    if fresh_database.startswith("sqlite"):
        assert (tmp_path / "data" / "resobot.db").is_file()  # under DATA_DIR


async def test_readme_entrypoint_migrates_and_serves_the_webhook(
    server: FakeBotAPI, fresh_database: str, tmp_path: Path
) -> None:
    _, commands = readme_commands()
    webhook = next(c for c in commands if "--webhook" in c)
    port = free_port()
    webhook = [f"127.0.0.1:{port}" if w == "0.0.0.0:8080" else w for w in webhook]  # loopback only
    assert f"127.0.0.1:{port}" in webhook
    entry = Entrypoint(server, fresh_database, tmp_path, free_port())
    await entry.start(
        webhook, WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook", WEBHOOK_SECRET="abc_123"
    )
    try:
        ok = await server._wait_until(lambda: bool(server.webhook) or entry.proc.returncode is not None, 90)
        assert ok and entry.proc.returncode is None, entry.output()
        assert "Database ready" in entry.output()
        assert server.webhook["secret_token"] == "abc_123"
        status, body = await get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and body["database"] == "ok"
        user = server.user(8102)
        user.send("/help")
        assert await server.deliver_webhook(secret="wrong") == [401]
        assert await server.deliver_webhook() == [200]
        (reply,) = await user.replies(1, timeout=15)
        assert reply.text
        assert await entry.sigterm() == 0, entry.output()
    finally:
        await entry.kill()


async def test_entrypoint_passes_other_commands_through(tmp_path: Path) -> None:
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
        "DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("DATABASE_URL", None)
    result = await asyncio.create_subprocess_exec(
        str(ROOT / "docker" / "entrypoint.sh"),
        "institutions",
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await result.communicate()
    assert result.returncode == 0 and "VPD" in out.decode(), out
    assert not (tmp_path / "data" / "resobot.db").exists(), "a command runs as it is, without init"


def test_data_dir_holds_the_default_database_and_files(tmp_path: Path) -> None:
    from bot.config import DEFAULT_DATA_DIR, Settings

    default = Settings(_env_file=None)
    assert default.data_dir == DEFAULT_DATA_DIR and DEFAULT_DATA_DIR.name == "var"
    moved = Settings(_env_file=None, data_dir=tmp_path)
    assert moved.database_url == f"sqlite+aiosqlite:///{tmp_path / 'resobot.db'}"
    assert moved.compiled_dir == tmp_path / "compiled"
    assert moved.console_files_dir == tmp_path / "console-files"
    own = Settings(_env_file=None, data_dir=tmp_path, compiled_dir=tmp_path / "elsewhere")
    assert own.compiled_dir == tmp_path / "elsewhere"  # a path set on its own stays

"""Compiled templates are kept between starts (issue 12, item 6): the cache is used, an edited
template is compiled again, and a cache that cannot be written changes nothing but speed."""

from __future__ import annotations

from pathlib import Path

from jinja2 import DictLoader, Environment

from reporting_forms import texts


def _env(cache_dir: Path, source: str) -> Environment:
    env = Environment(loader=DictLoader({"m.j2": source}))
    cache = texts._compiled_templates(env)
    assert cache is not None
    cache.directory = str(cache_dir)
    env.bytecode_cache = cache
    return env


def test_the_bot_environment_keeps_compiled_templates() -> None:
    assert isinstance(texts.environment().bytecode_cache, texts._CompiledTemplates)


def test_a_cached_template_is_reused_and_an_edited_one_compiled_again(tmp_path: Path) -> None:
    assert _env(tmp_path, "{% macro hi() %}sveiki{% endmacro %}").get_template("m.j2").module.hi() == "sveiki"
    assert len(list(tmp_path.iterdir())) == 1
    # the cached code is what a fresh environment loads for the same source …
    env = _env(tmp_path, "{% macro hi() %}sveiki{% endmacro %}")
    env.compile = None  # type: ignore[method-assign,assignment]  # compiling now would fail
    assert env.get_template("m.j2").module.hi() == "sveiki"
    # … but not for an edited one
    edited = _env(tmp_path, "{% macro hi() %}labdien{% endmacro %}")
    assert edited.get_template("m.j2").module.hi() == "labdien"


def test_options_are_part_of_the_cache_entry_names(tmp_path: Path) -> None:
    plain = texts._compiled_templates(Environment())
    trimmed = texts._compiled_templates(Environment(trim_blocks=True))
    assert plain is not None and trimmed is not None and plain.pattern != trimmed.pattern


def test_an_unwritable_cache_only_means_compiling(tmp_path: Path) -> None:
    env = _env(tmp_path / "missing", "{% macro hi() %}sveiki{% endmacro %}")  # cannot be written
    assert env.get_template("m.j2").module.hi() == "sveiki"

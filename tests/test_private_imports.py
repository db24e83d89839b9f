"""Edge code (``bot/``, ``storage/``, ``services/``) uses the domain's public surface only: no
import of a private ``reporting_forms`` module (``exports._common`` was one) or private name
(issue 12, item 4). Scanned with ``ast``, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EDGE = ("bot", "storage", "services")
DOMAIN = "reporting_forms"


def _private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def private_imports(source: str) -> list[str]:
    """``module`` or ``module:name`` for every private domain module or name the source imports."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == DOMAIN and _private(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != DOMAIN:
                continue
            if _private(node.module):
                found.append(node.module)
            found += [f"{node.module}:{a.name}" for a in node.names if a.name.startswith("_")]
    return found


@pytest.mark.parametrize(
    "source",
    [
        "from reporting_forms.exports._common import review_label",
        "import reporting_forms.exports._common",
        "from reporting_forms.exports import _common",
        "from reporting_forms.compilation import _Check",
        "def f():\n    from reporting_forms.compilation.checks import _pair_warning\n",
    ],
)
def test_the_scan_finds_private_imports(source: str) -> None:
    assert private_imports(source)


def test_the_scan_lets_public_imports_pass() -> None:
    source = (
        "from __future__ import annotations\n"
        "from reporting_forms.exports.common import review_label\n"
        "from reporting_forms import exports\n"
        "from storage._x import y\n"  # not the domain: another rule's business
    )
    assert private_imports(source) == []


def test_edge_code_imports_no_private_domain_module_or_name() -> None:
    found = {
        str(path.relative_to(ROOT)): hits
        for package in EDGE
        if (ROOT / package).is_dir()
        for path in sorted((ROOT / package).rglob("*.py"))
        if (hits := private_imports(path.read_text(encoding="utf-8")))
    }
    assert found == {}

"""No module imports a test module (``test_*.py``): what tests share lives in helper
modules (``tests/integration/support/``, a unit package's fakes), so that running one
test file never runs, or depends on the fixtures of, another, and a helper has one home.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {".venv", ".git", ".local", "mutants"}
"""Not the project's sources: the virtualenv, git, the dev stack's data, mutmut's copy."""


def imported_modules(source: str, package: tuple[str, ...]) -> set[str]:
    """Every dotted name ``source`` may import, for a module in ``package``: the module of
    each import, and module plus name for ``from`` imports (the name may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = list(package[: len(package) - node.level + 1] if node.level else ())
            base = ".".join([*parts, *([node.module] if node.module else [])])
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def is_test_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split(".")).with_suffix(".py")
    return path.name.startswith("test_") and path.is_file()


def modules_importing_tests(root: Path) -> dict[str, list[str]]:
    """Each module under ``root`` that imports a test module: the test modules it imports."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if SKIPPED & set(relative.parts):
            continue
        package = relative.with_suffix("").parts[:-1]
        imported = sorted(filter(is_test_module, imported_modules(path.read_text(), package)))
        if imported:
            found[str(relative)] = imported
    return found


def test_no_module_imports_a_test_module() -> None:
    offenders = modules_importing_tests(ROOT)
    assert not offenders, (
        "move what these share into a helper module (tests/integration/support/, or a "
        f"fakes module beside the tests): {offenders}"
    )


def test_every_spelling_of_such_an_import_is_seen() -> None:
    """Absolute, from a package, whole-module and relative: each names the same file."""
    spellings = [
        "from tests.unit.test_layout import ROOT",
        "from tests.unit import test_layout",
        "import tests.unit.test_layout",
        "from .test_layout import ROOT",
        "from ..unit.test_layout import ROOT",
    ]
    for source in spellings:
        names = imported_modules(source, ("tests", "unit"))
        assert "tests.unit.test_layout" in names, source
        assert any(map(is_test_module, names)), source
    assert not any(map(is_test_module, imported_modules("import tests.unit", ("tests",))))

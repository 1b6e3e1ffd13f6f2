"""pyproject's runtime ``dependencies`` are exactly the distributions the runtime imports.

A package imported but not declared installs by luck (as another package's dependency)
and breaks the day that one drops it; a package declared but never imported is weight in
the image. The runtime is the packages the wheel ships; tests and tooling use extras.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = tuple(
    pattern.rstrip("*")
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
)
"""What ``[tool.setuptools.packages.find]`` ships in the wheel."""


def top_level_imports(source: str) -> set[str]:
    """First component of every absolute import in ``source``, wherever it appears."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def imported_distributions(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Distribution name -> the modules of ``packages`` that import it."""
    third_party: dict[str, set[str]] = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in top_level_imports(path.read_text()):
                if name in sys.stdlib_module_names or name in RUNTIME_PACKAGES:
                    continue
                third_party.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    provided = packages_distributions()
    by_distribution: dict[str, set[str]] = {}
    for name, modules in third_party.items():
        assert name in provided, f"{name} (imported by {sorted(modules)}) is not installed"
        for distribution in provided[name]:
            by_distribution.setdefault(canonicalize_name(distribution), set()).update(modules)
    return by_distribution


def declared_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(spec).name) for spec in project["dependencies"]}


def test_every_runtime_import_is_declared_and_nothing_else() -> None:
    imported = imported_distributions(RUNTIME_PACKAGES)
    declared = declared_dependencies()
    undeclared = {name: sorted(imported[name]) for name in set(imported) - declared}
    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"
    unused = declared - set(imported)
    assert not unused, f"in [project] dependencies but no runtime module imports it: {unused}"


def test_imports_are_found_inside_functions_too() -> None:
    """The server imports some modules lazily, in functions; those count."""
    source = "def f():\n    import jsonpointer.x\n    from yaml import safe_load\n"
    assert top_level_imports(source) == {"jsonpointer", "yaml"}


def test_relative_imports_are_not_distributions() -> None:
    assert top_level_imports("from . import x\nfrom .y import z\n") == set()


def constraint_pins() -> dict[str, str]:
    """constraints.txt as canonical name -> exact version."""
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_every_dependency_is_pinned_inside_its_declared_range() -> None:
    """A clean checkout installs the versions CI ran (``make venv`` passes constraints.txt
    to pip); a pin outside pyproject's range would make pip refuse to install at all."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = constraint_pins()
    specs = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    for requirement in map(Requirement, specs):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{requirement.name}=={pins[name]} is outside pyproject's {requirement}"
        )


def test_the_installed_runtime_is_the_pinned_one() -> None:
    """The virtualenv the tests run in was built from constraints.txt, not left over."""
    pins = constraint_pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in map(Requirement, project["dependencies"]):
        name = canonicalize_name(requirement.name)
        assert version(requirement.name) == pins[name], requirement.name

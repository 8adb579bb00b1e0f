"""constraints.txt, the versions ``make install`` pins, agrees with pyproject and with the venv.

pyproject.toml keeps ranges (``pip install .`` resolves on its own); the Makefile installs
with ``-c constraints.txt``. Every dependency, the test extra's included, must be pinned
inside its range, and the venv the suite runs in must hold exactly the pinned versions:
else the suite passes with versions nobody else gets (regenerate: ``make constraints``).
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not NAME==VERSION"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(r) for r in project["dependencies"] + extras.get("test", [])]


def test_every_dependency_is_pinned_within_its_range():
    pins = _pins()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject's {req}"


def test_omnifs_itself_is_not_pinned():
    assert "omnifs" not in _pins()


def test_the_venv_holds_the_pinned_versions():
    wrong = {}
    for name, pinned in _pins().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue  # pinned for another platform's or an optional dependency's sake
        if installed != pinned:
            wrong[name] = f"installed {installed}, pinned {pinned}"
    assert not wrong, f"the venv differs from constraints.txt (make constraints?): {wrong}"

"""constraints.txt pins every dependency pyproject.toml declares, at a version it accepts: what CI installs is what
was locked. A dependency added without `make lock` fails here instead of installing whatever is newest."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent.parent


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"] + project["optional-dependencies"]["dev"]]


def _pinned() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    assert all(len(pin.specifier) == 1 and next(iter(pin.specifier)).operator == "==" for pin in pins)
    return {canonicalize_name(pin.name): next(iter(pin.specifier)).version for pin in pins}


def test_every_declared_dependency_is_pinned_at_an_accepted_version():
    pinned = _pinned()
    unpinned = [str(r) for r in _declared() if canonicalize_name(r.name) not in pinned]
    assert unpinned == [], "run `make lock` and commit constraints.txt"
    refused = [f"{r} (pinned {pinned[canonicalize_name(r.name)]})" for r in _declared()
               if not r.specifier.contains(pinned[canonicalize_name(r.name)], prereleases=True)]
    assert refused == [], "run `make lock` and commit constraints.txt"

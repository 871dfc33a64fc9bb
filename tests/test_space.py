"""The README's front matter builds a Space that installs requirements.txt and can push runs."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

import pytest
from huggingface_hub import metadata_load
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

APP_DIR = Path(__file__).resolve().parent.parent
# Pushing a run creates a model repository in the signed-in user's namespace (manage-repos grants
# creation) and uploads files to it (write-repos). "openid profile" come with every Space.
PUSH_SCOPES = {"manage-repos", "write-repos"}
# A ZeroGPU Space runs Python 3.10.13 with torch 2.1.0 to 2.8.0 (its documentation lists no
# others); requirements.txt's markers pick its pins, .ci/check_resolutions.py resolves them.
ZEROGPU_PYTHON = "3.10.13"
ZEROGPU_TORCH = SpecifierSet(">=2.1.0,<=2.8.0")


class Distribution(NamedTuple):
    version: str
    requires_python: str | None
    requires: list[str]


def installed(name: str) -> Distribution | None:
    """What this environment holds of ``name``, or None when it is not installed."""
    try:
        found = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Distribution(found.version, found.metadata.get("Requires-Python"), found.requires or [])


def pinned_requirements() -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in (APP_DIR / "requirements.txt").read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def front_matter() -> dict:
    return metadata_load(APP_DIR / "README.md") or {}


def marker_environment(python_version: str) -> dict[str, str]:
    """The marker variables that name ``python_version`` ("3.11" reads as 3.11.0)."""
    version = Version(python_version)
    return {"python_version": f"{version.major}.{version.minor}",
            "python_full_version": f"{version.major}.{version.minor}.{version.micro}"}


def applies(requirement: Requirement, environment: dict[str, str], extras: Iterable[str] = ("",)) -> bool:
    """Whether ``requirement``'s marker holds in ``environment`` for any of ``extras``."""
    return requirement.marker is None or any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras)


def pins_on(python_version: str) -> dict[str, list[Requirement]]:
    """requirements.txt's lines that install on ``python_version``, by distribution."""
    environment = marker_environment(python_version)
    pins: dict[str, list[Requirement]] = {}
    for requirement in pinned_requirements():
        pins.setdefault(canonicalize_name(requirement.name), [])
        if applies(requirement, environment):
            pins[canonicalize_name(requirement.name)].append(requirement)
    return pins


def python_version_problems(python_version: str, roots: Iterable[Requirement],
                            lookup: Callable[[str], Distribution | None]) -> list[str]:
    """Why ``roots`` and what they pull in would not install on ``python_version``; [] when they do.

    Walks ``roots`` and the requirements of each distribution ``lookup`` finds, keeping those whose
    markers hold on that Python (and for the extras asked for); "3.11" is read as 3.11.0. The
    platform resolves unpinned dependencies afresh, so the versions installed here stand in for
    theirs.
    """
    version = Version(python_version)
    environment = marker_environment(python_version)
    problems = []
    seen = set()
    pending = [(requirement, "requirements.txt") for requirement in roots
               if applies(requirement, environment)]
    while pending:
        requirement, required_by = pending.pop(0)
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        found = lookup(requirement.name)
        if found is None:
            problems.append(f"{requirement.name} (required by {required_by}) is not installed: its "
                            "Requires-Python cannot be read")
            continue
        where = f"{requirement.name} {found.version} (required by {required_by})"
        if not requirement.specifier.contains(found.version, prereleases=True):
            problems.append(f"{where} does not satisfy {requirement}: its metadata is not the one "
                            "that would install")
        if found.requires_python and not SpecifierSet(found.requires_python).contains(version, prereleases=True):
            problems.append(f"{where} has Requires-Python {found.requires_python}; the front matter "
                            f"says python_version {python_version}")
        extras = sorted(requirement.extras) or [""]
        for line in found.requires:
            dependency = Requirement(line)
            if applies(dependency, environment, extras):
                pending.append((dependency, requirement.name))
    return problems


FAKE = {
    "app": Distribution("1.0", ">=3.10", ["lib>=2", "backport; python_version < '3.11'",
                                          "cuda-kit; extra == 'gpu'"]),
    "lib": Distribution("2.0", ">=3.12", []),
    "cuda-kit": Distribution("1.0", ">=3.13", []),
}


@pytest.mark.parametrize("python_version, roots, expected", [
    ("3.11", ["app==1.0"], ["lib 2.0 (required by app) has Requires-Python >=3.12; the front matter "
                            "says python_version 3.11"]),
    ("3.12", ["app==1.0"], []),
    ("3.10", ["app==1.0"], ["lib 2.0 (required by app) has Requires-Python >=3.12; the front matter "
                            "says python_version 3.10",
                            "backport (required by app) is not installed: its Requires-Python cannot "
                            "be read"]),
    ("3.12", ["app[gpu]==1.0"], ["cuda-kit 1.0 (required by app) has Requires-Python >=3.13; the "
                                 "front matter says python_version 3.12"]),
    ("3.12", ["app==2.0"], ["app 1.0 (required by requirements.txt) does not satisfy app==2.0: its "
                            "metadata is not the one that would install"]),
    ("3.12", ["app==1.0; python_version >= '3.11'", "app==0.9; python_version < '3.11'"], []),
    ("3.11", ["lib==2.0; python_version >= '3.11'", "lib==1.0; python_version < '3.11'"],
     ["lib 2.0 (required by requirements.txt) has Requires-Python >=3.12; the front matter says "
      "python_version 3.11"]),
], ids=["too old for a dependency", "new enough", "marker holds on 3.10", "extra asked for",
        "installed version is not the pin", "pin for another Python skipped",
        "pin for this Python checked"])
def test_the_python_version_check_can_fail(python_version, roots, expected):
    problems = python_version_problems(python_version, [Requirement(r) for r in roots], FAKE.get)
    assert problems == expected


def test_every_pinned_distribution_installs_on_the_space_s_python():
    python_version = front_matter().get("python_version")
    # Unquoted, YAML reads 3.10 as the number 3.1.
    assert isinstance(python_version, str), f"python_version must be a quoted string, found {python_version!r}"
    problems = python_version_problems(python_version, pinned_requirements(), installed)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("hardware", ["CPU or GPU", "ZeroGPU"])
def test_markers_pin_each_distribution_once_on_each_space_python(hardware):
    python_version = ZEROGPU_PYTHON if hardware == "ZeroGPU" else front_matter().get("python_version")
    pins = pins_on(python_version)
    wrong = {name: [str(r) for r in lines] for name, lines in pins.items() if len(lines) != 1}
    assert not wrong, f"on Python {python_version} these are pinned other than once: {wrong}"


def test_zerogpu_gets_a_torch_it_supports():
    (torch,) = pins_on(ZEROGPU_PYTHON)["torch"]
    (pin,) = [s.version for s in torch.specifier if s.operator == "=="]
    assert ZEROGPU_TORCH.contains(pin), f"{torch} on ZeroGPU, which supports torch{ZEROGPU_TORCH}"


def test_sdk_version_is_the_gradio_pin():
    gradio = next(r for r in pinned_requirements() if canonicalize_name(r.name) == "gradio")
    (pin,) = [s.version for s in gradio.specifier if s.operator == "=="]
    metadata = front_matter()
    assert (metadata.get("sdk"), metadata.get("sdk_version")) == ("gradio", pin)


def test_sign_in_can_push_to_the_user_s_namespace():
    metadata = front_matter()
    assert metadata.get("hf_oauth") is True
    missing = PUSH_SCOPES - set(metadata.get("hf_oauth_scopes") or [])
    assert not missing, f"hf_oauth_scopes lacks {sorted(missing)}, which pushing a run needs"


def test_app_file_exists():
    app_file = front_matter().get("app_file")
    assert app_file and (APP_DIR / app_file).is_file(), f"app_file {app_file!r} is not a file"

"""Resolve requirements.txt against PyPI for every Python a Space of this app runs on.

A Space installs requirements.txt together with ``gradio[oauth]==<sdk_version>``, ``uvicorn`` and
``spaces``, on the Python its image has: the front matter's ``python_version`` on CPU and GPU
hardware, 3.10.13 on ZeroGPU. Each resolution here is pip's, as a dry run that takes wheels only, so
a pin without a wheel (or a compatible release) for one of these Pythons fails before a Space build
would, with pip's message naming it. Platform tags are this machine's: Linux x86_64, as a Space's.

Exit status 0 when every resolution succeeds, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
INDEX = "https://pypi.org/simple"
# ZeroGPU's image: the only Python its documentation names.
ZEROGPU_PYTHON = "3.10.13"
# pip 23 downloads every wheel of a dry run when the index serves no metadata files (PEP 658), as
# the PyPI these machines reach does not: gigabytes for torch and its CUDA wheels. A newer pip,
# with --use-feature=fast-deps, reads each wheel's metadata through HTTP range requests instead.
PIP = "pip==26.3"
# Published as a source distribution only (pure Python; a Space builds it). pip takes sdists with
# --python-version only together with --no-deps, so these are resolved on their own, without their
# dependencies, and the dependencies their metadata declares join the wheel-only resolution.
SDIST_ONLY = {"seqeval"}

# pip evaluates environment markers, in requirements.txt and in every dependency's metadata, for
# the Python it runs on even when --python-version names another (pypa/pip#10050), so it would
# pick the 3.11 pins for 3.10. This runs pip with the target's python_version and
# python_full_version in the marker environment, and fails if markers do not see them.
RUN_PIP = """
import sys
sys.path.insert(0, sys.argv.pop(1))
python_version, python_full_version = sys.argv.pop(1), sys.argv.pop(1)
from pip._vendor.packaging import markers
ambient = markers.default_environment
markers.default_environment = lambda: {**ambient(), "python_version": python_version,
                                       "python_full_version": python_full_version}
assert markers.Marker(f"python_full_version == '{python_full_version}'").evaluate(), \\
    "pip's marker evaluation does not read the target Python"
from pip._internal.cli.main import main
sys.exit(main())
"""


class Target(NamedTuple):
    label: str
    python: str  # as pip's --python-version takes it: "3.11" or "3.10.13"

    @property
    def marker_versions(self) -> tuple[str, str]:
        """python_version and python_full_version on this Python ("3.11" reads as 3.11.0)."""
        major, minor, micro = (self.python.split(".") + ["0", "0"])[:3]
        return f"{major}.{minor}", f"{major}.{minor}.{micro}"


class Outcome(NamedTuple):
    target: Target
    ok: bool
    lines: list[str]


def front_matter(name: str) -> str:
    """The value of ``name`` in README.md's front matter, quotes removed."""
    header = (ROOT / "README.md").read_text().split("---")[1]
    found = re.search(rf"^{name}:\s*\"?([^\"\s]+)\"?\s*$", header, re.MULTILINE)
    if found is None:
        sys.exit(f"README.md's front matter has no {name}")
    return found.group(1)


def requirement_lines() -> list[str]:
    """requirements.txt's requirements, markers kept, comments dropped."""
    lines = (line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    return [line for line in lines if line]


def distribution(line: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line).group(0)).lower()


def pip_environment() -> dict[str, str]:
    """This environment without pip's settings and config files: PyPI alone, no local wheels,
    extra indexes or constraints. The certificate bundle is kept."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("PIP_") or key == "PIP_CERT"}
    environment["PIP_CONFIG_FILE"] = os.devnull
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return environment


def dry_run(pip_dir: Path, target: Target, workdir: Path, name: str, requirements: list[str],
            options: list[str]) -> tuple[subprocess.CompletedProcess, dict | None]:
    """pip's dry-run install of ``requirements`` for ``target``, and its report (None on failure)."""
    requirements_file, report = workdir / f"{name}.txt", workdir / f"{name}.json"
    requirements_file.write_text("\n".join(requirements) + "\n")
    command = [sys.executable, "-c", RUN_PIP, str(pip_dir), *target.marker_versions,
               "install", "--dry-run", "--ignore-installed", "--quiet", "--index-url", INDEX,
               "--python-version", target.python,
               # pip wants --target with --python-version; a dry run writes nothing there.
               "--target", str(workdir / "target"),
               "--report", str(report), "-r", str(requirements_file), *options]
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=pip_environment())
    return done, json.loads(report.read_text()) if done.returncode == 0 else None


def failure(target: Target, done: subprocess.CompletedProcess, what: str) -> Outcome:
    output = [line for line in (done.stdout + done.stderr).splitlines()
              if line.strip() and "fast-deps" not in line]
    missing = re.findall(r"No matching distribution found for (\S+)", done.stdout + done.stderr)
    summary = [f"{requirement} has no wheel for Python {target.python} on PyPI"
               for requirement in missing]
    return Outcome(target, False, [f"{what} fails:", *output[-30:], *summary])


def resolve(pip_dir: Path, target: Target, additions: list[str]) -> Outcome:
    lines = requirement_lines()
    sdists = [line for line in lines if distribution(line) in SDIST_ONLY]
    wheels = [line for line in lines if distribution(line) not in SDIST_ONLY]
    built, declared = [], []
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(temporary)
        if sdists:
            done, report = dry_run(pip_dir, target, workdir, "sdists", sdists, ["--no-deps"])
            if report is None:
                return failure(target, done, "the source-only pins " + ", ".join(sdists))
            for item in report["install"]:
                built.append(f"{item['metadata']['name']} {item['metadata']['version']}")
                declared += item["metadata"].get("requires_dist", [])
        done, report = dry_run(pip_dir, target, workdir, "wheels", wheels + declared + additions,
                               ["--only-binary=:all:", "--use-feature=fast-deps"])
        if report is None:
            return failure(target, done, "the resolution")
    resolved = {distribution(item["metadata"]["name"]): item["metadata"]["version"]
                for item in report["install"]}
    named = sorted({distribution(line) for line in wheels + declared + additions} & resolved.keys())
    return Outcome(target, True, [
        f"{len(resolved)} distributions from wheels, among them "
        + ", ".join(f"{name} {resolved[name]}" for name in named),
        "from source: " + (", ".join(built) or "none")])


def main() -> int:
    sdk_version = front_matter("sdk_version")
    # What the Space build installs beside requirements.txt.
    additions = [f"gradio[oauth]=={sdk_version}", "uvicorn>=0.14.0", "spaces"]
    targets = [Target("CPU and GPU Spaces: the front matter's python_version",
                      front_matter("python_version")),
               Target("ZeroGPU", ZEROGPU_PYTHON)]
    with tempfile.TemporaryDirectory() as pip_dir:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--root-user-action=ignore",
                        "--no-deps", "--only-binary=:all:", "--index-url", INDEX, "--target", pip_dir,
                        PIP], check=True, env=pip_environment())
        with ThreadPoolExecutor(len(targets)) as pool:
            outcomes = list(pool.map(lambda target: resolve(Path(pip_dir), target, additions), targets))
    for outcome in outcomes:
        verdict = "resolves" if outcome.ok else "FAILS"
        print(f"Python {outcome.target.python} ({outcome.target.label}): requirements.txt + "
              f"{' + '.join(additions)} {verdict}")
        print("\n".join(f"  {line}" for line in outcome.lines))
    return 0 if all(outcome.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

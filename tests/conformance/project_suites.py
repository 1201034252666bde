"""Other projects' test suites — anyio's, uvicorn's, aiohttp's — run as they are,
once on asyncio's loop and once with every loop asyncio's policy makes a mioloop
loop (``mioloop_everywhere.py``), and compared test by test.

The released sources come from PyPI (``pip download --no-binary``), are unpacked
under ``.conformance/`` (ignored by git) and their test dependencies are installed
into the running environment, so run it from an environment made for it::

    python3 -m venv .venv-conformance && . .venv-conformance/bin/activate
    pip install -e '.[test]'
    python tests/conformance/reference_suites.py --suite anyio uvicorn aiohttp
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".conformance"
PIP = [sys.executable, "-m", "pip"]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


@dataclass
class Project:
    """How to run one project's suite."""

    name: str
    version: str
    #: What its tests import beyond the package itself.
    deps: list[str]
    #: pytest arguments, after the tests' path.
    args: list[str] = field(default_factory=list)
    #: Its pytest configuration is replaced by ``ini`` (its own asks for plugins
    #: such as xdist and coverage that the comparison does not need).
    ini: str | None = None

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


PROJECTS = {
    "anyio": Project(
        "anyio",
        "4.16.0",
        ["blockbuster", "hypothesis", "psutil", "pytest-mock", "pytest-timeout", "trustme", "truststore"],
        # trio is not installed; uvloop's and the eager factory's rows are other loops.
        ["-k", "not trio and not uvloop and not eager"],
    ),
    "uvicorn": Project(
        "uvicorn",
        "0.55.0",
        [
            "uvicorn[standard]==0.55.0",
            "httpx2",
            "pytest-mock",
            "pytest-timeout",
            "trustme",
            "cryptography",
            "a2wsgi",
            "wsproto",
        ],
        ["--ignore=tests/benchmarks", "-o", "addopts=-rxXs", "--timeout", "60"],
    ),
    "aiohttp": Project(
        "aiohttp",
        "3.14.5",
        [
            "aiohttp==3.14.5",
            "blockbuster",
            "coverage",
            "freezegun",
            "gunicorn",
            "isal",
            "proxy.py",
            "pytest-codspeed",
            "pytest-cov",
            "pytest-mock",
            "pytest-timeout",
            "re-assert",
            "trustme",
            "zlib-ng",
        ],
        ["--timeout", "120"],
        ini="addopts = -ra --strict-markers -m 'not dev_mode and not autobahn and not internal'",
    ),
}


def prepare(project: Project) -> Path:
    """The project's tests, unpacked from its sdist, apart from its sources (the
    installed package is the one tested); its dependencies installed."""
    here = CACHE / f"{project.name}-{project.version}"
    if not (here / "tests").exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [*PIP, "download", "--quiet", "--no-deps", "--no-binary", ":all:", "--dest", str(CACHE), project.pin],
            check=True,
        )
        with tarfile.open(CACHE / f"{project.name}-{project.version}.tar.gz") as sdist:
            sdist.extractall(CACHE / "sdists", filter="data")
        unpacked = CACHE / "sdists" / f"{project.name}-{project.version}"
        here.mkdir(exist_ok=True)
        shutil.copytree(unpacked / "tests", here / "tests")
        for config in ("pytest.ini", "pyproject.toml", "setup.cfg"):
            if (unpacked / config).exists() and project.ini is None:
                shutil.copy(unpacked / config, here / config)
        if project.ini is not None:
            original = (unpacked / "pytest.ini").read_text()
            # Its markers and warning filters stay; the plugin options go.
            start, end = original.index("addopts ="), original.index("doctest_optionflags")
            (here / "pytest.ini").write_text(original[:start] + project.ini + "\n\n" + original[end:])
    subprocess.run([*PIP, "install", "--quiet", project.pin, *project.deps], check=True)
    return here


def outcomes(junit: Path) -> dict[str, str]:
    """Each test's outcome in a JUnit report: pass, fail (or error) or skip."""
    found: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        tags = {child.tag for child in case}
        outcome = "fail" if tags & {"failure", "error"} else "skip" if "skipped" in tags else "pass"
        if found.get(name) != "fail":  # a failure, then an error in tear-down: one
            found[name] = outcome
    return found


def run(project: Project) -> dict:
    """Runs the suite on asyncio and on mioloop; the counts, and the tests whose
    outcome differs."""
    here = prepare(project)
    results = {}
    for kind in ("asyncio", "mioloop"):
        junit = here / f"{kind}.xml"
        plugin = ["-p", "mioloop_everywhere"] if kind == "mioloop" else []
        env = {"PYTHONPATH": str(Path(__file__).parent)} if kind == "mioloop" else {}
        subprocess.run(
            [*PYTEST, *plugin, "tests", *project.args, "--junitxml", str(junit)],
            cwd=here,
            env={**os.environ, **env},
            capture_output=True,
            timeout=3600,
        )
        results[kind] = outcomes(junit)
    base, mine = results["asyncio"], results["mioloop"]
    return {
        "asyncio": dict(Counter(base.values())),
        "mioloop": dict(Counter(mine.values())),
        "fail_on_mioloop_only": sorted(t for t, o in mine.items() if o == "fail" and base.get(t) == "pass"),
        "fail_on_asyncio_only": sorted(t for t, o in base.items() if o == "fail" and mine.get(t) == "pass"),
    }

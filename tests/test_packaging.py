"""What an installed mioloop tells about itself."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import mioloop


def test_version_is_the_one_the_project_declares() -> None:
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert match is not None
    assert mioloop.__version__ == match.group(1) == importlib.metadata.version("mioloop")


def test_every_public_name_is_importable() -> None:
    for name in [*mioloop.__all__, "TornadoIOLoop"]:
        assert getattr(mioloop, name) is not None, name


def test_importing_mioloop_leaves_importlib_metadata_and_tornado_unloaded() -> None:
    # importlib.metadata (for __version__) brings email, zipfile, pathlib...: a few MB
    # and 12 ms on every `import mioloop` until asked for.
    code = (
        "import sys, mioloop; "
        "print(sorted(m for m in ('importlib.metadata', 'tornado') if m in sys.modules)); "
        "print(mioloop.__version__ == mioloop.__version__ != '')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split("\n")[:2] == ["[]", "True"]


def test_the_release_builds_and_classifiers_name_the_same_pythons_and_platforms() -> None:
    root = Path(__file__).resolve().parents[1]
    pyproject = (root / "pyproject.toml").read_text()
    workflow = (root / ".github" / "workflows" / "release.yml").read_text()
    classified = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    assert classified == [f"3.{minor}" for minor in range(10, 16)]
    assert 'requires-python = ">=3.10"' in pyproject
    built = re.findall(r"--interpreter ([\d. ]+)$", workflow, re.MULTILINE)
    assert built and all(line.split() == classified for line in built), built
    for platform in ('manylinux: "2014"', "manylinux: musllinux_1_2", "x86_64", "aarch64", "macos-15", "sdist"):
        assert platform in workflow, platform

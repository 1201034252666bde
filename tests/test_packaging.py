"""What an installed mioloop tells about itself."""

from __future__ import annotations

import importlib.metadata
import re
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

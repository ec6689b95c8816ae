"""Stable test identity across runs and report formats."""

from __future__ import annotations

import re

_TRAILING_PARAMS = re.compile(r"^(?P<base>.*?)(?P<params>\[[^\[\]]*\]|\([^()]*\))$", re.S)


def split_params(name: str) -> tuple[str, str | None]:
    """Split ``test_x[a-1]`` into ``("test_x", "a-1")``; empty ``()`` is not a parameter."""
    m = _TRAILING_PARAMS.match(name)
    if not m or not m.group("base"):
        return name, None
    params = m.group("params")[1:-1]
    return m.group("base"), params or None


def test_id(classname: str | None, file: str | None, name: str) -> str:
    """``scope::name`` where scope is the classname, else the file.

    Parameters stay part of the name (``test_x[1]`` and ``test_x[2]`` are two tests);
    run variants such as OS or Python version are never part of it.
    """
    scope = classname or file or ""
    return f"{scope}::{name}" if scope else name


def from_nodeid(nodeid: str) -> tuple[str | None, str | None, str]:
    """Turn a pytest node id into ``(classname, file, name)`` as pytest's JUnit XML writes them.

    ``tests/test_a.py::TestX::test_y[1]`` → ``("tests.test_a.TestX", "tests/test_a.py",
    "test_y[1]")`` so that a test gets the same id from reportlog, JUnit and the plugin.
    """
    parts = nodeid.split("::")
    file = parts[0] if parts[0].endswith(".py") else None
    name = parts[-1]
    if file is None:
        return (".".join(parts[:-1]) or None), None, name
    module = file[:-3].replace("/", ".").replace("\\", ".")
    classname = ".".join([module, *parts[1:-1]])
    return classname, file, name

"""Rules of the test suite itself: a test module imports shared code from helpers.py (or conftest fixtures), never
from another test module, so each module runs alone and its tests are collected once."""
from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_test_module_imports_another():
    modules = sorted(TESTS.glob("*.py"))
    assert len(modules) > 20  # the suite is where this file thinks it is
    offenders = {path.name: sorted(n for n in imported_modules(path) if n.split(".")[0].startswith("test_"))
                 for path in modules}
    assert {name: found for name, found in offenders.items() if found} == {}

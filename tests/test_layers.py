"""Every import follows the README's layer table (## Layout: the "may import" column), and the
table lists every folder of the repository."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def layer_table(readme: str) -> dict[str, set[str] | None]:
    """folder -> the first-party folders it may import (``None``: anything)."""
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\| `[a-z]+/` \|", line)]
    table: dict[str, set[str] | None] = {}
    for row in rows:
        folder = re.match(r"\| `([a-z]+)/`", row)[1]
        may = row.rstrip(" |").rsplit("|", 1)[1].strip()
        if may == "everything":
            table[folder] = None
        elif may.startswith("everything above"):
            table[folder] = set(table)
            table[folder] -= set(re.findall(r"`([a-z]+)`", may.split("but", 1)[1])) if "but" in may else set()
        else:
            table[folder] = set(re.findall(r"`([a-z]+)`", may))
    return table


def imported(path: Path) -> set[str]:
    """The top-level names of the absolute imports of a file, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(table: dict[str, set[str] | None]) -> list[str]:
    found = []
    for folder, allowed in table.items():
        if allowed is None:
            continue
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in sorted(imported(path) & set(table) - {folder} - allowed):
                found.append(f"{path.relative_to(ROOT)} imports {name}, which {folder}/ may not (README, Layout)")
    return found


def test_every_import_follows_the_layer_table():
    assert violations(layer_table((ROOT / "README.md").read_text())) == []


def test_the_layer_table_lists_every_folder():
    # the project's folders are those git tracks: runs leave ignored ones (test-output/, build/)
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    folders = {line.split("/")[0] for line in tracked.splitlines() if "/" in line}
    folders = {f for f in folders if not f.startswith((".", "_"))}
    assert set(layer_table((ROOT / "README.md").read_text())) == folders


def test_a_violation_is_found():
    table = {"schemas": set(), "streams": {"schemas"}}
    assert violations(table) == []  # streams imports pipeline, which is not in this table: not first-party here
    table["pipeline"] = {"schemas"}
    assert any(v.startswith("streams/") and "imports pipeline" in v for v in violations(table))


def imported_modules(path: Path) -> set[str]:
    """The full dotted names of the absolute imports of a file, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def imports_between_tests(tests: Path = ROOT / "tests") -> list[str]:
    """What test modules import of other tests: only the helpers in tests/support/ (a test module
    imported by another would run its tests twice and tie the two files' changes together)."""
    found = []
    for path in sorted(tests.rglob("*.py")):
        for name in sorted(imported_modules(path)):
            parts = name.split(".")
            if parts[0] == "tests" and len(parts) > 1 and parts[1] != "support" and name != "tests.conftest":
                found.append(f"{path.relative_to(tests.parent)} imports {name}: shared helpers go to tests/support/")
    return found


def test_no_test_module_imports_another():
    assert imports_between_tests() == []


def test_a_test_importing_a_test_is_found(tmp_path):
    (tmp_path / "tests" / "streams").mkdir(parents=True)
    (tmp_path / "tests" / "streams" / "test_a.py").write_text("from tests.support.kafka_read import read_topic\n")
    assert imports_between_tests(tmp_path / "tests") == []
    (tmp_path / "tests" / "streams" / "test_b.py").write_text("def f():\n    from tests.streams.test_a import x\n")
    assert imports_between_tests(tmp_path / "tests") == [
        "tests/streams/test_b.py imports tests.streams.test_a: shared helpers go to tests/support/"]

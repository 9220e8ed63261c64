"""Installed size of Povhub's runtime dependencies with and without the embedded engines.

The production image (Dockerfile) installs `povhub` without the `embedded` extra; this prints what
that leaves out: the requirements come from pyproject.toml, their dependencies and sizes from the
files each installed distribution lists (importlib.metadata), so it runs wherever Povhub's
dependencies are installed with `.[embedded]`, without Docker:

    python3 ops/package_sizes.py
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import tomllib
from pathlib import Path

EXTRA = "embedded"


def _name(requirement: str) -> str:
    return re.split(r"[ ;<>=!\[~(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def requires(dist: str) -> list[str]:
    """The distribution's own requirements, without those of its extras."""
    return [_name(r) for r in md.distribution(dist).requires or [] if "extra ==" not in r.partition(";")[2]]


def closure(roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen.add(name)
        todo += requires(name)
    return seen


def size(dist: str) -> int:
    total = 0
    for f in md.distribution(dist).files or []:
        try:
            total += os.path.getsize(f.locate())
        except OSError:
            pass
    return total


def main() -> None:
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    base = closure([_name(r) for r in project["dependencies"]])
    full = base | closure([_name(r) for r in project["optional-dependencies"][EXTRA]])
    mb = lambda names: sum(size(n) for n in names) / 1e6  # noqa: E731
    print("| install | distributions | installed size |")
    print("|---|---|---|")
    print(f"| `povhub[{EXTRA}]` (demo, tests) | {len(full)} | {mb(full):,.0f} MB |")
    print(f"| `povhub` (the image) | {len(base)} | {mb(base):,.0f} MB |")
    print("\nleft out of the image: " + ", ".join(f"{n} {size(n) / 1e6:,.0f} MB" for n in sorted(full - base)))


if __name__ == "__main__":
    main()

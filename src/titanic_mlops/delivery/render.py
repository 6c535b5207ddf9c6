"""Fill ``${NAME}`` placeholders in deployment files (Cloud Run services, the Vertex AI job).

Standard library only: Cloud Build runs this file as a script in a plain ``python`` image,

    python3 src/titanic_mlops/delivery/render.py --out rendered deploy/cloudrun/api.yaml \\
        PROJECT_ID=my-project REGION=europe-west1 ...

and ``invoke deploy``/``invoke train-cloud`` import it. A placeholder without a value is an
error naming it (never an empty string in a deployed file); ``$$`` is a literal ``$``.
"""

from __future__ import annotations

import argparse
import string
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


class RenderError(ValueError):
    """A placeholder has no value, or a value is malformed."""


def placeholders(text: str) -> set[str]:
    """The ``${NAME}`` / ``$NAME`` placeholders used in ``text``."""
    found = set()
    for match in string.Template.pattern.finditer(text):
        name = match.group("named") or match.group("braced")
        if name:
            found.add(name)
        elif match.group("invalid") is not None:
            raise RenderError(f"malformed placeholder at offset {match.start()}")
    return found


def render(text: str, values: Mapping[str, str], where: str = "template") -> str:
    """``text`` with every placeholder replaced; :class:`RenderError` names any without a value."""
    missing = sorted(n for n in placeholders(text) if not values.get(n))
    if missing:
        raise RenderError(f"{where}: no value for {', '.join(missing)}")
    return string.Template(text).substitute(values)


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["A=1", "B=x=y"]`` → ``{"A": "1", "B": "x=y"}``."""
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise RenderError(f"expected NAME=VALUE, got {item!r}")
        values[name] = value
    return values


def render_files(paths: Sequence[Path], values: Mapping[str, str], out: Path) -> list[Path]:
    """Render each file into ``out`` under its own name; return the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        target = out / path.name
        target.write_text(render(path.read_text(), values, str(path)))
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the rendered files")
    parser.add_argument("items", nargs="+", help="template files, then NAME=VALUE assignments")
    args = parser.parse_args(argv)
    files = [Path(i) for i in args.items if "=" not in i]
    try:
        values = parse_assignments([i for i in args.items if "=" in i])
        for path in render_files(files, values, args.out):
            print(f"rendered {path}")
    except (RenderError, OSError) as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

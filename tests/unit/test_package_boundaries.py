"""Nothing under `pipeline/` imports `devtools` (the Lambda package must never need the dev tools).

Read from the syntax tree, not grepped: an import inside a function, a `from devtools... import`, a dynamic
`importlib.import_module("devtools...")` all count; the word in a comment or docstring does not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "pipeline"
FORBIDDEN = "devtools"


def _is_forbidden(module: str | None) -> bool:
    return module is not None and (module == FORBIDDEN or module.startswith(FORBIDDEN + "."))


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """`line: module` of every import of `devtools` in `source`."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: {alias.name}" for alias in node.names if _is_forbidden(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_forbidden(node.module):
            found.append(f"{node.lineno}: {node.module}")
        elif isinstance(node, ast.Call) and _dynamic_import_target(node) is not None:
            target = _dynamic_import_target(node)
            if _is_forbidden(target):
                found.append(f"{node.lineno}: {target}")
    return found


def _dynamic_import_target(call: ast.Call) -> str | None:
    """The module named by `importlib.import_module("x")`, `import_module("x")` or `__import__("x")`."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__") or not call.args:
        return None
    first = call.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_modules_to_check() -> None:
    names = {path.relative_to(PACKAGE).as_posix() for path in package_modules()}
    assert {"cli.py", "app.py", "handlers/downloader.py"} <= names


def test_no_module_under_pipeline_imports_devtools() -> None:
    offenders = {}
    for path in package_modules():
        found = forbidden_imports(path.read_text(encoding="utf-8"), str(path))
        if found:
            offenders[path.relative_to(REPO).as_posix()] = found
    assert not offenders, f"pipeline/ must not import devtools: {offenders}"


@pytest.mark.parametrize(
    "source",
    [
        "import devtools",
        "import json, devtools.net as net",
        "from devtools.local_runtime.cli import run_local",
        "def f():\n    from devtools import gopro_simulator\n",
        "import importlib\nimportlib.import_module('devtools.local_runtime')",
        "__import__('devtools')",
    ],
)
def test_every_form_of_import_is_caught(source: str) -> None:
    assert forbidden_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        '"""Run `python -m devtools.local_runtime` for a demo."""',
        "# from devtools import x",
        "import devtoolsx",
        "from pipeline.devtools_like import x",
        "from . import devtools",
    ],
)
def test_mentions_and_lookalikes_are_not_imports(source: str) -> None:
    assert forbidden_imports(source) == []

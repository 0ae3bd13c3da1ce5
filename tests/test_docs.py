"""The README and the manual in docs/ stay true to the code: every `rag COMMAND` and `--option` they name exists in
the parser, the generated references (configuration, CLI, HTTP API, MCP tools) are what ``docs/gen.py`` writes
now, and the README stays short enough to read in five minutes."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from rag.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300

# Options of other programs that the pages quote (pip, optimum-cli, onnxruntime-genai's builder, ray start).
FOREIGN_OPTIONS = {"--no-deps", "--extra_options", "--task", "--weight-format", "--group-size", "--head", "--port",
                   "--address"}  # fmt: skip
# Between two commands of one line (&&, ||, a pipe, ;); where a command's own words end (a comment, a redirection).
_BETWEEN = re.compile(r"&&|\|\||[|;]")
_END = re.compile(r"\s#|[<>]")
# `rag COMMAND` as a command line writes it (not "from rag import", "rag.toml", "rag[ray]", "the rag page").
_INVOCATION = re.compile(r"(?:^|(?<!from)(?<!import)[\s`$(]|/bin/|-m )rag ([a-z][a-z-]*)([^\n`]*)")
_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9_-]*)")
_CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.DOTALL)


@cache
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_gen", ROOT / "docs" / "gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def options() -> dict[str, set[str]]:
    """Command -> the option strings it takes, read from the parser itself."""
    found: dict[str, set[str]] = gen().command_options(build_parser())
    return found


def benchmark_options() -> set[str]:
    """The options of the scripts the pages quote (benchmarks/*.py, docs/gen.py), from their add_argument calls."""
    names: set[str] = set()
    for script in [*(ROOT / "benchmarks").glob("*.py"), ROOT / "docs" / "gen.py"]:
        names.update(re.findall(r"add_argument\(\s*\"(--[a-z0-9_-]+)\"", script.read_text(encoding="utf-8")))
    return names


def code_of(page: Path) -> list[str]:
    """The page's code: fenced blocks and inline spans (prose names commands in them, as `rag ask`)."""
    text = page.read_text(encoding="utf-8")
    return [block or span for block, span in _CODE.findall(text)]


def invocations(page: Path) -> list[tuple[str, list[str]]]:
    """Every `rag COMMAND ...` in the page's code, with the options written after it on that command line."""
    found = []
    for code in code_of(page):
        for line in code.splitlines():
            for piece in _BETWEEN.split(line):
                for command, rest in _INVOCATION.findall(piece):
                    found.append((command, _OPTION.findall(_END.split(rest, maxsplit=1)[0])))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_commands_and_their_options_exist(page: Path) -> None:
    known = options()
    wrong = []
    for command, opts in invocations(page):
        if command not in known:
            wrong.append(f"rag {command}: no such command")
            continue
        wrong += [f"rag {command} {o}: no such option" for o in opts if o not in known[command]]
    assert not wrong, f"{page.name}: {sorted(set(wrong))}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_option_named_exists(page: Path) -> None:
    """An option quoted anywhere in the page's code is one of rag's (any command), of a benchmark script, or of a
    program the page quotes (FOREIGN_OPTIONS)."""
    known = set().union(*options().values()) | benchmark_options() | FOREIGN_OPTIONS
    named = {o for code in code_of(page) for o in _OPTION.findall(code)}
    assert not named - known, f"{page.name} names options no parser has: {sorted(named - known)}"


def test_the_pages_name_commands() -> None:
    """The checks above would pass on pages that name nothing: the README names every command."""
    named = {command for command, _ in invocations(README)}
    assert named >= set(options()), f"the README does not show: {sorted(set(options()) - named)}"


def test_generated_references_are_current() -> None:
    stale = [
        name
        for name, text in gen().render().items()
        if not (ROOT / "docs" / name).is_file() or (ROOT / "docs" / name).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"regenerate with `python docs/gen.py`: {stale} differ from what the code says"


def test_configuration_reference_lists_every_setting() -> None:
    from rag.config import RagConfig

    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [name for name in RagConfig.setting_names() - set(RagConfig.TOP) if f"| `{name}` |" not in text]
    assert not missing


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; the manual (docs/) is for the rest"


def test_readme_links_resolve() -> None:
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"

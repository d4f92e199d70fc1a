"""The README's examples work as written: every ``poiflow`` command it shows is one the CLI
takes (its command, its options, their values), and its Python runs, each value it says
in a comment being the value the code gives. So do the examples of each command's
``--help``."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from poiflow.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", *sorted((ROOT / "examples").glob("*/README.md")))
_COMMAND = re.compile(r"(\S*/)?poiflow\s")


def _blocks(text: str, *languages: str) -> list[str]:
    return [
        body for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S) if lang in languages
    ]


def shown_commands(text: str) -> Iterator[tuple[str, bool]]:
    """Each ``poiflow`` command line of ``text``'s shell blocks (continued lines joined),
    and each code span in its prose that starts with one; with whether it is whole (a
    span may show part of a command: ``poiflow explain RUN PLACE``)."""
    for body in _blocks(text, "sh", "bash", "console", ""):
        for line in re.sub(r"\\\n\s*", " ", body).splitlines():
            if _COMMAND.match(line.strip()):
                yield line.strip(), True
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`([^`\n]+)`", prose):
        if _COMMAND.match(span.strip()):
            yield span.strip(), False


def parse_error(line: str, *, whole: bool) -> str | None:
    """Why the CLI would refuse ``line`` before it ran (None: it would not). A whole
    command is parsed as the shell would give it, values and all; a part only for its
    command and option names (its values may be left out, or be placeholders)."""
    if not whole:  # usage's brackets: [--host H]
        line = line.replace("[", "").replace("]", "")
    words = shlex.split(line, comments=True)[1:]
    command: Any = typer.main.get_command(app)
    path = ["poiflow"]
    while hasattr(command, "commands"):  # a group: poiflow, poiflow publish, ...
        if not words or words[0].startswith("-"):
            return None
        found = command.get_command(None, words[0])
        if found is None:
            return f"there is no command '{' '.join(path)} {words[0]}'"
        path.append(words.pop(0))
        command = found
    if "--help" in words:
        return None
    try:
        command.make_context(" ".join(path), words)
    except Exception as exc:  # the CLI's usage errors (typer carries click of its own)
        said = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        # A part may leave out arguments and values, or name them: DIR, RUN.
        if whole or type(exc).__name__ == "NoSuchOption" or "unexpected extra" in said:
            return said or type(exc).__name__
    return None


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_the_docs_show_is_one_the_cli_takes(doc: Path) -> None:
    shown = list(shown_commands(doc.read_text(encoding="utf-8")))
    assert shown or doc != DOCS[0], "the README shows no command: is the pattern out of date?"
    refused = [
        f"{line}\n    -> {why}"
        for line, whole in shown
        if (why := parse_error(line, whole=whole)) is not None
    ]
    assert not refused, "\n".join(refused)


def help_examples(help_text: str) -> Iterator[str]:
    """The commands a ``--help`` text shows as examples: its indented lines that start
    with ``poiflow`` (continued lines joined), each without the words that explain it (after
    a run of spaces), ``&&`` splitting two."""
    for line in re.sub(r"\s*\\\n\s*", " ", help_text).splitlines():
        if re.match(r"\s+poiflow ", line):
            for part in line.split("&&"):
                yield re.split(r"\s{3,}", part.strip())[0]


def walk_commands(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
    """``command`` and every command under it (a group's too), each with its words."""
    yield " ".join(path), command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk_commands(sub, [*path, name])


def test_every_example_of_a_commands_help_is_one_the_cli_takes() -> None:
    shown = [
        (name, line)
        for name, command in walk_commands(typer.main.get_command(app), ["poiflow"])
        for line in help_examples(command.help or "")
    ]
    assert len(shown) > 50  # ingest, conflate, evaluate, search, serve, ... show several
    refused = [
        f"{name} --help: {line}\n    -> {why}"
        for name, line in shown
        if (why := parse_error(line, whole=True)) is not None
    ]
    assert not refused, "\n".join(refused)


def test_help_examples_are_the_indented_command_lines() -> None:
    text = (
        'Search the places.\n\npoiflow search is fast.\n\n  poiflow search out "x"   '
        "typos forgiven\n  poiflow init p && poiflow run p/pipeline.yaml\n"
        "  poiflow conflate a.csv \\\n      -o out\n"
    )
    assert list(help_examples(text)) == [
        'poiflow search out "x"',
        "poiflow init p",
        "poiflow run p/pipeline.yaml",
        "poiflow conflate a.csv -o out",
    ]


@pytest.mark.parametrize(
    ("line", "whole", "why"),
    [
        ("poiflow conflate a.csv --outptu out", True, "No such option: --outptu"),
        (
            "poiflow evaluate --gold g.csv --membership m --examples -1",
            True,
            "Invalid value for '--examples'",
        ),
        ("poiflow publish nowhere out/run", True, "no command 'poiflow publish nowhere'"),
        ("poiflow explain RUN --nope", False, "No such option: --nope"),
        ("poiflow serve DIR [--host H] x", False, "unexpected extra argument(s) (x)"),
        ("poiflow evaluate --gold g.csv", True, "Missing option '--membership'"),
    ],
)
def test_the_command_check_refuses_what_the_cli_refuses(line: str, whole: bool, why: str) -> None:
    said = parse_error(line, whole=whole)
    assert said is not None
    assert why in said


def _comments(source: str) -> dict[int, str]:
    """Each line's comment (its text after ``#``), by line number."""
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string[1:].strip()
    return found


def said_value(statement: ast.stmt, lines: list[str], comments: dict[int, str]) -> Any:
    """The value a comment says ``statement`` gives, where the comment is a Python literal:
    on the statement's last line, or alone on the next one, indented to stand under it.
    ``...`` in a list stands for the rest of it. None where no comment says a value."""
    end = statement.end_lineno or statement.lineno
    text = comments.get(end)
    if text is None and end < len(lines) and re.match(r"\s+#", lines[end]):
        text = comments.get(end + 1)
    if text is None:
        return None
    with contextlib.suppress(ValueError, SyntaxError):
        return ast.literal_eval(text)
    return None


def _same(value: Any, said: Any) -> bool:
    if isinstance(said, list) and said and said[-1] is Ellipsis:
        return list(value[: len(said) - 1]) == said[:-1]
    if isinstance(said, tuple | list):
        return list(value) == list(said)
    return bool(value == said)


def run_checking_comments(source: str, name: str) -> int:
    """Run ``source`` a statement at a time; where a comment says what a statement gives
    (an expression's value, or what a ``print`` of one value prints), hold it to that.
    Returns how many values were checked."""
    tree = ast.parse(source)
    lines, comments = source.splitlines(), _comments(source)
    scope: dict[str, Any] = {"__name__": name}
    checked = 0
    for statement in tree.body:
        said = said_value(statement, lines, comments)
        expression = statement.value if isinstance(statement, ast.Expr) else None
        if said is not None and expression is not None:
            if (  # print(VALUE): the value said is VALUE's
                isinstance(expression, ast.Call)
                and isinstance(expression.func, ast.Name)
                and expression.func.id == "print"
                and len(expression.args) == 1
            ):
                expression = expression.args[0]
            value = eval(compile(ast.Expression(expression), name, "eval"), scope)
            line = statement.lineno
            assert _same(value, said), f"{name}, line {line}: {value!r}, the README says {said!r}"
            checked += 1
        else:
            exec(compile(ast.Module([statement], []), name, "exec"), scope)
    return checked


def test_the_comment_check_fails_a_value_the_code_does_not_give() -> None:
    assert run_checking_comments("x = [1, 2, 3]\nprint(x)  # [1, 2, ...]\nlen(x)  # 3\n", "ok") == 2
    with pytest.raises(AssertionError, match=r"wrong, line 2: 3, the README says 4"):
        run_checking_comments("x = [1, 2, 3]\nlen(x)\n    # 4\n", "wrong")


def test_the_readmes_python_runs_and_gives_what_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    blocks = _blocks((ROOT / "README.md").read_text(encoding="utf-8"), "python")
    assert len(blocks) >= 3
    checked = 0
    for number, block in enumerate(blocks, 1):
        with contextlib.redirect_stdout(io.StringIO()):
            checked += run_checking_comments(block, f"README.md's Python block {number}")
    # The reuse, the comparison, the stories of a pair and a place, each normalizer's value.
    assert checked >= 12
    assert (tmp_path / "out" / "run-decided" / "membership.parquet").exists()
    assert (tmp_path / "out" / "gen-run" / "places.parquet").exists()
    assert (tmp_path / "out" / "gen-mine" / "places.parquet").exists()


def test_the_generated_example_runs_as_its_readme_says(tmp_path: Path) -> None:
    """examples/generated: its README's two commands (on a smaller world) run its pipeline,
    which scores the run against the truth, as its comments say."""
    shutil.copytree(ROOT / "examples" / "generated", tmp_path / "examples" / "generated")
    readme = (ROOT / "examples" / "generated" / "README.md").read_text(encoding="utf-8")
    lines = [line for line, whole in shown_commands(readme) if whole]
    assert [shlex.split(line)[1] for line in lines] == ["generate", "run"]
    for line in lines:
        words = shlex.split(line)[1:]
        if words[0] == "generate":  # a tenth of the world, for a test
            words[words.index("--places") + 1] = "2000"
        said = subprocess.run(
            [sys.executable, "-m", "poiflow", *words],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
        assert said.returncode == 0, said.stderr
    run = json.loads((tmp_path / "out" / "generated" / "run.json").read_text())
    metrics = run["metrics"]
    assert metrics["f1"] > 0.95
    assert metrics["bcubed_f1"] > 0.95
    assert 0.8 < metrics["golden.name.accuracy"] <= 1.0

"""``rca --help`` and every subcommand's: each flag says what it does and its default, and no
docstring markup reaches the terminal."""

import argparse
import re
from collections.abc import Iterator

import pytest

from rca.cli import HelpFormatter, build_parser, plain_text


def commands(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, object]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, f"{path} {name}")


COMMANDS = dict(commands(build_parser(), "rca"))


def test_the_walk_reaches_every_subcommand():
    assert {"rca bench", "rca analyze", "rca serve", "rca grafana provision"} <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_flag_has_help_with_its_default_and_no_markup(path):
    parser = COMMANDS[path]
    text = parser.format_help()
    assert "``" not in text and not re.search(r":[a-z]+:`", text), text
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            assert all(choice.help for choice in action._choices_actions), path
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"{path} {name}: no help"
        shown = " ".join(formatter._format_action(action).split())
        default = action.default
        if default is not None and default is not False:
            assert f"default: {default}" in shown, f"{path} {name}: default not shown: {shown}"
        assert shown.count("default") <= 1, f"{path} {name}: default said twice: {shown}"


def test_docstring_markup_is_made_plain():
    text = "The ``rca`` command, :func:`rca.eval.bench.run_bench` and :class:`~rca.types.Alert`"
    assert plain_text(text) == "The `rca` command, `rca.eval.bench.run_bench` and `rca.types.Alert`"


def test_descriptions_keep_their_paragraphs_and_lines_break_at_spaces_only():
    parser = build_parser()
    parser.description = "First ``x`` paragraph.\n\nSecond."
    assert "First `x` paragraph.\n\nSecond." in parser.format_help()
    lines = HelpFormatter("rca")._split_lines("the group rca-ingest-consumer here", 20)
    assert lines == ["the group", "rca-ingest-consumer", "here"]

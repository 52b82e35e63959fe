"""Write the CLI reference page from coarchive's own argument parsers (run by mkdocs-gen-files at build time)."""

from __future__ import annotations

import argparse
import os

import mkdocs_gen_files

from pipeline.app.cli import build_parser

os.environ["COLUMNS"] = "110"  # argparse wraps help to the terminal width (read when formatting): keep it stable


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of `parser`, by name, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _walk(parser: argparse.ArgumentParser, words: list[str]):
    """Yield (command words, parser) for `parser` and every subcommand below it, depth first."""
    yield words, parser
    for name, child in _subcommands(parser).items():
        yield from _walk(child, [*words, name])


def _page() -> str:
    """The whole reference page as markdown."""
    lines = [
        "# CLI reference",
        "",
        "Generated from the argument parsers when the docs are built: every command and option as `--help` prints it.",
        "",
    ]
    for words, parser in _walk(build_parser(), ["coarchive"]):
        lines += [f"## {' '.join(words)}", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


with mkdocs_gen_files.open("reference/cli.md", "w") as page:
    page.write(_page())

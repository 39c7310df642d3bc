"""The nasstudio command line: everything the window does, without one."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import textwrap
from collections.abc import Sequence

from nasstudio import __version__
from nasstudio.cli.common import EXECUTION, PROJECT_ENV, CliError, add_execution_options
from nasstudio.cli.distill import add_distill_command
from nasstudio.cli.jobs import add_job_commands
from nasstudio.cli.latency import add_latency_commands
from nasstudio.cli.llm import add_llm_commands
from nasstudio.cli.lpzero import add_lpzero_commands
from nasstudio.cli.project import add_project_commands, cmd_gui
from nasstudio.cli.search import add_search_commands
from nasstudio.cli.train import add_training_commands, add_translate_command
from nasstudio.store import SchemaError
from nasstudio.store.defaults import default_project_path

# The shell's exit status for a program ended by Ctrl+C (128 + SIGINT).
_INTERRUPTED = 130


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps help between words only: a long path stays whole on its line."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        text = " ".join(text.split())
        return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    """Every parser, subcommands' too (argparse makes them of their parent's class), formats
    its help with ``_HelpFormatter``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _add_project_option(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        "--project",
        "-p",
        dest=dest,
        metavar="FILE",
        help=f"project file (default: ${PROJECT_ENV}, else {default_project_path()})",
    )


def build_parser() -> argparse.ArgumentParser:
    # The option is accepted before and after the command. argparse lets a subcommand's
    # default overwrite the value given before it, so the two spellings get separate dests.
    in_process = _Parser(add_help=False)  # commands that run no job
    _add_project_option(in_process, "project")
    common = _Parser(add_help=False, parents=[in_process])
    add_execution_options(common)
    parser = _Parser(
        prog="nasstudio",
        description="Hardware-aware NAS workbench for Transformer MT. Without a command: the GUI.",
    )
    _add_project_option(parser, "project_before_command")
    parser.add_argument("--version", action="version", version=f"nasstudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler, help_text: str, jobs: bool = True) -> argparse.ArgumentParser:
        parents = [common if jobs else in_process]
        p = sub.add_parser(name, parents=parents, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    add_project_commands(add)
    add_llm_commands(add, common)
    add_training_commands(add, common)
    add_translate_command(add)
    add_job_commands(add)
    add_latency_commands(add)
    add_search_commands(add, common, in_process)
    add_distill_command(add)
    add_lpzero_commands(add, common, in_process)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.project = (
        getattr(args, "project", None) or args.project_before_command or os.environ.get(PROJECT_ENV)
    )
    EXECUTION.executor = getattr(args, "executor", None)
    EXECUTION.ray_address = getattr(args, "ray_address", None)
    EXECUTION.ray_storage = getattr(args, "ray_storage", None)
    handler = getattr(args, "handler", cmd_gui)
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("nasstudio: interrupted", file=sys.stderr)
        return _INTERRUPTED
    except (CliError, ValueError, KeyError, OSError, SchemaError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"nasstudio: error: {_one_line(message)}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:  # the project file itself: locked too long, damaged, disk full
        project = args.project or default_project_path()
        print(f"nasstudio: error: {project}: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(message: object) -> str:
    return " ".join(str(message).split())

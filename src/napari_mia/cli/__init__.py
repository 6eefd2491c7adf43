"""Command line: ``napari-mia train | predict | measure | export | evaluate | curve | rank | info | demo``.

One module per command, each with ``add_parser(sub)`` and ``run(args) -> int`` (and, where the parser
alone cannot say what is missing, ``check(parser, args)``). Options several commands share are in
``options``, what they print in ``output``. The options are a contract that scripts rely on: add
options, never change or remove one.
"""

from __future__ import annotations

import argparse

from ..engine.errors import MiaError
from . import curve, demo, evaluate, export, info, measure, predict, rank, train
from .output import error

# The order of the commands in the help.
COMMANDS = {"train": train, "predict": predict, "measure": measure, "export": export, "evaluate": evaluate,
            "curve": curve, "rank": rank, "info": info, "demo": demo}


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; ``parser.commands`` holds each command's own, by name."""
    p = argparse.ArgumentParser(prog="napari-mia", description="Train and apply napari-mia models without a GUI.")
    sub = p.add_subparsers(dest="command", required=True)
    p.commands = {name: module.add_parser(sub) for name, module in COMMANDS.items()}
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    command = COMMANDS[a.command]
    if hasattr(command, "check"):
        command.check(p.commands[a.command], a)
    try:
        return command.run(a)
    except MiaError as e:
        return error(str(e))


__all__ = ["build_parser", "main"]

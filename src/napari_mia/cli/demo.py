"""``napari-mia demo``: napari with the sample and the Train Model dock, or the same job headless."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..demo import run_demo


def add_parser(sub) -> argparse.ArgumentParser:
    d = sub.add_parser("demo", help="train briefly on the bundled sample data and show or print the result")
    d.add_argument("--headless", action="store_true", help="do not open napari even if a display is available")
    d.add_argument("--minutes", type=float, default=1.0, help="training time of the headless demo (default: 1)")
    d.add_argument("--out", type=Path, default=Path("demo_output"), help="folder for the headless demo's files")
    return d


def run(a: argparse.Namespace) -> int:
    return run_demo(headless=a.headless, minutes=a.minutes, out=a.out)

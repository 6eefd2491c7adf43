"""Training for the time the user gives: napari-mia's defaults against the previous release and a plain loop.

    PYTHONPATH=src .venv/bin/python benchmarks/time_budget.py OUT --baseline-src /tmp/base/src [--minutes 5]

Everything runs on the user's path, one training after the other (never two at once, so that
each has the machine to itself), and every model is scored by this checkout's ``napari-mia
evaluate`` per image on the held-out sets of ``heldout_sets.py`` (built in ``--heldout``,
default ``OUT/heldout``, unless already there):

- **new**: ``napari-mia train --images train/images --masks train/masks --label-mode instances
  --minutes M --out new.pt``, as a user types it (no ``--config``), with this checkout's code;
- **previous**: the same command with the previous release's code (``--baseline-src``: the
  ``src`` folder of a checkout of it, e.g. ``git worktree add /tmp/base fcb15af``; or
  ``--baseline-rev REV`` to have this script make that worktree in ``OUT/baseline``);
- **plain**: ``plain_loop.py`` for the same M minutes (a plain segmentation-models-pytorch loop);
- **ft**: ``train --from new.pt`` on ``x4_tune`` (3 images at 4x) for ``--ft-minutes``, against
  the same from scratch (``--label-mode instances``), both scored on ``x4``;
- **starter**: ``train --from nuclei`` (the starter that ships in the package) on ``x4_tune`` for
  ``--ft-minutes``, against the same from scratch, both scored on ``x4``;
- ``--candidate NAME=CONFIG`` (repeatable): new's command with ``--config CONFIG``, as row NAME: hand-made
  settings compared with the defaults at equal time, which no user gets until they become the defaults.

Models are scored on ``--sets`` (default kind, x1, x3, x4) without ``--diameter``, as a user
types it; ``--with-auto`` adds ``--diameter auto`` runs. Prints a markdown table (per model and
set: images, fg IoU, object F1 at IoU 0.5, AP 0.5-0.95, training steps, validations, seconds of
the whole training command) and writes it to ``OUT/time_budget.csv``; each training's stderr goes
to ``OUT/<model>.log`` (its "Plan:" lines are printed under the table), each evaluation's
per-image CSV beside the model. ``--skip-train`` scores the models already in OUT again.
``--limit N`` trains and scores on the first N images of each set only: a check that every row
runs, not a benchmark.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))
from heldout import evaluate  # noqa: E402
from heldout_sets import build  # noqa: E402

ROWS = ("new", "previous", "plain", "ft", "starter")
SETS = ("kind", "x1", "x3", "x4")
COLUMNS = ["model", "set", "diameter", "images", "fg_iou", "object_f1", "ap", "steps", "validations",
           "train_seconds", "evaluate_seconds"]


@dataclass
class Training:
    """One training command of the benchmark: what it runs, with which code, into which model file."""

    model: str  # file stem in OUT
    label: str
    argv: list[str]
    src: Path  # the package's source folder it runs with
    scored_on: tuple[str, ...] | None = None  # None: --sets

    def run(self, out: Path) -> dict:
        log = out / f"{self.model}.log"
        env = {**os.environ, "PYTHONPATH": str(self.src)}
        print(f"training {self.model}: {' '.join(self.argv)}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        with log.open("w") as f:
            done = subprocess.run([sys.executable, *self.argv], env=env, stdout=f, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - t0
        if done.returncode:
            raise SystemExit(f"{self.model}: the training command failed (exit {done.returncode}); see {log}")
        info = {"seconds": seconds, "plan": plan_lines(log), **record_counts(out / f"{self.model}_record.csv")}
        (out / f"{self.model}_train.json").write_text(json.dumps(info, indent=1))
        return info


def plan_lines(log: Path) -> list[str]:
    # The progress bar rewrites its line with carriage returns: the messages sit between them.
    text = log.read_text(errors="replace").replace("\r", "\n")
    return [line.strip() for line in text.splitlines() if line.strip().startswith("Plan:")]


def record_counts(record: Path) -> dict:
    """Training steps and validations from a training record CSV (``<model stem>_record.csv``)."""
    if not record.is_file():
        return {"steps": None, "validations": None}
    rows = list(csv.DictReader(record.open()))
    steps = sum(r["kind"] == "iteration" for r in rows)
    validations = sum(r["kind"] == "epoch" and bool(r.get("val_metric") or r.get("val_objects")) for r in rows)
    return {"steps": steps, "validations": validations}


def subset(heldout: Path, name: str, n: int, dest: Path) -> Path:
    """The first n image/mask pairs of a held-out set, linked into dest/name (the set's name is kept)."""
    folder = dest / name
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for f in sorted((heldout / name / sub).iterdir())[:n]:
            link = folder / sub / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
    return folder


def baseline_src(a, out: Path) -> Path | None:
    if a.baseline_src:
        return a.baseline_src.resolve()
    if a.baseline_rev:
        tree = out / "baseline"
        if not tree.exists():
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", str(tree), a.baseline_rev],
                           check=True)
        return tree / "src"
    return None


def trainings(a, sets: dict[str, Path], out: Path, base: Path | None) -> list[Training]:
    cli = ["-m", "napari_mia.cli", "train"]
    user = ["--images", str(sets["train"] / "images"), "--masks", str(sets["train"] / "masks"),
            "--label-mode", "instances", "--minutes", f"{a.minutes:g}"]
    seed = ["--seed", str(a.seed)] if a.seed else []
    user += seed
    tune = ["--images", str(sets["x4_tune"] / "images"), "--masks", str(sets["x4_tune"] / "masks"),
            "--minutes", f"{a.ft_minutes:g}", *seed]
    plain = [str(HERE / "plain_loop.py"), "--images", str(sets["train"] / "images"), "--masks",
             str(sets["train"] / "masks"), "--minutes", f"{a.minutes:g}", "--out", str(out / "plain.pt"), *seed]
    runs = {
        "new": [Training("new", "new defaults", [*cli, *user, "--out", str(out / "new.pt")], SRC)],
        "previous": [Training("previous", "previous release defaults",
                              [*cli, *user, "--out", str(out / "previous.pt")], base or SRC)],
        "plain": [Training("plain", "plain smp loop", plain, SRC)],
        "ft": [Training("ft_from", f"--from new.pt, {a.ft_minutes:g} min on x4_tune",
                        [*cli, "--from", str(out / "new.pt"), *tune, "--out", str(out / "ft_from.pt")], SRC, ("x4",)),
               Training("ft_scratch", f"from scratch, {a.ft_minutes:g} min on x4_tune",
                        [*cli, *tune, "--label-mode", "instances", "--out", str(out / "ft_scratch.pt")], SRC,
                        ("x4",))],
    }
    runs["starter"] = [Training("ft_starter", f"--from nuclei, {a.ft_minutes:g} min on x4_tune",
                                [*cli, "--from", "nuclei", *tune, "--out", str(out / "ft_starter.pt")], SRC, ("x4",)),
                       runs["ft"][1]]
    # Hand-made settings on new's command, compared with the defaults at equal time: not what a user gets.
    candidates = [Training(name, f"candidate: new's command with --config {config}",
                           [*cli, *user, "--config", str(config), "--out", str(out / f"{name}.pt")], SRC)
                  for name, config in a.candidate]
    chosen = {t.model: t for row in a.only if row != "none" for t in runs[row]}  # ft and starter share a row
    return list(chosen.values()) + candidates


def score(t: Training, out: Path, sets: dict[str, Path], names, diameters) -> list[dict]:
    model = out / f"{t.model}.pt"
    info_file = out / f"{t.model}_train.json"
    info = json.loads(info_file.read_text()) if info_file.is_file() else record_counts(out / f"{t.model}_record.csv")
    rows = []
    if not model.is_file():
        print(f"{model} is missing: {t.model} is not scored", file=sys.stderr)
        return rows
    for name in t.scored_on or names:
        for diameter in diameters:
            folder = sets[name]
            row = {"model": t.model, "set": name, "diameter": diameter or "-",
                   "images": len(list((folder / "images").iterdir())), "steps": info.get("steps"),
                   "validations": info.get("validations"), "train_seconds": info.get("seconds")}
            try:
                mean, seconds = evaluate(model, folder, diameter)
                row.update(fg_iou=float(mean["fg_iou"]), object_f1=float(mean["object_f1"]), ap=float(mean["ap"]),
                           evaluate_seconds=seconds)
            except subprocess.CalledProcessError as e:
                print(f"{t.model} on {name} (diameter {diameter or '-'}): evaluate failed (exit {e.returncode})",
                      file=sys.stderr)
                row.update(fg_iou=math.nan, object_f1=math.nan, ap=math.nan, evaluate_seconds=math.nan)
            rows.append(row)
            print(markdown_row(row), flush=True)
    return rows


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown_row(r: dict) -> str:
    return (f"| {r['model']} | {r['set']} | {r['diameter']} | {r['images']} | {_fmt(r['fg_iou'])} | "
            f"{_fmt(r['object_f1'])} | {_fmt(r['ap'])} | {_fmt(r['steps'])} | {_fmt(r['validations'])} | "
            f"{_fmt(r['train_seconds'], 0)} |")


HEADER = ("| model | set | diameter | images | fg IoU | object F1 | AP 0.5-0.95 | steps | validations | "
          "training seconds |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def _names(text: str, allowed) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)} (comma-separated), got {text!r}")
    return names


def _candidate(text: str) -> tuple[str, Path]:
    name, _, config = text.partition("=")
    if not name or name in ROWS or not Path(config).is_file():
        raise argparse.ArgumentTypeError(f"NAME=CONFIG with a new name and an existing settings file, got {text!r}")
    return name, Path(config).resolve()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder for the models, logs and time_budget.csv")
    p.add_argument("--heldout", type=Path, help="held-out sets of heldout_sets.py (default: OUT/heldout; built if "
                                                "missing)")
    p.add_argument("--minutes", type=float, default=5.0, help="training time of new, previous and plain (default: 5)")
    p.add_argument("--ft-minutes", type=float, default=2.0, help="training time of each fine-tune row (default: 2)")
    p.add_argument("--only", type=lambda t: _names(t, (*ROWS, "none")), default=list(ROWS),
                   help=f"rows to run, comma-separated, of {','.join(ROWS)} (default: all; ft needs OUT/new.pt; "
                        "none: the candidates only)")
    p.add_argument("--sets", type=lambda t: _names(t, SETS), default=list(SETS),
                   help=f"held-out sets to score on (default: {','.join(SETS)}; ft rows: x4 only)")
    p.add_argument("--candidate", action="append", default=[], type=_candidate, metavar="NAME=CONFIG",
                   help="also train new's command with --config CONFIG, as row NAME (repeatable): hand-made settings "
                        "against the defaults at equal time")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of every training (default: 0, the CLI's own): repeat a comparison with another")
    p.add_argument("--with-auto", action="store_true", help="also score with --diameter auto")
    p.add_argument("--skip-train", action="store_true", help="score the models already in OUT again")
    p.add_argument("--train-only", action="store_true",
                   help="train and stop: the trainings need the machine to themselves, the scoring does not")
    p.add_argument("--baseline-src", type=Path, help="the src folder of a checkout of the previous release")
    p.add_argument("--baseline-rev", help="make that checkout here: git worktree add OUT/baseline REV")
    p.add_argument("--limit", type=int, help="only the first N images of each set (to check the script, quickly)")
    a = p.parse_args()
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Scoring and the new rows run this checkout's package, whatever PYTHONPATH the script was started with.
    os.environ["PYTHONPATH"] = str(SRC)
    base = baseline_src(a, out)
    if "previous" in a.only and not a.skip_train and base is None:
        p.error("the previous row needs --baseline-src DIR (e.g. after git worktree add /tmp/base fcb15af: "
                "/tmp/base/src) or --baseline-rev REV; or leave it out with --only")
    if base is not None and not (base / "napari_mia").is_dir():
        p.error(f"{base} holds no napari_mia package: give the src folder of the checkout")
    if "ft" in a.only and "new" not in a.only and not (out / "new.pt").is_file():
        p.error(f"the ft rows fine-tune {out / 'new.pt'}: train it first (--only new,ft)")
    heldout = (a.heldout or out / "heldout").resolve()
    if not (heldout / "x4_tune" / "masks").is_dir():
        build(heldout)
    names = ["train", "x4_tune", *SETS]
    sets = {n: subset(heldout, n, a.limit, out / f"limit{a.limit}") if a.limit else heldout / n for n in names}
    runs = trainings(a, sets, out, base)
    if not a.skip_train:
        for t in runs:
            t.run(out)
    if a.train_only:
        return
    diameters = [None, "auto"] if a.with_auto else [None]
    print(HEADER, flush=True)
    rows = [r for t in runs for r in score(t, out, sets, a.sets, diameters)]
    with (out / "time_budget.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    print()
    for t in runs:
        info_file = out / f"{t.model}_train.json"
        plan = json.loads(info_file.read_text()).get("plan") if info_file.is_file() else None
        print(f"- {t.model} ({t.label}): {plan[-1] if plan else 'no plan printed'}")
    print(f"\nWrote {out / 'time_budget.csv'}")


if __name__ == "__main__":
    main()

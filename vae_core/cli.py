"""Command line: `python -m vae_core train|resume|evaluate|list|slim`.

Every config field is a flag, built from the config classes' declarations. Ctrl-C during
training stops after the current step and leaves a resumable checkpoint; a second Ctrl-C aborts.
Under `torchrun --nproc_per_node N -m vae_core train|resume ...` the N processes train one model
(see docs/DISTRIBUTED.md); rank 0 alone prints and writes the run folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from . import commands, distributed
from .checkpoints import drop_training_state, run_size
from .config.base import Config, ConfigError, flag_settings, from_dict
from .data import DataError
from .config.kinds import CONFIG_CLASSES
from .progress import JsonLines, ProgressBar
from .registry import load_model
from .report import run_summary
from .store import CheckpointError, check_run_name, create_run_dir, list_runs, shown, training_mark
from .trainer import NonFiniteLossError, SanityCheckError

DEFAULT_RUNS = "runs"
KIND_HELP = {"vae": "the AEVB model", "m2": "semi-supervised M2 or M1+M2 (Kingma et al. 2014)"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, cls: type[Config], title: str, when: str = "") -> None:
    """One flag per config field; a field another config already has keeps its first flag, whose
    help then also gives this config's own text and default where either differs (`when`: the
    flag that selects this config)."""
    group = parser.add_argument_group(f"{title} ({when})" if when else title)
    existing = {action.dest: action for action in parser._actions}
    for s in flag_settings(cls):
        help_text = f"{s.help} (default: {s.default})"
        if s.name in existing:
            action = existing[s.name]
            if not action.help.startswith(help_text):
                action.help += f". With {when}: {help_text}"
            continue
        if s.kind is bool:
            group.add_argument(_flag(s.name), action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(_flag(s.name), type=s.kind, choices=s.choices, default=None,
                               metavar=None if s.choices else s.name.upper(), help=help_text)


def config_from_args(cls: type[Config], args: argparse.Namespace, base: dict | None = None) -> Any:
    """A config from `base` values (e.g. a config file's), overridden by the flags given."""
    values = dict(base or {})
    for s in flag_settings(cls):
        value = getattr(args, s.name, None)
        if value is not None:
            values[s.name] = value
    return from_dict(cls, values)


def _read_config_json(text: str | None) -> dict:
    """--config-json: {"kind": ..., "model": {...}, "training": {...}}, as a run's config.json."""
    if not text:
        return {}
    try:
        data = json.loads(Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--config-json: not a readable JSON object ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k, {}), dict) for k in ("model", "training")):
        raise ConfigError("--config-json: expected {\"kind\": ..., \"model\": {...}, \"training\": {...}}")
    return data


def _install_stop_handler(stop: threading.Event, quiet: bool = False) -> None:
    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if not quiet:
            sys.stderr.write("\nstopping after this step (Ctrl-C again to abort)...\n")
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _callbacks(progress: str) -> list:
    return {"bar": [ProgressBar()], "jsonl": [JsonLines()], "none": []}[progress]


def configs_from_args(args: argparse.Namespace) -> tuple[str, Config, Config]:
    """The kind and the model and training configs of `train`'s arguments: --config-json's, then
    the flags given."""
    base = _read_config_json(args.config_json)
    kind = base.get("kind", args.kind)
    if kind not in CONFIG_CLASSES:
        raise ConfigError(f"--config-json: unknown kind {kind!r}")
    model_cls, train_cls = CONFIG_CLASSES[kind]
    return (kind, config_from_args(model_cls, args, base.get("model")),
            config_from_args(train_cls, args, base.get("training")))


def cmd_train(args: argparse.Namespace) -> int:
    kind, model_config, train_config = configs_from_args(args)
    launch = distributed.from_environment()  # under torchrun: this process's rank; rank 0 writes
    commands.check_launch(kind, train_config, launch)
    lead = launch is None or launch.rank == 0
    name = check_run_name(args.name) if args.name else (
        f"m2-{train_config.dataset}-{train_config.num_labels}labels" if kind == "m2"
        else f"{model_config.architecture}-{train_config.dataset}-z{model_config.latent_dim}")
    run_dir = create_run_dir(args.runs_dir, name) if lead else None
    if lead:
        print(f"run folder: {run_dir}", file=sys.stderr)
    stop = threading.Event()
    _install_stop_handler(stop, quiet=not lead)
    # the app tells a live run from an interrupted one by this
    with training_mark(run_dir) if lead else contextlib.nullcontext():
        trainer = commands.train(model_config, train_config, run_dir, args.data_root,
                                 _callbacks(args.progress) if lead else [], stop, launch)
    if lead:
        print(f"saved: {run_dir} ({trainer.summary['status']})", file=sys.stderr)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    launch = distributed.from_environment()
    lead = launch is None or launch.rank == 0
    stop = threading.Event()
    _install_stop_handler(stop, quiet=not lead)
    with training_mark(args.run) if lead else contextlib.nullcontext():
        trainer = commands.resume(args.run, args.epochs, args.data_root, _callbacks(args.progress) if lead else [],
                                  stop, args.device, args.num_threads, args.learning_rate, launch)
    if lead:
        print(f"saved: {args.run} ({trainer.summary['status']})", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    result = commands.evaluate(args.run, args.data_root, args.device, save=not args.no_save,
                               num_importance_samples=args.importance_samples, batch_size=args.batch_size,
                               progress=ProgressBar().fraction if sys.stderr.isatty() else None)
    for key, value in result.items():
        if isinstance(value, list):
            value = " ".join(f"{v:.2f}" for v in value)
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for run in list_runs(*args.dirs):
        if run.error:
            print(f"{shown(run.name):32s} unreadable: {run.error}")
            continue
        s = run_summary(run.record)
        line = f"{shown(s.name):32s} {s.kind:4s} z={s.latent_dim:<3d} epochs={s.epochs:<4d} {s.status:13s}"
        if s.test_elbo is not None:
            line += f" test ELBO {s.test_elbo:.2f}"
        if s.test_error is not None:
            line += f" test error {100 * s.test_error:.2f}%"
        print(line.rstrip())
    return 0


def cmd_slim(args: argparse.Namespace) -> int:
    status = load_model(args.run)[1].summary.get("status")  # every file checked against the config
    if status not in ("finished", "early-stopped"):
        print(f"error: {shown(Path(args.run).name)}: status is {status}; only finished runs can be slimmed",
              file=sys.stderr)
        return 2
    drop_training_state(args.run)
    print(f"{args.run}: optimizer state removed, {run_size(args.run) / 1e6:.1f} MB")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae_core", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model and write a run folder",
                           epilog="Under torchrun --nproc_per_node N, --batch-size is the global minibatch: "
                                  "each of the N processes takes batch-size / N of it (a multiple of N is "
                                  "required). See docs/DISTRIBUTED.md.")
    train.add_argument("--name", help="run folder name (default: from the config); a name that starts "
                                      "with '-' is given as --name=NAME")
    train.add_argument("--runs-dir", default=DEFAULT_RUNS, help=f"where run folders go (default: {DEFAULT_RUNS})")
    train.add_argument("--data-root", help="folder with IDX files / download target")
    train.add_argument("--progress", choices=("bar", "jsonl", "none"), default="bar")
    train.add_argument("--kind", choices=tuple(CONFIG_CLASSES), default="vae",
                       help="; ".join(f"{k}: {h}" for k, h in KIND_HELP.items()))
    train.add_argument("--config-json", metavar="JSON",
                       help='start from these configs, {"kind": ..., "model": {...}, "training": {...}} as '
                            "in a run's config.json (or @FILE to read them from a file); flags override them")
    add_config_flags(train, CONFIG_CLASSES["vae"][0], "model")
    add_config_flags(train, CONFIG_CLASSES["vae"][1], "training")
    add_config_flags(train, CONFIG_CLASSES["m2"][0], "semi-supervised model", when="--kind m2")
    add_config_flags(train, CONFIG_CLASSES["m2"][1], "semi-supervised training", when="--kind m2")

    res = sub.add_parser("resume", help="continue a stopped run, or extend a finished one")
    res.add_argument("run")
    res.add_argument("--epochs", type=int, help="new total number of epochs")
    res.add_argument("--data-root")
    res.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    res.add_argument("--num-threads", type=int, help="CPU threads for torch (default: as the run was started)")
    res.add_argument("--learning-rate", type=float,
                     help="a new step size from here on, e.g. smaller to settle a long run (default: the run's)")
    res.add_argument("--progress", choices=("bar", "jsonl", "none"), default="bar")

    ev = sub.add_parser("evaluate", help="test ELBO and importance-sampled log-likelihood of a run")
    ev.add_argument("run")
    ev.add_argument("--importance-samples", type=int, default=5000, help="k (default: 5000)")
    ev.add_argument("--batch-size", type=int, default=100, help="test images per batch (default: 100)")
    ev.add_argument("--data-root")
    ev.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    ev.add_argument("--no-save", action="store_true", help="do not record the result in the run")

    ls = sub.add_parser("list", help="list the runs in folders")
    ls.add_argument("dirs", nargs="*", default=[DEFAULT_RUNS, "checkpoints"])

    slim = sub.add_parser("slim", help="drop the optimizer state of a finished run to ship it")
    slim.add_argument("run")
    return parser


def _rank_label() -> str:
    """' (rank r)' in the processes of a torchrun launch other than rank 0, whose errors may
    differ from rank 0's (another node, another GPU)."""
    rank = os.environ.get("RANK", "0") if "WORLD_SIZE" in os.environ else "0"
    return "" if rank == "0" else f" (rank {rank})"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "resume": cmd_resume, "evaluate": cmd_evaluate,
                "list": cmd_list, "slim": cmd_slim}[args.command](args)
    except (ConfigError, CheckpointError, DataError, NonFiniteLossError, SanityCheckError) as exc:
        print(f"error{_rank_label()}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\naborted", file=sys.stderr)
        return 130

"""Command line: `python -m vae_core train|resume|evaluate|list|slim`.

Every config field is a flag, generated from the dataclasses' metadata. Ctrl-C during training
stops after the current step and leaves a resumable checkpoint; a second Ctrl-C aborts.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from . import config as cfg

DEFAULT_RUNS = "runs"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, cls: type, title: str, when: str = "") -> None:
    """One flag per config field; a field another config already has keeps its first flag, whose
    help then also gives this config's own text and default where either differs (`when`: the
    flag that selects this config)."""
    group = parser.add_argument_group(f"{title} ({when})" if when else title)
    existing = {action.dest: action for action in parser._actions}
    for f in cfg.flag_fields(cls):
        meta, default = f.metadata, f.default
        help_text = f"{meta['help']} (default: {default})"
        if f.name in existing:
            action = existing[f.name]
            if not action.help.startswith(help_text):
                action.help += f". With {when}: {help_text}"
            continue
        if isinstance(default, bool):
            group.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        else:
            group.add_argument(_flag(f.name), type=type(default), choices=meta.get("choices"),
                               default=None, metavar=None if meta.get("choices") else f.name.upper(),
                               help=help_text)


def config_from_args(cls: type, args: argparse.Namespace, base: dict | None = None) -> Any:
    values = dict(base or {})
    for f in cfg.field_specs(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            values[f.name] = value
    return cfg.from_dict(cls, values)


class ProgressBar:
    """A one-line progress display on stderr: epoch, step, ETA and the running ELBO."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.is_tty = stream.isatty()
        self._last_line = 0.0

    def __call__(self, event) -> None:
        if event.kind == "step":
            done = event.step / max(event.steps_per_epoch, 1)
            bar = "#" * int(24 * done) + "-" * (24 - int(24 * done))
            eta = format_seconds(event.eta_seconds)
            metrics = " ".join(f"{k.removeprefix('train_')} {v:8.2f}" for k, v in event.metrics.items())
            line = f"epoch {event.epoch}/{event.epochs} [{bar}] {event.step}/{event.steps_per_epoch} " \
                   f"ETA {eta}  {metrics}"
            if self.is_tty:
                self.stream.write("\r" + line[:160])
            elif time.monotonic() - self._last_line > 10:
                self._last_line = time.monotonic()
                self.stream.write(line + "\n")
        elif event.kind == "epoch":
            m = event.metrics
            self.stream.write(("\r" if self.is_tty else "") +
                              f"epoch {event.epoch}/{event.epochs}: " +
                              "  ".join(f"{k} {v:.2f}" for k, v in m.items()
                                        if k.startswith(("train_", "val_"))) + "\n")
        elif event.kind == "end":
            self.stream.write(f"{event.status}: " + "  ".join(
                f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in event.metrics.items()) + "\n")
        self.stream.flush()


    def fraction(self, done: int, total: int) -> None:
        self.stream.write(f"\r{done}/{total} ({100 * done / max(total, 1):.0f}%)")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


class JsonLines:
    """Events as JSON lines on stdout, for the app's background jobs."""

    def __call__(self, event) -> None:
        sys.stdout.write(event.to_json() + "\n")
        sys.stdout.flush()


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:02d}:{seconds % 60:02d}"


def _install_stop_handler(stop: threading.Event) -> None:
    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        sys.stderr.write("\nstopping after this step (Ctrl-C again to abort)...\n")
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _callbacks(progress: str) -> list:
    return {"bar": [ProgressBar()], "jsonl": [JsonLines()], "none": []}[progress]


def cmd_train(args: argparse.Namespace) -> int:
    if args.kind == "m2":
        from .semisupervised import train_m2 as train
        model_config = config_from_args(cfg.M2Config, args)
        train_config = config_from_args(cfg.M2TrainConfig, args)
    else:
        from .training import train_vae as train
        model_config = config_from_args(cfg.ModelConfig, args)
        train_config = config_from_args(cfg.TrainConfig, args)
    from .checkpoints import create_run_dir
    name = args.name or (f"m2-{train_config.dataset}-{train_config.num_labels}labels" if args.kind == "m2"
                         else f"{model_config.architecture}-{train_config.dataset}-z{model_config.latent_dim}")
    run_dir = create_run_dir(args.runs_dir, name)
    print(f"run folder: {run_dir}", file=sys.stderr)
    stop = threading.Event()
    _install_stop_handler(stop)
    trainer = train(model_config, train_config, run_dir, args.data_root, _callbacks(args.progress), stop)
    print(f"saved: {run_dir} ({trainer.summary['status']})", file=sys.stderr)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from .training import resume
    stop = threading.Event()
    _install_stop_handler(stop)
    trainer = resume(args.run, args.epochs, args.data_root, _callbacks(args.progress), stop, args.device,
                     args.num_threads, args.learning_rate)
    print(f"saved: {args.run} ({trainer.summary['status']})", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .checkpoints import read_checkpoint, update_summary
    if read_checkpoint(args.run, with_weights=False).kind == "m2":
        from .semisupervised import evaluate_m2_run
        result = evaluate_m2_run(args.run, args.data_root, args.device)
        if not args.no_save:
            update_summary(args.run, **result)
        for key, value in result.items():
            print(f"{key}: {value:.4f}")
        return 0
    from .evaluation import evaluate_run
    result = evaluate_run(args.run, args.importance_samples, data_root=args.data_root,
                          batch_size=args.batch_size, device=args.device, save=not args.no_save,
                          progress=ProgressBar().fraction if sys.stderr.isatty() else None)
    for key, value in result.items():
        if isinstance(value, list):
            value = " ".join(f"{v:.2f}" for v in value)
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .checkpoints import list_runs
    for run in list_runs(*args.dirs):
        if run.error:
            print(f"{run.name:32s} unreadable: {run.error}")
            continue
        c = run.checkpoint
        s = c.summary
        elbo = s.get("test_elbo")
        print(f"{run.name:32s} {c.kind:4s} z={c.model_config.latent_dim:<3d} epochs={len(c.epochs):<4d} "
              f"{s.get('status', '?'):13s} test ELBO {elbo:.2f}" if elbo is not None else
              f"{run.name:32s} {c.kind:4s} z={c.model_config.latent_dim:<3d} epochs={len(c.epochs):<4d} "
              f"{s.get('status', '?')}")
    return 0


def cmd_slim(args: argparse.Namespace) -> int:
    from .checkpoints import drop_training_state, read_checkpoint
    status = read_checkpoint(args.run).summary.get("status")
    if status not in ("finished", "early-stopped"):
        print(f"{args.run}: status is {status}; only finished runs can be slimmed", file=sys.stderr)
        return 2
    drop_training_state(args.run)
    size = sum(p.stat().st_size for p in Path(args.run).rglob("*") if p.is_file())
    print(f"{args.run}: optimizer state removed, {size / 1e6:.1f} MB")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae_core", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model and write a run folder")
    train.add_argument("--name", help="run folder name (default: from the config)")
    train.add_argument("--runs-dir", default=DEFAULT_RUNS, help=f"where run folders go (default: {DEFAULT_RUNS})")
    train.add_argument("--data-root", help="folder with IDX files / download target")
    train.add_argument("--progress", choices=("bar", "jsonl", "none"), default="bar")
    train.add_argument("--kind", choices=("vae", "m2"), default="vae",
                       help="vae: the AEVB model; m2: semi-supervised M2 or M1+M2 (Kingma et al. 2014)")
    add_config_flags(train, cfg.ModelConfig, "model")
    add_config_flags(train, cfg.TrainConfig, "training")
    add_config_flags(train, cfg.M2Config, "semi-supervised model", when="--kind m2")
    add_config_flags(train, cfg.M2TrainConfig, "semi-supervised training", when="--kind m2")

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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .checkpoints import CheckpointError
    from .data import DataError
    from .training import NonFiniteLossError, SanityCheckError
    try:
        return {"train": cmd_train, "resume": cmd_resume, "evaluate": cmd_evaluate,
                "list": cmd_list, "slim": cmd_slim}[args.command](args)
    except (cfg.ConfigError, CheckpointError, DataError, NonFiniteLossError, SanityCheckError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\naborted", file=sys.stderr)
        return 130

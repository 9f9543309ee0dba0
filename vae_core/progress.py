"""Showing training progress: a one-line bar for a terminal, JSON lines for the app's jobs, and
times as h:mm:ss. Both displays are callbacks that receive the trainer's events."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .trainer import TrainingEvent


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """A one-line progress display: epoch, step, ETA and the running ELBO; a line every 10 s
    when the stream is not a terminal."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.is_tty = self.stream.isatty()
        self._last_line = 0.0

    def __call__(self, event: TrainingEvent) -> None:
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
        """Progress of a long computation other than training (e.g. an evaluation)."""
        self.stream.write(f"\r{done}/{total} ({100 * done / max(total, 1):.0f}%)")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


class JsonLines:
    """Events as JSON lines, for the app's background jobs (`jobs` reads them)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout

    def __call__(self, event: TrainingEvent) -> None:
        self.stream.write(event.to_json() + "\n")
        self.stream.flush()

"""What a run is and how it did: one summary of a run's record, in plain words and headline
figures, for the command line's list, the app's tables and its sidebar."""

from __future__ import annotations

from dataclasses import dataclass

from .store import RunRecord


@dataclass(frozen=True)
class RunSummary:
    name: str
    kind: str                          # "vae" or "m2"
    model: str                         # e.g. "MLP 784-500-20, tanh, bernoulli decoder"
    training: str                      # e.g. "mnist, dynamic binarisation, estimator B, adam lr 0.001"
    latent_dim: int
    hidden_dim: int
    epochs: int                        # epochs recorded
    status: str
    best_epoch: int | None
    last_val_elbo: float | None
    test_elbo: float | None
    test_log_likelihood: float | None
    importance_samples: int | None
    test_error: float | None           # M2: the classifier's test error, a fraction
    num_labels: int | None             # M2: labelled training digits
    inputs: str | None                 # M2: "pixels" or "M1 codes"
    wall_seconds: float | None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_summary(record: RunRecord) -> RunSummary:
    m, t, s = record.model_config, record.train_config, record.summary
    last = record.epochs[-1] if record.epochs and isinstance(record.epochs[-1], dict) else {}
    if record.kind == "m2":
        inputs = "M1 codes" if t.m1_run else "pixels"
        deeper = f", classifier {m.classifier_layers} layers" if m.classifier_layers > 1 else ""
        model = (f"M2 on {f'M1 features ({m.input_features})' if m.input_features else 'pixels'}, hidden "
                 f"{m.hidden_dim}{deeper}, style z {m.latent_dim}-D, {m.activation}")
        training = (f"{t.dataset}, {t.num_labels} labels, {t.optimizer} lr {t.learning_rate:g}"
                    + (f", KL weight {t.beta:g}" if t.beta != 1 else ""))
    else:
        inputs = None
        widths = "-".join(map(str, [m.input_dim, *[m.hidden_dim] * m.hidden_layers, m.latent_dim]))
        model = f"{m.architecture.upper()} {widths}, {m.activation}, {m.likelihood} decoder"
        training = (f"{t.dataset}, {t.binarization} binarisation, estimator {t.estimator}, {t.optimizer} "
                    f"lr {t.learning_rate:g}, batch {t.batch_size}, {t.backward} backward")
    samples = _number(s.get("importance_samples"))
    best = _number(s.get("best_epoch"))
    return RunSummary(
        name=record.name, kind=record.kind, model=model, training=training, latent_dim=m.latent_dim,
        hidden_dim=m.hidden_dim,
        epochs=len(record.epochs), status=str(s.get("status", "?")), best_epoch=None if best is None else int(best),
        last_val_elbo=_number(last.get("val_elbo")), test_elbo=_number(s.get("test_elbo")),
        test_log_likelihood=_number(s.get("test_log_likelihood")),
        importance_samples=None if samples is None else int(samples), test_error=_number(s.get("test_error")),
        num_labels=t.num_labels if record.kind == "m2" else None, inputs=inputs,
        wall_seconds=_number(s.get("wall_seconds")))

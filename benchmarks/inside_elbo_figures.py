"""What the Inside the ELBO page measures, over several test digits and every shipped VAE: the
figures quoted in docs/RESULTS.md.

    python benchmarks/inside_elbo_figures.py [--digits 10]

For each run and each of the first `--digits` MNIST test digits, at the page's default settings:
Var A / Var B of the ELBO estimate at L = 1, the same ratio for the encoder's one-sample gradient,
the score-function over reparameterisation gradient variance at L = 1, and L_1000 - ELBO (a
lower estimate of KL(q(z|x) || p(z|x))). Prints the median and range over the digits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vae_core.data import load_dataset  # noqa: E402
from vae_core.registry import load_model  # noqa: E402
from vae_core.store import list_runs  # noqa: E402
from vae_core.vae import inside  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digits", type=int, default=10)
    args = parser.parse_args()
    images = load_dataset("mnist").test.images[:args.digits, 0].numpy()
    runs = [r for r in list_runs(ROOT / "checkpoints") if r.record is not None and r.record.kind == "vae"]
    print(f"median [min, max] over MNIST test digits 0-{args.digits - 1}")
    print(f"{'run':24s} {'Var A/B, value':>22s} {'Var A/B, gradient':>22s} {'score fn / reparam':>24s} "
          f"{'L_1000 - ELBO (nats)':>22s}")
    for run in runs:
        model = load_model(run.path)[0]
        rows = []
        for image in images:
            comparison = inside.compare_estimators(model, image)
            gradient = inside.gradient_variance(model, image)
            curve = inside.importance_weighted_bounds(model, image)
            rows.append((comparison.draws[0].variance_ratio, gradient.estimator_a_over_b, gradient.ratio[0],
                         curve.mean[-1] - comparison.elbo))
        columns = np.asarray(rows).T

        def cell(values: np.ndarray, digits: int) -> str:
            return f"{np.median(values):.{digits}f} [{values.min():.{digits}f}, {values.max():.{digits}f}]"
        print(f"{run.name:24s} {cell(columns[0], 2):>22s} {cell(columns[1], 2):>22s} {cell(columns[2], 0):>24s} "
              f"{cell(columns[3], 2):>22s}")


if __name__ == "__main__":
    main()

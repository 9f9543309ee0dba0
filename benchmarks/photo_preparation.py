"""How well a phone photo of a digit is prepared as MNIST, on generated realistic photos.

Prints, for photos of MNIST test digits (tests/photos.py, seeded): the overlap (IoU at 0.5)
of the prepared 28x28 with the original digit, the shipped M2's accuracy on the prepared photos
against the same digits as MNIST gives them, the same for the photos darkened to half their
brightness, and the time to prepare a 12-megapixel photo.

    python benchmarks/photo_preparation.py [--count 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from photos import corpus, iou, render  # noqa: E402
from vae_core.data import load_dataset  # noqa: E402
from vae_core.m2.explore import classify  # noqa: E402
from vae_core.preprocess import ImageError, preprocess_upload  # noqa: E402
from vae_core.registry import load_model  # noqa: E402


def prepare_all(photos) -> tuple[list[np.ndarray | None], int]:
    prepared, refused = [], 0
    for photo in photos:
        try:
            prepared.append(preprocess_upload(photo.jpeg, "photo.jpg").final)
        except ImageError:
            prepared.append(None)
            refused += 1
    return prepared, refused


def accuracy(model, images: list[np.ndarray | None], labels: np.ndarray) -> float:
    """Refused photos count as wrong."""
    ok = [i for i, image in enumerate(images) if image is not None]
    predicted = classify(model, np.stack([images[i] for i in ok])).argmax(-1) if ok else np.array([])
    return float((predicted == labels[ok]).sum() / len(labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300, help="photos per corpus (default: 300)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    test = load_dataset("mnist").test
    digits, labels = test.images[:args.count, 0].numpy(), test.labels[:args.count].numpy()
    m2, _ = load_model(ROOT / "checkpoints" / "mnist-m2")
    on_mnist = accuracy(m2, list(digits), labels)
    print(f"{args.count} MNIST test digits; shipped M2 on them as MNIST gives them: {on_mnist:.1%}")

    for darken, name in ((1.0, "photos"), (0.5, "photos at half brightness")):
        photos = corpus(digits, labels, args.count, args.seed, darken)
        start = time.perf_counter()
        prepared, refused = prepare_all(photos)
        seconds = (time.perf_counter() - start) / len(photos)
        overlaps = [iou(p, d) if p is not None else 0.0 for p, d, photo in zip(prepared, digits, photos)]
        upright = [o for o, photo in zip(overlaps, photos) if "tilt" not in photo.effects]
        p10 = float(np.percentile(upright, 10))
        print(f"\n{name}: {refused} refused, {1000 * seconds:.0f} ms each")
        print(f"  IoU without tilt ({len(upright)}): median {statistics.median(upright):.3f}, 10th percentile {p10:.3f}, "
              f"below 0.3: {np.mean(np.array(upright) < 0.3):.1%}")
        print(f"  IoU of all: median {statistics.median(overlaps):.3f}")
        on_photos = accuracy(m2, prepared, labels)
        print(f"  shipped M2: {on_photos:.1%} on the prepared photos ({100 * (on_photos - on_mnist):+.1f} points)")
        worst = sorted(range(len(photos)), key=lambda i: overlaps[i])[:5]
        for i in worst:
            print(f"    worst: #{i} ({labels[i]}) IoU {overlaps[i]:.2f} {', '.join(photos[i].effects)}")

    rng = np.random.default_rng(args.seed)
    big = render(digits[0], int(labels[0]), rng, size=(4000, 3000), effects=("gradient", "texture"), quality=85)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        preprocess_upload(big.jpeg, "photo.jpg")
        times.append(time.perf_counter() - start)
    print(f"\n12-megapixel JPEG ({len(big.jpeg) / 1e6:.1f} MB): prepared in {1000 * min(times):.0f} ms best, "
          f"{1000 * statistics.median(times):.0f} ms median of 5")


if __name__ == "__main__":
    main()

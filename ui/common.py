"""The frame every page shares: the sidebar model picker, cached models and data, image helpers.

Models are loaded once per server process (`st.cache_resource`), keyed by the run's current
state folder so that a run that trains further is reloaded; derived data is cached too.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from vae_core import checkpoints as ckpts
from vae_core.jobs import JobManager

# vae_core.data and vae_core.explore import torch, which takes over a second: they are imported
# where a page needs a model, so that the home page comes up without it.

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints"
RUNS = Path(os.environ.get("VAE_EXPLORER_RUNS", ROOT / "runs"))
DEFAULT_RUNS = {"vae": "mnist-mlp-z2", "m2": "mnist-m2"}
PICKED = "picked_run"  # session key (per model kind) that carries the chosen run across pages


@st.cache_resource(show_spinner=False)
def job_manager() -> JobManager:
    """One per server: jobs outlive the browser tab that started them."""
    return JobManager(RUNS, data_root=os.environ.get("VAE_DATA_ROOT"))


def available_runs(kind: str = "vae") -> list[ckpts.RunInfo]:
    return [r for r in ckpts.list_runs(SHIPPED, RUNS)
            if r.checkpoint is not None and r.checkpoint.kind == kind]


def unreadable_runs() -> list[ckpts.RunInfo]:
    return [r for r in ckpts.list_runs(SHIPPED, RUNS) if r.error]


def state_key(path: Path) -> str:
    """The name of a run's current state folder: changes whenever the run saves."""
    try:
        return ckpts.state_folder(path).name
    except ckpts.CheckpointError:
        return ""


@st.cache_resource(show_spinner="Loading the model...", max_entries=8)
def _load(path: str, state: str):
    return ckpts.load_model(path)


def load_run(path: Path):
    """(model, checkpoint) of a run, cached until the run saves a newer state."""
    return _load(str(path), state_key(path))


@st.cache_resource(show_spinner="Loading the M1 encoder...", max_entries=4)
def _load_m1(path: str, state: str):
    from vae_core.semisupervised import weights_digest
    model = ckpts.load_model(path)[0]
    return model, weights_digest(model)


def m1_encoder(path: Path):
    """The M1 VAE of an M1+M2 run, whose posterior means are M2's inputs, and the digest of its
    weights; cached until that run saves a newer state (so a replaced M1 is seen)."""
    return _load_m1(str(path), state_key(path))


@st.cache_resource(show_spinner="Loading the test set...", max_entries=4)
def _test_split(dataset: str, binarization: str, seed: int):
    from vae_core.data import load_dataset, prepare
    data = prepare(load_dataset(dataset, os.environ.get("VAE_DATA_ROOT")), binarization, seed)
    return data.test.images[:, 0].numpy(), data.test.labels.numpy()


def test_set(ckpt: ckpts.Checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images (N, H, W), binarised as in training, and labels (N,)."""
    c = ckpt.train_config
    return _test_split(c.dataset, c.binarization, c.seed)


def test_set_grey(ckpt: ckpts.Checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images as grey values, for showing and encoding digits."""
    return _test_split(ckpt.train_config.dataset, "none", 0)


@st.cache_data(show_spinner="Encoding the test set...", max_entries=8)
def _encodings(path: str, state: str) -> tuple[np.ndarray, np.ndarray]:
    from vae_core.explore import encode
    model, ckpt = _load(path, state)
    images, labels = test_set_grey(ckpt)
    mu, _ = encode(model, images)
    return mu, labels


def test_encodings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means of the test set (N, D) and the labels (N,)."""
    return _encodings(str(path), state_key(path))


@st.cache_data(show_spinner="Scoring the test set...", max_entries=8)
def _test_elbos(path: str, state: str) -> np.ndarray:
    from vae_core.explore import per_image_elbo
    model, ckpt = _load(path, state)
    images, _ = test_set(ckpt)
    return per_image_elbo(model, images)


def test_elbos(path: Path) -> np.ndarray:
    return _test_elbos(str(path), state_key(path))


def _describe(ckpt: ckpts.Checkpoint) -> str:
    m, t, s = ckpt.model_config, ckpt.train_config, ckpt.summary
    if ckpt.kind == "m2":
        inputs = f"M1 features ({m.input_features})" if m.input_features else "pixels"
        deeper = f", classifier {m.classifier_layers} layers" if m.classifier_layers > 1 else ""
        lines = [f"**M2** on {inputs}, hidden {m.hidden_dim}{deeper}, style z {m.latent_dim}-D, {m.activation}",
                 f"{t.dataset}, {t.num_labels} labels, {t.optimizer} lr {t.learning_rate:g}"
                 + (f", KL weight {t.beta:g}" if t.beta != 1 else ""),
                 f"{len(ckpt.epochs)} epochs, status: {s.get('status', '?')}"]
        if "test_error" in s:
            lines.append(f"test error **{100 * s['test_error']:.2f}%**")
        return "  \n".join(lines)
    widths = "-".join(map(str, [m.input_dim, *[m.hidden_dim] * m.hidden_layers, m.latent_dim]))
    lines = [f"**{m.architecture.upper()}** {widths}, {m.activation}, "
             f"{m.likelihood} decoder",
             f"{t.dataset}, {t.binarization} binarisation, estimator {t.estimator}, {t.optimizer} "
             f"lr {t.learning_rate:g}, batch {t.batch_size}",
             f"{len(ckpt.epochs)} epochs, status: {s.get('status', '?')}"]
    if "test_elbo" in s:
        lines.append(f"test ELBO **{s['test_elbo']:.2f}** nats")
    if "test_log_likelihood" in s:
        lines.append(f"test log p(x) ≈ **{s['test_log_likelihood']:.2f}** (k={s.get('importance_samples')})")
    return "  \n".join(lines)


PAGES = [("app.py", "Home", ":material/home:"),
         ("pages/1_Train.py", "Train", ":material/model_training:"),
         ("pages/2_Latent_space.py", "Latent space", ":material/scatter_plot:"),
         ("pages/3_Interpolate.py", "Interpolate", ":material/linear_scale:"),
         ("pages/4_Reconstruct.py", "Reconstruct", ":material/image:"),
         ("pages/5_Training_curves.py", "Training curves", ":material/show_chart:"),
         ("pages/6_Semi-supervised.py", "Semi-supervised", ":material/label:")]


def sidebar_navigation() -> None:
    """Page links with readable names (Streamlit's own list would call the home page "app")."""
    with st.sidebar:
        for page, label, icon in PAGES:
            st.page_link(page, label=label, icon=icon)
        st.divider()


def sidebar_model_picker(kind: str = "vae", min_latent: int = 1, load: bool = True):
    """The sidebar of every page: navigation and the run chooser. Returns (run path, model,
    checkpoint), or stops the page with a message when there is no model. With `load=False`
    the model is None and the checkpoint carries no weights."""
    sidebar_navigation()
    runs = [r for r in available_runs(kind) if r.checkpoint.model_config.latent_dim >= min_latent]
    if not runs:
        st.sidebar.warning("No trained models yet.")
        st.info("There is no trained model to show. " + (
            "Train one on the **Train** page (semi-supervised) or with "
            "`python -m vae_core train --kind m2`." if kind == "m2"
            else "Train one on the **Train** page."))
        st.stop()
    # Options are the labels themselves (unique: two folders cannot hold the same shipped name).
    paths = {f"{r.name}{' (shipped)' if r.path.parent == SHIPPED else ''}": r.path for r in runs}
    options = list(paths)
    picked = st.session_state.get(f"{PICKED}_{kind}")
    if picked not in options:
        picked = next((o for o in options if paths[o].name == DEFAULT_RUNS.get(kind)), options[0])
    choice = st.sidebar.selectbox("Model", options, index=options.index(picked),
                                  key=f"model_picker_{kind}", help="Shipped runs and the runs you train")
    st.session_state[f"{PICKED}_{kind}"] = choice
    path = paths[choice]
    try:
        model, ckpt = load_run(path) if load else (None, next(r.checkpoint for r in runs if r.path == path))
    except ckpts.CheckpointError as exc:
        st.error(f"This run cannot be loaded: {exc}")
        st.stop()
    st.sidebar.markdown(_describe(ckpt))
    broken = unreadable_runs()
    if broken:
        with st.sidebar.expander(f"{len(broken)} run(s) cannot be read"):
            for run in broken:
                st.caption(f"**{run.name}**: {run.error}")
    return path, model, ckpt


def png(image: np.ndarray, scale: int = 8) -> bytes:
    """A greyscale image in [0, 1] as PNG bytes, enlarged with sharp (nearest) pixels."""
    pixels = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(pixels, mode="L")
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def square(image: np.ndarray) -> np.ndarray:
    """Pad an image to a square with its corner value, so that steps of different shapes show
    at the same scale without stretching."""
    h, w = image.shape
    side = max(h, w)
    out = np.full((side, side), image[0, 0], dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = image
    return out


def strip(images: np.ndarray, gap: int = 2) -> np.ndarray:
    """Images (N, H, W) side by side with light gaps: (H, N*W + (N-1)*gap)."""
    n, h, w = images.shape
    out = np.full((h, n * w + (n - 1) * gap), 0.25, dtype=np.float32)
    for i, image in enumerate(images):
        out[:, i * (w + gap): i * (w + gap) + w] = image
    return out


def tile(images: np.ndarray, columns: int, gap: int = 2) -> np.ndarray:
    """Images (N, H, W) in rows of `columns`: one image for a grid of samples."""
    n, h, w = images.shape
    padded = np.concatenate([images, np.full(((-n) % columns, h, w), 0.25, np.float32)])
    rows = [strip(padded[i:i + columns], gap) for i in range(0, len(padded), columns)]
    spacer = np.full((gap, rows[0].shape[1]), 0.25, np.float32)
    return np.concatenate([part for row in rows for part in (row, spacer)][:-1])


def page_intro(title: str, text: str) -> None:
    st.title(title)
    st.markdown(text)

"""The frame every page shares, without torch: page links, the sidebar's run chooser and the
run's description, the server's job manager, the page title.

The home page uses only this, so it comes up without importing torch; pages that need a model
add `ui.models`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import streamlit as st

from vae_core.jobs import JobManager
from vae_core.report import run_summary
from vae_core.store import RunInfo, RunRecord, list_runs, run_fingerprint, runs_fingerprint, shown

from . import PAGE_ICON  # noqa: F401 (the pages take it from here)
from .presentation import presentation_toggle, presenting

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints"
RUNS = Path(os.environ.get("VAE_EXPLORER_RUNS", ROOT / "runs"))
DEFAULT_RUNS = {"vae": "mnist-mlp-z2", "m2": "mnist-m2"}
PICKED = "picked_run"  # session key (per model kind) that carries the chosen run across pages
# Narrower cell padding than Streamlit's (12 px a side), so that a table of seven or eight
# columns fits a projector's narrow page (about 560 px at 1024 px with the sidebar open).
PAGE_CSS = """<style>
[data-testid="stMarkdownContainer"] th, [data-testid="stMarkdownContainer"] td { padding: 6px 8px; }
</style>"""

PAGES = [("app.py", "Home", ":material/home:"),
         ("pages/1_Train.py", "Train", ":material/model_training:"),
         ("pages/2_Latent_space.py", "Latent space", ":material/scatter_plot:"),
         ("pages/3_Interpolate.py", "Interpolate", ":material/linear_scale:"),
         ("pages/4_Reconstruct.py", "Reconstruct", ":material/image:"),
         ("pages/5_Training_curves.py", "Training curves", ":material/show_chart:"),
         ("pages/6_Semi-supervised.py", "Semi-supervised", ":material/label:"),
         ("pages/7_Inside_the_ELBO.py", "Inside the ELBO", ":material/functions:")]


@st.cache_resource(show_spinner=False)
def job_manager() -> JobManager:
    """One per server: jobs outlive the browser tab that started them."""
    return JobManager(RUNS, data_root=os.environ.get("VAE_DATA_ROOT"))


@st.cache_resource(show_spinner=False, max_entries=4)
def _listing(roots: tuple[str, ...], fingerprint: tuple) -> list[RunInfo]:
    return list_runs(*roots)


def all_runs() -> list[RunInfo]:
    """Every run, shipped ones first, read once and kept until a run folder changes (seen from
    the folders' file sizes and times, without reading them). Shared: never modify it."""
    roots = (SHIPPED, RUNS)
    return _listing(tuple(map(str, roots)), runs_fingerprint(*roots))


def available_runs(kind: str = "vae") -> list[RunInfo]:
    """The readable runs of a kind, shipped ones first."""
    return [r for r in all_runs() if r.record is not None and r.record.kind == kind]


def unreadable_runs() -> list[RunInfo]:
    return [r for r in all_runs() if r.error]


def is_shipped(run: RunInfo) -> bool:
    return run.path.parent == SHIPPED


def run_label(run: RunInfo) -> str:
    """How a run is named on the pages: a shipped run and a user's run of the same name differ,
    even one whose folder is named "... (shipped)"."""
    if is_shipped(run):
        return f"{run.name} (shipped)"
    return f"{run.name} (not shipped)" if run.name.endswith("(shipped)") else run.name


def state_key(path: Path) -> str:
    """A short key that changes whenever a run folder changes (a save, or a file replaced)."""
    return hashlib.sha256(repr((str(path), run_fingerprint(path))).encode()).hexdigest()[:16]


def plain(text: str) -> str:
    """Text from a run folder, escaped so that Markdown shows it as it is (no links, no maths)."""
    return "".join("\\" + ch if ch in "\\`*_[]<>#|~$" else ch for ch in text)


def describe(record: RunRecord) -> str:
    """A run's architecture, training and results, as a few lines of Markdown."""
    s = run_summary(record)
    lines = [f"**{s.model}**", s.training, f"{s.epochs} epochs, status: {s.status}"]
    if s.test_error is not None:
        lines.append(f"test error **{100 * s.test_error:.2f}%**")
    elif s.test_elbo is not None:
        lines.append(f"test ELBO **{s.test_elbo:.2f}** nats")
    if s.test_log_likelihood is not None and s.kind == "vae":
        lines.append(f"test log p(x) ≈ **{s.test_log_likelihood:.2f}** (k={s.importance_samples})")
    return "  \n".join(lines)


def sidebar_navigation() -> None:
    """Page links with readable names (Streamlit's own list would call the home page "app"), and
    the presentation-mode toggle."""
    with st.sidebar:
        for page, label, icon in PAGES:
            st.page_link(page, label=label, icon=icon)
        presentation_toggle()
        st.divider()
    st.html(PAGE_CSS)


def sidebar_run_picker(kind: str = "vae", min_latent: int = 1) -> tuple[Path, RunRecord]:
    """The sidebar of every page: navigation and the run chooser, with the chosen run's
    description. Returns (run folder, record), or stops the page with a message when there is no
    run of this kind."""
    sidebar_navigation()
    runs = [r for r in available_runs(kind) if r.record.model_config.latent_dim >= min_latent]
    if not runs:
        st.sidebar.warning("No trained models yet.")
        st.info("There is no trained model to show. " + (
            "Train one on the **Train** page (semi-supervised) or with "
            "`python -m vae_core train --kind m2`." if kind == "m2"
            else "Train one on the **Train** page."))
        st.stop()
    # Options are the labels themselves (unique: a folder holds one run of a name, and a user's
    # run never takes a shipped one's label).
    by_label = {run_label(r): r for r in runs}
    options = list(by_label)
    picked = st.session_state.get(f"{PICKED}_{kind}")
    if picked not in options:
        picked = next((o for o in options if by_label[o].name == DEFAULT_RUNS.get(kind) and is_shipped(by_label[o])),
                      options[0])
    choice = st.sidebar.selectbox("Model", options, index=options.index(picked),
                                  key=f"model_picker_{kind}", help="Shipped runs and the runs you train")
    st.session_state[f"{PICKED}_{kind}"] = choice
    run = by_label[choice]
    st.sidebar.markdown(describe(run.record))
    broken = unreadable_runs()
    if broken:
        with st.sidebar.expander(f"{len(broken)} run(s) cannot be read"):
            st.caption("Each is left out of the lists; fix or remove its folder.")
            for bad in broken:
                st.caption(f"**{plain(shown(bad.name))}**: {plain(bad.error)}")
    return run.path, run.record


def data_mismatch(record: RunRecord, images: np.ndarray, labels: np.ndarray) -> str | None:
    """Why a model cannot be shown on its dataset's test digits, or None."""
    c = record.model_config
    shape = (1, *images.shape[1:])
    if not getattr(c, "input_features", 0) and tuple(c.image_shape) != shape:
        return (f"this model takes {'x'.join(map(str, c.image_shape))} images, but its dataset, "
                f"{record.train_config.dataset}, has {'x'.join(map(str, shape))} images. The pages show a "
                "model on its own dataset's digits, so they support models of that image size only")
    classes = int(labels.max()) + 1
    if getattr(c, "num_classes", classes) != classes:
        return f"this model has {c.num_classes} classes, but {record.train_config.dataset} has {classes}"
    return None


def page_intro(title: str, text: str, try_this: tuple[str, ...] = ()) -> None:
    """A page's title, what it shows, and a few things to try on it, in plain words. In
    presentation mode the text is folded into an expander, so that the visuals fill the screen."""
    st.title(title)
    if presenting():
        with st.expander("About this page" + (" and what to try" if try_this else "")):
            st.markdown(text)
            _try_this(try_this)
        return
    st.markdown(text)
    _try_this(try_this)


def _try_this(prompts: tuple[str, ...]) -> None:
    if prompts:
        st.markdown("**Try this:**\n" + "\n".join(f"- {prompt}" for prompt in prompts))


def shipped_run(name: str, kind: str = "vae") -> RunInfo | None:
    return next((r for r in available_runs(kind) if r.name == name and is_shipped(r)), None)


def _pick(kind: str, label: str) -> None:
    st.session_state[f"{PICKED}_{kind}"] = label
    st.session_state[f"model_picker_{kind}"] = label


def offer_run(name: str, why: str, kind: str = "vae") -> None:
    """Say why another shipped run suits this page better and switch the sidebar's picker to it
    with one click (nothing is shown when that run is missing or already picked)."""
    run = shipped_run(name, kind)
    if run is None or st.session_state.get(f"{PICKED}_{kind}") == run_label(run):
        return
    with st.container(border=True):
        st.markdown(why)
        st.button(f"Use {run_label(run)}", key=f"offer_{kind}_{name}", on_click=_pick, args=(kind, run_label(run)),
                  icon=":material/swap_horiz:")

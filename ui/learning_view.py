"""Watch a 2-D VAE learn: its map of validation digits and its decoded manifold, live while it
trains (from the snapshots the training process writes, `vae_core.snapshots`) and replayed
afterwards with a slider."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui.images import png
from ui.presentation import chart
from vae_core.snapshots import FILENAME, SnapshotError, Snapshots, read_snapshots

# Plotly's D3 palette: ten colours told apart at a glance, one per digit.
DIGIT_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf")


def _file_key(run_dir: Path) -> tuple | None:
    """What changes when the snapshot file is replaced; None when there is none."""
    try:
        stat = os.lstat(run_dir / FILENAME)
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


@st.cache_resource(show_spinner=False, max_entries=8)
def _read(run_dir: str, key: tuple) -> Snapshots | str:
    """A run's snapshots as this version of its file holds them, or the one-line reason they
    cannot be shown. Shared between sessions: never modified."""
    try:
        return read_snapshots(run_dir)
    except SnapshotError as exc:
        return str(exc)


@st.cache_resource(show_spinner=False, max_entries=8)
def _manifold_uri(run_dir: str, key: tuple, _snapshots: Snapshots) -> str:
    """The manifold of the snapshots of this version of the file as a PNG data URI: the image
    travels inside the page's update, so a card refreshed every second never points at a media
    file that a newer refresh has replaced."""
    return "data:image/png;base64," + base64.b64encode(png(_snapshots.manifold_image(), scale=1)).decode()


def load(run_dir: str | Path) -> Snapshots | str | None:
    """The run's snapshots, a one-line message if its file is damaged, or None if it has none."""
    return _load(Path(run_dir))[0]


def _load(run_dir: Path) -> tuple[Snapshots | str | None, tuple | None]:
    """`load`'s answer and the version of the file it comes from."""
    key = _file_key(run_dir)
    return (None, None) if key is None else (_read(str(run_dir), key), key)


def latent_map(snapshots: Snapshots, index: int, height: int = 340) -> go.Figure:
    """The validation digits at their posterior means in snapshot `index`, coloured by class."""
    means = snapshots.means[index].astype(np.float32)
    fig = go.Figure()
    for digit in range(int(snapshots.labels.max()) + 1):
        points = means[snapshots.labels == digit]
        if len(points):
            fig.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name=str(digit),
                                     marker=dict(size=5, color=DIGIT_COLOURS[digit % 10], opacity=0.8),
                                     hovertemplate=f"digit {digit}<br>z = (%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend_title_text="digit",
                      legend=dict(font=dict(size=14), itemsizing="constant"), font=dict(size=13))
    fig.update_xaxes(title_text="z1", zeroline=False)
    fig.update_yaxes(title_text="z2", zeroline=False, scaleanchor="x", scaleratio=1)
    return fig


def _when(snapshots: Snapshots, index: int) -> str:
    return f"after {snapshots.epochs[index]:.2f} epochs ({int(snapshots.steps[index]):,} steps)"


def _map_and_manifold(run_dir: Path, version: tuple, snapshots: Snapshots, index: int, key: str,
                      manifold_caption: str) -> None:
    left, right = st.columns([3, 2])
    left.plotly_chart(chart(latent_map(snapshots, index)), config={"displayModeBar": False}, key=key)
    right.image(_manifold_uri(str(run_dir), version, snapshots), caption=manifold_caption, width="stretch")


def show_learning(job) -> None:
    """On a job's card: the map and the manifold of a 2-D VAE, live while it trains, and a slider
    to replay the map once it has ended. Nothing for other runs; one line for a damaged file."""
    if job.run_dir is None:
        return
    snapshots, version = _load(Path(job.run_dir))
    if snapshots is None:
        return
    if isinstance(snapshots, str):
        st.caption(f"The latent map cannot be shown: {snapshots}")
        return
    if job.active:
        st.markdown(f"**Watch it learn:** {len(snapshots.labels):,} validation digits at their codes, "
                    f"{_when(snapshots, -1)}; refreshed every few seconds.")
        _map_and_manifold(Path(job.run_dir), version, snapshots, len(snapshots) - 1, f"live_map_{job.id}",
                          "what the decoder draws across the map, now")
    else:
        replay(job.run_dir, key=f"job_{job.id}")


def replay(run_dir: str | Path, key: str = "replay") -> None:
    """A slider through a run's snapshots and the map at the chosen one; one line if the file is
    damaged, nothing for a run without snapshots."""
    snapshots, version = _load(Path(run_dir))
    if snapshots is None:
        return
    if isinstance(snapshots, str):
        st.caption(f"The latent map's history cannot be shown: {snapshots}")
        return
    st.markdown(f"**How the map formed:** {len(snapshots.labels):,} validation digits at their codes "
                f"through training. Drag the slider to replay it.")
    last = len(snapshots) - 1
    index = st.select_slider("Replay the map", options=list(range(len(snapshots))), value=last,
                             format_func=lambda i: f"epoch {snapshots.epochs[i]:.2f}", key=f"replay_{key}",
                             help="Each stop is a snapshot the training process took: every few seconds, "
                                  "and at the end of each epoch")
    st.caption(f"The map {_when(snapshots, index)}.")
    _map_and_manifold(Path(run_dir), version, snapshots, index, f"replay_map_{key}",
                      "what the decoder draws across the map at the end")

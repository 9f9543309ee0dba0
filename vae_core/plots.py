"""Plotly figures for the app: latent scatters, training curves, probability bars."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import plotly.graph_objects as go

# Ten distinguishable colours, one per digit class (Plotly's D3 palette).
CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
METRIC_LABELS = {"elbo": "ELBO (nats)", "recon": "reconstruction E[log p(x|z)] (nats)", "kl": "KL(q(z|x) || p(z)) (nats)",
                 "accuracy": "accuracy", "error": "error",
                 "generative_accuracy": "generative accuracy (argmax_y L(x, y))"}


def latent_scatter(points: np.ndarray, labels: np.ndarray, axis_titles: tuple[str, str],
                   marker: np.ndarray | None = None, path: np.ndarray | None = None,
                   height: int = 460) -> go.Figure:
    """Encoded digits as points coloured by class; the current latent point as a black cross;
    an optional path (e.g. an interpolation) as a line with dots. All traces are WebGL, since
    SVG traces would be drawn underneath the WebGL points."""
    fig = go.Figure()
    for digit in range(10):
        mask = labels == digit
        fig.add_trace(go.Scattergl(
            x=points[mask, 0], y=points[mask, 1], mode="markers", name=str(digit),
            marker=dict(size=4, color=CLASS_COLOURS[digit], opacity=0.55),
            customdata=np.nonzero(mask)[0], hovertemplate=f"digit {digit}<br>test #%{{customdata}}<extra></extra>"))
    if path is not None:
        fig.add_trace(go.Scattergl(x=path[:, 0], y=path[:, 1], mode="lines+markers", name="path",
                                 line=dict(color="black", width=2), marker=dict(size=7, color="black")))
    if marker is not None:
        fig.add_trace(go.Scattergl(x=[marker[0]], y=[marker[1]], mode="markers", name="z",
                                 marker=dict(symbol="x-thin", size=18, line=dict(width=4, color="black"))))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend_title_text="digit",
                      xaxis_title=axis_titles[0], yaxis_title=axis_titles[1], uirevision="latent",
                      clickmode="event+select", dragmode="pan", plot_bgcolor="white")
    fig.update_xaxes(showgrid=True, gridcolor="#eee", zeroline=True, zerolinecolor="#ccc")
    fig.update_yaxes(showgrid=True, gridcolor="#eee", zeroline=True, zerolinecolor="#ccc",
                     scaleanchor="x", scaleratio=1)
    return fig


def training_curves(runs: Iterable[tuple[str, list[dict]]], metric: str = "elbo", x_axis: str = "epoch",
                    splits: tuple[str, ...] = ("train", "val"), height: int = 420) -> go.Figure:
    """One colour per run; train dashed, validation solid (the AEVB Fig. 2 comparison)."""
    fig = go.Figure()
    for i, (name, epochs) in enumerate(runs):
        colour = CLASS_COLOURS[i % len(CLASS_COLOURS)]
        for split in splits:
            key = f"{split}_{metric}"
            rows = [r for r in epochs if key in r]
            if not rows:
                continue
            fig.add_trace(go.Scatter(
                x=[r[x_axis] for r in rows], y=[r[key] for r in rows], mode="lines+markers" if len(rows) < 30 else "lines",
                name=f"{name} ({'validation' if split == 'val' else split})",
                line=dict(color=colour, dash="solid" if split == "val" else "dash")))
            if split != splits[-1]:
                continue
            changes = [b for a, b in zip(rows, rows[1:])  # where a resume changed the step size
                       if "learning_rate" in a and "learning_rate" in b and a["learning_rate"] != b["learning_rate"]]
            if changes:
                fig.add_trace(go.Scatter(
                    x=[r[x_axis] for r in changes], y=[r[key] for r in changes], mode="markers+text",
                    text=[f"lr {r['learning_rate']:g}" for r in changes], textposition="top center", showlegend=False,
                    marker=dict(symbol="triangle-down", size=10, color=colour), hoverinfo="text",
                    name=f"{name}: learning rate changed"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis_title={"epoch": "epoch", "examples_seen": "training examples seen"}.get(x_axis, x_axis),
                      yaxis_title=METRIC_LABELS.get(metric, metric), legend=dict(orientation="h", y=-0.2))
    if x_axis == "examples_seen":
        fig.update_xaxes(type="log")
    return fig


def bars(values: np.ndarray, labels: list[str], title: str, errors: np.ndarray | None = None,
         height: int = 260) -> go.Figure:
    fig = go.Figure(go.Bar(x=labels, y=values, error_y=None if errors is None else dict(type="data", array=errors),
                           marker_color="#1f77b4"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), title=title)
    fig.update_xaxes(type="category")  # every label shown, in the given order
    return fig

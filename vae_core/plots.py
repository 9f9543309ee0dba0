"""Plotly figures for the app: latent scatters, training curves, probability bars, and the
charts of the Inside the ELBO page."""

from __future__ import annotations

import html
from typing import Iterable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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
    # Legend markers drawn at a constant, readable size rather than the points' 4 px.
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend_title_text="digit",
                      legend=dict(itemsizing="constant", font=dict(size=15)),
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
    elif x_axis == "epoch":  # whole epochs only, at most about ten ticks (1, 2, 5, 10, 20, 50, ...)
        last = max((max(trace.x) for trace in fig.data if trace.x is not None and len(trace.x)), default=1)
        step = next(s * 10 ** e for e in range(7) for s in (1, 2, 5) if s * 10 ** e * 10 >= last)
        fig.update_xaxes(tick0=0, dtick=step, tickformat="d")
    return fig


def bars(values: np.ndarray, labels: list[str], title: str, errors: np.ndarray | None = None,
         height: int = 260) -> go.Figure:
    fig = go.Figure(go.Bar(x=labels, y=values, error_y=None if errors is None else dict(type="data", array=errors),
                           marker_color="#1f77b4"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), title=title)
    fig.update_xaxes(type="category")  # every label shown, in the given order
    return fig


# --- Inside the ELBO ---

ESTIMATOR_COLOURS = {"A": "#ff7f0e", "B": "#1f77b4"}
GRADIENT_COLOURS = {"reparameterisation": "#1f77b4", "score function": "#d62728"}


def estimator_violins(groups: list[tuple[int, np.ndarray, np.ndarray]], elbo: float,
                      height: int = 340) -> go.Figure:
    """Repeated draws of SGVB estimators A and B side by side, one pair of violins per L, given
    as (L, draws of A, draws of B); the ELBO as a dashed line."""
    fig = go.Figure()
    for estimator, column in (("A", 1), ("B", 2)):
        for i, group in enumerate(groups):
            # A and B of one L share a scale group, so their widths compare; each L has its own
            fig.add_trace(go.Violin(
                x=[f"L = {group[0]}"] * len(group[column]), y=group[column], name=f"estimator {estimator}",
                legendgroup=estimator, showlegend=i == 0, offsetgroup=estimator, scalegroup=f"L{group[0]}",
                points=False, meanline_visible=True, line_color=ESTIMATOR_COLOURS[estimator], spanmode="hard",
                hoverinfo="skip"))
    fig.add_hline(y=elbo, line=dict(color="black", dash="dash", width=1),
                  annotation_text=f"ELBO {elbo:.2f}", annotation_position="bottom left")
    fig.update_layout(violinmode="group", height=height, margin=dict(l=10, r=10, t=10, b=10),
                      yaxis_title="estimate of the ELBO (nats)", legend=dict(orientation="h", y=1.02, x=0, yanchor="bottom"),
                      plot_bgcolor="white")
    fig.update_yaxes(showgrid=True, gridcolor="#eee")
    return fig


def bound_curve(num_samples: np.ndarray, means: np.ndarray, stderrs: np.ndarray, elbo: float,
                log_likelihood: float | None = None, height: int = 360) -> go.Figure:
    """The importance-weighted bound L_k against k (log axis) with standard-error bars, the ELBO
    as a dashed line and the gap from it to the largest k (or to log p(x)) marked as the
    posterior's KL."""
    fig = go.Figure(go.Scatter(
        x=num_samples, y=means, error_y=dict(type="data", array=stderrs, thickness=1.2),
        mode="lines+markers", name="L_k", line=dict(color="#1f77b4"),
        hovertemplate="k = %{x}<br>L_k = %{y:.2f} nats<extra></extra>"))
    fig.add_hline(y=elbo, line=dict(color="black", dash="dash", width=1),
                  annotation_text=f"ELBO {elbo:.2f}", annotation_position="bottom left")
    top = float(means[-1]) if log_likelihood is None else log_likelihood
    x_right = float(num_samples[-1])
    if log_likelihood is not None:
        x_right = 5000.0
        fig.add_trace(go.Scatter(x=[x_right], y=[log_likelihood], mode="markers", marker=dict(color="#2ca02c", size=9),
                                 hovertemplate="k = 5000<br>L_k = %{y:.2f} nats<extra></extra>"))
        fig.add_hline(y=log_likelihood, line=dict(color="#2ca02c", dash="dot", width=1),
                      annotation_text=f"log p(x) ≈ L_5000 = {log_likelihood:.2f}", annotation_position="top left")
    # The gap, drawn at the right, where the curve is at its highest and the space below is free.
    x_gap = np.log10(x_right) + 0.12
    fig.add_annotation(x=x_gap, y=top, ax=x_gap, ay=elbo, xref="x", yref="y", axref="x", ayref="y",
                       showarrow=True, arrowhead=2, arrowside="end+start", arrowwidth=1.5, arrowcolor="#d62728",
                       text="")
    fig.add_annotation(x=x_gap, y=(top + elbo) / 2, xref="x", yref="y", xanchor="right", showarrow=False,
                       xshift=-6, font=dict(color="#d62728"), align="right",
                       text=f"log p(x) − ELBO<br>= KL(q(z|x) ‖ p(z|x))<br>≈ {top - elbo:.2f} nats")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      xaxis_title="importance samples k", yaxis_title="L_k (nats)", plot_bgcolor="white")
    fig.update_xaxes(type="log", showgrid=True, gridcolor="#eee", range=[-0.1, x_gap + 0.08])
    fig.update_yaxes(showgrid=True, gridcolor="#eee")
    return fig


def gradient_variances(num_samples: np.ndarray, curves: dict[str, np.ndarray], lines: np.ndarray,
                       height: int = 340) -> go.Figure:
    """Gradient-estimator variances against the number of samples L, both axes logarithmic: the
    measured points of each estimator, and a dotted line of its one-sample variance over L at
    the L's of `lines`."""
    fig = go.Figure()
    for name, values in curves.items():
        colour = GRADIENT_COLOURS.get(name)
        fig.add_trace(go.Scatter(x=num_samples, y=values, mode="markers", name=name,
                                 marker=dict(color=colour, size=8),
                                 hovertemplate=f"{name}<br>L = %{{x}}<br>variance %{{y:.3g}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=lines, y=values[0] / np.asarray(lines, dtype=float), mode="lines",
                                 line=dict(color=colour, dash="dot", width=1.5), showlegend=False, hoverinfo="skip"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="white",
                      xaxis_title="samples L per estimate", yaxis_title="variance, summed over φ",
                      legend=dict(orientation="h", y=1.02, x=0, yanchor="bottom"))
    ends = np.log10([min(np.min(num_samples), np.min(lines)), max(np.max(num_samples), np.max(lines))])
    fig.update_xaxes(type="log", showgrid=True, gridcolor="#eee", range=[ends[0] - 0.1, ends[1] + 0.1])
    fig.update_yaxes(type="log", showgrid=True, gridcolor="#eee", exponentformat="power")
    return fig


def rate_distortion(names: list[str], rates: np.ndarray, distortions: np.ndarray, highlight: str | None = None,
                    height: int = 420) -> go.Figure:
    """Runs as points of rate R = KL(q(z|x) || p(z)) against distortion D = -E_q[log p(x|z)],
    with dotted lines of equal ELBO = -(D + R)."""
    rates, distortions = np.asarray(rates, dtype=float), np.asarray(distortions, dtype=float)
    fig = go.Figure()
    x_max = float(rates.max()) * 1.15 + 2
    totals = rates + distortions
    step = 10 if totals.max() - totals.min() < 60 else 20
    for total in np.arange(np.floor(totals.min() / step) * step, totals.max() + step, step):
        fig.add_trace(go.Scatter(x=[0, x_max], y=[total, total - x_max], mode="lines", showlegend=False,
                                 line=dict(color="#bbb", dash="dot", width=1), hoverinfo="skip"))
        fig.add_annotation(x=0, y=total, text=f"ELBO −{total:.0f}", showarrow=False, xanchor="left",
                           yanchor="bottom", font=dict(size=10, color="#888"))
    for i, (name, r, d) in enumerate(zip(names, rates, distortions)):
        picked = name == highlight
        name = html.escape(name)  # Plotly reads tags in text; a run's name is shown as it is
        fig.add_trace(go.Scatter(
            x=[r], y=[d], mode="markers", name=name,
            marker=dict(size=14 if picked else 10, color=CLASS_COLOURS[i % len(CLASS_COLOURS)],
                        line=dict(width=2 if picked else 0, color="black")),
            hovertemplate=f"{name}<br>rate %{{x:.2f}} nats<br>distortion %{{y:.2f}} nats<br>"
                          f"ELBO {-(r + d):.2f}<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="white",
                      xaxis_title="rate R = KL(q(z|x) ‖ p(z)) (nats)", yaxis_title="distortion D = −E[log p(x|z)] (nats)",
                      legend=dict(orientation="h", y=-0.2, x=0, yanchor="top"))
    y_low, y_high = float(distortions.min()), float(distortions.max())
    pad = 0.1 * (y_high - y_low) + 5
    fig.update_xaxes(range=[0, x_max], showgrid=True, gridcolor="#eee")
    fig.update_yaxes(range=[y_low - pad, y_high + pad], showgrid=True, gridcolor="#eee")
    return fig


def kl_per_dimension(runs: list[tuple[str, np.ndarray, np.ndarray]], columns: int = 2,
                     row_height: int = 170) -> go.Figure:
    """For each run (name, KL per dimension (D,), active (D,)): its latent units' KL to the prior,
    sorted from largest to smallest, active units blue and inactive ones grey."""
    rows = (len(runs) + columns - 1) // columns
    titles = [f"{html.escape(name)}<br>{int(active.sum())} of {len(kl)} units active" for name, kl, active in runs]
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.08,
                        vertical_spacing=min(0.7 / max(rows, 1), 0.2))
    for i, (name, kl, active) in enumerate(runs):
        order = np.argsort(-kl)
        fig.add_trace(go.Bar(
            x=np.arange(1, len(kl) + 1), y=kl[order], showlegend=False, name=html.escape(name),
            marker_color=np.where(active[order], "#1f77b4", "#bbbbbb"),
            customdata=order + 1, hovertemplate="z%{customdata}: %{y:.2f} nats<extra></extra>"),
            row=i // columns + 1, col=i % columns + 1)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=rows * row_height + 50, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white",
                      bargap=0.15)
    fig.update_yaxes(showgrid=True, gridcolor="#eee", rangemode="tozero")
    fig.update_xaxes(showticklabels=False)
    return fig

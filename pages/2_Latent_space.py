"""Latent space: decode any point z with two sliders, see where the test digits are encoded, and
watch the reparameterisation trick draw z from a digit's posterior.

An MLP VAE (every shipped VAE) is drawn without torch: its layers and the test digits are read as
numpy arrays and the browser decodes, so that the page comes up at once on a cold server; torch
is imported only for the posterior's draws. Other models are loaded with torch and decoded on
the server."""

import numpy as np
import streamlit as st

from ui import latent_explorer
from ui.array_models import array_model
from ui.common import PAGE_ICON, page_intro, plain, sidebar_run_picker, state_key
from ui.images import png, strip
from vae_core.vae.arrays import supported
from vae_core.vae.grid import grid_points, latent_vector, tile
from vae_core.vae.projection import coordinate_projection, pca_projection

st.set_page_config(page_title="Latent space · VAE Explorer", page_icon=PAGE_ICON, layout="wide")

path, record = sidebar_run_picker()
latent_dim = record.model_config.latent_dim
page_intro("Latent space", (
    "The decoder p(x|z) turns any latent point z into an image. "
    + ("Move the sliders, or drag on the map, to choose z and see the decoder's mean image at once. "
       if latent_dim <= 2 else
       f"This model's z has {latent_dim} coordinates: the two sliders move two of them and the others stay "
       "fixed. The map is a 2-D view of the codes; a click on it picks that test digit and fixes the other "
       "coordinates at its code. ")
    + "The map shows where the encoder q(z|x) puts the test digits (their posterior means), coloured by "
    "class as in the map's legend; hover over a point to see its digit. The KL term pulls the "
    "codes towards the prior N(0, I), so the whole prior region decodes to plausible digits."),
    try_this=("Drag slowly from the 1s to the 7s: where does the image change its mind?",
              "Go far out, beyond 3 on a slider, where no test digit lies: what does the decoder draw there?",
              "Pick the 20-D model in the sidebar: its map is a flat view of 20 numbers, so classes overlap.")
    if latent_dim <= 2 else
    ("Switch the map to t-SNE: do the classes the PCA map mixes come apart?",
     "Click a 7 on the map, then move one slider: which strokes does that one coordinate change?",
     "Show a digit's q(z|x) on the PCA map and draw ε a few times: how far apart do the decoded draws look?"))

in_browser = supported(record.model_config)  # the browser decodes it: an MLP VAE on one-channel images
if in_browser:
    with st.spinner("Loading the model and its test digits...", show_time=True):
        view = array_model(path)
    if isinstance(view, str):
        st.error(f"This run cannot be shown: {plain(view)}")
        st.stop()
    model, mu, labels, test_digits = view.model, view.mu, view.labels, view.images  # digits read when asked
else:
    # Not an MLP VAE: loaded with torch, whose first import takes about two seconds on a cold
    # server; the page says so meanwhile instead of staying blank.
    with st.spinner("Loading PyTorch, the model and its test digits...", show_time=True):
        from ui.models import shown_model, test_encodings, test_set_grey
        model, ckpt = shown_model(path)
        mu, labels = test_encodings(path)

    def test_digits() -> np.ndarray:
        return test_set_grey(ckpt)[0]


def torch_model():
    """The run's model loaded with torch (cached), for what only torch computes."""
    from ui.models import shown_model
    return shown_model(path)[0]


SLIDERS = ("z_a", "z_b")
TSNE_POINTS = 1000
DRAWS = 5
REST_OPTIONS = ("at 0 (the prior mean)", "at an encoded test digit")
for key, default in (("z_a", 0.0), ("z_b", 0.0), ("latent_base_index", 0), ("latent_dim_a", 0)):
    st.session_state.setdefault(key, default)


def new_click() -> int | None:
    """The test index of a digit clicked since the last one handled: from the component's
    trigger (via a rerun) or from the Plotly scatter of the fallback view."""
    if "latent_pending_click" in st.session_state:
        return st.session_state.pop("latent_pending_click")
    event = st.session_state.get("latent_scatter") or {}
    points = [p for p in event.get("selection", {}).get("points", []) if p.get("curve_number", 99) < 10]
    if not points or st.session_state.get("latent_last_click") == points[0]:
        return None
    st.session_state["latent_last_click"] = points[0]
    return int(np.nonzero(labels == points[0]["curve_number"])[0][points[0]["point_index"]])


# A click moves the sliders to the clicked digit's code (and, above 2-D, fixes the other
# coordinates at it). Widget values can only be set before the widgets exist, so it is applied
# here at the top of a full run.
clicked = new_click()
if clicked is not None:
    chosen = (st.session_state["latent_dim_a"], st.session_state.get("latent_dim_b", 1))
    for key, d in zip(SLIDERS, chosen if latent_dim > 2 else (0, min(1, latent_dim - 1))):
        st.session_state[key] = float(np.clip(round(float(mu[clicked, d]), 2), -4.0, 4.0))
    if latent_dim > 2:
        st.session_state["latent_rest"] = REST_OPTIONS[1]
        st.session_state["latent_base_index"] = clicked

if latent_dim == 1:
    st.info("This model has a 1-D latent space: the second slider has no effect.")
dims = (0, min(1, latent_dim - 1))
base = None
if latent_dim > 2:
    c1, c2, c3 = st.columns(3)
    first = c1.selectbox("Slider 1 moves", range(latent_dim), format_func=lambda d: f"z{d + 1}",
                         key="latent_dim_a")
    others = [d for d in range(latent_dim) if d != first]
    if st.session_state.get("latent_dim_b") not in others:
        st.session_state["latent_dim_b"] = others[0]
    second = c2.selectbox("Slider 2 moves", others, format_func=lambda d: f"z{d + 1}", key="latent_dim_b")
    dims = (first, second)
    rest = c3.radio("The other dimensions", REST_OPTIONS, key="latent_rest")
    if rest == REST_OPTIONS[1]:
        index = st.number_input("Test digit index", 0, len(mu) - 1, key="latent_base_index")
        base = mu[int(index)]

MAPS = {"PCA": "PCA: the two directions in which the codes vary most. A faithful linear view (the cross "
                "for z and a posterior's ellipse can be drawn), but classes that differ in other directions "
                "overlap.",
        "t-SNE": f"t-SNE of {TSNE_POINTS:,} test codes: keeps each code's nearest neighbours near, so the classes "
                 "separate; distances between clusters and the axes mean nothing, and z has no place on it."}
map_kind = "PCA"
if latent_dim > 2 and in_browser:
    map_kind = st.radio("Map of the codes", list(MAPS), horizontal=True, key="latent_map",
                        captions=list(MAPS.values()))

projection = coordinate_projection(latent_dim, dims) if latent_dim <= 2 else pca_projection(mu)
points, point_labels, point_indices = projection(mu), labels, None
axis_titles = (f"z{dims[0] + 1}", f"z{dims[1] + 1}") if latent_dim <= 2 else (
    f"PC 1 ({projection.explained[0]:.0%} of variance)", f"PC 2 ({projection.explained[1]:.0%})")
if map_kind == "t-SNE":
    # Imported here, not at the top: scikit-learn takes about 2 s to import, paid only by a
    # visitor who asks for this map.
    from vae_core.vae.neighbours import tsne_map

    @st.cache_data(show_spinner=f"Computing the t-SNE map of {TSNE_POINTS:,} test codes, once per model: up to a "
                                "minute on a busy machine...", max_entries=8)
    def neighbour_map(run: str, state: str):
        return tsne_map(mu, TSNE_POINTS)

    neighbours = neighbour_map(str(path), state_key(path))
    points, point_labels, point_indices = neighbours.points, labels[neighbours.indices], neighbours.indices
    axis_titles = ("t-SNE 1", "t-SNE 2")
explorer_slot = st.container()


@st.fragment
def server_explorer() -> None:
    """The fallback for models the browser cannot decode (e.g. the conv VAE): Streamlit sliders,
    decoding on the server."""
    from ui.presentation import chart
    from vae_core.plots import latent_scatter
    from vae_core.vae.explore import decode
    index = new_click()
    if index is not None:  # a click seen in a fragment-only rerun: apply it in a full one
        st.session_state["latent_pending_click"] = index
        st.rerun(scope="app")
    left, right = st.columns([2, 3])
    with left:
        a = st.slider(f"z{dims[0] + 1}", -4.0, 4.0, step=0.05, key="z_a")
        b = st.slider(f"z{dims[1] + 1}", -4.0, 4.0, step=0.05, key="z_b",
                      disabled=latent_dim == 1)
        z = latent_vector(latent_dim, dims, (a, b), base)
        st.image(png(decode(model, z[None])[0], scale=10), caption=f"decoder mean at z = ({a:.2f}, {b:.2f})"
                 + (" with the other dimensions fixed" if latent_dim > 2 else ""), width=280)
    with right:
        st.plotly_chart(chart(latent_scatter(points, labels, axis_titles, marker=projection(z))),
                        key="latent_scatter", on_select="rerun", selection_mode="points",
                        config={"displayModeBar": False, "scrollZoom": True})


st.subheader("The reparameterisation trick")
st.markdown("The encoder maps a digit x to a Gaussian q(z|x) = N(μ, diag(σ²)). Training needs samples of z "
            "from it that gradients can pass through, so they are made as z = μ + σ ⊙ ε with ε drawn from "
            "N(0, I): the randomness sits in ε, and μ and σ stay differentiable (AEVB sec. 2.4).")
posterior, view, draws = None, None, None
show_posterior = st.toggle("Show a digit's q(z|x) on the map", key="latent_posterior_on",
                           disabled=not in_browser)
if show_posterior:
    with st.spinner("Loading PyTorch for the encoder's draws...", show_time=True):  # ~2 s the first time
        from ui.digit_input import digit_input
        from vae_core.vae.explore import posterior_ellipse, reparameterised_draws
    digit = digit_input("latent_posterior", test_digits(), labels, 0, label="Digit",
                        sources=("test digit", "class", "draw", "upload"))
    st.session_state.setdefault("latent_eps_seed", None)
    if st.button("Draw ε ~ N(0, I)", key="latent_draw_eps", disabled=digit is None,
                 help=f"{DRAWS} draws of ε, each giving z = μ + σ ⊙ ε"):
        st.session_state["latent_eps_seed"] = (st.session_state["latent_eps_seed"] or 0) + 1
    if digit is not None:
        seed = st.session_state["latent_eps_seed"]
        draws = reparameterised_draws(torch_model(), digit.image, DRAWS, seed or 0)
        if map_kind != "PCA":
            st.info("A t-SNE map has no place for new points: switch the map to PCA to see q(z|x) on it.")
        else:
            ellipses = [posterior_ellipse(draws.mu, draws.sigma, projection, k) for k in (1, 2)]
            posterior = latent_explorer.posterior_overlay(
                projection(draws.mu), ellipses, None if seed is None else projection(draws.z))
            if st.toggle("Zoom the map in on q(z|x)", value=True, key="latent_posterior_zoom"):
                half = max(2.5 * ellipses[1].radii[0], 0.35)
                cx, cy = ellipses[0].centre
                view = (cx - half, cx + half, cy - half, cy + half)
            st.caption(f"On the map: the mean of q(z|x) for {digit.description} as a black dot, its 1- and "
                       "2-standard-deviation ellipses (solid, dashed)"
                       + (f", and the draws z numbered 1 to {DRAWS} (yellow)." if seed is not None else
                          ". Press the button to draw z from it."))
        if seed is not None:
            shown = min(latent_dim, 3)

            def column(values) -> str:
                cells = [f"{v:.3f}" for v in values[:shown]]
                return r"\begin{pmatrix}" + r"\\".join(cells + ([r"\vdots"] if latent_dim > shown else [])) \
                    + r"\end{pmatrix}"
            st.latex(r"\begin{aligned} z^{(1)} &= \mu + \sigma \odot \varepsilon^{(1)} \\ " + column(draws.z[0])
                     + " &= " + column(draws.mu) + " + " + column(draws.sigma) + r" \odot " + column(draws.eps[0])
                     + r"\end{aligned}")
            if latent_dim > shown:
                st.caption(f"Draw 1, its first {shown} of {latent_dim} coordinates.")
            st.image(png(strip(draws.images), scale=3), caption=f"the decoder's mean at draws 1 to {DRAWS}")

with explorer_slot:
    if in_browser:
        result = latent_explorer.latent_explorer(
            model, state_key(path), points, point_labels, projection if map_kind == "PCA" else None, dims, base,
            (st.session_state["z_a"], st.session_state["z_b"]), axis_titles, key="latent_explorer",
            point_indices=point_indices, posterior=posterior, view=view,
            thumbnails=record.train_config.dataset)
        if result.z is not None:
            st.session_state["z_a"], st.session_state["z_b"] = (float(v) for v in result.z)
        if result.clicked is not None:
            st.session_state["latent_pending_click"] = int(result.clicked)
            st.rerun()
    else:
        server_explorer()

st.subheader("The learned manifold")
st.markdown("Decoder means over a grid of z, spaced by the quantiles of the Gaussian prior so that "
            "each cell covers equal prior mass (AEVB Fig. 4).")


@st.cache_data(show_spinner="Decoding the grid...", max_entries=16)
def grid(run: str, state: str, dims: tuple, base: tuple | None, n: int) -> bytes:
    points = grid_points(latent_dim, n, dims, None if base is None else np.array(base))
    if in_browser:  # numpy, as the browser decodes
        return png(tile(model.decode_mean(points), n), scale=2)
    from vae_core.vae.explore import decode
    return png(tile(decode(model, points), n), scale=2)


n = st.select_slider("Grid size", [10, 15, 20, 25], value=15)
st.image(grid(str(path), state_key(path), dims, None if base is None else tuple(map(float, base)), n),
         caption=f"z{dims[0] + 1} grows to the right, z{dims[1] + 1} upwards")
if in_browser:
    latent_explorer.thumbnails(test_digits(), record.train_config.dataset)

"""Latent space: decode any point z with two sliders, see where the test digits are encoded."""

import numpy as np
import streamlit as st

from ui import latent_explorer
from ui.common import PAGE_ICON, page_intro, state_key
from ui.images import png
from ui.models import sidebar_model_picker, test_encodings
from ui.presentation import chart
from vae_core.vae.explore import coordinate_projection, decode, latent_vector, manifold_grid, pca_projection
from vae_core.plots import latent_scatter

st.set_page_config(page_title="Latent space · VAE Explorer", page_icon=PAGE_ICON, layout="wide")

path, model, ckpt = sidebar_model_picker()
latent_dim = model.config.latent_dim
page_intro("Latent space", (
    "The decoder p(x|z) turns any latent point z into an image. Move the sliders (or drag on the "
    "map) to choose z and see the decoder's mean image at once. The map shows where the encoder "
    "q(z|x) puts the test digits (their posterior means), coloured by class 0-9 as in the legend "
    "of the Training curves page: the KL term pulls them towards the prior N(0, I), so the whole "
    "prior region decodes to plausible digits. Click a digit to jump to its code."))

mu, labels = test_encodings(path)
SLIDERS = ("z_a", "z_b")
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

projection = coordinate_projection(latent_dim, dims) if latent_dim <= 2 else pca_projection(mu)
points = projection(mu)
axis_titles = (f"z{dims[0] + 1}", f"z{dims[1] + 1}") if latent_dim <= 2 else (
    f"PC 1 ({projection.explained[0]:.0%} of variance)", f"PC 2 ({projection.explained[1]:.0%})")


@st.fragment
def server_explorer() -> None:
    """The fallback for models the browser cannot decode (e.g. the conv VAE): Streamlit sliders,
    decoding on the server."""
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


if latent_explorer.supports(model):
    result = latent_explorer.latent_explorer(
        model, state_key(path), points, labels, projection, dims, base,
        (st.session_state["z_a"], st.session_state["z_b"]), axis_titles, key="latent_explorer")
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
    return png(manifold_grid(model, n, dims, None if base is None else np.array(base)), scale=2)


n = st.select_slider("Grid size", [10, 15, 20, 25], value=15)
st.image(grid(str(path), state_key(path), dims, None if base is None else tuple(map(float, base)), n),
         caption=f"z{dims[0] + 1} grows to the right, z{dims[1] + 1} upwards")

"""Interpolate: walk in latent space between the codes of two digits."""

import streamlit as st

from ui import interpolation_scrubber
from ui.common import PAGE_ICON, offer_run, page_intro
from ui.digit_input import digit_input
from ui.images import png, strip
from ui.models import sidebar_model_picker, test_encodings, test_set_grey
from ui.presentation import chart
from vae_core.vae.explore import coordinate_projection, crossfade, decode, encode, interpolate, pca_projection
from vae_core.plots import latent_scatter

st.set_page_config(page_title="Interpolate · VAE Explorer", page_icon=PAGE_ICON, layout="wide")

path, model, ckpt = sidebar_model_picker()
page_intro("Interpolate", (
    "Encode two digits to their posterior means, walk along the line (or the great circle) "
    "between the two codes, and decode every step. Because the KL term keeps codes close to the "
    "prior, the path passes through images that look like digits, unlike the pixel-space "
    "cross-fade below it, which only superimposes the two images."),
    try_this=("Walk from a 1 to a 0: does the path pass through another digit on the way?",
              "Compare linear and spherical paths with the 20-D model: which keeps every step looking like a digit?",
              "Draw your own start digit and walk to a test digit of another class."))
if model.config.latent_dim <= 2:
    offer_run("mnist-mlp-z20", "A 2-D code keeps only the rough shape of a digit, so the ends of the path come "
              "out blurred. The shipped **20-D model** rebuilds both digits closely, so the walk between them is "
              "easier to read.")

images, labels = test_set_grey(ckpt)
SOURCES = ("test digit", "class", "draw", "upload")
MAP_POINTS = 2000
mu, _ = test_encodings(path)


left, middle = st.columns(2, gap="large")
with left:
    start = digit_input("Start", images, labels, 0, label="Start digit", sources=SOURCES)
with middle:
    end = digit_input("End", images, labels, 1, label="End digit", sources=SOURCES)
c1, c2 = st.columns(2, gap="large")
with c1:
    n_steps = st.slider("Steps", 3, 20, 10)
with c2:
    method = st.radio("Path", ["linear", "spherical"], horizontal=True, key="interpolate_method",
                      help="spherical (slerp) keeps the norm of z typical of the prior along the way")

if start is None or end is None:
    st.stop()
x0, what0, x1, what1 = start.image, start.description, end.image, end.description

codes, _ = encode(model, [x0, x1])
path_z = interpolate(codes[0], codes[1], n_steps, method)
decoded = decode(model, path_z)
st.markdown(f"**Latent path** from {what0} to {what1}")
st.image(png(strip(decoded), scale=4))
st.markdown("**Pixel cross-fade** of the same two images")
st.image(png(strip(crossfade(x0, x1, n_steps)), scale=4))
latent_dim = model.config.latent_dim
projection = coordinate_projection(latent_dim, (0, min(1, latent_dim - 1))) if latent_dim <= 2 \
    else pca_projection(mu)
titles = ("z1", "z2") if latent_dim <= 2 else ("PC 1", "PC 2")
# The path's surroundings: the first MAP_POINTS test digits draw the classes' regions as well as
# all 10,000 do, and the page draws sooner.
points, point_labels = projection(mu[:MAP_POINTS]), labels[:MAP_POINTS]
if interpolation_scrubber.supports(model):
    st.markdown("**Scrub along the path**: drag t from 0 to 1. Your browser decodes z(t) as you move, "
                "beside the pixel cross-fade at the same t, and the cross on the map follows z(t).")
    interpolation_scrubber.interpolation_scrubber(
        model, path, codes[0], codes[1], x0, x1, method, key="interpolation_scrubber",
        map_data=interpolation_scrubber.path_map(points, point_labels, projection(path_z), projection, titles))
else:  # a model the browser cannot decode: the map alone
    st.plotly_chart(chart(latent_scatter(points, point_labels, titles, path=projection(path_z), height=420)),
                    config={"displayModeBar": False})
st.caption(f"The path among the codes of the first {min(MAP_POINTS, len(mu)):,} test digits"
           + ("" if latent_dim <= 2 else ", on the top two principal components of the test codes") + ".")

"""Interpolate: walk in latent space between the codes of two digits."""

import streamlit as st

from ui.common import page_intro, png, sidebar_model_picker, strip, test_encodings, test_set_grey
from ui.upload import digit_upload
from vae_core.explore import coordinate_projection, crossfade, decode, encode, interpolate, pca_projection
from vae_core.plots import latent_scatter

st.set_page_config(page_title="Interpolate · VAE Explorer", page_icon=":material/blur_on:", layout="wide")

path, model, ckpt = sidebar_model_picker()
page_intro("Interpolate", (
    "Encode two digits to their posterior means, walk along the line (or the great circle) "
    "between the two codes, and decode every step. Because the KL term keeps codes close to the "
    "prior, the path passes through images that look like digits, unlike the pixel-space "
    "cross-fade below it, which only superimposes the two images."))

images, labels = test_set_grey(ckpt)
mu, _ = test_encodings(path)


def pick_digit(side: str, default_index: int):
    """A digit chosen by test index, by class, or uploaded: (image (H, W), description)."""
    source = st.radio(f"{side} digit", ["test index", "class", "upload"], horizontal=True, key=f"{side}_source")
    if source == "test index":
        index = st.number_input("Test index", 0, len(images) - 1, default_index, key=f"{side}_index")
        return images[index], f"test #{index} (a {labels[index]})"
    if source == "class":
        digit = st.selectbox("Class", range(10), index=int(labels[default_index]), key=f"{side}_class")
        members = (labels == digit).nonzero()[0]
        nth = st.number_input(f"Which {digit} (of {len(members)})", 1, len(members), 1, key=f"{side}_nth")
        index = members[nth - 1]
        return images[index], f"test #{index} (a {digit})"
    steps = digit_upload("Upload a digit", key=f"{side}_upload")
    if steps is None:
        st.caption("Upload an image to use it here.")
        return None, None
    return steps.final, "your upload"


left, middle, right = st.columns([2, 2, 3])
with left:
    x0, what0 = pick_digit("Start", 0)
with middle:
    x1, what1 = pick_digit("End", 1)
with right:
    n_steps = st.slider("Steps", 3, 20, 10)
    method = st.radio("Path", ["linear", "spherical"], horizontal=True,
                      help="spherical (slerp) keeps the norm of z typical of the prior along the way")

if x0 is None or x1 is None:
    st.stop()

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
st.plotly_chart(latent_scatter(projection(mu), labels, titles, path=projection(path_z), height=420),
                config={"displayModeBar": False})

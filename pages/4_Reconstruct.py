"""Reconstruct: an uploaded digit, prepared as MNIST was, encoded, decoded and scored."""

import streamlit as st

from ui.common import page_intro
from ui.digit_input import pick_digit
from ui.images import png, square, tile
from ui.models import sidebar_model_picker, test_elbos, test_set_grey
from vae_core.vae.explore import analyse_image, sample_prior, typicality_sentence
from vae_core.plots import bars

st.set_page_config(page_title="Reconstruct · VAE Explorer", page_icon=":material/blur_on:", layout="wide")

path, model, ckpt = sidebar_model_picker()
page_intro("Reconstruct", (
    "Upload a photo or drawing of a digit. It is prepared the way MNIST was made, then the encoder "
    "gives its approximate posterior q(z|x) and the decoder rebuilds it from the posterior mean. "
    "The ELBO and the importance-sampled log-likelihood say, in nats, how probable the model finds "
    "the image: a digit unlike the training data gets a much lower score."))

digit = pick_digit("reconstruct", *test_set_grey(ckpt))
image, source, steps = digit.image, digit.description, digit.steps
if steps is not None:
    st.markdown("**Preparing the image as MNIST was made**")
    shown = [(steps.original, "as uploaded (grey)"),
             (steps.inverted, "inverted" if steps.was_inverted else "ink is already light"),
             (steps.cropped, "cropped to the ink"), (steps.fitted, "fitted into 20x20"),
             (steps.final, "centred by mass in 28x28")]
    for column, (picture, caption) in zip(st.columns(len(shown)), shown):
        picture = square(picture)
        column.image(png(picture, scale=max(1, 140 // len(picture))), caption=caption, width=140)
    for note in steps.notes:
        st.caption(note)

analysis = analyse_image(model, image, num_importance_samples=1000)
st.markdown(f"**{source.capitalize()} and its reconstruction**")
c1, c2, c3 = st.columns([1, 1, 3])
c1.image(png(image, scale=6), caption="input x")
c2.image(png(analysis.reconstruction, scale=6), caption="decoder mean at E[z|x]")
with c3:
    st.metric("ELBO", f"{analysis.elbo:.1f} nats")
    st.metric("log p(x), importance-sampled (k=1000)", f"{analysis.log_likelihood:.1f} nats")
    st.markdown(typicality_sentence(analysis.elbo, test_elbos(path)))
    if analysis.binarized:
        st.caption("Scores average 8 random binarisations of the image, as the model was trained on binary pixels.")

d = len(analysis.mu)
names = [f"z{i + 1}" for i in range(d)]
left, right = st.columns(2)
left.plotly_chart(bars(analysis.mu, names, "posterior mean ± std per dimension", errors=analysis.std),
                  config={"displayModeBar": False})
right.plotly_chart(bars(analysis.kl_per_dim, names, "KL to the prior per dimension (nats)"),
                   config={"displayModeBar": False})

st.subheader("Samples from the prior")
st.markdown("Draw z ~ N(0, I) and decode: what the model generates with no input at all.")
seed = st.session_state.setdefault("prior_seed", 0)
if st.button("New samples"):
    st.session_state["prior_seed"] = seed = seed + 1
st.image(png(tile(sample_prior(model, 32, seed), columns=8), scale=3), caption=f"32 samples (seed {seed})")

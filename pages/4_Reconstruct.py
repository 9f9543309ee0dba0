"""Reconstruct: a drawn, uploaded or test digit, prepared as MNIST was, encoded, decoded and scored."""

import streamlit as st

from ui.common import PAGE_ICON, offer_run, page_intro, state_key
from ui.digit_input import digit_input, show_preparation
from ui.images import png, tile
from ui.models import sidebar_model_picker, test_elbos, test_log_likelihoods, test_set_grey
from ui.presentation import chart
from vae_core.plots import bars
from vae_core.vae.explore import (analyse_image, image_log_likelihood, likelihood_surprises, sample_prior,
                                  score_sentence)

st.set_page_config(page_title="Reconstruct · VAE Explorer", page_icon=PAGE_ICON, layout="wide")

path, model, ckpt = sidebar_model_picker()
page_intro("Reconstruct", (
    "Draw a digit, upload a photo of one, or pick a test digit. A drawing or a photo is prepared the "
    "way MNIST was made; then the encoder gives its approximate posterior q(z|x) and the decoder "
    "rebuilds the digit from the posterior mean. The ELBO and the importance-sampled log-likelihood "
    "say, in nats, how probable the model finds the image."),
    try_this=("Draw a 3, then close its gaps until it becomes an 8: when does the model change its mind?",
              "Draw something that is not a digit, a letter or a smiley: what does the model rebuild?",
              "Compare the 2-D and the 20-D model on the same drawing."))
if model.config.latent_dim <= 2:
    offer_run("mnist-mlp-z20", "Two numbers cannot hold a digit's details: this **2-D model** rebuilds a clean 3 "
              "as a blurry 3 or 8. The shipped **20-D model** rebuilds digits closely.")

images, labels = test_set_grey(ckpt)


@st.cache_data(show_spinner=False, max_entries=64)
def _analysis(_model, run: str, state: str, image):
    """The digit's posterior, reconstruction and ELBO; cached per run and image, so that Undo or
    a click elsewhere on the page does not compute them again."""
    return analyse_image(_model, image)


@st.cache_data(show_spinner=False, max_entries=64)
def _log_likelihood(_model, run: str, state: str, image) -> float:
    return image_log_likelihood(_model, image, num_importance_samples=1000)


@st.fragment
def your_digit():
    """The digit, its preparation and its scores: a fragment, so that a stroke on the pad reruns
    this part of the page only."""
    left, right = st.columns([2, 3], gap="large")
    with left:
        digit = digit_input("reconstruct", images, labels, preparation="none")
    if digit is None:
        return
    run = (str(path), state_key(path))
    analysis = _analysis(model, *run, digit.image)
    with right:
        st.markdown(f"**{digit.description.capitalize()} and its reconstruction**")
        c1, c2 = st.columns(2)
        c1.image(png(digit.image, scale=5), caption="input x")
        c2.image(png(analysis.reconstruction, scale=5), caption="decoder mean at E[z|x]")
        c1.metric("ELBO (nats)", f"{analysis.elbo:.1f}")
        log_px = c2.empty()
        log_px.caption("log p(x): being estimated...")
        st.markdown(score_sentence("ELBO", analysis.elbo, test_elbos(path)))
        log_px_sentence = st.empty()
        st.caption("A higher score is not a verdict that the image looks like a digit: likelihood models can "
                   "score images unlike anything they were trained on higher than their training data "
                   "(Nalisnick et al. 2019)." + (" Scores average 8 random binarisations of the image, as the "
                                                 "model was trained on binary pixels." if analysis.binarized else ""))
        if st.button("Show me: scores of images that are no digit", key="surprises"):
            surprises = likelihood_surprises(model, digit.image)
            for column, surprise in zip(st.columns(len(surprises)), surprises):
                column.image(png(surprise.image, scale=3), caption=f"{surprise.name}: ELBO {surprise.elbo:.1f}")
            st.caption("A blank image or a single stroke is easy to encode and to rebuild, so it can get a "
                       "higher ELBO than a real digit: the ELBO measures how well the model explains the "
                       "pixels, not whether they form a digit.")
    if digit.steps is not None:
        st.markdown("**How it was prepared**")
        show_preparation(digit.steps)

    d = len(analysis.mu)
    names = [f"z{i + 1}" for i in range(d)]
    c1, c2 = st.columns(2)
    c1.plotly_chart(chart(bars(analysis.mu, names, "posterior mean ± std per dimension", errors=analysis.std)),
                    config={"displayModeBar": False})
    c2.plotly_chart(chart(bars(analysis.kl_per_dim, names, "KL to the prior per dimension (nats)")),
                    config={"displayModeBar": False})
    # The slower estimate comes last, once everything else is on screen.
    log_likelihood = _log_likelihood(model, *run, digit.image)
    log_px.metric("log p(x) (nats)", f"{log_likelihood:.1f}",
                  help="Importance-sampled with k = 1000 draws from q(z|x); the ELBO is a lower bound of it")
    log_px_sentence.markdown(score_sentence("log p(x)", log_likelihood, test_log_likelihoods(path)))


your_digit()

st.subheader("Samples from the prior")
st.markdown("Draw z ~ N(0, I) and decode: what the model generates with no input at all.")
seed = st.session_state.setdefault("prior_seed", 0)
if st.button("New samples"):
    st.session_state["prior_seed"] = seed = seed + 1
st.image(png(tile(sample_prior(model, 32, seed), columns=8), scale=3), caption=f"32 samples (seed {seed})")

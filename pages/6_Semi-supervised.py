"""Semi-supervised M2: classify a digit, generate a chosen class in a chosen style, analogies."""

import numpy as np
import streamlit as st

from ui.common import PAGE_ICON, page_intro, state_key
from ui.digit_input import Digit, digit_input, show_preparation
from ui.images import png, tile
from ui.models import M1_ERRORS, m1_encoder, sidebar_model_picker, test_set_grey
from ui.presentation import chart
from ui.style_explorer import style_explorer
from vae_core.m2.explore import analogies, classify, generative_posterior, style
from vae_core.plots import bars

st.set_page_config(page_title="Semi-supervised · VAE Explorer", page_icon=PAGE_ICON, layout="wide")

path, model, ckpt = sidebar_model_picker(kind="m2")
page_intro("Semi-supervised M2", (
    "M2 (Kingma et al. 2014) is a VAE whose latent variables are split in two: the class y and a "
    "continuous style z. It is trained on a few labelled digits and many unlabelled ones: for an "
    "unlabelled digit the bound sums over every class, weighted by the classifier q(y|x), so the "
    "unlabelled data train the classifier too. Fixing the style and changing y redraws the same "
    "handwriting as another digit."),
    try_this=("Draw a digit on Classify and see whether the classifier and the generative model agree.",
              "On Generate, keep the style and change the class: does the slant stay?",
              "On Analogies, upload your own digit and see every class written in your hand."))

try:
    m1, m1_path = m1_encoder(ckpt)  # M1+M2: M2 works on the latent codes of a VAE, M1
except M1_ERRORS as exc:
    st.error(f"This M1+M2 model needs its M1 VAE: {exc}")
    st.stop()
if m1 is not None:
    st.info(f"**M1+M2**: this M2 was trained on the {m1.config.latent_dim}-D latent codes of a plain "
            f"VAE, M1 (`{m1_path.name}`), not on pixels. M1 learned its codes from the training "
            "images without their labels, which makes the labelled few go further (the paper's "
            "best results). Every image below passes through M1: its encoder for the digits shown "
            "to M2, its decoder for the digits M2 draws.")
images, labels = test_set_grey(ckpt)
# Keyed, so the open tab stays when the model changes. Generate runs only while open: its
# decoder is about 2 MB to send. The other two always run, so that a digit uploaded or drawn
# there is still there after a look at another tab.
tab_classify, tab_generate, tab_analogies = st.tabs(["Classify", "Generate", "Analogies"], key="m2_tab",
                                                    on_change="rerun")


@st.fragment
def classify_tab():
    """A digit and its class probabilities: a fragment, so that a stroke on the pad reruns this tab only."""
    input_column, image_column = st.columns([2, 3], gap="large")
    with input_column:
        digit = digit_input("classify", images, labels, preparation="none")
    if digit is None:
        digit = Digit(images[0], f"test digit #0 (a {labels[0]}), until you draw or upload one")
    image, source = digit.image, digit.description
    probs = classify(model, image[None], m1)[0]
    explained = generative_posterior(model, image[None], m1)[0]
    classes = [str(k) for k in range(len(probs))]
    image_column.image(png(image, scale=5), caption=source)
    if digit.steps is not None:
        show_preparation(digit.steps)
    left, right = st.columns(2)
    left.plotly_chart(chart(bars(probs, classes, f"q(y|x): {probs.argmax()} ({probs.max():.1%})")),
                      config={"displayModeBar": False})
    right.plotly_chart(chart(bars(explained, classes, f"p(y|x): {explained.argmax()} ({explained.max():.1%})")),
                       config={"displayModeBar": False})
    st.caption("Left chart, q(y|x): the classifier network's answer. Right chart, p(y|x): the generative model's own "
               "answer, how well each class y explains this digit, p(x|y) (importance-sampled with "
               "16 draws of the style from q(z|x, y)), normalised over the classes. On unlabelled "
               "digits training pulls the classifier towards the generative model's answer.")
    if "test_error" in ckpt.summary:
        st.caption(f"This model's error on the 10,000 test digits: {100 * ckpt.summary['test_error']:.2f}% "
                   f"with {ckpt.train_config.num_labels} labels.")


with tab_classify:
    classify_tab()


@st.fragment
def generate_tab():
    """Class and style: the decoder runs in the browser, so the sliders and the class buttons
    redraw with no server round trip; a fragment, so that a new seed reruns this tab only."""
    st.markdown("Choose a class y and a style z; the decoder draws p(x|y, z)'s mean. The style is "
                "the prior mean z = 0 (seed 0) or a random draw from the prior (other seeds), moved "
                "along one or two of its dimensions.")
    if m1 is not None:
        st.caption(f"M1+M2: y and z give the mean of M1's {m1.config.latent_dim}-D latent code "
                   f"({model.config.input_features} units; the others at their prior mean 0), and "
                   "M1's decoder draws it.")
    c1, c2 = st.columns(2)
    seed = c1.number_input("Style seed", 0, 10_000, 0)
    dims = c2.multiselect("Dimensions to move", range(model.config.latent_dim), default=[0, 1][:model.config.latent_dim],
                          max_selections=2, format_func=lambda d: f"z{d + 1}")
    style_explorer(model, m1, state_key(path), style(model.config.latent_dim, seed), sorted(dims), label=3,
                   key="style_explorer")


def analogies_tab():
    st.markdown("Infer the style of a digit (the posterior mean of q(z|x, y) with y the classifier's "
                "guess) and draw all ten digits in it, as in the paper's Fig. 1.")
    digit = digit_input("analogies", images, labels, sources=("test digit", "upload"))
    if digit is None:
        digit = Digit(images[0], f"test digit #0 (a {labels[0]})")
    image, source = digit.image, digit.description
    rows = np.stack([image] + [images[i] for i in (10, 20, 30)])
    table = np.concatenate([rows[:, None], analogies(model, rows, m1)], axis=1)  # (4, 11, H, W)
    st.image(png(tile(table.reshape(-1, *table.shape[2:]), columns=11), scale=3),
             caption=f"left column: {source} and test digits #10, #20, #30; then their styles as 0-9")
    if "test_generative_accuracy" in ckpt.summary and "test_accuracy" in ckpt.summary:
        st.caption(
            "Analogies work when the style z holds no class information, so that y alone decides "
            "the digit. A check: the class whose bound L(x, y) is highest is the true one for "
            f"{ckpt.summary['test_generative_accuracy']:.1%} of test digits, against "
            f"{ckpt.summary['test_accuracy']:.1%} for the classifier q(y|x). The further the first "
            "falls below the second, the more of the class sits in z, and the more each row above "
            "keeps its own digit.")


if tab_generate.open:
    with tab_generate:
        generate_tab()
with tab_analogies:
    analogies_tab()

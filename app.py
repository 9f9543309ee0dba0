"""VAE Explorer (`streamlit run app.py`): the home page; the other pages are in pages/."""

import streamlit as st

from ui.common import available_runs, sidebar_run_picker
from vae_core.report import RunSummary, run_summary


st.set_page_config(page_title="VAE Explorer", page_icon=":material/blur_on:", layout="wide")
sidebar_run_picker()  # the home page needs no model, nor torch

st.title("VAE Explorer")
st.markdown(
    "A variational autoencoder (Kingma & Welling 2013) learns a generative model "
    "p(x, z) = p(z) p(x|z) of images together with an *encoder* q(z|x) that approximates the "
    "posterior over the latent code z. Both are trained at once by maximising the "
    "**evidence lower bound** (ELBO) on log p(x):")
st.latex(r"\log p_\theta(x) \;\ge\; \mathcal{L}(\theta,\phi;x) \;=\; "
         r"\underbrace{\mathbb{E}_{q_\phi(z|x)}\big[\log p_\theta(x|z)\big]}_{\text{reconstruction}}"
         r"\;-\;\underbrace{D_{KL}\big(q_\phi(z|x)\,\|\,p(z)\big)}_{\text{KL to the prior } \mathcal{N}(0,I)}")
st.markdown(
    "The expectation is estimated with samples of z, and to let gradients flow through the "
    "sampling the paper writes z as a deterministic function of the encoder's output and "
    "independent noise: the **reparameterisation trick**.")
st.latex(r"z = \mu_\phi(x) + \sigma_\phi(x) \odot \epsilon, \qquad \epsilon \sim \mathcal{N}(0, I)")
st.markdown(
    "With a Gaussian posterior the KL term has a closed form (the paper's estimator B), "
    r"$-D_{KL} = \tfrac12 \sum_j \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)$, "
    "so only the reconstruction term needs sampling. All numbers in this app are in nats per image.")

st.subheader("What to explore")
st.markdown(
    "- **Train**: train a VAE in the background and watch its ELBO, reconstruction and KL live; "
    "or a semi-supervised M2 and its accuracy.\n"
    "- **Latent space**: move through a 2-D latent space and see what the decoder draws there.\n"
    "- **Interpolate**: walk from one digit's code to another's.\n"
    "- **Reconstruct**: upload a digit of your own, see it prepared like MNIST, encoded and rebuilt.\n"
    "- **Training curves**: compare runs, train against validation (the paper's Fig. 2).\n"
    "- **Semi-supervised**: M2 and M1+M2 (Kingma et al. 2014), trained with a few labels, classify "
    "your digit, draw a chosen class in a chosen style, and redraw a digit's style as every class.\n"
    "- **Inside the ELBO**: why a VAE is trained as it is, measured on a model and a digit: the two "
    "estimators of the bound, how tight it is, why the reparameterisation trick, where the nats go.\n\n"
    "Pick a model in the sidebar: the choice carries across pages.")

st.subheader("Models")


def markdown_table(rows: list[dict]) -> str:
    """A Markdown table (no dataframe: the first page loads without pandas and Arrow)."""
    def cell(value) -> str:
        if value is None:
            return "–"
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        return "".join("\\" + ch if ch in "\\|*_`[]<>#" else ch for ch in text)
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(row[k]) for k in header) + " |" for row in rows]
    return "\n".join(lines)


def vae_row(s: RunSummary) -> dict:
    return {"run": s.name, "latent size": s.latent_dim, "hidden": s.hidden_dim, "epochs": s.epochs, "status": s.status,
            "test ELBO": s.test_elbo, "test log p(x)": s.test_log_likelihood}


def m2_row(s: RunSummary) -> dict:
    return {"run": s.name, "labels": s.num_labels, "inputs": s.inputs, "epochs": s.epochs, "status": s.status,
            "test error %": None if s.test_error is None else 100 * s.test_error}


vae_rows = [vae_row(run_summary(run.record)) for run in available_runs()]
if vae_rows:
    st.markdown(markdown_table(vae_rows))

m2_rows = [m2_row(run_summary(run.record)) for run in available_runs("m2")]
if m2_rows:
    st.markdown("Semi-supervised models (M2, M1+M2):")
    st.markdown(markdown_table(m2_rows))

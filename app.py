"""VAE Explorer (`streamlit run app.py`): the home page; the other pages are in pages/.

Home opens on the live latent explorer of the shipped 2-D model, with three steps to start
from beside it and the maths folded below. The whole page, explorer included, is drawn without
torch: the model's layers and the test digits are read as numpy arrays, and the decoder runs in
the browser. Torch's import alone takes 1.5-2 s on a cold server, and Home is the page every
visitor sees first; once it is on screen, what the other pages need is imported in the
background.
"""

import streamlit as st

from ui import PAGE_ICON

st.set_page_config(page_title="VAE Explorer", page_icon=PAGE_ICON, layout="wide")
st.title("VAE Explorer")
st.markdown(
    "A variational autoencoder learns to squeeze every image of a digit into a short code z, and "
    "to draw a digit back from any code. The model below keeps only **two numbers** per digit, so "
    "its whole space of codes is a map you can walk on.")
# The explorer and the steps side by side (a 1400 px screen leaves the page about 940 px), the
# steps wrapping below the explorer on a narrower one (a projector at 1024 px leaves about 560).
row = st.container(horizontal=True, gap="medium")
explorer_slot = row.container(width=620).empty()  # the explorer's image and map side by side
if "home_visited" not in st.session_state:  # a new visitor, whose browser may load scripts first
    st.session_state["home_visited"] = True
    with explorer_slot:  # a bare component: its scripts load while the server imports and reads
        st.components.v2.component("script_preload", html="<span hidden></span>",
                                   js="export default function () {}")(key="script_preload")

# The page's own modules are imported after its first lines are sent: on a cold server their
# import (0.2-0.4 s) then runs while the browser draws the title and loads a component's scripts.
import threading  # noqa: E402

from ui import latent_explorer  # noqa: E402
from ui.array_models import ArrayModel, array_model  # noqa: E402
from ui.common import available_runs, plain, run_label, shipped_run, sidebar_run_picker, state_key  # noqa: E402
from ui.presentation import presenting  # noqa: E402
from vae_core.report import RunSummary, run_summary  # noqa: E402
from vae_core.vae.projection import coordinate_projection  # noqa: E402

HOME_MODEL = "mnist-mlp-z2"  # the shipped 2-D VAE: its latent space is the map itself


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Timer:
    """Import what the other pages need (torch and the models' code), once per server, in the
    background, so that a visitor's next page need not wait for it. It starts two seconds after
    Home's first run: an import holds the interpreter for most of its 1.5-2 s, and would hold
    back the sending of Home itself."""
    timer = threading.Timer(2.0, __import__, args=("ui.models",))
    timer.daemon = True
    timer.start()
    return timer


def show_explorer() -> ArrayModel | None:
    """The shipped 2-D model's explorer, decoding in the browser; returns the model, whose test
    digits make the hover thumbnails' sheet, which is sent last."""
    run = shipped_run(HOME_MODEL)
    if run is None:
        st.info("The shipped 2-D model is missing: pick a model in the sidebar and open **Latent space**.")
        return None
    loaded = array_model(run.path)
    if isinstance(loaded, str):
        st.error(f"The shipped 2-D model cannot be read: {plain(loaded)}")
        return None
    projection = coordinate_projection(2, (0, 1))
    latent_explorer.latent_explorer(loaded.model, state_key(run.path), projection(loaded.mu), loaded.labels,
                                    projection, (0, 1), None, (0.0, 0.0), ("z1", "z2"), key="home_explorer",
                                    thumbnails=loaded.dataset)
    st.caption(f"{run_label(run)}: {len(loaded.labels):,} test digits encoded to their posterior means.")
    return loaded


# The explorer is sent first, then the steps and the sidebar: on a cold server the browser is
# still loading Streamlit's own scripts, and whatever arrives with the explorer delays it.
with explorer_slot.container():
    with st.spinner("Loading the 2-D model...", show_time=True):
        shown = show_explorer()
with row.container(width=260 if not presenting() else 420):
    st.subheader("Start here")
    st.markdown(
        "1. **Move a slider, or drag on the map.** The image is what the decoder draws at that "
        "code z. Where do the 1s live? Where does a 7 turn into a 9?\n"
        "2. **Point at a coloured dot.** Each dot is a test digit's code, coloured by its class (the "
        "legend is under the map). Hovering shows the digit; a click moves z to its code, and the "
        "image shows what the model keeps of it.\n"
        "3. **Bring your own digit.** Draw one and see it encoded and rebuilt, or train a model "
        "and watch it learn.")
    st.page_link("pages/4_Reconstruct.py", label="Draw a digit", icon=":material/draw:")
    st.page_link("pages/1_Train.py", label="Train a model", icon=":material/model_training:")
    st.page_link("pages/2_Latent_space.py", label="The full latent space page", icon=":material/scatter_plot:")

sidebar_run_picker()  # the home page needs no model from it

# The maths runs only when opened: its equations need KaTeX's scripts, which a first visit would
# otherwise load before the explorer is drawn.
maths = st.expander("The maths: the evidence lower bound (ELBO) and the reparameterisation trick",
                    key="home_maths", on_change="rerun")
if maths.open:
    with maths:
        st.markdown(
            "A variational autoencoder (Kingma & Welling 2013) learns a generative model "
            "p(x, z) = p(z) p(x|z) of images together with an *encoder* q(z|x) that approximates the "
            "posterior over the latent code z. Both are trained at once by maximising the "
            "**evidence lower bound** (ELBO) on log p(x):")
        # Two lines, so that the bound fits a projector's narrow page.
        st.latex(r"\begin{aligned}\log p_\theta(x) \;\ge\; \mathcal{L}(\theta,\phi;x) \;=\;& "
                 r"\underbrace{\mathbb{E}_{q_\phi(z|x)}\big[\log p_\theta(x|z)\big]}_{\text{reconstruction}}\\"
                 r"&-\;\underbrace{D_{KL}\big(q_\phi(z|x)\,\|\,p(z)\big)}_{\text{KL to the prior } \mathcal{N}(0,I)}"
                 r"\end{aligned}")
        st.markdown(
            "The expectation is estimated with samples of z, and to let gradients flow through the "
            "sampling the paper writes z as a deterministic function of the encoder's output and "
            "independent noise: the **reparameterisation trick**.")
        st.latex(r"z = \mu_\phi(x) + \sigma_\phi(x) \odot \epsilon, \qquad \epsilon \sim \mathcal{N}(0, I)")
        st.markdown(
            "With a Gaussian posterior the KL term has a closed form (the paper's estimator B), "
            r"$-D_{KL} = \tfrac12 \sum_j \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)$, "
            "so only the reconstruction term needs sampling. All numbers in this app are in nats per image.")

# In presentation mode the overview folds away with the maths, leaving the explorer on screen.
overview = st.expander("What to explore, and the models") if presenting() else st.container()
overview.subheader("What to explore")
overview.markdown(
    "- **Train**: train a VAE in the background and watch its ELBO, reconstruction and KL live; "
    "or a semi-supervised M2 and its accuracy.\n"
    "- **Latent space**: move through a latent space and see what the decoder draws there.\n"
    "- **Interpolate**: walk from one digit's code to another's.\n"
    "- **Reconstruct**: draw or upload a digit of your own, see it prepared like MNIST, encoded and rebuilt.\n"
    "- **Training curves**: compare runs, train against validation (the paper's Fig. 2).\n"
    "- **Semi-supervised**: M2 and M1+M2 (Kingma et al. 2014), trained with a few labels, classify "
    "your digit, draw a chosen class in a chosen style, and redraw a digit's style as every class.\n"
    "- **Inside the ELBO**: why a VAE is trained as it is, measured on a model and a digit: the two "
    "estimators of the bound, how tight it is, why the reparameterisation trick, where the nats go.\n\n"
    "Pick a model in the sidebar: the choice carries across pages.")

overview.subheader("Models")


def markdown_table(rows: list[dict]) -> str:
    """A Markdown table (no dataframe: the first page loads without pandas and Arrow)."""
    def cell(value) -> str:
        if value is None:
            return "-"
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
    overview.markdown(markdown_table(vae_rows))

m2_rows = [m2_row(run_summary(run.record)) for run in available_runs("m2")]
if m2_rows:
    overview.markdown("Semi-supervised models (M2, M1+M2):")
    overview.markdown(markdown_table(m2_rows))

if shown is not None:
    latent_explorer.thumbnails(shown.images(), shown.dataset)
warm_up()

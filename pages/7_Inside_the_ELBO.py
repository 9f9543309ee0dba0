"""Inside the ELBO: the AEVB paper's claims measured on the picked model and one digit, and where
every VAE run spends its KL."""

import hashlib

import streamlit as st

from ui.common import PAGE_ICON, available_runs, page_intro, plain, run_label, state_key
from ui.digit_input import digit_input
from ui.images import png
from ui.models import LOAD_ERRORS, sidebar_model_picker, test_set, test_set_grey
from ui.presentation import chart
from vae_core.plots import bound_curve, estimator_violins, gradient_variances, kl_per_dimension, rate_distortion
from vae_core.registry import load_model
from vae_core.vae import inside

st.set_page_config(page_title="Inside the ELBO · VAE Explorer", page_icon=PAGE_ICON, layout="wide")

path, model, ckpt = sidebar_model_picker()
page_intro("Inside the ELBO", (
    "Why is a VAE trained the way it is? Each tab below measures one claim of Kingma & Welling "
    "(2013) on the model picked in the sidebar and one digit x, with the notation of the Home page. "
    "All figures are in nats."),
    try_this=("On the first tab, compare the spread of estimators A and B at L = 1.",
              "On How tight, see how many nats the ELBO leaves below log p(x) for this digit.",
              "On Where the nats go, find the runs whose units collapsed onto the prior."))
# Only the open tab runs and is drawn: each holds a chart or two and its equations, and drawing all
# of them at once is what made the page slow to show (docs/RESULTS.md).
SECTIONS = ("1. Two estimators", "2. How tight", "3. Why reparameterise", "4. Where the nats go")


@st.cache_data(show_spinner="Drawing the two estimators...", max_entries=16)
def estimators(run: str, state: str, image, _model) -> inside.EstimatorComparison:
    return inside.compare_estimators(_model, image)


@st.cache_data(show_spinner="Drawing importance-weighted bounds...", max_entries=16)
def bounds(run: str, state: str, image, num_samples: tuple[int, ...], min_repeats: int, seed: int,
           _model) -> inside.BoundCurve:
    return inside.importance_weighted_bounds(_model, image, num_samples, min_repeats=min_repeats, seed=seed)


@st.cache_data(show_spinner="Measuring gradient variances...", max_entries=16)
def gradients(run: str, state: str, image, _model) -> inside.GradientVariance:
    return inside.gradient_variance(_model, image)


@st.cache_data(show_spinner="Encoding the test set with every run...", max_entries=32)
def usage(run: str, state: str) -> inside.LatentUsage | None:
    try:
        other, record = load_model(run)
    except LOAD_ERRORS:
        return None
    return inside.latent_usage(other, test_set(record)[0], record.summary)


digit = digit_input("inside", *test_set_grey(ckpt), label="The digit")
if digit is None:
    st.stop()
image = digit.image
run, state = str(path), state_key(path)
asked = (run, state, hashlib.sha256(image.tobytes()).hexdigest())  # the model and digit a k = 5000 request is for
left, right = st.columns([1, 3])
left.image(png(inside.binarised(model, image), scale=4),
           caption="x: one binarisation" if model.config.likelihood == "bernoulli" else "x")
right.markdown(
    f"**{digit.description}**, as the model sees it"
    + (": the decoder is a density over binary images, so the grey digit is binarised once, with a "
       "fixed seed, and every number below is about that binary x." if model.config.likelihood == "bernoulli"
       else "."))
estimator_tab, bound_tab, gradient_tab, usage_tab = st.tabs(SECTIONS, key="inside_section", on_change="rerun")


def show_estimators() -> None:
    st.markdown(
        r"Training estimates the ELBO from $L$ samples $z^{(l)} = \mu_\phi(x) + \sigma_\phi(x) \odot \epsilon^{(l)}$. "
        "Estimator A (the paper's eq. 6) samples the whole integrand; estimator B (eq. 7) takes the KL in "
        "closed form and samples only the reconstruction. Both are unbiased for the same ELBO, and both "
        r"spreads shrink as $1/\sqrt{L}$.")
    st.latex(r"\widetilde{\mathcal{L}}^{A} = \tfrac{1}{L}\textstyle\sum_{l}"
             r"\big[\log p_\theta(x, z^{(l)}) - \log q_\phi(z^{(l)}|x)\big]")
    st.latex(r"\widetilde{\mathcal{L}}^{B} = \tfrac{1}{L}\textstyle\sum_{l} \log p_\theta(x|z^{(l)})"
             r" - D_{KL}\big(q_\phi(z|x)\,\|\,p(z)\big)")
    comparison = estimators(run, state, image, model)
    gradient = gradients(run, state, image, model)
    st.plotly_chart(chart(estimator_violins([(d.num_samples, d.a, d.b) for d in comparison.draws], comparison.elbo)),
                    config={"displayModeBar": False})
    rows = ["| L | A: mean ± s.e. | B: mean ± s.e. | Var A / Var B |", "|---|---|---|---|"]
    rows += [f"| {d.num_samples} | {d.a_mean:.2f} ± {d.a_stderr:.2f} | {d.b_mean:.2f} ± {d.b_stderr:.2f} "
             f"| {d.variance_ratio:.2f} |" for d in comparison.draws]
    st.markdown("\n".join(rows))
    first = comparison.draws[0]
    st.caption(f"{len(first.a):,} draws of each estimator at L = 1 down to {len(comparison.draws[-1].a)} at "
               f"L = {comparison.draws[-1].num_samples}, A and B from the same draws of ε. "
               f"The ELBO line is estimator B over all of them: {comparison.elbo:.2f} ± {comparison.elbo_stderr:.2f}.")
    ratio_ab = first.variance_ratio
    if ratio_ab < 0.9:
        verdict = f"**Here A is the narrower one: Var A / Var B = {ratio_ab:.2f} at L = 1.** "
    elif ratio_ab <= 1.1:
        verdict = f"**Here the two spread about equally: Var A / Var B = {ratio_ab:.2f} at L = 1.** "
    else:
        verdict = (f"**Here B is the narrower one: Var A / Var B = {ratio_ab:.2f} at L = 1**, the variance that "
                   "sampling the KL adds. ")
    st.markdown(
        verdict + r"Sampling the KL adds noise, but on a trained model $q_\phi(z|x)$ is close to the true "
        r"posterior, and where they are equal $\log p_\theta(x,z) - \log q_\phi(z|x)$ is the constant "
        r"$\log p_\theta(x)$: A's sampled KL then cancels the reconstruction's noise. B's advantage is in "
        "training: at the start, with the encoder far from the posterior, B's spread is the smaller one, and "
        f"for the gradient with respect to the encoder on this digit A's variance is "
        f"{gradient.estimator_a_over_b:.2f} times B's.")


def show_bounds() -> None:
    st.markdown(
        "Averaging k importance weights inside the logarithm gives tighter bounds (Burda et al. 2015): "
        r"$\mathcal{L}_1$ is the ELBO and $\mathcal{L}_k$ rises with k towards $\log p_\theta(x)$. "
        "What is left between the ELBO and log p(x) is how far the encoder's "
        r"$q_\phi(z|x)$ is from the true posterior $p_\theta(z|x)$.")
    st.latex(r"\mathcal{L}_k = \mathbb{E}\Big[\log \tfrac{1}{k}\textstyle\sum_{i=1}^{k}"
             r"\tfrac{p_\theta(x, z_i)}{q_\phi(z_i|x)}\Big],\quad z_i \sim q_\phi(z|x)")
    st.latex(r"\mathcal{L} = \mathcal{L}_1 \le \mathcal{L}_k \le \mathcal{L}_{k+1} \le \log p_\theta(x)")
    st.latex(r"\log p_\theta(x) - \mathcal{L} = D_{KL}\big(q_\phi(z|x)\,\|\,p_\theta(z|x)\big)")
    comparison = estimators(run, state, image, model)
    curve = bounds(run, state, image, inside.BOUND_SAMPLES, 4, 0, model)
    log_px = None
    if st.session_state.get("inside_log_likelihood") == asked:
        log_px = bounds(run, state, image, (inside.LOG_LIKELIHOOD_SAMPLES,), 10, 1, model)
    st.plotly_chart(chart(bound_curve(curve.num_samples, curve.mean, curve.stderr, comparison.elbo,
                                None if log_px is None else float(log_px.mean[0]))),
                    config={"displayModeBar": False})
    st.caption(f"Mean and standard error of L_k over {curve.repeats[0]:,} draws at k = 1 down to "
               f"{curve.repeats[-1]} at k = {curve.num_samples[-1]:,}, at least {curve.repeats[0]:,} samples per point.")
    if log_px is None:
        if st.button(f"Add k = {inside.LOG_LIKELIHOOD_SAMPLES} (log p(x) as the Home page's tables estimate it)"):
            st.session_state["inside_log_likelihood"] = asked
            st.rerun()
    else:
        st.markdown(f"log p(x) ≈ L_{inside.LOG_LIKELIHOOD_SAMPLES} = **{log_px.mean[0]:.2f} ± {log_px.stderr[0]:.2f}**: "
                    f"the ELBO is {log_px.mean[0] - comparison.elbo:.2f} nats below it.")


def show_gradients() -> None:
    comparison = estimators(run, state, image, model)
    gradient = gradients(run, state, image, model)
    st.markdown(
        "Training the encoder needs the gradient, with respect to φ, of an expectation under "
        r"$q_\phi$ itself. The score-function (REINFORCE) estimator multiplies $\log p_\theta(x|z)$, "
        f"about {comparison.elbo + comparison.kl:.0f} nats for this digit, "
        r"by the gradient of $\log q_\phi$; the reparameterisation trick moves φ inside "
        r"the expectation and differentiates $\log p_\theta(x|z)$ along $z$ (the paper's sections 2.3-2.4). "
        "The same gradient, written two ways, score function first:")
    st.latex(r"\nabla_\phi\, \mathbb{E}_{q_\phi(z|x)}\big[f(z)\big]"
             r" = \mathbb{E}_{q_\phi(z|x)}\big[f(z)\, \nabla_\phi \log q_\phi(z|x)\big]")
    st.latex(r"\nabla_\phi\, \mathbb{E}_{q_\phi(z|x)}\big[f(z)\big]"
             r" = \mathbb{E}_{\epsilon \sim \mathcal{N}(0, I)}\big[\nabla_\phi f(\mu_\phi + \sigma_\phi \odot \epsilon)\big]")
    st.latex(r"f(z) = \log p_\theta(x|z)")
    st.plotly_chart(chart(gradient_variances(gradient.num_samples, {"reparameterisation": gradient.reparameterisation,
                                                              "score function": gradient.score_function},
                                       lines=[1, 1000])),
                    config={"displayModeBar": False})
    ratio = f"{float(f'{gradient.ratio[0]:.2g}'):,.0f}"  # two significant figures: the rest is noise
    st.metric("Score-function variance ÷ reparameterisation variance, L = 1", f"{ratio}×")
    st.markdown(
        f"REINFORCE needs about {ratio} samples to be as precise as one reparameterised sample. "
        f"Both estimate the same gradient: over {gradient.num_draws:,} draws their means differ by "
        f"{gradient.difference_norm:.3g}, about what noise alone gives ({gradient.difference_noise:.3g}), "
        f"against a gradient of length {gradient.gradient_norm:.3g}.")
    st.caption(f"Variance summed over the encoder's {gradient.num_parameters:,} parameters φ. Points: measured "
               f"from {gradient.num_draws:,} one-sample gradients in disjoint groups of L; dotted: the one-sample "
               "variance over L, which they follow. The KL term's gradient is exact (estimator B) and adds "
               "nothing to either.")


def show_usage() -> None:
    st.markdown(
        "The KL term is the *rate* R: what the code z tells about x, in nats per image; the "
        "reconstruction term is minus the *distortion* D. Weighting the KL by β in training trades one "
        "for the other; a unit whose posterior mean does not move with x (Var_x E[z_u|x] ≤ 0.01) is "
        "inactive, collapsed onto the prior. Test-set averages for every VAE run of this dataset:")
    st.latex(r"\mathcal{L} = -(D + R)")
    st.latex(r"D = -\mathbb{E}_{q_\phi}\big[\log p_\theta(x|z)\big],"
             r"\quad R = \textstyle\sum_u D_{KL}\big(q_\phi(z_u|x)\,\|\,p(z_u)\big)")
    st.latex(r"\text{training maximises}\;\; \mathbb{E}_{q_\phi}\big[\log p_\theta(x|z)\big] - \beta R")
    # Nats compare between runs of one dataset, decoder and image size only.
    same = [r for r in available_runs("vae")
            if r.record.train_config.dataset == ckpt.train_config.dataset
            and r.record.model_config.likelihood == ckpt.model_config.likelihood
            and tuple(r.record.model_config.image_shape) == tuple(ckpt.model_config.image_shape)]
    results = [(r, usage(str(r.path), state_key(r.path))) for r in same]
    left_out = [run_label(r) for r, u in results if u is None]
    results = [(r, u) for r, u in results if u is not None]
    names = [run_label(r) for r, _ in results]
    picked = next((name for name, (r, _) in zip(names, results) if r.path == path), None)
    st.plotly_chart(chart(rate_distortion(names, [u.kl for _, u in results], [-u.recon for _, u in results],
                                    highlight=picked)), config={"displayModeBar": False})
    table = ["| run | β | active units | R | D | ELBO |", "|---|---|---|---|---|---|"]
    table += [f"| {plain(name)} | {r.record.train_config.beta:g} | {u.num_active} of {len(u.active)} | {u.kl:.2f} "
              f"| {-u.recon:.2f} | {u.elbo:.2f} |" for name, (r, u) in zip(names, results)]
    st.markdown("\n".join(table))
    st.plotly_chart(chart(kl_per_dimension([(name, u.kl_per_dim, u.active) for name, (_, u) in zip(names, results)])),
                    config={"displayModeBar": False})
    st.caption("Each unit's KL to the prior, averaged over the test set, largest first; grey units are inactive.")
    if left_out:
        st.caption(f"Left out, their weights cannot be loaded: {plain(', '.join(left_out))}.")


for tab, show in ((estimator_tab, show_estimators), (bound_tab, show_bounds), (gradient_tab, show_gradients),
                  (usage_tab, show_usage)):
    if tab.open:
        with tab:
            show()

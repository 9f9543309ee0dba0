"""The Train page's form: what to train, its settings, and Start."""

import streamlit as st

from ui.common import available_runs, run_label
from ui.config_form import section_widgets
from vae_core.config import CONFIG_CLASSES, ConfigError, from_dict
from vae_core.jobs import JobManager

KINDS = {"vae": "VAE (AEVB)", "m2": "semi-supervised M2 or M1+M2"}
# Quick, and leaving a core to the app. A 10-D style z did far better than the paper's 50 for M1+M2.
FORM_DEFAULTS = {"vae": {"latent_dim": 2, "epochs": 20, "num_threads": 1},
                 "m2": {"latent_dim": 10, "epochs": 30, "num_threads": 1}}
SECTIONS = [("model", "**Model**"), ("data", "**Data and objective**"), ("objective", None),
            ("optimiser", "**Optimiser**")]


def train_form(jobs: JobManager) -> None:
    """The form; on Start, validates the settings and starts a job (or says why not)."""
    kind = st.radio("What to train", list(KINDS), format_func=KINDS.get, horizontal=True, key="train_kind")
    prefix = "form_" if kind == "vae" else "form_m2_"  # each kind keeps its own form values
    with st.form(f"train_form_{kind}"):
        name = st.text_input("Run name", value="my-vae" if kind == "vae" else "my-m2", max_chars=64,
                             help="Letters, digits, '.', '_' and '-'; other characters become '-'. "
                                  "An existing name gets a number added, so no run is overwritten.")
        extra = {}
        if kind == "m2":
            st.markdown("Kingma et al. 2014: a classifier q(y|x) trained on a few labelled digits and, "
                        "through the bound of a generative model, on all the unlabelled ones. On pixels "
                        "this is M2; on the latent codes of a trained VAE (M1) it is M1+M2, the paper's "
                        "best model, and about 14 s per epoch on one core (M2 on pixels: over a minute).")
            m1_runs = {run_label(r): r.path for r in available_runs("vae")}
            inputs = st.selectbox("Inputs", ["pixels", *m1_runs], key="form_m2_inputs",
                                  format_func=lambda n: "pixels (M2)" if n == "pixels" else f"codes of the VAE {n} (M1+M2)",
                                  help="M1+M2 works on the posterior means of a trained VAE; train one first "
                                       "(the paper's M1: latent size 50). The VAE must be of the same dataset.")
            extra["m1_run"] = "" if inputs == "pixels" else str(m1_runs[inputs])
        values = {}
        for section, title in SECTIONS:
            if title:
                st.markdown(title)
            values |= section_widgets(CONFIG_CLASSES[kind], section, prefix, FORM_DEFAULTS[kind])
        with st.expander("Advanced settings"):
            values |= section_widgets(CONFIG_CLASSES[kind], "advanced", prefix, FORM_DEFAULTS[kind])
        submitted = st.form_submit_button("Start training", type="primary")

    if submitted:
        model_cls, train_cls = CONFIG_CLASSES[kind]
        model_names, train_names = set(model_cls.model_fields), set(train_cls.model_fields)
        try:
            model_config = from_dict(model_cls, {k: v for k, v in values.items() if k in model_names})
            train_config = from_dict(train_cls, {**{k: v for k, v in values.items() if k in train_names}, **extra})
            jobs.start(model_config, train_config, name)
            st.success(f"Started **{name}**: its progress is below.")
        except (ConfigError, RuntimeError) as exc:
            st.error(f"Not started: {exc}.")

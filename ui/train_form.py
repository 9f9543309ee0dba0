"""The Train page's form: three presets to start with one click, and every setting under
"Advanced"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from ui.common import SHIPPED, available_runs, run_label
from ui.config_form import section_widgets
from vae_core.config import CONFIG_CLASSES, ConfigError, from_dict
from vae_core.jobs import JobManager

KINDS = {"vae": "VAE (AEVB)", "m2": "semi-supervised M2 or M1+M2"}
# Quick, and leaving a core to the app. A 10-D style z did far better than the paper's 50 for M1+M2.
FORM_DEFAULTS = {"vae": {"latent_dim": 2, "epochs": 20, "num_threads": 1},
                 "m2": {"latent_dim": 10, "epochs": 30, "num_threads": 1}}
SECTIONS = [("model", "**Model**"), ("data", "**Data and objective**"), ("objective", None),
            ("optimiser", "**Optimiser**")]
FORM_COLUMNS = 2  # 564 px of main column on a 1024 px projector: two widgets a row keep labels whole
SHIPPED_M1 = SHIPPED / "m1-mnist-z50"


@dataclass(frozen=True)
class Preset:
    key: str                  # also the new run's name, unless the visitor gives one
    title: str
    kind: str                 # "vae" or "m2"
    summary: str              # what it is, and how long it takes, in a sentence or two
    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def configs(self):
        model_cls, train_cls = CONFIG_CLASSES[self.kind]
        return from_dict(model_cls, self.model), from_dict(train_cls, self.training)


PRESETS = [
    Preset("quick-demo", "Quick demo", "vae",
           "A VAE with a 2-D latent space on 20,000 digits: in about half a minute on one core its "
           "map sorts the digits into groups, and you can watch it happen.",
           # ReLU units and a large step learn the map in fewer steps than the paper's tanh and 1e-3
           # (benchmarks/quick_demo.py).
           {"latent_dim": 2, "hidden_dim": 500, "activation": "relu"},
           {"max_train_examples": 20_000, "epochs": 8, "learning_rate": 0.01, "patience": 0, "num_threads": 1}),
    Preset("paper-vae", "The paper's model", "vae",
           "Kingma and Welling's MNIST VAE: 784-500-20 with tanh units, minibatches of 100, one "
           "sample of z, Adagrad. About 10 s an epoch on a free core; it stops when the validation "
           "ELBO has not improved for 3 epochs, or after 50.",
           {"latent_dim": 20, "hidden_dim": 500, "activation": "tanh"},
           {"optimizer": "adagrad", "learning_rate": 0.02, "epochs": 50, "num_threads": 1}),
    Preset("m2-100-labels", "Semi-supervised M2 (100 labels)", "m2",
           "Learns to classify digits from 100 labelled ones and 49,900 unlabelled, with M2 on the "
           "codes of the shipped M1 VAE (M1+M2, Kingma et al. 2014). About 15 s an epoch; the "
           "shipped run of this recipe passed 80% validation accuracy at epoch 4 and 90% at epoch 42, "
           "and scored 96.2% on the test digits.",
           {"latent_dim": 10},
           {"m1_run": str(SHIPPED_M1), "num_labels": 100, "alpha_scale": 0.1, "epochs": 300, "patience": 30,
            "num_threads": 1}),
]


def _prefix(kind: str) -> str:
    return "form_" if kind == "vae" else "form_m2_"  # each kind keeps its own form values


def start(jobs: JobManager, model_config, train_config, name: str) -> None:
    """Start a job, or say why not, in one line."""
    try:
        jobs.start(model_config, train_config, name)
        st.success(f"Started **{name}**: its progress is at the top of the page.")
    except (ConfigError, RuntimeError) as exc:
        st.error(f"Not started: {exc}.")


def fill_form(preset: Preset) -> None:
    """Put a preset's settings in the Advanced form (before its widgets are drawn)."""
    prefix = _prefix(preset.kind)
    model_config, train_config = preset.configs()
    st.session_state["train_kind"] = preset.kind
    st.session_state[f"{prefix}name"] = preset.key
    for config in (model_config, train_config):
        for name, value in config.model_dump().items():
            st.session_state[f"{prefix}{name}"] = value
    if preset.kind == "m2":
        st.session_state["form_m2_inputs"] = next(
            (run_label(r) for r in available_runs("vae") if str(r.path) == preset.training.get("m1_run")), "pixels")
    st.session_state["train_form_open"] = True


def presets(jobs: JobManager) -> None:
    """The presets: each starts training in one click, or fills the form below to adjust first."""
    st.subheader("Start from a preset")
    name = st.text_input("Name of the new run", key="preset_name", max_chars=64,
                         placeholder="empty: the preset's name",
                         help="Empty: the preset's own name (quick-demo, paper-vae, m2-100-labels). Letters, "
                              "digits, '.', '_' and '-'; an existing name gets a number added.")
    for preset in PRESETS:
        available = preset.kind != "m2" or SHIPPED_M1.is_dir()
        with st.container(border=True):
            text, buttons = st.columns([3, 1], vertical_alignment="center")
            text.markdown(f"**{preset.title}**  \n{preset.summary}")
            if buttons.button("Start", key=f"preset_start_{preset.key}", type="primary", disabled=not available,
                              width="stretch",
                              help=None if available else "needs the shipped M1 VAE, checkpoints/m1-mnist-z50"):
                start(jobs, *preset.configs(), name.strip() or preset.key)
            if buttons.button("Adjust", key=f"preset_fill_{preset.key}", width="stretch",
                              help="Put these settings in the Advanced form below, to change them before "
                                   "starting"):
                fill_form(preset)


def train_form(jobs: JobManager) -> None:
    """The presets, then the full form; on Start, validates the settings and starts a job (or says
    why not)."""
    presets(jobs)
    opened = st.session_state.pop("train_form_open", False)
    with st.expander("Advanced: every setting", expanded=opened):
        if opened:
            st.info("The preset's settings are below: change what you like, then press Start training.")
        advanced_form(jobs)


def advanced_form(jobs: JobManager) -> None:
    kind = st.radio("What to train", list(KINDS), format_func=KINDS.get, horizontal=True, key="train_kind")
    prefix = _prefix(kind)
    defaults = {"name": "my-vae" if kind == "vae" else "my-m2", **FORM_DEFAULTS[kind]}
    st.session_state.setdefault(f"{prefix}name", defaults["name"])
    with st.form(f"train_form_{kind}"):
        name = st.text_input("Run name", max_chars=64, key=f"{prefix}name",
                             help="Letters, digits, '.', '_' and '-'; other characters become '-'. "
                                  "An existing name gets a number added, so no run is overwritten.")
        extra = {}
        if kind == "m2":
            st.markdown("Kingma et al. 2014: a classifier q(y|x) trained on a few labelled digits and, "
                        "through the bound of a generative model, on all the unlabelled ones. On pixels "
                        "this is M2; on the latent codes of a trained VAE (M1) it is M1+M2, the paper's "
                        "best model, and about 14 s per epoch on one core (M2 on pixels: over a minute).")
            m1_runs = {run_label(r): r.path for r in available_runs("vae")}
            if st.session_state.get("form_m2_inputs") not in ("pixels", *m1_runs):
                st.session_state.pop("form_m2_inputs", None)
            inputs = st.selectbox("What the classifier reads", ["pixels", *m1_runs], key="form_m2_inputs",
                                  format_func=lambda n: "pixels (M2)" if n == "pixels" else f"codes of the VAE {n} (M1+M2)",
                                  help="M1+M2 works on the posterior means of a trained VAE; train one first "
                                       "(the paper's M1: latent size 50). The VAE must be of the same dataset.")
            extra["m1_run"] = "" if inputs == "pixels" else str(m1_runs[inputs])
        values = {}
        for section, title in SECTIONS:
            if title:
                st.markdown(title)
            values |= section_widgets(CONFIG_CLASSES[kind], section, prefix, FORM_DEFAULTS[kind], FORM_COLUMNS)
        st.markdown("**Hardware and reproducibility**")
        values |= section_widgets(CONFIG_CLASSES[kind], "advanced", prefix, FORM_DEFAULTS[kind], FORM_COLUMNS)
        submitted = st.form_submit_button("Start training", type="primary", key=f"{prefix}start")

    if submitted:
        model_cls, train_cls = CONFIG_CLASSES[kind]
        model_names, train_names = set(model_cls.model_fields), set(train_cls.model_fields)
        try:
            model_config = from_dict(model_cls, {k: v for k, v in values.items() if k in model_names})
            train_config = from_dict(train_cls, {**{k: v for k, v in values.items() if k in train_names}, **extra})
        except ConfigError as exc:
            st.error(f"Not started: {exc}.")
            return
        start(jobs, model_config, train_config, name)

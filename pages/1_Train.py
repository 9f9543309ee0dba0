"""Train: configure a VAE or a semi-supervised M2, train it in the background, watch it live,
stop and resume it."""

import streamlit as st

from ui.common import RUNS, available_runs, job_manager, page_intro, plain, run_label, sidebar_run_picker
from ui.config_form import float_step, section_widgets
from vae_core.config import CONFIG_CLASSES, ConfigError, from_dict, with_changes
from vae_core.plots import training_curves
from vae_core.progress import format_seconds

st.set_page_config(page_title="Train · VAE Explorer", page_icon=":material/blur_on:", layout="wide")

sidebar_run_picker()
page_intro("Train", (
    "Choose a model and an objective and train it on this server. Each step draws a minibatch, "
    "samples z with the reparameterisation trick, and takes a gradient step on the negative ELBO "
    "(semi-supervised models add a labelled minibatch and a classification loss). "
    "Training runs in the background: the page stays responsive, and the job keeps going if you "
    "close the tab; anyone who opens this page sees it. A finished run appears in the model picker."))

jobs = job_manager()

KINDS = {"vae": "VAE (AEVB)", "m2": "semi-supervised M2 or M1+M2"}
# Quick, and leaving a core to the app. A 10-D style z did far better than the paper's 50 for M1+M2.
FORM_DEFAULTS = {"vae": {"latent_dim": 2, "epochs": 20, "num_threads": 1},
                 "m2": {"latent_dim": 10, "epochs": 30, "num_threads": 1}}
SECTIONS = [("model", "**Model**"), ("data", "**Data and objective**"), ("objective", None),
            ("optimiser", "**Optimiser**")]


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
        job = jobs.start(model_config, train_config, name)
        st.success(f"Started **{name}**: its progress is below.")
    except (ConfigError, RuntimeError) as exc:
        st.error(f"Not started: {exc}.")


def show_job(job) -> None:
    with st.container(border=True):
        title = job.run_dir.name if job.run_dir else job.label
        st.markdown(f"**{plain(title)}** · {job.status}")
        event = job.last_event or {}
        if job.status == "failed":
            st.error(f"Training failed: {plain(job.error or '')}")
        elif event:
            text = (f"epoch {event['epoch']}/{event['epochs']} · step {event['step']}/{event['steps_per_epoch']}"
                    f" · ETA {format_seconds(event.get('eta_seconds'))}")
            if not job.active:
                text = f"{job.status} after {len(job.epochs)} epochs"
            st.progress(job.fraction_done, text=text)
            live = {k: v for k, v in event.get("metrics", {}).items() if k.startswith("train_")}
            if job.active and live:
                cols = st.columns(len(live))
                for col, (k, v) in zip(cols, live.items()):
                    col.metric(k.replace("train_", "running ").replace("recon", "reconstruction")
                               .replace("elbo", "ELBO").replace("kl", "KL").replace("_", " "), f"{v:.2f}")
        else:
            st.progress(0.0, text="loading data and checking the model...")
        if job.epochs:
            # A semi-supervised run is followed by its validation accuracy first.
            curves = ({"accuracy": "validation accuracy", "elbo": "ELBO"} if "val_accuracy" in job.epochs[0]
                      else {"elbo": "ELBO", "recon": "reconstruction", "kl": "KL"})
            tabs = st.tabs(list(curves.values()))
            for tab, metric in zip(tabs, curves):
                tab.plotly_chart(training_curves([(title, job.epochs)], metric, height=300),
                                 config={"displayModeBar": False}, key=f"curve_{job.id}_{metric}")
        if job.active and st.button("Stop", key=f"stop_{job.id}",
                                    help="Ends after the current step and saves a checkpoint you can resume"):
            job.stop()
            st.toast(f"Stopping {title}...")


@st.fragment(run_every=1.0)
def job_list() -> None:
    all_jobs = jobs.jobs()
    ended = {job.id for job in all_jobs if not job.active}
    if ended - st.session_state.setdefault("jobs_seen_ended", ended):
        # A job just ended: rerun the whole page so the model picker and Resume list show it.
        st.session_state["jobs_seen_ended"] = ended
        st.rerun(scope="app")
    st.subheader("Jobs on this server")
    if not all_jobs:
        st.caption("No training jobs yet.")
    for job in all_jobs:
        show_job(job)


job_list()

st.subheader("Resume a run")
resumable = [r for r in available_runs() + available_runs("m2") if r.path.parent == RUNS]
if not resumable:
    st.caption("Runs you train appear here; a stopped run continues where it stopped, a finished one "
               "can be trained for more epochs.")
else:
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
    run = c1.selectbox("Run", resumable, format_func=lambda r: f"{r.name} ({r.record.summary.get('status')}, "
                                                               f"{len(r.record.epochs)} epochs)")
    done = len(run.record.epochs)
    total = c2.number_input("Total epochs", value=max(run.record.train_config.epochs, done + 1), step=1)
    run_lr = run.record.train_config.learning_rate
    lr = c3.number_input("Learning rate", value=run_lr, step=float_step(run_lr), format="%g",
                         key=f"resume_lr_{run.name}",
                         help="The step size from here on; a smaller one can settle a long run. "
                              "Each epoch's record keeps the one it used.")
    if c4.button("Resume"):
        try:
            with_changes(run.record.train_config, epochs=int(total), learning_rate=lr)
            if total <= done:
                raise ConfigError(f"epochs: resume needs more than the {done} epochs the run already has")
            jobs.resume(run.path, int(total), None if lr == run_lr else lr)
            st.success(f"Resuming **{run.name}** to {total} epochs"
                       + ("." if lr == run_lr else f" with learning rate {lr:g}."))
        except (ConfigError, RuntimeError) as exc:
            st.error(f"Not resumed: {exc}.")

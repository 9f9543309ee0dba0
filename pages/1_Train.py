"""Train: configure a VAE, train it in the background, watch it live, stop and resume it."""

import dataclasses

import streamlit as st

from ui.common import RUNS, available_runs, job_manager, page_intro, sidebar_model_picker
from vae_core import config as cfg
from vae_core.cli import format_seconds
from vae_core.plots import training_curves

st.set_page_config(page_title="Train · VAE Explorer", page_icon=":material/blur_on:", layout="wide")

sidebar_model_picker()
page_intro("Train", (
    "Choose a model and an objective and train it on this server. Each step draws a minibatch, "
    "samples z with the reparameterisation trick, and takes a gradient step on the negative ELBO. "
    "Training runs in the background: the page stays responsive, and the job keeps going if you "
    "close the tab; anyone who opens this page sees it. A finished run appears in the model picker."))

jobs = job_manager()

# The form shows the fields a user chooses; the image size follows the dataset.
MODEL_FIELDS = ("architecture", "latent_dim", "hidden_dim", "hidden_layers", "activation", "likelihood")
TRAIN_FIELDS = ("dataset", "binarization", "estimator", "objective", "num_samples", "beta", "warmup_epochs",
                "epochs", "batch_size", "learning_rate", "optimizer", "patience", "device", "seed",
                "num_threads", "max_train_examples", "compile")
FORM_DEFAULTS = {"latent_dim": 2, "epochs": 20, "num_threads": 1}  # quick, and leaves a core to the app
LABELS = {"latent_dim": "latent size", "hidden_dim": "hidden units", "num_samples": "samples L (k for iwae)",
          "warmup_epochs": "KL warm-up epochs", "num_threads": "CPU threads", "max_train_examples":
          "training images (0: all)", "beta": "KL weight beta", "compile": "torch.compile"}


def field_widget(field: dataclasses.Field, key: str):
    """A form widget for one config field, from its metadata; bounds are checked on Start."""
    meta = field.metadata
    default = FORM_DEFAULTS.get(field.name, field.default)
    label = LABELS.get(field.name, field.name.replace("_", " "))
    if isinstance(field.default, bool):
        return st.checkbox(label, value=default, help=meta["help"], key=key)
    if meta.get("choices"):
        return st.selectbox(label, meta["choices"], index=meta["choices"].index(default), help=meta["help"], key=key)
    if isinstance(field.default, int):
        return st.number_input(label, value=default, step=1, help=meta["help"], key=key)
    return st.number_input(label, value=float(default), format="%g", help=meta["help"], key=key)


def fields(cls, names):
    by_name = {f.name: f for f in cfg.field_specs(cls)}
    return [by_name[n] for n in names]


with st.form("train_form"):
    name = st.text_input("Run name", value="my-vae", max_chars=64,
                         help="Letters, digits, '.', '_' and '-'; other characters become '-'. "
                              "An existing name gets a number added, so no run is overwritten.")
    st.markdown("**Model**")
    model_values = {}
    for column, field in zip(st.columns(len(MODEL_FIELDS)), fields(cfg.ModelConfig, MODEL_FIELDS)):
        with column:
            model_values[field.name] = field_widget(field, f"form_{field.name}")
    st.markdown("**Data, objective and optimiser**")
    train_values = {}
    train_fields = fields(cfg.TrainConfig, TRAIN_FIELDS)
    columns = st.columns(6)
    for i, field in enumerate(train_fields):
        with columns[i % 6]:
            train_values[field.name] = field_widget(field, f"form_{field.name}")
    submitted = st.form_submit_button("Start training", type="primary")

if submitted:
    try:
        model_config = cfg.from_dict(cfg.ModelConfig, model_values)
        train_config = cfg.from_dict(cfg.TrainConfig, train_values)
        job = jobs.start(model_config, train_config, name)
        st.success(f"Started **{name}**: its progress is below.")
    except cfg.ConfigError as exc:
        st.error(f"Not started: {exc}.")
    except RuntimeError as exc:
        st.error(f"Not started: {exc}.")


def show_job(job) -> None:
    with st.container(border=True):
        title = job.run_dir.name if job.run_dir else job.label
        st.markdown(f"**{title}** · {job.status}")
        event = job.last_event or {}
        if job.status == "failed":
            st.error(f"Training failed: {job.error}")
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
                               .replace("elbo", "ELBO").replace("kl", "KL"), f"{v:.2f}")
        else:
            st.progress(0.0, text="loading data and checking the model...")
        if job.epochs:
            tabs = st.tabs(["ELBO", "reconstruction", "KL"])
            for tab, metric in zip(tabs, ("elbo", "recon", "kl")):
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
resumable = [r for r in available_runs() if r.path.parent == RUNS]
if not resumable:
    st.caption("Runs you train appear here; a stopped run continues where it stopped, a finished one "
               "can be trained for more epochs.")
else:
    c1, c2, c3 = st.columns([3, 1, 1])
    run = c1.selectbox("Run", resumable, format_func=lambda r: f"{r.name} ({r.checkpoint.summary.get('status')}, "
                                                               f"{len(r.checkpoint.epochs)} epochs)")
    done = len(run.checkpoint.epochs)
    total = c2.number_input("Total epochs", value=max(run.checkpoint.train_config.epochs, done + 1), step=1)
    if c3.button("Resume"):
        if total <= done:
            st.error(f"Resume needs more than the {done} epochs the run already has.")
        else:
            try:
                jobs.resume(run.path, int(total))
                st.success(f"Resuming **{run.name}** to {total} epochs.")
            except RuntimeError as exc:
                st.error(f"Not resumed: {exc}.")

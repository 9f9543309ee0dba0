"""The Train page's job cards (progress, live curves, Stop) and its Resume section."""

import streamlit as st

from ui.common import RUNS, available_runs, plain
from ui.config_form import float_step
from vae_core.config import ConfigError, with_changes
from vae_core.jobs import JobManager
from vae_core.plots import training_curves
from vae_core.progress import format_seconds


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
def job_list(jobs: JobManager) -> None:
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


def resume_section(jobs: JobManager) -> None:
    """Continue a stopped or finished run of this server's runs folder."""
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

"""The Train page's jobs, as one visitor (a browser session) sees the server's queue: their own
jobs first, waiting (with their place and Cancel) or training (progress, curves that grow every
step, Stop); then the rest of the queue in a line; their finished jobs folded into one line each
with "Explore this model", Resume and Delete; runs a restart interrupted, with Resume; and the
Resume section."""

from __future__ import annotations

import uuid
from pathlib import Path

import streamlit as st

from ui.common import PICKED, RUNS, available_runs, plain, run_label
from ui.config_form import float_step
from ui.learning_view import show_learning
from vae_core.config import ConfigError, with_changes
from vae_core.jobs import Job, JobManager
from vae_core.plots import training_curves
from vae_core.progress import format_seconds

VISITOR = "visitor_id"  # session key: who this browser session is, to the job queue
EXPLORE_PAGES = {"vae": "pages/2_Latent_space.py", "m2": "pages/6_Semi-supervised.py"}
CURVES = {"vae": {"elbo": "ELBO", "recon": "reconstruction", "kl": "KL"},
          "m2": {"accuracy": "validation accuracy", "elbo": "ELBO"}}  # an M2 is followed by its accuracy


def visitor_id() -> str:
    """This browser session's id, made on its first visit. A reload starts a new session, and
    with it a new visitor."""
    return st.session_state.setdefault(VISITOR, uuid.uuid4().hex)


class VisitorJobs:
    """The server's `JobManager` as one visitor uses it: what they start or resume counts as
    theirs (against the per-visitor limit, and for Stop and Delete)."""

    def __init__(self, jobs: JobManager, visitor: str):
        self.manager, self.visitor = jobs, visitor

    def start(self, model_config, train_config, name: str) -> Job:
        return self.manager.start(model_config, train_config, name, visitor=self.visitor)

    def resume(self, run_dir, epochs: int | None = None, learning_rate: float | None = None) -> Job:
        return self.manager.resume(run_dir, epochs, learning_rate, visitor=self.visitor)

    def __getattr__(self, name: str):
        return getattr(self.manager, name)


def visitor_jobs(jobs: JobManager) -> VisitorJobs:
    return jobs if isinstance(jobs, VisitorJobs) else VisitorJobs(jobs, visitor_id())


def _title(job: Job) -> str:
    return plain(job.run_dir.name if job.run_dir else job.label)


def _listed(job: Job):
    """The job's run as the model picker lists it, or None (not saved yet, or unreadable)."""
    if job.run_dir is None or job.deleted:
        return None
    return next((r for r in available_runs(job.kind) if r.path == job.run_dir), None)


def _curves(job: Job) -> None:
    """The job's curves: one point per epoch, and the running training values of the epoch in
    progress, so that they grow at every step."""
    rows = job.epochs + job.steps
    if not rows:
        return
    curves = CURVES.get(job.kind, CURVES["vae"])
    tabs = st.tabs(list(curves.values()))
    for tab, metric in zip(tabs, curves):
        tab.plotly_chart(training_curves([(job.run_dir.name if job.run_dir else job.label, rows)], metric,
                                         height=300),
                         config={"displayModeBar": False}, key=f"curve_{job.id}_{metric}")
    if job.steps:
        st.caption("Dashed: training values, at the end of each epoch and, in the epoch under way, the running "
                   "mean of its steps so far; solid: validation, at the end of each epoch.")


def show_job(jobs: VisitorJobs, job: Job) -> None:
    """A waiting or training job of this visitor: its place in the queue or its progress, live
    curves, and Cancel or Stop."""
    with st.container(border=True):
        st.markdown(f"**{_title(job)}** · {'waiting' if job.status == 'queued' else job.status}")
        event = job.last_event or {}
        if job.status == "queued":
            place = jobs.queue_position(job)
            ahead = "next to start" if place == 1 else f"{place - 1} jobs ahead of it"
            st.progress(0.0, text=f"waiting for a free training slot: number {place} in the queue, {ahead}")
        elif event.get("kind") in ("start", "step", "epoch"):
            st.progress(job.fraction_done, text=(
                f"epoch {event['epoch']}/{event['epochs']} · step {event['step']}/{event['steps_per_epoch']}"
                f" · ETA {format_seconds(event.get('eta_seconds'))}"))
            live = {k: v for k, v in event.get("metrics", {}).items() if k.startswith("train_")}
            if event["kind"] == "step" and live:
                cols = st.columns(len(live))
                for col, (k, v) in zip(cols, live.items()):
                    col.metric(k.replace("train_", "running ").replace("recon", "reconstruction")
                               .replace("elbo", "ELBO").replace("kl", "KL").replace("_", " "), f"{v:.2f}")
        else:
            st.progress(0.0, text="starting: loading the data and checking the model...")
        show_learning(job)  # a 2-D VAE's latent map, live
        _curves(job)
        label, help_text = (("Cancel", "Leave the queue; nothing was trained yet") if job.status == "queued" else
                            ("Stop", "Ends after the current step and saves a checkpoint you can resume"))
        st.button(label, key=f"stop_{job.id}", help=help_text, on_click=_stop, args=(jobs, job))


def _stop(jobs: VisitorJobs, job: Job) -> None:
    """Cancel or Stop, before the page is drawn again, so that it shows the job's new state."""
    jobs.stop(job, visitor=jobs.visitor)


def _others_line(jobs: VisitorJobs, others: list[Job]) -> None:
    if not others:
        return
    parts = []
    for job in others[::-1][:12]:
        if job.status == "queued":
            since = ", since before the server restarted" if job.restored else ""
            parts.append(f"{_title(job)} (waiting, number {jobs.queue_position(job)}{since})")
        else:
            event = job.last_event or {}
            where = f", epoch {event['epoch']}/{event['epochs']}" if event.get("epochs") else ""
            parts.append(f"{_title(job)} (training{where})")
    more = f" and {len(others) - 12} more" if len(others) > 12 else ""
    st.caption("Other visitors' jobs: " + "; ".join(parts) + more + ".")


def _newest_per_run(all_jobs: list[Job]) -> set[int]:
    """The ids of the jobs to show: of several jobs of one run (a run resumed), only the newest."""
    seen, keep = set(), set()
    for job in all_jobs:  # newest first
        key = str(job.run_dir.resolve()) if job.run_dir is not None else f"job-{job.id}"
        if key not in seen:
            seen.add(key)
            keep.add(job.id)
    return keep


@st.fragment(run_every=1.0)
def job_list(jobs: JobManager) -> None:
    """This visitor's waiting and training jobs, refreshed every second, and a line on the rest
    of the server's queue. When one of the server's jobs ends, the whole page is rerun, so the
    model picker, the finished jobs and the Resume list show it."""
    jobs = visitor_jobs(jobs)
    all_jobs = jobs.jobs()
    ended = {job.id for job in all_jobs if not job.active}
    if ended - st.session_state.setdefault("jobs_seen_ended", ended):
        st.session_state["jobs_seen_ended"] = ended
        st.rerun(scope="app")
    mine = [j for j in all_jobs if j.active and j.visitor == jobs.visitor]
    others = [j for j in all_jobs if j.active and j.visitor != jobs.visitor]
    if not mine and not others:
        return
    limits = jobs.limits
    st.subheader("Your training jobs" if mine else "Training on this server")
    st.caption(f"This server trains {limits.max_running} job{'s' if limits.max_running > 1 else ''} at a time "
               f"({jobs.running()} training now, {jobs.waiting()} waiting); the others wait in turn"
               + (f". You may have {limits.per_visitor} training or waiting." if limits.per_visitor else "."))
    for job in mine:
        show_job(jobs, job)
    _others_line(jobs, others)


def _explore(kind: str, label: str) -> None:
    """Pick a run in the sidebar's model picker (on every page)."""
    st.session_state[f"{PICKED}_{kind}"] = label
    st.session_state.pop(f"model_picker_{kind}", None)  # the picker starts again from PICKED


def _ended_row(jobs: VisitorJobs, job: Job) -> None:
    """A finished, stopped or failed job of this visitor, in a line, with what can be
    done next; its curves and latent map folded away."""
    run = _listed(job)
    with st.container(border=True):
        if job.status == "failed":
            st.markdown(f"**{_title(job)}** · failed")
            st.error(f"Training failed: {plain(job.error or '')}")
        else:
            st.progress(job.fraction_done, text=f"**{_title(job)}** · {job.status} after {len(job.epochs)} epochs")
        row = st.container(horizontal=True)
        if run is not None and run.record.summary.get("status") != "interrupted":
            if row.button("Explore this model", key=f"explore_{job.id}", type="primary",
                          icon=":material/travel_explore:", on_click=_explore, args=(job.kind, run_label(run)),
                          help="Open this run on the " + ("Latent space" if job.kind == "vae" else "Semi-supervised")
                               + " page, chosen in the sidebar's model picker"):
                st.switch_page(EXPLORE_PAGES[job.kind])
        if run is not None and len(run.record.epochs) < run.record.train_config.epochs and \
                job.status in ("stopped", "failed"):
            if row.button("Resume", key=f"resume_{job.id}",
                          help=f"Continue from the last checkpoint (epoch {len(run.record.epochs)}) to "
                               f"{run.record.train_config.epochs} epochs"):
                _resume(jobs, run)
        confirm = f"confirm_delete_{job.id}"
        if run is not None and jobs.can_delete(run.path, jobs.visitor) is None:
            if row.button("Delete run", key=f"delete_{job.id}", icon=":material/delete:",
                          help="Remove this run and its checkpoints from the server (you will be asked to confirm)"):
                st.session_state[confirm] = True
            if st.session_state.get(confirm):
                st.warning(f"Delete **{_title(job)}** and all its checkpoints from the server? This cannot be undone.")
                yes, no = st.columns(2)
                if yes.button("Delete for good", key=f"delete_yes_{job.id}", type="primary"):
                    st.session_state.pop(confirm, None)
                    try:
                        jobs.delete(run.path, jobs.visitor)
                        st.toast(f"Deleted {_title(job)}")
                    except RuntimeError as exc:
                        st.error(f"{exc}.")
                        return
                    st.rerun()
                if no.button("Keep it", key=f"delete_no_{job.id}"):
                    st.session_state.pop(confirm, None)
                    st.rerun()
        if job.epochs:
            with st.expander("Curves" + (" and the latent map" if job.kind == "vae" else "")):
                show_learning(job)  # a 2-D VAE's latent map, replayed
                _curves(job)


def _resume(jobs: VisitorJobs, run) -> None:
    try:
        job = jobs.resume(run.path)
    except (ConfigError, RuntimeError) as exc:
        st.error(f"Not resumed: {exc}.")
        return
    where = "" if job.status != "queued" else f"; it waits its turn (number {jobs.queue_position(job)})"
    st.toast(f"Resuming {plain(run.name)}{where}")
    st.rerun()


def ended_jobs(jobs: JobManager) -> None:
    """This visitor's ended jobs, newest first, one line each (a resumed run shows only its newest
    job)."""
    jobs = visitor_jobs(jobs)
    all_jobs = jobs.jobs()
    keep = _newest_per_run(all_jobs)
    mine = [j for j in all_jobs if not j.active and j.visitor == jobs.visitor and j.id in keep and not j.deleted
            and j.status != "cancelled"]
    if not mine:
        return
    st.markdown("**Your finished jobs**")
    for job in mine:
        _ended_row(jobs, job)


def interrupted_runs(jobs: JobManager) -> None:
    """Runs of this server that were training when their process ended without saving its end (a
    server restart, a killed process): each resumes from its last complete epoch."""
    jobs = visitor_jobs(jobs)
    busy = {str(j.run_dir.resolve()) for j in jobs.jobs() if j.run_dir is not None}
    runs = [r for r in available_runs() + available_runs("m2") if r.path.parent == RUNS
            and r.record.summary.get("status") == "interrupted" and str(r.path.resolve()) not in busy]
    if not runs:
        return
    with st.container(border=True):
        st.markdown("**Interrupted runs**: they were training when the server restarted or their process was "
                    "killed. Each resumes from the end of its last complete epoch.")
        for run in runs:
            text, button = st.columns([3, 1], vertical_alignment="center")
            text.markdown(f"{plain(run.name)} · interrupted after epoch {len(run.record.epochs)} of "
                          f"{run.record.train_config.epochs}")
            if button.button("Resume", key=f"resume_interrupted_{run.name}"):
                _resume(jobs, run)


def resume_section(jobs: JobManager) -> None:
    """Continue a stopped, interrupted or finished run of this server's runs folder."""
    jobs = visitor_jobs(jobs)
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


def jobs_area(jobs: JobManager) -> None:
    """What goes at the top of the Train page: the visitor's jobs, their finished ones and the
    interrupted runs."""
    for problem in jobs.limits.problems:
        st.warning(f"Job queue setting ignored: {problem}.")
    for problem in jobs.problems:  # waiting jobs from before a restart that could not be queued again
        st.warning(f"{plain(problem)}.")
    job_list(jobs)
    ended_jobs(jobs)
    interrupted_runs(jobs)

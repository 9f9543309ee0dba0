"""Exploration helpers behind the pages, and background training jobs."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from vae_core.checkpoints import read_checkpoint
from vae_core.cli import build_parser, configs_from_args
from vae_core.config import M2Config, M2TrainConfig, ModelConfig, TrainConfig
from vae_core.data import load_dataset, synthetic_dataset
from vae_core.jobs import JobManager, config_json
from vae_core.registry import load_model
from vae_core.vae import explore

ROOT = Path(__file__).resolve().parent.parent


def test_manifold_grid_tiles_decoded_quantiles_in_paper_orientation(trained_run):
    model, _ = load_model(trained_run)
    n = 5
    grid = explore.manifold_grid(model, n)
    assert grid.shape == (n * 28, n * 28) and 0 <= grid.min() and grid.max() <= 1
    q = explore.gaussian_quantiles(n)
    assert q[0] == pytest.approx(-1.6449, abs=1e-3) and q[-1] == pytest.approx(1.6449, abs=1e-3)
    top_left = explore.decode(model, np.array([[q[0], q[-1]]]))[0]  # z1 smallest, z2 largest
    np.testing.assert_allclose(grid[:28, :28], top_left, atol=1e-6)


def test_interpolation_endpoints_and_slerp_norm():
    rng = np.random.default_rng(0)
    z0, z1 = rng.normal(size=20), rng.normal(size=20)
    for method in ("linear", "spherical"):
        path = explore.interpolate(z0, z1, 7, method)
        assert path.shape == (7, 20)
        np.testing.assert_allclose(path[0], z0, atol=1e-5)
        np.testing.assert_allclose(path[-1], z1, atol=1e-5)
    linear, slerp = explore.interpolate(z0, z1, 7, "linear"), explore.interpolate(z0, z1, 7, "spherical")
    # the linear midpoint cuts through the low-norm centre, slerp stays out near the shell
    assert np.linalg.norm(slerp[3]) > np.linalg.norm(linear[3])
    fade = explore.crossfade(np.zeros((2, 2)), np.ones((2, 2)), 3)
    np.testing.assert_allclose(fade[:, 0, 0], [0.0, 0.5, 1.0])


def test_pca_projection_finds_the_spread_direction():
    rng = np.random.default_rng(1)
    z = np.zeros((500, 5), dtype=np.float32)
    z[:, 2] = rng.normal(size=500) * 3
    z[:, 4] = rng.normal(size=500) * 0.5
    projection = explore.pca_projection(z)
    assert abs(projection.components[2, 0]) == pytest.approx(1.0, abs=1e-3)
    assert projection.explained[0] > 0.9
    coordinates = explore.coordinate_projection(5, (4, 2))
    np.testing.assert_allclose(coordinates(z), z[:, [4, 2]])


def test_analysing_an_image_scores_digits_above_noise(trained_run):
    model, _ = load_model(trained_run)
    digit = synthetic_dataset().test.images[0, 0].numpy()
    noise = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    good, bad = explore.analyse_image(model, digit), explore.analyse_image(model, noise)
    assert good.reconstruction.shape == (28, 28) and good.mu.shape == good.std.shape == (2,)
    assert explore.image_log_likelihood(model, digit, 200) >= good.elbo - 1.0
    assert good.elbo > bad.elbo + 50
    reference = explore.per_image_elbo(model, synthetic_dataset().test.images.bernoulli())
    assert explore.percentile_among(bad.elbo, reference) == 0.0
    assert explore.percentile_among(float(np.median(reference)) + 1, reference) >= 50
    assert "higher than 0% of the test digits" in explore.score_sentence("ELBO", bad.elbo, reference)


def test_a_blank_image_can_outscore_a_real_digit():
    """The caveat the Reconstruct page teaches: the ELBO is no test of looking like a digit."""
    model, _ = load_model(ROOT / "checkpoints" / "mnist-mlp-z20")
    digit = load_dataset("mnist").test.images[0, 0].numpy()
    scores = {s.name: s.elbo for s in explore.likelihood_surprises(model, digit)}
    assert scores["a blank image"] > scores["this digit"] and scores["one thin stroke"] > scores["this digit"]


@pytest.mark.parametrize("configs", [
    (ModelConfig(latent_dim=7, hidden_dim=33, activation="relu"),
     TrainConfig(learning_rate=3.5e-4, beta=0.25, compile=True, dataset="synthetic", backward="autograd")),
    (M2Config(latent_dim=5, classifier_layers=2),
     M2TrainConfig(num_labels=600, m1_run="runs/m1", labelled_repeats=0.0, alpha_scale=0.3))], ids=["vae", "m2"])
def test_a_jobs_configs_reach_the_training_process_exactly(configs):
    model_config, train_config = configs
    args = build_parser().parse_args(["train", "--config-json", config_json(model_config, train_config)])
    kind, model_again, train_again = configs_from_args(args)
    assert (model_again, train_again) == (model_config, train_config)
    assert kind == ("m2" if isinstance(train_config, M2TrainConfig) else "vae")


def test_jobs_run_stop_resume_and_report_failures(tmp_path):
    manager = JobManager(tmp_path, max_running=1)
    tiny = ModelConfig(latent_dim=2, hidden_dim=8)
    job = manager.start(tiny, TrainConfig(dataset="synthetic", epochs=10_000, num_threads=1), "long ../run")
    second = manager.start(tiny, TrainConfig(dataset="synthetic", epochs=1), "second")
    assert second.status == "queued" and manager.queue_position(second) == 1
    second.stop()  # a waiting job is cancelled at once
    assert second.status == "cancelled" and manager.queue_position(second) is None and second.process is None
    deadline = time.monotonic() + 60
    while len(job.epochs) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    job.stop()
    assert manager.wait(job, 60) and job.status == "stopped", job.error
    assert job.run_dir.parent == tmp_path and job.run_dir.name == "long-run"
    stopped_epochs = len(read_checkpoint(job.run_dir).epochs)
    resumed = manager.resume(job.run_dir, epochs=stopped_epochs + 2)
    assert manager.wait(resumed, 60) and resumed.status == "finished", resumed.error
    assert len(read_checkpoint(job.run_dir).epochs) == stopped_epochs + 2

    failing = manager.start(tiny, TrainConfig(dataset="fashion-mnist", epochs=1), "offline")
    assert manager.wait(failing, 60) and failing.status == "failed"
    assert "could not download fashion-mnist" in failing.error


# --- the Train page's jobs, as one visitor sees them (AppTest) ---------------------------------

def _page_as(visitor: str, page: str = "pages/1_Train.py"):
    from apptest_helpers import open_page
    at = open_page()
    at.session_state["visitor_id"] = visitor
    return at.switch_page(page).run()


def _in_order(at) -> list[str]:
    """The page's headings, markdown and progress texts, in the order they are shown."""
    from apptest_helpers import walk
    out = []
    for node in walk(at.main):
        kind = type(node).__name__
        if kind in ("Markdown", "Caption", "Subheader"):
            out.append(str(node.value))
        elif kind == "Progress":
            out.append(node.proto.text)
    return out


def _wait(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def server_jobs():
    """The app's job manager, limits restored and every job ended after the test."""
    import dataclasses
    from ui.common import job_manager
    manager = job_manager()
    limits = manager.limits
    yield manager
    for job in manager.active_jobs():
        job.stop()
    for job in manager.jobs():
        manager.wait(job, 60)
    manager.limits = dataclasses.replace(limits)


def test_a_visitors_jobs_come_first_with_their_place_in_the_queue_cancel_and_growing_curves(server_jobs):
    import dataclasses
    from apptest_helpers import errors
    server_jobs.limits = dataclasses.replace(server_jobs.limits, max_running=1)
    # About a second an epoch on a quiet CPU, never stopping early: progress lines inside each epoch.
    slow = TrainConfig(dataset="synthetic", epochs=10_000, batch_size=2, num_threads=1, patience=0)
    others = server_jobs.start(ModelConfig(latent_dim=2, hidden_dim=1000), slow, "someone-elses", visitor="bob")
    mine = server_jobs.start(ModelConfig(latent_dim=2, hidden_dim=8), TrainConfig(dataset="synthetic", epochs=1),
                             "mine-waits", visitor="ann")
    at = _page_as("ann")
    assert not at.exception and not errors(at)
    shown = _in_order(at)
    card = next(i for i, t in enumerate(shown) if t.startswith("**mine-waits** · waiting"))
    form = next(i for i, t in enumerate(shown) if "Quick demo" in t or "What to train" in t or "preset" in t.lower())
    assert card < form, shown  # the job before the form
    assert any("number 1 in the queue, next to start" in t for t in shown)
    assert any(t.startswith("Other visitors' jobs: someone-elses (training") for t in shown)
    assert not any(b.key == f"stop_{others.id}" for b in at.button)  # not ann's to stop
    at.button(key=f"stop_{mine.id}").click().run()
    assert mine.status == "cancelled" and mine.process is None
    assert not any(t.startswith("**mine-waits** · waiting") for t in _in_order(at))

    # bob's page: his job's curves grow during an epoch (batches of 2: 256 steps an epoch).
    bob = _page_as("bob")
    for _ in range(5):  # until a page is drawn with two steps of one epoch (an epoch may end meanwhile)
        _wait(lambda: len(others.steps) >= 2)
        done = len(others.epochs)
        bob.run()
        spec = next(s for s in (json.loads(c.proto.spec) for c in bob.get("plotly_chart"))
                    if s["layout"].get("yaxis", {}).get("title", {}).get("text", "").startswith("ELBO"))
        train = next(t for t in spec["data"] if t["name"].endswith("(train)"))
        partial = [x for x in train["x"] if done < x < done + 1]
        if len(others.epochs) == done:
            break
    assert len(partial) >= 2, train["x"]  # points inside the epoch under way, before it ends
    assert train["x"][:done] == list(range(1, done + 1))  # then one point per finished epoch
    assert spec["layout"]["xaxis"]["dtick"] == 1 and spec["layout"]["xaxis"]["tickformat"] == "d"
    assert "running mean of its steps" in "\n".join(_in_order(bob))


def test_a_finished_job_folds_away_offers_explore_and_delete_and_a_resumed_runs_old_card_goes(server_jobs):
    from apptest_helpers import errors, texts
    from ui.common import RUNS
    job = server_jobs.start(ModelConfig(latent_dim=2, hidden_dim=8), TrainConfig(dataset="synthetic", epochs=1),
                            "explore me", visitor="cy")
    assert server_jobs.wait(job, 120) and job.status == "finished", job.error
    at = _page_as("cy")
    assert not at.exception and not errors(at)
    assert any("finished after 1 epochs" in t for t in _in_order(at))
    assert [e.label for e in at.expander if e.label.startswith("Curves")] == ["Curves and the latent map"]
    assert not any(b.key == f"stop_{job.id}" for b in at.button)

    # Resume it: the stopped-or-finished card of the run is replaced by the new job's.
    resumed = server_jobs.resume(job.run_dir, epochs=2, visitor="cy")
    assert server_jobs.wait(resumed, 120) and resumed.status == "finished", resumed.error
    at.run()
    assert sum(t.startswith(f"**{job.run_dir.name}**") for t in _in_order(at)) == 1
    assert any("finished after 2 epochs" in t for t in _in_order(at))

    # The curves page preselects the run saved last.
    curves = _page_as("cy", "pages/5_Training_curves.py")
    assert curves.multiselect[0].value[0] == job.run_dir.name

    # Explore this model: the Latent space page, with the new run picked in the sidebar.
    at = _page_as("cy")
    at.button(key=f"explore_{resumed.id}").click().run()
    assert not at.exception and not errors(at)
    assert at.sidebar.selectbox[0].value == job.run_dir.name
    assert "Latent space" in [t.value for t in at.title]

    # Delete it, after a confirmation; another visitor is not offered it.
    other = _page_as("dan")
    assert not any(b.key == f"delete_{resumed.id}" for b in other.button)
    at = _page_as("cy")
    at.button(key=f"delete_{resumed.id}").click().run()
    assert "This cannot be undone" in texts(at) and job.run_dir.exists()
    at.button(key=f"delete_no_{resumed.id}").click().run()
    assert job.run_dir.exists() and "This cannot be undone" not in texts(at)
    at.button(key=f"delete_{resumed.id}").click().run()
    at.button(key=f"delete_yes_{resumed.id}").click().run()
    assert not at.exception and not errors(at)
    assert not job.run_dir.exists() and job.run_dir.parent == RUNS
    assert not any(t.startswith(f"**{job.run_dir.name}**") for t in _in_order(at))


def test_a_run_left_training_by_a_restart_shows_as_interrupted_with_resume(server_jobs, trained_run):
    import shutil
    from apptest_helpers import errors
    from ui.common import RUNS
    run = RUNS / "left-by-a-restart"
    shutil.copytree(trained_run, run)
    history = next(run.glob("state-*/history.json"))
    data = json.loads(history.read_text())
    data["summary"]["status"] = "running"
    data["epochs"] = data["epochs"][:5]  # 5 of its 8 epochs saved
    history.write_text(json.dumps(data))
    try:
        at = _page_as("eve")
        assert not at.exception and not errors(at)
        shown = _in_order(at)
        assert "left-by-a-restart · interrupted after epoch 5 of 8" in shown
        resume_box = next(b for b in at.selectbox if b.label == "Run")
        assert any(o.startswith("left-by-a-restart (interrupted, 5 epochs)") for o in resume_box.options)
    finally:
        shutil.rmtree(run)

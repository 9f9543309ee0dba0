"""Exploration helpers behind the pages, and background training jobs."""

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

"""The Train page's presets and plain-worded form, and the replay of a 2-D VAE's latent map
(AppTest)."""

import base64
import json
import time

import numpy as np
import pytest
from apptest_helpers import errors, open_page, texts

from ui.train_form import PRESETS
from vae_core.config import to_dict
from vae_core.snapshots import FILENAME, read_snapshots


def _jobs():
    from ui.common import job_manager
    return job_manager()


def _stop_and_wait(job, timeout=120):
    _jobs().stop(job)
    deadline = time.monotonic() + timeout
    while job.active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not job.active


def _started_configs(job) -> dict:
    return json.loads(job.argv[job.argv.index("--config-json") + 1])


def _array(values) -> np.ndarray:
    """A Plotly figure's array, plain or typed (base64 with its dtype)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


def test_the_presets_come_first_and_each_starts_its_model_in_one_click():
    at = open_page("pages/1_Train.py")
    assert not at.exception and not errors(at)
    assert at.button[0].key == "preset_start_quick-demo"  # before every other control of the form
    assert [b.key for b in at.button if b.key and b.key.startswith("preset_start_")] == \
        ["preset_start_quick-demo", "preset_start_paper-vae", "preset_start_m2-100-labels"]
    assert "Advanced: every setting" in [e.label for e in at.expander]
    count = len(_jobs().jobs())
    at.button(key="preset_start_quick-demo").click().run()
    assert not at.exception and not errors(at) and "Started **quick-demo**" in texts(at)
    job = _jobs().jobs()[0]
    try:
        assert len(_jobs().jobs()) == count + 1 and job.label == "quick-demo"
        configs = _started_configs(job)
        model_config, train_config = PRESETS[0].configs()
        assert configs["kind"] == "vae" and configs["model"] == to_dict(model_config)
        assert configs["model"]["latent_dim"] == 2 and 0 < configs["training"]["max_train_examples"] <= 20_000
        assert {k: v for k, v in configs["training"].items() if k != "num_threads"} == \
            {k: v for k, v in to_dict(train_config).items() if k != "num_threads"}
    finally:
        _stop_and_wait(job)


def test_a_name_typed_for_a_preset_names_the_run():
    at = open_page("pages/1_Train.py")
    at.text_input(key="preset_name").set_value("my paper model")
    at.button(key="preset_start_paper-vae").click().run()
    assert not at.exception and "Started **my paper model**" in texts(at)
    job = _jobs().jobs()[0]
    try:
        configs = _started_configs(job)
        assert job.label == "my paper model"
        assert (configs["model"]["hidden_dim"], configs["model"]["latent_dim"]) == (500, 20)
        assert configs["training"]["optimizer"] == "adagrad" and configs["training"]["batch_size"] == 100
    finally:
        _stop_and_wait(job)


def test_adjust_fills_the_advanced_form_with_a_preset():
    at = open_page("pages/1_Train.py")
    at.button(key="preset_fill_m2-100-labels").click().run()
    assert not at.exception and not errors(at) and len(at.warning) == 0
    assert at.radio(key="train_kind").value == "m2"
    assert at.selectbox(key="form_m2_inputs").value == "m1-mnist-z50 (shipped)"
    assert at.number_input(key="form_m2_num_labels").value == 100
    assert at.number_input(key="form_m2_latent_dim").value == 10
    assert at.text_input(key="form_m2_name").value == "m2-100-labels"
    assert any("preset's settings are below" in i.value for i in at.info)
    at.button(key="preset_fill_paper-vae").click().run()
    assert not at.exception and len(at.warning) == 0 and at.radio(key="train_kind").value == "vae"
    assert at.selectbox(key="form_optimizer").value == "adagrad"
    assert at.number_input(key="form_learning_rate").value == pytest.approx(0.02)
    assert at.number_input(key="form_learning_rate").step == pytest.approx(0.001)
    assert at.number_input(key="form_latent_dim").value == 20


def test_the_form_speaks_plainly():
    at = open_page("pages/1_Train.py")
    estimator, binarization = at.selectbox(key="form_estimator"), at.selectbox(key="form_binarization")
    assert estimator.label == "ELBO estimator" and "exactly (eq. 7)" in estimator.help
    assert estimator.options == ["B: exact KL (eq. 7)", "A: sampled KL (eq. 6)"]
    assert binarization.label == "black-and-white pixels" and "black with its grey level" in binarization.help
    samples, warmup = at.number_input(key="form_num_samples"), at.number_input(key="form_warmup_epochs")
    assert samples.label == "samples of z per image (L or k)" and "k for the IWAE bound" in samples.help
    assert warmup.label == "KL warm-up (epochs)" and "grows in a straight line" in warmup.help
    for widget in [*at.number_input, *at.selectbox, *at.checkbox]:
        if widget.key and widget.key.startswith("form_"):
            assert widget.help and "_" not in widget.label, widget.key  # words, not field names


def test_a_quick_demo_adjusted_to_tiny_data_trains_and_its_map_replays():
    at = open_page("pages/1_Train.py")
    at.button(key="preset_fill_quick-demo").click().run()
    assert at.number_input(key="form_max_train_examples").value == PRESETS[0].training["max_train_examples"]
    assert at.selectbox(key="form_activation").value == "relu"
    at.text_input(key="form_name").set_value("tiny demo")
    at.selectbox(key="form_dataset").select("synthetic")
    at.number_input(key="form_hidden_dim").set_value(32)
    at.number_input(key="form_epochs").set_value(3)
    at.button(key="form_start").click().run()
    assert not at.exception and not errors(at) and "Started **tiny demo**" in texts(at)
    job = _jobs().jobs()[0]
    assert _jobs().wait(job, timeout=180) and job.status == "finished", job.error
    snaps = read_snapshots(job.run_dir)  # the untrained map, every 3 s, and each epoch's end
    assert snaps.epochs[0] == 0.0 and {1.0, 2.0, 3.0} <= set(snaps.epochs.tolist())

    page = open_page("pages/5_Training_curves.py")
    page.sidebar.selectbox[0].select("tiny-demo").run()
    slider = page.select_slider(key="replay_replay")
    assert slider.value == len(snaps) - 1 and slider.options[-1] == "epoch 3.00"

    def map_points(at):
        spec = json.loads(next(c for c in at.get("plotly_chart") if "replay_map" in c.proto.id).proto.spec)
        return {trace["name"]: np.stack([_array(trace["x"]), _array(trace["y"])], axis=1) for trace in spec["data"]}

    last = map_points(page)
    slider.set_value(0).run()
    assert not page.exception and "after 0.00 epochs" in texts(page)
    first = map_points(page)
    for digit, points in first.items():
        np.testing.assert_allclose(points, snaps.means[0][snaps.labels == int(digit)].astype(np.float32), atol=1e-3)
    assert not np.allclose(first["1"], last["1"])

    (job.run_dir / FILENAME).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")  # damaged
    page.run()
    assert not page.exception and not errors(page)
    assert any("history cannot be shown" in c.value and f"tiny-demo/{FILENAME}" in c.value for c in page.caption)
    assert not [c for c in page.get("plotly_chart") if "replay_map" in c.proto.id]


def test_runs_without_snapshots_have_no_replay():
    page = open_page("pages/5_Training_curves.py")  # the shipped 2-D model, trained before snapshots
    assert not page.exception and not errors(page)
    assert not [s for s in page.get("select_slider") if s.key == "replay_replay"]

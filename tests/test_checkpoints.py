"""Run folders: round trips, atomic saves, listing, and clear errors for bad checkpoints."""

import json
import pickle

import pytest
import torch

from vae_core import checkpoints as ckpts
from vae_core.checkpoints import read_checkpoint
from vae_core.commands import resume
from vae_core.registry import load_model
from vae_core.store import CheckpointError, create_run_dir, list_runs, sanitize_run_name, state_folder


def _state(run):
    return state_folder(run)


def test_round_trip_is_bit_identical(trained_run, tmp_path):
    model, ckpt = load_model(trained_run)
    again, ckpt2 = load_model(trained_run)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key])
    ckpts.save_checkpoint(tmp_path / "copy", kind="vae", model_config=ckpt.model_config,
                          train_config=ckpt.train_config, weights=model.state_dict(), history=ckpt.history)
    copy, copy_ckpt = load_model(tmp_path / "copy")
    for key, value in model.state_dict().items():
        assert torch.equal(value, copy.state_dict()[key]) and value.dtype == copy.state_dict()[key].dtype
    assert copy_ckpt.model_config == ckpt.model_config and copy_ckpt.train_config == ckpt.train_config
    assert copy_ckpt.history == ckpt.history


def test_a_run_folder_holds_safetensors_and_json_only(trained_run):
    files = {p.name for p in _state(trained_run).iterdir()}
    assert files <= {"config.json", "history.json", "weights.safetensors", "best.safetensors", "trainer.safetensors"}
    assert {"config.json", "history.json", "weights.safetensors", "trainer.safetensors"} <= files
    assert json.loads((_state(trained_run) / "config.json").read_text())["model"]["latent_dim"] == 2


def _copy(run, tmp_path):
    import shutil
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


@pytest.mark.parametrize("damage, file, phrase", [
    (lambda s: (s.parent / "run.json").unlink(), "run.json", "missing"),
    (lambda s: (s.parent / "run.json").write_text("{not json"), "run.json", "not valid JSON"),
    (lambda s: (s.parent / "run.json").write_text('{"format": "vae-explorer-run", "version": 99, "state": "state-000001"}'),
     "run.json", "version 99"),
    (lambda s: (s.parent / "run.json").write_text('{"format": "vae-explorer-run", "version": 1, "state": "../../etc"}'),
     "run.json", "bad state folder name"),
    (lambda s: (s / "config.json").write_text('{"kind": "vae"}'), "config.json", "needs the keys"),
    (lambda s: (s / "config.json").write_bytes((s / "config.json").read_bytes()[:40]), "config.json", "truncated"),
    (lambda s: (s / "history.json").unlink(), "history.json", "missing"),
    (lambda s: (s / "weights.safetensors").write_bytes((s / "weights.safetensors").read_bytes()[:1000]),
     "weights.safetensors", "corrupt or truncated"),
    (lambda s: (s / "weights.safetensors").write_bytes(pickle.dumps({"a": 1})), "weights.safetensors", "corrupt"),
])
def test_bad_checkpoints_give_clear_errors(trained_run, tmp_path, damage, file, phrase):
    run = _copy(trained_run, tmp_path)
    damage(_state(run))
    with pytest.raises(CheckpointError, match=phrase) as info:
        load_model(run)
    assert info.value.path.name == file


def _rewrite_config(run, **model_changes):
    path = _state(run) / "config.json"
    data = json.loads(path.read_text())
    data["model"].update(model_changes)
    path.write_text(json.dumps(data))


def test_mismatched_config_names_the_weights_and_the_shape(trained_run, tmp_path):
    run = _copy(trained_run, tmp_path)
    _rewrite_config(run, latent_dim=3)
    with pytest.raises(CheckpointError, match=r"weights.safetensors: weight encoder.3.weight has shape \(4, 64\) but the config needs \(6, 64\)"):
        load_model(run)
    _rewrite_config(run, latent_dim=2, architecture="conv")
    with pytest.raises(CheckpointError, match="weights do not match the config: missing"):
        load_model(run)
    _rewrite_config(run, architecture="mlp", latent_dim=-1)
    with pytest.raises(CheckpointError, match="config.json: invalid config: latent_dim"):
        load_model(run)


def test_a_save_killed_midway_leaves_the_previous_checkpoint_loadable(trained_run, tmp_path, monkeypatch):
    run = _copy(trained_run, tmp_path)
    before, _ = load_model(run)
    ckpt = read_checkpoint(run, with_training_state=True)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(ckpts, "safetensors_bytes", crash)
    zeros = {k: torch.zeros_like(v) for k, v in ckpt.weights.items()}
    with pytest.raises(KeyboardInterrupt):
        ckpts.save_checkpoint(run, kind="vae", model_config=ckpt.model_config, train_config=ckpt.train_config,
                              weights=zeros, history=ckpt.history)
    monkeypatch.undo()
    after, _ = load_model(run)
    for key, value in before.state_dict().items():
        assert torch.equal(value, after.state_dict()[key])
    # the next successful save sweeps the half-written folder away
    ckpts.save_checkpoint(run, kind="vae", model_config=ckpt.model_config, train_config=ckpt.train_config,
                          weights=zeros, history=ckpt.history)
    assert len([p for p in run.iterdir() if p.name.startswith("state-")]) == 1
    assert torch.equal(load_model(run)[0].state_dict()["decoder.0.bias"], zeros["decoder.0.bias"])


def test_run_names_are_sanitised_and_never_shared(tmp_path):
    assert sanitize_run_name("../../etc/passwd") == "etc-passwd"
    assert sanitize_run_name("...") == "run"
    assert sanitize_run_name("my run: z=2") == "my-run-z-2"
    first, second = create_run_dir(tmp_path, "same"), create_run_dir(tmp_path, "same")
    assert first != second and first.parent == second.parent == tmp_path
    assert create_run_dir(tmp_path, "../escape").parent == tmp_path


def test_list_runs_reports_good_and_broken_runs(trained_run, tmp_path):
    broken = create_run_dir(tmp_path, "broken")
    (broken / "run.json").write_text("garbage")
    (tmp_path / "not-a-run").mkdir()
    runs = list_runs(trained_run.parent, tmp_path, tmp_path / "missing")
    by_name = {r.name: r for r in runs}
    assert by_name["tiny"].record is not None and by_name["tiny"].error is None
    assert "not valid JSON" in by_name["broken"].error
    assert "not-a-run" not in by_name


def test_slimming_drops_the_optimizer_but_keeps_the_model(trained_run, tmp_path):
    run = _copy(trained_run, tmp_path)
    before, _ = load_model(run)
    ckpts.drop_training_state(run)
    assert not (_state(run) / "trainer.safetensors").exists()
    after, _ = load_model(run)
    assert all(torch.equal(v, after.state_dict()[k]) for k, v in before.state_dict().items())
    with pytest.raises(CheckpointError, match="no training state"):
        resume(run, epochs=20)

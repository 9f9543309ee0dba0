"""The command line and configuration validation."""

import json

import pytest

from vae_core.checkpoints import read_checkpoint
from vae_core.cli import main
from vae_core.config import ConfigError, flag_settings, from_dict, to_dict
from vae_core.config import M2Config, M2TrainConfig
from vae_core.config import ModelConfig, TrainConfig


def test_config_round_trips_and_rejects_bad_values():
    config = TrainConfig(epochs=7, learning_rate=0.01, compile=True)
    assert from_dict(TrainConfig, json.loads(json.dumps(to_dict(config)))) == config
    assert from_dict(TrainConfig, {"beta": 2}).beta == 2.0  # JSON's 2 is a float field's 2.0
    for bad, phrase in [({"epochs": 0}, "epochs: input should be greater than or equal to 1, got 0"),
                        ({"epochs": 2.5}, "epochs: input should be a valid integer"),
                        ({"epochs": "3"}, "epochs: input should be a valid integer"),
                        ({"epochs": True}, "epochs: input should be a valid integer"),
                        ({"optimizer": "sgd"}, "optimizer: input should be 'adam' or 'adagrad', got 'sgd'"),
                        ({"learning_rate": float("nan")}, "learning_rate: input should be a finite number"),
                        ({"compile": "yes"}, "compile: input should be a valid boolean"),
                        ({"colour": 1}, "unknown field colour")]:
        with pytest.raises(ConfigError, match=phrase):
            from_dict(TrainConfig, bad)
    with pytest.raises(ConfigError, match="divisible by 4"):
        ModelConfig(architecture="conv", image_height=30)


def test_cli_trains_lists_evaluates_resumes_and_slims(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["train", "--dataset", "synthetic", "--epochs", "2", "--latent-dim", "3", "--hidden-dim", "16",
            "--batch-size", "128", "--runs-dir", str(runs), "--name", "cli run", "--progress", "none", "--seed", "4"]
    assert main(argv) == 0
    run = runs / "cli-run"
    ckpt = read_checkpoint(run)
    assert ckpt.model_config.latent_dim == 3 and ckpt.train_config.seed == 4 and len(ckpt.epochs) == 2

    assert main(["list", str(runs)]) == 0
    assert "cli-run" in capsys.readouterr().out

    assert main(["evaluate", str(run), "--importance-samples", "50"]) == 0
    out = capsys.readouterr().out
    assert "test_elbo:" in out and "test_log_likelihood:" in out and "active_units:" in out
    assert read_checkpoint(run).summary["importance_samples"] == 50

    assert main(["resume", str(run), "--epochs", "3", "--progress", "none"]) == 0
    assert len(read_checkpoint(run).epochs) == 3

    assert main(["slim", str(run)]) == 0
    assert read_checkpoint(run, with_training_state=True).trainer_tensors is None


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["train", "--dataset", "synthetic", "--epochs", "0", "--runs-dir", str(tmp_path)]) == 2
    assert "error: epochs: input should be greater than or equal to 1" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_jsonl_progress_is_one_event_per_line(tmp_path, capsys):
    assert main(["train", "--dataset", "synthetic", "--epochs", "1", "--hidden-dim", "8", "--latent-dim", "2",
                 "--runs-dir", str(tmp_path), "--progress", "jsonl"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["kind"] == "start" and events[-1]["kind"] == "end"
    assert events[-1]["status"] == "finished"


def test_every_shipped_and_old_config_still_loads():
    from pathlib import Path
    from vae_core.store import list_runs
    runs = list_runs(Path(__file__).resolve().parent.parent / "checkpoints")
    assert len(runs) >= 5 and all(r.error is None for r in runs), [r.error for r in runs]
    # a config.json written before the backward field existed reads as auto
    old = {k: v for k, v in to_dict(TrainConfig()).items() if k != "backward"}
    assert from_dict(TrainConfig, old).backward == "auto"


def test_train_help_has_a_flag_for_every_field_and_each_kinds_default(capsys):
    assert M2TrainConfig(binarization="static", device="cpu").binarization == "static"
    with pytest.raises(ConfigError, match="optimizer"):
        M2TrainConfig(optimizer="sgd")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for cls in (ModelConfig, TrainConfig, M2Config, M2TrainConfig):
        for setting in flag_settings(cls):
            assert "--" + setting.name.replace("_", "-") in help_text, setting.name
    # a shared flag whose default differs for M2 shows both defaults
    epochs = help_text[help_text.index("--epochs EPOCHS maximum"):]
    epochs = epochs[:epochs.index(" --batch-size")]
    assert "(default: 50)" in epochs and "(default: 100)" in epochs and "--kind m2" in epochs


def test_a_config_file_sets_the_run_and_flags_override_it(tmp_path):
    configs = {"kind": "vae", "model": {"latent_dim": 3, "hidden_dim": 8},
               "training": {"dataset": "synthetic", "epochs": 1, "seed": 9}}
    (tmp_path / "configs.json").write_text(json.dumps(configs))
    assert main(["train", "--config-json", f"@{tmp_path / 'configs.json'}", "--seed", "5", "--runs-dir",
                 str(tmp_path), "--name", "from-file", "--progress", "none"]) == 0
    ckpt = read_checkpoint(tmp_path / "from-file")
    assert ckpt.model_config.latent_dim == 3 and ckpt.train_config.seed == 5 and ckpt.train_config.epochs == 1
    assert main(["train", "--config-json", "{not json", "--runs-dir", str(tmp_path)]) == 2

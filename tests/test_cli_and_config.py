"""The command line and configuration validation."""

import json

import pytest

from vae_core.checkpoints import read_checkpoint
from vae_core.cli import main
from vae_core.config import ConfigError, ModelConfig, TrainConfig, from_dict, to_dict


def test_config_round_trips_and_rejects_bad_values():
    config = TrainConfig(epochs=7, learning_rate=0.01, compile=True)
    assert from_dict(TrainConfig, json.loads(json.dumps(to_dict(config)))) == config
    assert from_dict(TrainConfig, {"beta": 2}).beta == 2.0  # JSON's 2 is a float field's 2.0
    for bad, phrase in [({"epochs": 0}, "epochs: 0 is below the minimum 1"),
                        ({"epochs": 2.5}, "epochs: expected a whole number"),
                        ({"optimizer": "sgd"}, "optimizer: 'sgd' is not one of adam, adagrad"),
                        ({"learning_rate": float("nan")}, "learning_rate: expected a finite number"),
                        ({"compile": "yes"}, "compile: expected true or false"),
                        ({"colour": 1}, "unknown field")]:
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
    assert "error: epochs: 0 is below the minimum 1" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_jsonl_progress_is_one_event_per_line(tmp_path, capsys):
    assert main(["train", "--dataset", "synthetic", "--epochs", "1", "--hidden-dim", "8", "--latent-dim", "2",
                 "--runs-dir", str(tmp_path), "--progress", "jsonl"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["kind"] == "start" and events[-1]["kind"] == "end"
    assert events[-1]["status"] == "finished"


def test_train_help_gives_each_kinds_default_and_m2_shares_the_vae_fields(capsys):
    from vae_core.config import M2TrainConfig
    assert M2TrainConfig(binarization="static", device="cpu").binarization == "static"
    with pytest.raises(ConfigError, match="optimizer: 'sgd' is not one of adam, adagrad"):
        M2TrainConfig(optimizer="sgd")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    # A shared flag whose M2 meaning differs gives both texts, each with its default.
    assert ("training set (default: 50). With --kind m2: maximum passes over the unlabelled "
            "training set (default: 100)") in help_text  # --epochs
    assert ("(default: 1.0). With --kind m2: weight of the KL term of q(z|x,y) in training "
            "(1: the paper's bound)") in help_text  # --beta
    assert "(default: dynamic) --" in help_text  # --binarization: the same for both kinds

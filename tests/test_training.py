"""The training loop: steps, resume, early stopping, the NaN guard and progress events."""

import threading

import pytest
import torch

from vae_core import checkpoints as ckpts
from vae_core import trainer as trainer_module
from vae_core.commands import resume, train
from vae_core.config import ConfigError
from vae_core.data import prepare, synthetic_dataset
from vae_core.registry import load_model
from vae_core.trainer import NonFiniteLossError, SanityCheckError, Trainer
from vae_core.config import ModelConfig, TrainConfig
from vae_core.vae.model import build_model
from vae_core.vae.task import VAETask


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_a_train_step_changes_weights_and_an_eval_step_does_not(tiny_model_config, tiny_train_config):
    torch.manual_seed(0)
    model = build_model(tiny_model_config)
    task = VAETask(prepare(synthetic_dataset(), "dynamic"), tiny_model_config, tiny_train_config)
    trainer = Trainer(model, task)
    before = _weights(model)
    task.evaluate(model, "validation")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    loss, _ = task.loss(model, task.train_batch(torch.arange(32), trainer.generator), 1.0)
    loss.backward()
    trainer.optimizer.step()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]
    assert set(changed) == set(before)


def test_training_improves_the_elbo_and_reports_events(tiny_model_config, tiny_train_config, tmp_path):
    events = []
    trainer = train(tiny_model_config, tiny_train_config, tmp_path / "run", callbacks=[events.append])
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 3
    assert all(e.eta_seconds is not None and e.eta_seconds >= 0 for e in events if e.kind == "step")
    history = trainer.history
    assert history[-1]["val_elbo"] > history[0]["val_elbo"]
    assert {"train_elbo", "train_recon", "train_kl", "val_elbo", "val_recon", "val_kl"} <= set(history[0])
    for record in history:
        assert record["val_elbo"] == pytest.approx(record["val_recon"] - record["val_kl"], abs=1e-3)
    assert events[-1].status == "finished" and "test_elbo" in trainer.summary


def test_resume_after_a_stop_reproduces_the_uninterrupted_curve(tiny_model_config, tmp_path):
    config = TrainConfig(dataset="synthetic", epochs=4, batch_size=48, seed=5, device="cpu", patience=0)
    straight = train(tiny_model_config, config, tmp_path / "straight")

    stop = threading.Event()
    def stop_mid_epoch_two(event):
        if event.kind == "step" and event.global_step >= 14:
            stop.set()
    old = trainer_module.STEP_EVENT_SECONDS
    trainer_module.STEP_EVENT_SECONDS = 0.0  # an event after every step, so the stop lands mid-epoch
    try:
        stopped = train(tiny_model_config, config, tmp_path / "split", callbacks=[stop_mid_epoch_two],
                        stop_event=stop)
    finally:
        trainer_module.STEP_EVENT_SECONDS = old
    assert stopped.summary["status"] == "stopped" and 0 < stopped.step_in_epoch
    assert len(stopped.history) == stopped.epoch < 4

    resumed = resume(tmp_path / "split")
    assert resumed.summary["status"] == "finished"
    keys = ["train_elbo", "train_kl", "val_elbo", "val_recon", "examples_seen"]
    assert [[r[k] for k in keys] for r in resumed.history] == [[r[k] for k in keys] for r in straight.history]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_resume_extends_a_finished_run(tiny_model_config, tiny_train_config, tmp_path):
    train(tiny_model_config, tiny_train_config, tmp_path / "run")
    with pytest.raises(ConfigError, match="ask for more"):
        resume(tmp_path / "run")
    with pytest.raises(ConfigError, match="num_threads"):
        resume(tmp_path / "run", epochs=5, num_threads=-1)
    threads = torch.get_num_threads()
    try:
        trainer = resume(tmp_path / "run", epochs=5, num_threads=1)
    finally:
        torch.set_num_threads(threads)  # the setting is process-wide
    assert [r["epoch"] for r in trainer.history] == [1, 2, 3, 4, 5]
    ckpt = ckpts.read_checkpoint(tmp_path / "run")
    assert len(ckpt.epochs) == 5 and ckpt.train_config.num_threads == 1


class ScriptedValidation(VAETask):
    """Validation ELBOs from a script, to drive early stopping deterministically."""

    def __init__(self, data, model_config, config, script):
        super().__init__(data, model_config, config)
        self.script = list(script)

    def evaluate(self, model, split):
        if split == "test":
            return super().evaluate(model, split)
        value = self.script.pop(0)
        return {"elbo": value, "recon": value, "kl": 0.0}


def test_early_stopping_restores_the_best_epoch(tiny_model_config, tmp_path):
    config = TrainConfig(dataset="synthetic", epochs=20, batch_size=64, seed=0, device="cpu", patience=3)
    torch.manual_seed(0)
    model = build_model(tiny_model_config)
    task = ScriptedValidation(prepare(synthetic_dataset(), "dynamic"), tiny_model_config, config,
                              [-300, -200, -250, -240, -210, -100])
    after_epoch = {}
    trainer = Trainer(model, task, tmp_path / "run",
                      callbacks=[lambda e: e.kind == "epoch" and after_epoch.update({e.epoch: _weights(model)})])
    summary = trainer.fit()
    assert summary["status"] == "early-stopped" and summary["best_epoch"] == 2
    assert len(trainer.history) == 5
    for key, value in model.state_dict().items():
        assert torch.equal(value, after_epoch[2][key])
    loaded, ckpt = load_model(tmp_path / "run")
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, after_epoch[2][key])
    assert ckpt.summary["best_epoch"] == 2


class NaNAfter(VAETask):
    """Feeds a batch of NaNs from the `at_step`-th batch on (the sanity check's batch counts)."""

    def __init__(self, data, model_config, config, at_step):
        super().__init__(data, model_config, config)
        self.at_step, self.steps = at_step, 0

    def train_batch(self, indices, generator):
        batch = super().train_batch(indices, generator)
        self.steps += 1
        return batch * float("nan") if self.steps >= self.at_step else batch


@pytest.mark.parametrize("backward", ["fused", "autograd"])
def test_a_nan_loss_stops_with_the_step_named_and_keeps_the_last_checkpoint(tiny_model_config, tmp_path,
                                                                              backward):
    config = TrainConfig(dataset="synthetic", epochs=5, batch_size=64, seed=0, device="cpu", backward=backward)
    torch.manual_seed(0)
    task = NaNAfter(prepare(synthetic_dataset(), "dynamic"), tiny_model_config, config,
                    1 + 8 + 3)  # sanity check, epoch 1, step 3
    trainer = Trainer(build_model(tiny_model_config), task, tmp_path / "run")
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 3 \(global step 11\)"):
        trainer.fit()
    model, ckpt = load_model(tmp_path / "run")
    assert len(ckpt.epochs) == 1
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_sanity_check_fails_before_training_on_mismatched_data(tmp_path):
    config = TrainConfig(dataset="synthetic", epochs=1, device="cpu")
    model_config = ModelConfig(latent_dim=2, hidden_dim=8, image_height=8, image_width=8)
    data = prepare(synthetic_dataset(), "dynamic")
    task = VAETask(data, ModelConfig(latent_dim=2, hidden_dim=8), config)
    trainer = Trainer(build_model(model_config), task)  # a model that does not fit the data
    with pytest.raises(SanityCheckError, match="first batch"):
        trainer.fit()
    with pytest.raises(ConfigError, match="image size"):
        train(model_config, config)


def _untrained_val_elbo(model_config, config):
    torch.manual_seed(config.seed)
    task = VAETask(prepare(synthetic_dataset(), config.binarization, config.seed), model_config, config)
    return task.evaluate(build_model(model_config).eval(), "validation")["elbo"]


@pytest.mark.parametrize("extra", [{"objective": "iwae", "num_samples": 5},
                                   {"estimator": "A", "optimizer": "adagrad", "learning_rate": 0.02,
                                    "warmup_epochs": 1.0}], ids=["iwae", "estimator-A-adagrad-warmup"])
def test_iwae_objective_and_estimator_a_train(tiny_model_config, extra):
    config = TrainConfig(dataset="synthetic", epochs=2, batch_size=64, device="cpu", **extra)
    trainer = train(tiny_model_config, config)
    # the trained model's validation ELBO beats the same model's before training
    assert trainer.history[-1]["val_elbo"] > _untrained_val_elbo(tiny_model_config, config)


def test_kl_warmup_grows_linearly(tiny_model_config):
    config = TrainConfig(dataset="synthetic", epochs=1, batch_size=64, device="cpu", warmup_epochs=2.0, beta=0.5)
    trainer = Trainer(build_model(tiny_model_config),
                      VAETask(prepare(synthetic_dataset(), "dynamic"), tiny_model_config, config))
    assert trainer.steps_per_epoch == 8
    trainer.global_step = 7
    assert trainer.beta() == pytest.approx(0.5 * 8 / 16)
    trainer.global_step = 100
    assert trainer.beta() == 0.5


def test_conv_gaussian_and_deeper_models_train(tmp_path):
    for model_config in (ModelConfig(architecture="conv", latent_dim=3, hidden_dim=32),
                         ModelConfig(likelihood="gaussian", latent_dim=3, hidden_dim=32),
                         ModelConfig(hidden_layers=2, activation="softplus", latent_dim=3, hidden_dim=32)):
        config = TrainConfig(dataset="synthetic", epochs=2, batch_size=64, device="cpu",
                             binarization="none" if model_config.likelihood == "gaussian" else "dynamic")
        name = f"{model_config.architecture}-{model_config.likelihood}-{model_config.hidden_layers}"
        trainer = train(model_config, config, tmp_path / name)
        assert trainer.history[-1]["val_elbo"] > trainer.history[0]["val_elbo"]
        # the run folder rebuilds the same model: same architecture, same outputs
        loaded, ckpt = load_model(tmp_path / name)
        assert ckpt.model_config == model_config
        x = torch.rand(4, *model_config.image_shape)
        torch.testing.assert_close(loaded.encode(x).mu, trainer.model.eval().encode(x).mu)
    with pytest.raises(ConfigError, match="hidden_layers"):
        ModelConfig(architecture="conv", hidden_layers=2)


def test_the_compiled_training_step_trains(tiny_model_config):
    config = TrainConfig(dataset="synthetic", epochs=2, batch_size=64, device="cpu", compile=True, seed=2)
    trainer = train(tiny_model_config, config)
    assert trainer.config.backward == "autograd"  # compile runs the readable ELBO through autograd
    assert trainer.history[-1]["val_elbo"] > trainer.history[0]["val_elbo"]


def test_resume_with_a_new_learning_rate(tiny_model_config, tiny_train_config, tmp_path):
    train(tiny_model_config, tiny_train_config, tmp_path / "run")
    with pytest.raises(ConfigError, match="learning_rate"):
        resume(tmp_path / "run", epochs=4, learning_rate=-1.0)
    trainer = resume(tmp_path / "run", epochs=4, learning_rate=1e-7)
    assert [r["learning_rate"] for r in trainer.history] == [tiny_train_config.learning_rate] * 3 + [1e-7]
    assert all(group["lr"] == 1e-7 for group in trainer.optimizer.param_groups)
    assert ckpts.read_checkpoint(tmp_path / "run").train_config.learning_rate == 1e-7
    # the curves mark the epoch where the step size changed, once
    from vae_core.plots import training_curves
    marks = [t for t in training_curves([("run", trainer.history)]).data if t.text]
    assert len(marks) == 1 and marks[0].text == ("lr 1e-07",) and marks[0].x == (4,)

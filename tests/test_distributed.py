"""Training across processes: two CPU processes with gloo train one model as one process does
with the same global batch and seed; rank 0 alone writes; a run resumes with the same or a
different number of processes.

Tolerances. A task without noise (a squared-error autoencoder) must match one process to float
rounding: the two ranks' gradients are averaged in a different order of summation, so weights
after 2 epochs agree to 1e-5. A VAE draws its noise (the samples of z, dynamic binarisation)
per process, so two processes give other, equally valid noise than one, and a tiny VAE's
curve after a few steps depends on its noise too much for a tolerance that means anything
(the same run with four different noise streams: validation ELBO -206 to -490 after 16
steps); there the test checks what must hold exactly: a run stopped and resumed with the same
number of processes repeats the uninterrupted one, and one resumed with another number
continues the same global batches.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from vae_core import cli
from vae_core import trainer as trainer_module
from vae_core.commands import check_launch, resume, train
from vae_core.config import ConfigError, ModelConfig, TrainConfig
from vae_core.config.m2 import M2TrainConfig
from vae_core.data import synthetic_dataset
from vae_core.distributed import (Launch, Replicas, backend_for, check_batch_size, from_environment,
                                  rank_device)
from vae_core.registry import load_model
from vae_core.trainer import Trainer, autograd_step

ROOT = Path(__file__).resolve().parent.parent
MODEL = dict(latent_dim=2, hidden_dim=32)
TRAIN = dict(dataset="mnist", epochs=2, batch_size=64, seed=7, device="cpu", patience=0, learning_rate=3e-3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_idx(path: Path, array: np.ndarray) -> None:
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Tiny MNIST-format IDX files of synthetic strokes: 600 training images (500 train, 100
    validation) and 100 test images."""
    root = tmp_path_factory.mktemp("idx")
    data = synthetic_dataset(num_train=600, num_validation=0, num_test=100, seed=3)
    for prefix, split in (("train", data.train), ("t10k", data.test)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte", (split.images[:, 0] * 255).round().numpy())
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", split.labels.numpy())
    return root


# --- processes --------------------------------------------------------------------------------

class SquaredErrorTask:
    """A task without noise: a tanh autoencoder fitted by squared error, per image summed over
    pixels and averaged over the batch, so two processes must match one to float rounding."""

    kind = "vae"
    monitor = "elbo"
    model_config = None

    def __init__(self, data, config: TrainConfig):
        self.data, self.config, self.num_train = data, config, len(data.train)

    def train_batch(self, indices, generator):
        return self.data.train.images.index_select(0, indices).flatten(1)

    def kl_weight(self, global_step, steps_per_epoch):
        return 1.0

    def loss(self, model, batch, beta):
        error = (model(batch) - batch).pow(2).sum(1)
        return error.mean(), {"elbo": -error.mean().detach()}

    def step(self, model):
        return autograd_step(self.loss)

    def evaluate(self, model, split):
        x = getattr(self.data, split).images.flatten(1)
        with torch.no_grad():
            return {"elbo": -(model(x) - x).pow(2).sum(1).mean().item()}


def squared_error_trainer(replicas: Replicas | None = None) -> Trainer:
    # 130 examples in global batches of 16: 8 full batches and a last one of 2 examples,
    # which two ranks split 1 + 1; the validation split is the synthetic set's.
    data = synthetic_dataset(num_train=130, num_validation=64, num_test=8, seed=1)
    config = TrainConfig(dataset="synthetic", epochs=2, batch_size=16, seed=11, device="cpu", patience=0,
                         learning_rate=1e-3)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 16), torch.nn.Tanh(), torch.nn.Linear(16, 784))
    return Trainer(model, SquaredErrorTask(data, config), replicas=replicas)


def _worker(rank: int, world: int, jobs: list[dict]) -> None:
    """One process of a launch as torchrun would start it (its environment), doing `jobs` in
    turn (one start-up of torch serves several: on 2 busy cores that is most of the time)."""
    torch.set_num_threads(1)
    for job in jobs:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(job["port"]), RANK=str(rank),
                          WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
        _do(rank, job)


def _do(rank: int, job: dict) -> None:
    launch = from_environment()
    out = Path(job["out"])
    if job["mode"] == "squared-error":
        replicas = Replicas.join(launch, torch.device("cpu"))
        try:
            trainer = squared_error_trainer(replicas)
            trainer.fit()
        finally:
            replicas.leave()
        history = trainer.history if rank == 0 else []
    elif job["mode"] == "train-and-stop":
        trainer_module.STEP_EVENT_SECONDS = 0.0  # an event after every step, so the stop lands mid-epoch
        stop = threading.Event()

        def stop_mid_epoch(event):
            if event.kind == "step" and event.global_step >= job["stop_after"]:
                stop.set()
        trainer = train(ModelConfig(**MODEL), TrainConfig(**TRAIN), job["run"], job["data_root"],
                        [stop_mid_epoch], stop, launch)
        history = trainer.history
    else:
        trainer = resume(job["run"], data_root=job["data_root"], launch=launch)
        history = trainer.history
    save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, out / f"weights-{rank}.safetensors")
    (out / f"result-{rank}.json").write_text(json.dumps({"history": history, "summary": trainer.summary,
                                                         "step": trainer.global_step}))


def _launch(world: int, *jobs: dict) -> list[list[dict]]:
    """Each job's results, rank by rank."""
    for job in jobs:
        Path(job["out"]).mkdir(parents=True, exist_ok=True)
        job["port"] = _free_port()
    mp.start_processes(_worker, args=(world, list(jobs)), nprocs=world, start_method="spawn")
    return [[json.loads((Path(job["out"]) / f"result-{r}.json").read_text()) for r in range(world)]
            for job in jobs]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, data_root) -> dict[str, Path]:
    """One launch of 2 processes: the squared-error task, then a VAE stopped in the middle of
    epoch 2 (rank 0 asks at step 11; both stop after step 12)."""
    root = tmp_path_factory.mktemp("two")
    paths = {"squared-error": root / "squared-error", "split": root / "split", "out-split": root / "out-split"}
    _launch(2, {"mode": "squared-error", "out": str(paths["squared-error"])},
            {"mode": "train-and-stop", "stop_after": 11, "run": str(paths["split"]), "data_root": str(data_root),
             "out": str(paths["out-split"])})
    return paths


def _weights(out, rank) -> dict:
    return load_file(str(Path(out) / f"weights-{rank}.safetensors"))


# --- selection and refusals ------------------------------------------------------------------

def test_the_launch_comes_from_torchruns_environment():
    assert from_environment({}) is None
    assert from_environment({"WORLD_SIZE": "1", "RANK": "0"}) is None
    assert from_environment({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == Launch(3, 1, 4)
    with pytest.raises(ConfigError, match="outside a world of 2"):
        from_environment({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(ConfigError, match="whole numbers"):
        from_environment({"WORLD_SIZE": "two"})


def test_the_backend_follows_the_device():
    assert backend_for(torch.device("cpu")) == "gloo"
    assert backend_for(torch.device("cuda", 1)) == "nccl"
    with pytest.raises(ConfigError, match="cpu \\(gloo\\) or cuda \\(nccl\\)"):
        backend_for(torch.device("mps"))
    assert rank_device(torch.device("cpu"), Launch(1, 1, 2)) == torch.device("cpu")
    if torch.cuda.device_count() < 8:
        with pytest.raises(ConfigError, match="GPU 7"):
            rank_device(torch.device("cuda"), Launch(7, 7, 8))


def test_the_global_batch_must_split_evenly_and_m2_trains_alone():
    check_batch_size(100, 4)
    with pytest.raises(ConfigError, match="does not split evenly over 3 processes"):
        check_batch_size(100, 3)
    with pytest.raises(ConfigError, match="m2: trains in one process only"):
        check_launch("m2", M2TrainConfig(dataset="synthetic"), Launch(0, 0, 2))


def test_the_command_line_refuses_before_making_a_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    code = cli.main(["train", "--dataset", "synthetic", "--batch-size", "33", "--runs-dir", str(tmp_path / "runs")])
    assert code == 2 and not (tmp_path / "runs").exists()
    assert "error (rank 1): batch_size: the global batch of 33" in capsys.readouterr().err


# --- two processes against one ---------------------------------------------------------------

def test_two_processes_train_as_one_does_without_noise(two_processes):
    out = two_processes["squared-error"]
    results = [json.loads((out / f"result-{r}.json").read_text()) for r in range(2)]
    alone = squared_error_trainer()
    alone.fit()
    rank0, rank1 = _weights(out, 0), _weights(out, 1)
    # the last epoch is the best one, so rank 0 (which restores the best weights) and rank 1 agree
    assert [r["val_elbo"] for r in alone.history] == sorted(r["val_elbo"] for r in alone.history)
    for name, value in alone.model.state_dict().items():
        assert torch.equal(rank0[name], rank1[name]), name
        torch.testing.assert_close(rank0[name], value, atol=1e-5, rtol=0)
    assert results[0]["step"] == results[1]["step"] == alone.global_step == 18
    for together, one in zip(results[0]["history"], alone.history):
        assert together["examples_seen"] == one["examples_seen"]
        for key in ("train_elbo", "val_elbo"):
            assert together[key] == pytest.approx(one[key], rel=1e-5), key


def test_a_vae_across_processes_writes_once_and_resumes_with_any_number(tmp_path, data_root, two_processes):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [f"--{k.replace('_', '-')}={v}" for k, v in {**MODEL, **TRAIN}.items()]
    # 1. Two processes under torchrun, uninterrupted; the fused backward fills .grad by hand.
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "vae_core", "train",
                           "--name=straight", f"--runs-dir={tmp_path}", f"--data-root={data_root}",
                           "--progress=jsonl", "--backward=fused", *args],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("run folder:") == 1 and done.stderr.count("saved:") == 1
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [e["kind"] for e in lines].count("epoch") == 2 and lines[-1]["status"] == "finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["straight"]
    straight_model, straight = load_model(tmp_path / "straight")
    assert straight.train_config.backward == "fused"

    # 2. Two processes stopped in the middle of epoch 2 (rank 0 asked; both stop after one step).
    shutil.copytree(two_processes["split"], tmp_path / "split")
    split = load_model(tmp_path / "split", with_training_state=True)[1]
    assert split.summary["status"] == "stopped" and split.trainer_meta["global_step"] == 12
    assert split.trainer_meta["step_in_epoch"] == 4 and len(split.epochs) == 1
    shutil.copytree(tmp_path / "split", tmp_path / "split-alone")

    # 3. Resumed with two processes: exactly the uninterrupted run.
    _launch(2, {"mode": "resume", "run": str(tmp_path / "split"), "data_root": str(data_root),
                "out": str(tmp_path / "out-resume")})
    resumed_model, resumed = load_model(tmp_path / "split")
    assert resumed.summary["status"] == "finished"
    for key in ("train_elbo", "val_elbo", "examples_seen"):
        assert [r[key] for r in resumed.epochs] == pytest.approx([r[key] for r in straight.epochs], rel=1e-6)
    for name, value in straight_model.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[name], value, atol=1e-6, rtol=0)

    # 4. Resumed in one process: the same batches (the saved permutation and data order), other noise.
    alone = resume(tmp_path / "split-alone", data_root=data_root)
    assert alone.summary["status"] == "finished" and alone.global_step == 16
    assert [r["examples_seen"] for r in alone.history] == [r["examples_seen"] for r in straight.epochs]
    assert alone.history[0] == split.epochs[0]

"""An MLP VAE as numpy arrays, read from a run folder without torch: its encoder's layers, to
encode digits to their posterior means, and its decoder's mean, which the app's browser decoder
runs. For pages that should show a model before torch is imported (that import alone takes
1.5-2 s on a cold server); everything else loads the model with `registry.load_model`.

The run is checked as `checkpoints` checks it: the record and the weights file's header first,
every weight the config needs (by name, shape and dtype) and nothing else, the size against the
memory budget, then the values, which must be finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..budget import over_budget
from ..config.vae import ModelConfig
from ..store import WEIGHTS, CheckpointError, RunRecord, read_current_state, read_state_record
from ..tensorfile import check_against, open_tensors, read_finite

Layers = list[tuple[np.ndarray, np.ndarray]]  # (weight (out, in), bias (out,)) float32, in order
ACTIVATIONS = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0),
               "softplus": lambda v: np.logaddexp(0.0, v)}


@dataclass(frozen=True)
class MLPArrays:
    config: ModelConfig
    encoder: Layers   # the last gives (mu, logvar) stacked
    decoder: Layers   # the mean only: a Gaussian decoder's last layer keeps its mean's rows

    def encode_mean(self, images: np.ndarray, batch_size: int = 2000) -> np.ndarray:
        """Posterior means of images (N, H, W) in [0, 1]: (N, D) float32."""
        x = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
        d = self.config.latent_dim
        out = [self._run(self.encoder, x[i:i + batch_size])[:, :d] for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, d), np.float32)

    def decode_mean(self, z: np.ndarray) -> np.ndarray:
        """The decoder's mean images (N, H, W) in [0, 1] at latent points z (N, D), as the browser
        decoder draws them: the activation between the layers and a sigmoid after the last."""
        h = self._run(self.decoder, np.asarray(z, dtype=np.float32).reshape(-1, self.config.latent_dim))
        images = 1.0 / (1.0 + np.exp(-h))
        return images.reshape(len(images), self.config.image_height, self.config.image_width)

    def _run(self, layers: Layers, h: np.ndarray) -> np.ndarray:
        """The affine layers on h (N, in), the model's activation between them."""
        act = ACTIVATIONS[self.config.activation]
        for k, (weight, bias) in enumerate(layers):
            h = h @ weight.T + bias
            if k < len(layers) - 1:
                h = act(h)
        return h


def supported(config) -> bool:
    """What this module reads: the MLP VAE on one-channel images."""
    return isinstance(config, ModelConfig) and config.architecture == "mlp" and config.image_channels == 1


def expected_weights(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The MLP VAE's weights by the names torch gives them (`model.MLPVAE`'s state dict): the
    encoder is Flatten, then (Linear, activation) per hidden layer and a Linear; the decoder the
    same without the Flatten."""
    d, h, z, n = config.input_dim, config.hidden_dim, config.latent_dim, config.hidden_layers
    out = d if config.likelihood == "bernoulli" else 2 * d
    shapes = {}
    for network, first, widths in (("encoder", 1, [d] + [h] * n + [2 * z]), ("decoder", 0, [z] + [h] * n + [out])):
        for k in range(n + 1):
            shapes[f"{network}.{first + 2 * k}.weight"] = (widths[k + 1], widths[k])
            shapes[f"{network}.{first + 2 * k}.bias"] = (widths[k + 1],)
    return shapes


def _read_state(run_dir: Path, folder: Path) -> tuple[MLPArrays, RunRecord]:
    record = read_state_record(run_dir, folder)
    config = record.model_config
    if record.kind != "vae" or not supported(config):
        raise CheckpointError(folder / "config.json", "not an MLP VAE on one-channel images", run_dir)
    expected = expected_weights(config)
    tensors = open_tensors(run_dir, folder, WEIGHTS)
    try:
        # The size first, from the file and from the config (as `checkpoints` checks it): a config
        # that promises a model too large for this server is refused as such.
        problem = over_budget(2 * max(tensors.nbytes, 4 * sum(math.prod(s) for s in expected.values())), "this model")
        if problem:
            raise CheckpointError(folder / "config.json", problem, run_dir)
        check_against(tensors, {name: (shape, "F32") for name, shape in expected.items()})
        values = read_finite(tensors)
    finally:
        tensors.close()
    return MLPArrays(config, _layers(values, config, "encoder"), _layers(values, config, "decoder")), record


def _layers(values: dict[str, np.ndarray], config: ModelConfig, network: str) -> Layers:
    """One network's (weight, bias) pairs in order; the decoder's last keeps the mean's rows."""
    first = 1 if network == "encoder" else 0
    layers = [(values[f"{network}.{first + 2 * k}.weight"], values[f"{network}.{first + 2 * k}.bias"])
              for k in range(config.hidden_layers + 1)]
    if network == "decoder":
        pixels = config.image_height * config.image_width
        weight, bias = layers[-1]
        layers[-1] = (weight[:pixels], bias[:pixels])
    return layers


def mean_decoder(source) -> Layers:
    """The decoder's mean as layers, from `MLPArrays` or from a loaded MLP VAE (its state dict, by
    the names `expected_weights` gives: no torch import here)."""
    if isinstance(source, MLPArrays):
        return source.decoder
    state = source.state_dict()
    values = {name: state[name].detach().cpu().numpy().astype(np.float32)
              for name in expected_weights(source.config) if name.startswith("decoder.")}
    return _layers(values, source.config, "decoder")


def read_mlp(run_dir: str | Path) -> tuple[MLPArrays, RunRecord]:
    """An MLP VAE run's layers and record; a `CheckpointError` says what is wrong with the run,
    including that it is not an MLP VAE on one-channel images."""
    return read_current_state(run_dir, _read_state)

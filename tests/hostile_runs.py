"""A corpus of damaged, hostile and colliding run folders, generated (never committed): copies of
a tiny trained run broken in every way the run folder issue lists, beside good runs.

Each case says where it must be stopped and with what phrase:
  list    `list_runs` reports it unreadable (the app's "cannot be read", the CLI's list)
  load    it is listed, but loading its model is refused
  page    it loads, but the pages say why they cannot show it
  resume  it loads and can be shown, but resuming it is refused
  None    a good run: listed, loaded, shown
Links point into `outside`, a folder whose files must never change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from vae_core.checkpoints import save_checkpoint
from vae_core.config import M2Config, M2TrainConfig, ModelConfig, TrainConfig, to_dict
from vae_core.m2.m1 import weights_digest
from vae_core.m2.model import build_m2
from vae_core.store import MAX_JSON_BYTES, state_folder
from vae_core.vae.model import build_model


@dataclass(frozen=True)
class Case:
    stage: str | None        # list, load, page, resume, or None for a good run
    phrase: str              # in the message that stops it
    kind: str = "vae"


@dataclass
class Corpus:
    root: Path               # the runs folder holding every case
    outside: Path            # what the links point to: must never change
    elsewhere: Path          # a second runs folder (an M1 recorded there, an impostor)
    cases: dict[str, Case]


def _state(run: Path) -> Path:
    return state_folder(run)


def _edit_json(path: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    result = change(data)
    path.write_text(json.dumps(data if result is None else result))


def _rewrite_tensors(path: Path, change: Callable[[dict, dict], None]) -> None:
    """Rewrite a safetensors file, its tensors and metadata changed in place by `change`."""
    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata() or {})
    tensors = load_file(str(path))
    change(tensors, metadata)
    path.unlink()
    save_file(tensors, str(path), metadata=metadata or None)


def _raw_safetensors(path: Path, header: object, data: bytes = b"", claimed: int | None = None) -> None:
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.unlink(missing_ok=True)
    path.write_bytes(struct.pack("<Q", len(text) if claimed is None else claimed) + text + data)


def _trainer_meta(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        def edit(tensors, metadata):
            meta = json.loads(metadata["trainer"])
            change(meta)
            metadata["trainer"] = json.dumps(meta)
        _rewrite_tensors(_state(run) / "trainer.safetensors", edit)
    return damage


def _trainer_tensors(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        _rewrite_tensors(_state(run) / "trainer.safetensors", lambda tensors, metadata: change(tensors))
    return damage


def _weights(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        _rewrite_tensors(_state(run) / "weights.safetensors", lambda tensors, metadata: change(tensors))
    return damage


def _all_to(dtype):
    def change(tensors):
        for name in tensors:
            tensors[name] = tensors[name].to(dtype)
    return change


def _config(section: str, **values) -> Callable[[Path], None]:
    return lambda run: _edit_json(_state(run) / "config.json", lambda c: c[section].update(values))


def _history(change: Callable[[dict], object]) -> Callable[[Path], None]:
    return lambda run: _edit_json(_state(run) / "history.json", change)


def _deep(file: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / "run.json" if file == "run.json" else _state(run) / file
        path.unlink()
        path.write_text("[" * 100_000 + "]" * 100_000)
    return damage


def _too_big(file: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = _state(run) / file
        path.unlink()
        with open(path, "wb") as f:  # sparse: as large as the limit says, no disk used
            f.truncate(MAX_JSON_BYTES + 1)
    return damage


def _replace_with(file: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / file if file == "run.json" else _state(run) / file
        path.unlink()
        make(path)
    return damage


def _link_state_to(target: Callable[[Path], Path]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        state = _state(run)
        to = target(state)
        shutil.rmtree(state)
        state.symlink_to(to, target_is_directory=True)
    return damage


def build(root: Path, source: Path) -> Corpus:
    """Generate the corpus under `root` from `source`, a tiny trained VAE run of the synthetic
    data (with its training state)."""
    runs, outside, elsewhere = root / "runs", root / "outside", root / "elsewhere"
    for folder in (runs, outside, elsewhere):
        folder.mkdir(parents=True)
    (outside / "victim.txt").write_text("must not change\n")
    shutil.copytree(source, outside / "a-run")            # a whole run, outside
    shutil.copytree(_state(source), outside / "a-state")   # a state folder, outside
    victim = outside / "victim.txt"
    cases: dict[str, Case] = {}

    def case(name: str, stage: str | None, phrase: str, damage: Callable[[Path], None] | None = None,
             kind: str = "vae") -> None:
        run = runs / name
        shutil.copytree(source, run)
        if damage is not None:
            damage(run)
        cases[name] = Case(stage, phrase, kind)

    # Good runs, and runs whose names are odd but harmless.
    case("good", None, "")
    case("-starts-with-a-dash", None, "")
    case("escape\x1b[31m-and\nnewline [link](example.com) $x$", None, "")  # shown as text
    case("mnist-mlp-z2", None, "")  # a user's run named as a shipped one: both are shown, apart
    case("mnist-mlp-z2 (shipped)", None, "")  # ... even when named as the shipped one's label

    # --- isolation: listing refuses them, each with a one-line reason ---
    case("deep-config", "list", "nested more than", _deep("config.json"))
    case("deep-history", "list", "nested more than", _deep("history.json"))
    case("deep-pointer", "list", "nested more than", _deep("run.json"))
    case("huge-history", "list", "over the 10 MB limit", _too_big("history.json"))
    case("huge-config", "list", "over the 10 MB limit", _too_big("config.json"))
    case("fifo-config", "list", "not a regular file", _replace_with("config.json", os.mkfifo))
    case("fifo-pointer", "list", "not a regular file", _replace_with("run.json", os.mkfifo))
    case("folder-history", "list", "not a regular file", _replace_with("history.json", Path.mkdir))
    case("not-utf8-config", "list", "not UTF-8", _replace_with("config.json", lambda p: p.write_bytes(b"\xff\xfe{")))
    case("epochs-numbers", "list", "epochs[0]: expected an object", _history(lambda h: h.update(epochs=[1, 2, 3])))
    case("epochs-missing", "list", "epochs: expected a list", _history(lambda h: {"summary": h["summary"]}))
    case("summary-list", "list", "summary: expected a JSON object", _history(lambda h: h.update(summary=[1])))
    case("summary-text", "list", "summary: expected a JSON object", _history(lambda h: h.update(summary="done")))
    case("number-as-text", "list", "epochs[0].val_elbo: expected a number",
         _history(lambda h: h["epochs"][0].update(val_elbo="-90.5")))
    case("test-elbo-as-text", "list", "summary.test_elbo: expected a number",
         _history(lambda h: h["summary"].update(test_elbo="-90.5")))
    case("config-number-as-text", "list", "invalid config: latent_dim", _config("model", latent_dim="2"))
    case("config-kind-list", "list", "unknown model kind", lambda run: _edit_json(
        _state(run) / "config.json", lambda c: c.update(kind=["vae"])))
    case("version-true", "list", "format version true", lambda run: _edit_json(
        run / "run.json", lambda p: p.update(version=True)))
    case("weights-missing", "list", "weights.safetensors: is missing",
         lambda run: (_state(run) / "weights.safetensors").unlink())

    # --- no escape: links and special files are refused, never followed ---
    case("state-link-to-proc", "list", "symbolic link", _link_state_to(lambda state: Path("/proc/self")))
    case("state-link-outside", "list", "symbolic link", _link_state_to(lambda state: outside / "a-state"))
    case("pointer-link-outside", "list", "symbolic link", _replace_with(
        "run.json", lambda p: p.symlink_to(outside / "a-run" / "run.json")))
    case("config-link-outside", "list", "symbolic link", _replace_with(
        "config.json", lambda p: p.symlink_to(_state(outside / "a-run") / "config.json")))
    case("weights-link-outside", "list", "symbolic link", _replace_with(
        "weights.safetensors", lambda p: p.symlink_to(_state(outside / "a-run") / "weights.safetensors")))
    (runs / "run-link-outside").symlink_to(outside / "a-run", target_is_directory=True)
    cases["run-link-outside"] = Case("list", "symbolic link")
    # Links planted where a save writes: its temporary pointer (the old predictable name) and a
    # state folder's name. A save must create its own files and leave the targets alone.
    case("planted-links", None, "", lambda run: (
        (run / f".run.json.tmp-{os.getpid()}").symlink_to(victim),
        (run / "state-999998").symlink_to(outside / "a-state", target_is_directory=True)))

    # --- validation before use: weights checked against the config before any allocation ---
    case("pickle-weights", "load", "not a readable safetensors file", _replace_with(
        "weights.safetensors", lambda p: p.write_bytes(
            b"\x80\x04\x95" + b"cos\nsystem\n(S'touch " + str(outside / "pwned").encode() + b"'\ntR.")))
    case("header-length-huge", "load", "header claims", lambda run: _raw_safetensors(
        _state(run) / "weights.safetensors", {}, claimed=2**62))
    case("header-not-json", "load", "not valid JSON", lambda run: _raw_safetensors(
        _state(run) / "weights.safetensors", b"{not json"))
    case("header-deep", "load", "nested more than", lambda run: _raw_safetensors(
        _state(run) / "weights.safetensors", b"[" * 50_000 + b"]" * 50_000))
    case("header-outside-file", "load", "lies outside the file", lambda run: _raw_safetensors(
        _state(run) / "weights.safetensors", {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"x" * 8))
    case("header-overlap", "load", "share bytes", lambda run: _raw_safetensors(
        _state(run) / "weights.safetensors", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
        b"x" * 12))
    case("header-bad-dtype", "load", "unknown dtype", lambda run: _raw_safetensors(
        _state(run) / "weights.safetensors", {"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}},
        b"x" * 16))
    case("header-negative-shape", "load", "bad shape", lambda run: _raw_safetensors(
        _state(run) / "weights.safetensors", {"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"x" * 4))
    case("weights-truncated", "load", "corrupt or truncated", _replace_with(
        "weights.safetensors", lambda p: p.write_bytes(
            (_state(source) / "weights.safetensors").read_bytes()[:2000])))
    case("weights-float8", "load", "is F8_E4M3 but the model needs F32", _weights(_all_to(torch.float8_e4m3fn)))
    case("weights-float16", "load", "is F16 but the model needs F32", _weights(_all_to(torch.float16)))
    case("weights-int32", "load", "is I32 but the model needs F32", _weights(_all_to(torch.int32)))
    case("weights-uint8", "load", "is U8 but the model needs F32", _weights(_all_to(torch.uint8)))
    case("weights-bool", "load", "is BOOL but the model needs F32", _weights(_all_to(torch.bool)))
    case("weights-nan", "load", "NaN or infinite", _weights(lambda t: t["decoder.0.bias"].fill_(float("nan"))))
    case("weights-extra", "load", "unexpected extra", _weights(lambda t: t.update(extra=torch.zeros(3))))
    case("size-disagrees", "load", "has shape", _config("model", image_height=32, image_width=32))
    case("eight-layers-of-8192", "load", "more than this server's budget",
         _config("model", hidden_layers=8, hidden_dim=8192))
    case("eight-gigabyte-tensor", "load", "more than this server's budget", _huge_m2, kind="m2")
    case("valid-32x32", "page", "support models of that image size only", _valid_model(
        ModelConfig(latent_dim=2, hidden_dim=16, image_height=32, image_width=32)))
    case("fashion-offline", "page", "cannot be loaded", _config("training", dataset="fashion-mnist"))
    case("m2-1000-classes", "page", "has 1000 classes", _valid_m2(M2Config(latent_dim=2, hidden_dim=8, num_classes=1000)),
         kind="m2")

    # --- the training state: checked before a resume uses it ---
    case("trainer-no-epoch", "resume", "epoch: expected a whole number", _trainer_meta(lambda m: m.pop("epoch")))
    case("trainer-epoch-text", "resume", "epoch: expected a whole number", _trainer_meta(lambda m: m.update(epoch="8")))
    case("trainer-no-optimizer", "resume", "optimizer: expected", _trainer_meta(lambda m: m.pop("optimizer")))
    case("trainer-bad-groups", "resume", "optimizer.param_groups", _trainer_meta(
        lambda m: m["optimizer"].update(param_groups=[{"params": [0, 1], "lr": "fast"}])))
    case("trainer-no-rng", "resume", "rng.cpu: missing", _trainer_tensors(lambda t: t.pop("rng.cpu")))
    case("trainer-rng-float", "resume", "rng.cpu: expected uint8", _trainer_tensors(
        lambda t: t.update({"rng.cpu": t["rng.cpu"].float()})))
    case("trainer-bad-moment", "resume", "optimizer.0.exp_avg: expected float32", _trainer_tensors(
        lambda t: t.update({"optimizer.0.exp_avg": torch.zeros(3)})))
    case("trainer-bad-permutation", "resume", "permutation: expected a permutation", _trainer_tensors(
        lambda t: t.update(permutation=torch.zeros(512, dtype=torch.int64))))

    # --- identity: an M1+M2 pair finds its M1 by digest, never by name ---
    m1 = build_model(ModelConfig(latent_dim=6, hidden_dim=16))
    impostor = build_model(ModelConfig(latent_dim=6, hidden_dim=16))
    train = TrainConfig(dataset="synthetic", epochs=1, device="cpu")
    history = {"epochs": [], "summary": {"status": "finished"}}
    for folder, model in ((runs, m1), (elsewhere, impostor)):
        save_checkpoint(folder / "m1-shared", kind="vae", model_config=m1.config, train_config=train,
                        weights=model.state_dict(), history=history)
    save_checkpoint(elsewhere / "m1-only-impostor", kind="vae", model_config=m1.config, train_config=train,
                    weights=impostor.state_dict(), history=history)
    cases["m1-shared"] = Case(None, "")

    def pair(name: str, m1_run: Path, digest: str, stage: str | None, phrase: str) -> None:
        config = M2Config(input_features=6, latent_dim=3, hidden_dim=16, likelihood="gaussian", m1_digest=digest)
        save_checkpoint(runs / name, kind="m2", model_config=config,
                        train_config=M2TrainConfig(dataset="synthetic", epochs=1, device="cpu", m1_run=str(m1_run)),
                        weights=build_m2(config).state_dict(), history=history)
        cases[name] = Case(stage, phrase, "m2")
    # recorded elsewhere (where an impostor of the same name is), the true M1 beside it
    pair("m1m2-shadowed", elsewhere / "m1-shared", weights_digest(m1), None, "")
    pair("m1m2-no-true-m1", elsewhere / "m1-only-impostor", weights_digest(m1), "page", "was not found")
    pair("m1m2-no-digest", runs / "m1-shared", "", "page", "does not record which M1")
    _valid_m2(M2Config(latent_dim=3, hidden_dim=16))(runs / "good-m2")
    cases["good-m2"] = Case(None, "", "m2")
    return Corpus(runs, outside, elsewhere, cases)


def _valid_model(config: ModelConfig) -> Callable[[Path], None]:
    """A run whose config and weights agree, of a config the pages may not show."""
    def damage(run: Path) -> None:
        shutil.rmtree(run)
        save_checkpoint(run, kind="vae", model_config=config,
                        train_config=TrainConfig(dataset="synthetic", epochs=1, device="cpu"),
                        weights=build_model(config).state_dict(), history={"epochs": [], "summary": {}})
    return damage


def _valid_m2(config: M2Config) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        shutil.rmtree(run, ignore_errors=True)
        save_checkpoint(run, kind="m2", model_config=config,
                        train_config=M2TrainConfig(dataset="synthetic", epochs=1, device="cpu"),
                        weights=build_m2(config).state_dict(), history={"epochs": [], "summary": {}})
    return damage


def _huge_m2(run: Path) -> None:
    """An M2 whose config and weights file agree on an 8.6 GB first layer; the file is sparse."""
    config = M2Config(image_channels=4, image_height=256, image_width=256, hidden_dim=8192)
    with torch.device("meta"):
        shapes = {name: list(t.shape) for name, t in build_m2(config).state_dict().items()}
    header, offset = {}, 0
    for name, shape in sorted(shapes.items()):
        size = 4 * int(torch.Size(shape).numel())
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    shutil.rmtree(run)
    save_checkpoint(run, kind="m2", model_config=M2Config(), train_config=M2TrainConfig(dataset="synthetic"),
                    weights=build_m2(M2Config(hidden_dim=4)).state_dict(), history={"epochs": [], "summary": {}})
    _edit_json(_state(run) / "config.json", lambda c: c.update(model=to_dict(config)))
    weights = _state(run) / "weights.safetensors"
    _raw_safetensors(weights, header)
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size + offset)


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under a folder (links not followed) with its type, size, time and content hash."""
    seen = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        seen[str(path.relative_to(folder))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return seen

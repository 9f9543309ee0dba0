"""Damaged, hostile and colliding run folders (the corpus of `hostile_runs`, generated here): each
is stopped where it must be with a plain message naming the run, on the library, the command line
and every page; none hides a good run, runs code, hangs, takes memory beyond the budget or
changes anything outside its folder."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hostile_runs
import ui.common
from apptest_helpers import ROOT, errors, open_page, texts
from vae_core.checkpoints import save_checkpoint
from vae_core.cli import main
from vae_core.config import ConfigError, ModelConfig, TrainConfig
from vae_core.jobs import JobManager
from vae_core.m2.m1 import load_m1, m1_of, weights_digest
from vae_core.registry import load_model
from vae_core.store import (CheckpointError, check_run_name, list_runs, read_record, run_fingerprint,
                            runs_fingerprint, shown, switch_to)

BUDGET = "2G"
SECONDS = 10.0
PAGES = ["app.py", *sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))]


@pytest.fixture(autouse=True)
def _budget(monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MEMORY_BUDGET", BUDGET)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, trained_run):
    """The corpus, generated once for every test that only reads it."""
    return hostile_runs.build(tmp_path_factory.mktemp("hostile"), trained_run)


@pytest.fixture
def unchanged(corpus):
    """Checks, after the test, that nothing outside the runs folder and no shipped run changed."""
    before = [hostile_runs.snapshot(f) for f in (corpus.outside, corpus.elsewhere, ROOT / "checkpoints")]
    yield
    after = [hostile_runs.snapshot(f) for f in (corpus.outside, corpus.elsewhere, ROOT / "checkpoints")]
    assert after == before


def test_listing_reads_each_run_on_its_own_and_says_why_one_cannot_be_read(corpus, unchanged):
    start = time.perf_counter()
    runs = {r.name: r for r in list_runs(corpus.root)}
    assert time.perf_counter() - start < SECONDS
    assert set(runs) == set(corpus.cases)
    for name, case in corpus.cases.items():
        if case.stage == "list":
            assert runs[name].record is None and case.phrase in runs[name].error, (name, runs[name].error)
            assert runs[name].error.startswith(name) and str(corpus.root) not in runs[name].error
        else:
            assert runs[name].error is None, (name, runs[name].error)
    assert sum(case.stage == "list" for case in corpus.cases.values()) >= 25


def test_loading_checks_every_file_against_the_config_before_allocating(corpus, unchanged):
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for name, case in corpus.cases.items():
        if case.stage == "list":
            continue
        start = time.perf_counter()
        try:
            load_model(corpus.root / name)
            problem = None
        except Exception as exc:  # noqa: BLE001 - any other exception fails below, by name
            problem = f"{type(exc).__name__}: {exc}"
        assert time.perf_counter() - start < SECONDS, name
        if case.stage == "load":
            assert problem and problem.startswith(("CheckpointError", "ConfigError")) and case.phrase in problem, \
                (name, problem)
            assert str(corpus.root) not in problem
        else:
            assert problem is None, (name, problem)
    # Nothing came near the budget: the 8.6 GB tensor and the 8 x 8192 layers were refused unread.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before < 2**30


def test_a_process_that_meets_the_largest_configs_stays_under_the_budget(corpus):
    heavy = ["eight-gigabyte-tensor", "eight-layers-of-8192", "size-disagrees", "weights-float8"]
    code = ("import resource, sys; from vae_core.cli import main; "
            f"codes = [main(['evaluate', r, '--no-save']) for r in {[str(corpus.root / n) for n in heavy]}]; "
            "print(codes, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, VAE_EXPLORER_MEMORY_BUDGET=BUDGET))
    codes, peak = result.stdout.strip().rsplit(" ", 1)
    assert codes == "[2, 2, 2, 2]", result.stderr
    assert int(peak) < 2 * 2**30 and "Traceback" not in result.stderr
    assert "more than this server's budget of 2.1 GB" in result.stderr


def _cli(argv, capsys) -> tuple[int, str]:
    start = time.perf_counter()
    code = main(argv)
    assert time.perf_counter() - start < SECONDS, argv
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_command_line_stops_every_hostile_run_with_a_message(tmp_path, trained_run, capsys):
    corpus = hostile_runs.build(tmp_path, trained_run)  # a copy of its own: these commands write
    outside = [hostile_runs.snapshot(f) for f in (corpus.outside, corpus.elsewhere)]
    code, out = _cli(["list", str(corpus.root)], capsys)
    assert code == 0 and str(corpus.root) not in out
    for name, case in corpus.cases.items():
        line = next(line for line in out.splitlines() if line.startswith(shown(name) + " "))
        assert ("unreadable" in line) == (case.stage == "list"), line
    outcomes = {}
    for name, case in corpus.cases.items():
        if name == "fashion-offline":
            continue  # the command line may download a dataset (no network here: slow, not wrong)
        run = str(corpus.root / name)
        epochs = len(read_record(run).epochs) + 1 if case.stage != "list" else 2
        resume = ["resume", run, "--epochs", str(epochs), "--progress", "none"]
        evaluate, slim = ["evaluate", run, "--importance-samples", "0"], ["slim", run]
        # Each command where it can meet the damage (training the good runs takes time: two do).
        commands = {"list": [resume, evaluate, slim], "load": [resume, evaluate, slim], "resume": [resume],
                    "page": [evaluate]}.get(case.stage, [evaluate])
        if name in ("good", "planted-links"):
            commands = [resume, evaluate, slim]
        for argv in commands:
            code, text = _cli(argv, capsys)
            outcomes[name, argv[0]] = code
            assert code in (0, 2) and "Traceback" not in text, (name, argv, text)
            assert code == 0 or str(corpus.root) not in text, (name, argv, text)  # errors name the run only
            if case.stage in ("list", "load"):
                assert code == 2 and case.phrase in text, (name, argv, text)
            if case.stage == "resume" and argv[0] == "resume":
                assert code == 2 and case.phrase in text and "trainer.safetensors" in text, (name, text)
    assert outcomes["good", "resume"] == outcomes["good", "evaluate"] == outcomes["good", "slim"] == 0
    assert all(code == 0 for (name, _), code in outcomes.items() if corpus.cases[name].stage is None), outcomes
    assert outcomes["valid-32x32", "evaluate"] == 2 and outcomes["m1m2-shadowed", "evaluate"] == 0
    assert outcomes["planted-links", "evaluate"] == 0
    assert [hostile_runs.snapshot(f) for f in (corpus.outside, corpus.elsewhere)] == outside
    assert not (corpus.outside / "pwned").exists()
    print(f"{len(outcomes)} command runs on {len(corpus.cases)} runs: "
          f"{sum(c == 0 for c in outcomes.values())} done, {sum(c == 2 for c in outcomes.values())} refused")


def test_a_save_never_writes_through_a_planted_link(tmp_path, trained_run):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (run / f".run.json.tmp-{os.getpid()}").symlink_to(victim)  # the temporary name saves once used
    record = read_record(run)
    state = save_checkpoint(run, kind="vae", model_config=record.model_config, train_config=record.train_config,
                            weights=load_model(run)[1].weights, history=record.history)
    assert victim.read_text() == "keep" and read_record(run).history == record.history
    switch_to(run, state)
    assert victim.read_text() == "keep"
    link = tmp_path / "linked-run"
    link.symlink_to(run, target_is_directory=True)
    with pytest.raises(CheckpointError, match="symbolic link"):
        save_checkpoint(link, kind="vae", model_config=record.model_config, train_config=record.train_config,
                        weights={}, history=record.history)


def test_run_names_with_control_characters_are_refused_and_a_leading_dash_works(tmp_path, capsys):
    for name in ("nul\x00byte", "new\nline", "bell\x07", "right-to-left\u202e"):
        with pytest.raises(ConfigError, match="control or invisible characters"):
            check_run_name(name)
        with pytest.raises(ConfigError, match="control or invisible characters"):
            JobManager(tmp_path).start(ModelConfig(), TrainConfig(), name)
    code, text = _cli(["train", "--dataset", "synthetic", "--epochs", "1", "--hidden-dim", "8", "--runs-dir",
                       str(tmp_path), "--name", "tab\there", "--progress", "none"], capsys)
    assert code == 2 and "U+0009" in text
    code, text = _cli(["train", "--dataset", "synthetic", "--epochs", "1", "--hidden-dim", "8", "--runs-dir",
                       str(tmp_path), "--name=-dash", "--progress", "none"], capsys)
    assert code == 0 and read_record(tmp_path / "dash").train_config.epochs == 1


def test_the_train_form_refuses_a_name_with_a_nul_byte():
    at = open_page("pages/1_Train.py")
    count = len(ui.common.job_manager().jobs())
    at.text_input(key="form_name").set_value("bad\x00name")
    at.button(key="form_start").click().run()
    assert not at.exception and any("control or invisible characters" in e for e in errors(at))
    assert len(ui.common.job_manager().jobs()) == count


def test_the_shipped_m1_plus_m2_finds_its_m1_by_digest_not_by_name(tmp_path, monkeypatch):
    shipped = ROOT / "checkpoints"
    pair = read_record(shipped / "mnist-m1m2-100labels")
    m1, _ = load_m1(shipped / "m1-mnist-z50")
    assert pair.model_config.m1_digest == weights_digest(m1)
    # A visitor's VAE of the recorded name, where the recorded path (runs/m1-mnist-z50) points.
    impostor = tmp_path / "runs" / "m1-mnist-z50"
    record = read_record(shipped / "m1-mnist-z50")
    save_checkpoint(impostor, kind="vae", model_config=record.model_config, train_config=record.train_config,
                    weights={k: v + 0.01 for k, v in m1.state_dict().items()}, history=record.history)
    monkeypatch.chdir(tmp_path)
    found, path = m1_of(pair)
    assert path == shipped / "m1-mnist-z50" and weights_digest(found) == pair.model_config.m1_digest


def test_the_listing_key_changes_when_a_run_changes(tmp_path, trained_run):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before, run_before = runs_fingerprint(tmp_path), run_fingerprint(run)
    assert runs_fingerprint(tmp_path) == before
    config = next(run.glob("state-*/config.json"))
    config.write_text(config.read_text().replace('"latent_dim": 2', '"latent_dim": 3'))  # edited in place
    assert runs_fingerprint(tmp_path) != before and run_fingerprint(run) != run_before


def _page_text(at) -> str:
    return texts(at) + "\n".join(str(e.value) for e in at.sidebar.caption)


def test_every_page_runs_with_the_corpus_and_still_lists_the_good_runs(corpus, unchanged, monkeypatch):
    monkeypatch.setattr(ui.common, "RUNS", corpus.root)
    unreadable = sum(case.stage == "list" for case in corpus.cases.values())
    for page in PAGES:
        at = open_page(None if page == "app.py" else page)
        at.default_timeout = SECONDS
        assert not at.exception, (page, at.exception)
        assert f"{unreadable} run(s) cannot be read" in [e.label for e in at.sidebar.expander], page
        shown = _page_text(at)
        assert str(corpus.root) not in shown and "Traceback" not in shown, page
        if at.sidebar.selectbox:
            options = at.sidebar.selectbox[0].options
            assert {"good", "-starts-with-a-dash", "mnist-mlp-z2", "mnist-mlp-z2 (shipped)",
                    "mnist-mlp-z2 (shipped) (not shipped)"} <= set(options) \
                or {"good-m2", "m1m2-shadowed"} <= set(options), (page, options)


def test_inside_the_elbos_last_tab_reads_every_run_and_names_those_it_leaves_out(corpus, unchanged, monkeypatch):
    """"Where the nats go" loads every VAE run of the picked run's dataset: the good ones are
    on its chart and table, the ones that cannot be loaded are named in one line."""
    monkeypatch.setattr(ui.common, "RUNS", corpus.root)
    at = open_page("pages/7_Inside_the_ELBO.py")
    at.default_timeout = SECONDS * 6
    at.sidebar.selectbox[0].select("good").run()
    at.session_state["inside_section"] = "4. Where the nats go"
    at.run()
    assert not at.exception and not errors(at), (at.exception, errors(at))
    shown = texts(at)
    assert "| good |" in shown and "active units" in shown
    assert "Left out, their weights cannot be loaded:" in shown
    assert str(corpus.root) not in shown and "Traceback" not in shown


@pytest.mark.parametrize("page, kind", [("pages/2_Latent_space.py", "vae"), ("pages/6_Semi-supervised.py", "m2"),
                                        ("pages/3_Interpolate.py", "vae"), ("pages/4_Reconstruct.py", "vae")])
def test_a_model_page_shows_each_hostile_run_as_a_message_and_each_good_one(corpus, unchanged, monkeypatch,
                                                                             page, kind):
    monkeypatch.setattr(ui.common, "RUNS", corpus.root)
    at = open_page(page)
    at.default_timeout = SECONDS
    picked = [(name, case) for name, case in corpus.cases.items()
              if case.kind == kind and case.stage in ("load", "page", None)]
    if page in ("pages/3_Interpolate.py", "pages/4_Reconstruct.py"):  # the same loading path: a sample
        picked = [(n, c) for n, c in picked if n in ("valid-32x32", "weights-float8", "good", "eight-layers-of-8192")]
    for name, case in picked:
        start = time.perf_counter()
        at.sidebar.selectbox[0].select(name + " (not shipped)" if name.endswith("(shipped)") else name).run()
        assert time.perf_counter() - start < SECONDS, (page, name)
        assert not at.exception, (page, name, at.exception)
        assert str(corpus.root) not in _page_text(at), (page, name)
        if case.stage is None:
            assert not errors(at), (page, name, errors(at))
        else:
            assert any(case.phrase in e.replace("\\", "") for e in errors(at)), (page, name, errors(at))

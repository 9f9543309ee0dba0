"""The Streamlit app with AppTest: every page runs, and its widgets change what is shown."""

import base64
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from apptest_helpers import ROOT, bidi_data, component_data, errors, image_urls, open_page, plotly_values, texts, walk
from vae_core.vae import explore
from vae_core.commands import evaluate, train
from vae_core.config import M2Config, M2TrainConfig
from vae_core.store import read_record
from vae_core.registry import load_model
from vae_core.config import ModelConfig, TrainConfig
from vae_core.data import load_dataset

SHIPPED_2D = "mnist-mlp-z2 (shipped)"
SHIPPED_20D = "mnist-mlp-z20 (shipped)"


def test_home_explains_the_elbo_and_lists_the_shipped_models():
    at = open_page()
    assert not at.exception and not errors(at)
    assert not at.get("latex")  # the maths runs when opened: no KaTeX before the explorer
    at.session_state["home_maths"] = True  # opened
    at.run()
    assert not at.exception and not errors(at)
    latex = " ".join(e.value for e in at.get("latex"))
    assert r"\log p_\theta(x)" in latex and r"\epsilon \sim \mathcal{N}(0, I)" in latex
    tables = texts(at)
    assert "| mnist-mlp-z2 | 2 | 500 |" in tables and "| mnist-mlp-z20 | 20 | 500 |" in tables
    shipped = next(line for line in tables.splitlines() if line.startswith("| mnist-m2 |"))
    cells = [c.strip() for c in shipped.strip("|").split("|")]
    assert cells[1:3] == ["3000", "pixels"] and 0 < float(cells[5]) < 100
    assert at.sidebar.selectbox[0].value == SHIPPED_2D


def explorer_data(at) -> dict:
    """The data the Latent space page sends to its browser-side explorer."""
    return component_data(at, "points")


def decode_like_the_browser(data, z):
    """The explorer's JavaScript decoder, step for step, in numpy."""
    def array(text):
        return np.frombuffer(base64.b64decode(text), dtype=np.float32)
    assert data["activation"] == "tanh"
    x, layers = z, data["layers"]
    for i, layer in enumerate(layers):
        x = array(layer["weight"]).reshape(layer["out"], layer["in"]) @ x + array(layer["bias"])
        x = np.tanh(x) if i < len(layers) - 1 else 1 / (1 + np.exp(-x))
    return x.reshape(data["height"], data["width"])


def test_latent_explorer_gets_the_decoder_the_encodings_and_the_slider_values():
    at = open_page("pages/2_Latent_space.py")
    assert not at.exception and not errors(at)
    data = explorer_data(at)
    assert data["z"] == [0.0, 0.0] and data["slider_axes"] and data["dims"] == [0, 1]
    model, ckpt = load_model(ROOT / "checkpoints" / "mnist-mlp-z2")
    z = np.array([1.3, -0.7], dtype=np.float32)
    np.testing.assert_allclose(decode_like_the_browser(data, z), explore.decode(model, z[None])[0], atol=1e-5)
    points = np.frombuffer(base64.b64decode(data["points"]), dtype=np.float32).reshape(-1, 2)
    assert points.shape == (10_000, 2)

    at.session_state["z_a"] = 2.0  # what the component reports after a move
    at.run()
    assert explorer_data(at)["z"] == [2.0, 0.0]


def test_clicking_a_test_digit_moves_the_sliders_to_its_code():
    at = open_page("pages/2_Latent_space.py")
    points = np.frombuffer(base64.b64decode(explorer_data(at)["points"]), dtype=np.float32).reshape(-1, 2)
    at.session_state["latent_pending_click"] = 42  # as set when the component reports a click
    at.run()
    assert not at.exception
    assert explorer_data(at)["z"] == pytest.approx(np.clip(np.round(points[42], 2), -4, 4).tolist(), abs=1e-6)


def test_a_20d_model_gets_dimension_choice_pca_and_a_base_digit():
    at = open_page("pages/2_Latent_space.py")
    at.sidebar.selectbox[0].select(SHIPPED_20D).run()
    assert not at.exception and not errors(at)
    data = explorer_data(at)
    assert data["scatter_titles"][0].startswith("PC 1") and not data["slider_axes"]
    assert data["base"] == [0.0] * 20
    grid = image_urls(at)[0]
    at.selectbox(key="latent_dim_a").select(3).run()
    assert explorer_data(at)["dims"] == [3, 1] and explorer_data(at)["axis_names"] == ["z4", "z2"]
    assert image_urls(at)[0] != grid  # the manifold grid spans the new pair of dimensions
    at.radio(key="latent_rest").set_value("at an encoded test digit").run()
    assert not at.exception and at.number_input(key="latent_base_index").value == 0
    base0 = explorer_data(at)["base"]
    at.number_input(key="latent_base_index").set_value(7).run()
    assert explorer_data(at)["base"] != base0 and any(abs(v) > 0.1 for v in base0)
    at.session_state["latent_pending_click"] = 123
    at.run()
    assert at.number_input(key="latent_base_index").value == 123


def test_a_conv_model_falls_back_to_server_side_sliders(tmp_path):
    from ui.common import RUNS
    train(ModelConfig(architecture="conv", latent_dim=2, hidden_dim=16),
          TrainConfig(dataset="synthetic", epochs=1, batch_size=64, device="cpu"), RUNS / "conv-apptest")
    at = open_page("pages/2_Latent_space.py")
    at.sidebar.selectbox[0].select("conv-apptest").run()
    assert not at.exception and not errors(at)
    before = image_urls(at)
    marker_before = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][-1]
    at.slider(key="z_a").set_value(2.0).run()
    after = image_urls(at)
    assert after[0] != before[0] and after[1] == before[1]  # decoded image changed, grid did not
    marker_after = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][-1]
    assert marker_after["x"] == [2.0] and marker_before["x"] == [0.0]
    at.session_state["latent_scatter"] = {"selection": {"points": [{"curve_number": 3, "point_index": 0}]}}
    at.run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert at.slider(key="z_a").value == pytest.approx(plotly_values(spec["data"][3]["x"])[0], abs=0.01)


def test_the_model_choice_carries_across_pages():
    at = open_page("pages/2_Latent_space.py")
    at.sidebar.selectbox[0].select(SHIPPED_20D).run()
    at.switch_page("pages/5_Training_curves.py").run()
    assert at.sidebar.selectbox[0].value == SHIPPED_20D
    assert "784-500-20" in texts(at) or any("784-500-20" in m.value for m in at.sidebar.markdown)


def test_training_curves_overlay_runs_and_switch_quantity():
    at = open_page("pages/5_Training_curves.py")
    assert not at.exception and not errors(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [trace["name"] for trace in spec["data"]]
    assert "mnist-mlp-z2 (shipped) (validation)" in names and "mnist-mlp-z20 (shipped) (train)" in names
    assert spec["layout"]["yaxis"]["title"]["text"].startswith("ELBO")
    at.radio[0].set_value("kl").run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["yaxis"]["title"]["text"].startswith("KL")
    at.multiselect[0].set_value(["mnist-m1m2-100labels (shipped)", "mnist-mlp-z2 (shipped)"]).run()  # an M2 too
    at.radio[0].set_value("accuracy").run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["yaxis"]["title"]["text"] == "accuracy"
    assert [trace["name"] for trace in spec["data"]] == ["mnist-m1m2-100labels (shipped) (validation)"]
    table = texts(at).splitlines()
    m2_row = next(line for line in table if line.startswith("| mnist-m1m2-100labels (shipped) |"))
    vae_row = next(line for line in table if line.startswith("| mnist-mlp-z2 (shipped) |"))
    assert "| 3.84 |" in m2_row and "| - |" in m2_row and "| - |" in vae_row  # empty cells show "-"
    assert "None" not in m2_row + vae_row
    at.multiselect[1].set_value([]).run()
    assert "Choose at least one run" in texts(at)


def _fill_tiny_form(at, name, **overrides):
    values = {"form_dataset": "synthetic", "form_hidden_dim": 16, "form_epochs": 2, "form_latent_dim": 2,
              **overrides}
    at.text_input(key="form_name").set_value(name)
    for key, value in values.items():
        widget = at.selectbox(key=key) if key in ("form_dataset",) else at.number_input(key=key)
        widget.set_value(value) if key != "form_dataset" else widget.select(value)
    return at


def _wait_for_jobs(at, timeout=120):
    from ui.common import job_manager
    deadline = time.monotonic() + timeout
    while any(j.active for j in job_manager().jobs()) and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()  # AppTest does not fire the fragment's timer: rerun as a poll
    return job_manager().jobs()


def test_a_tiny_training_run_started_from_the_train_page_finishes_and_appears_in_the_picker():
    at = open_page("pages/1_Train.py")
    assert not at.exception and not errors(at)
    _fill_tiny_form(at, "apptest run", form_hidden_layers=2)
    at.button(key="form_start").click().run()
    assert not at.exception and not errors(at)
    assert "Started" in texts(at)
    jobs = _wait_for_jobs(at)
    job = next(j for j in jobs if j.label == "apptest run")
    assert job.status == "finished", job.error
    assert len(job.epochs) == 2 and job.run_dir.name == "apptest-run"
    assert read_record(job.run_dir).model_config.hidden_layers == 2
    at.run()
    assert "finished after 2 epochs" in str([p.proto.text for p in at.get("progress")])
    assert "apptest-run" in at.sidebar.selectbox[0].options


def test_an_m1_plus_m2_run_started_from_the_train_page_finishes_and_can_be_resumed(tiny_m1_m2_run):
    from ui.common import RUNS
    at = open_page("pages/1_Train.py")
    at.radio(key="train_kind").set_value("m2").run()
    assert not at.exception and not errors(at)
    at.text_input(key="form_m2_name").set_value("apptest m1m2")
    at.selectbox(key="form_m2_inputs").select("m1-apptest")   # the VAE of the fixture, as M1
    at.selectbox(key="form_m2_dataset").select("synthetic")
    at.number_input(key="form_m2_hidden_dim").set_value(16)
    at.number_input(key="form_m2_epochs").set_value(2)
    at.button(key="form_m2_start").click().run()
    assert not at.exception and not errors(at) and "Started" in texts(at)
    job = next(j for j in _wait_for_jobs(at) if j.label == "apptest m1m2")
    assert job.status == "finished", job.error
    ckpt = read_record(job.run_dir)
    assert ckpt.kind == "m2" and ckpt.train_config.m1_run == str(RUNS / "m1-apptest")
    assert ckpt.model_config.latent_dim == 10 and ckpt.model_config.input_features == 6
    assert "test_accuracy" in ckpt.summary
    at.run()
    tabs = [t.label for t in at.tabs]
    assert tabs[:2] == ["validation accuracy", "ELBO"]  # the job's curves
    # the run can be resumed from the same page, and is offered on the Semi-supervised page
    resume_box = next(b for b in at.selectbox if b.label == "Run")
    option = next(o for o in resume_box.options if o.startswith(job.run_dir.name + " "))
    resume_box.select(option).run()
    number = {n.label: n for n in at.number_input}
    number["Total epochs"].set_value(3)
    number["Learning rate"].set_value(50.0)
    resume = next(b for b in at.button if b.label == "Resume")
    resume.click().run()
    assert any("learning_rate: input should be less than or equal to 10" in e for e in errors(at))
    number = {n.label: n for n in at.number_input}
    number["Learning rate"].set_value(1e-4)
    next(b for b in at.button if b.label == "Resume").click().run()
    assert not at.exception and "with learning rate 0.0001" in texts(at)
    _wait_for_jobs(at)
    ckpt = read_record(job.run_dir)
    assert [r["learning_rate"] for r in ckpt.epochs] == [3e-4, 3e-4, 1e-4]
    assert ckpt.train_config.learning_rate == 1e-4
    page = open_page("pages/6_Semi-supervised.py")
    assert job.run_dir.name in page.sidebar.selectbox[0].options


def test_out_of_range_form_values_are_refused_with_a_message():
    at = open_page("pages/1_Train.py")
    # the +/- buttons move small values by a tenth of their decade, not by 0.01
    assert at.number_input(key="form_learning_rate").step == pytest.approx(1e-4)
    assert at.number_input(key="form_beta").step == pytest.approx(0.1)
    from ui.common import job_manager
    count = len(job_manager().jobs())
    _fill_tiny_form(at, "refused", form_epochs=0)
    at.button(key="form_start").click().run()
    assert not at.exception
    assert any("epochs: input should be greater than or equal to 1" in e for e in errors(at))
    _fill_tiny_form(at, "refused", form_learning_rate=-1.0)
    at.button(key="form_start").click().run()
    assert any("learning_rate" in e for e in errors(at))
    assert len(job_manager().jobs()) == count


def test_a_crash_in_training_is_reported_and_the_app_stays_up():
    at = open_page("pages/1_Train.py")
    _fill_tiny_form(at, "will fail")
    at.selectbox(key="form_dataset").select("fashion-mnist")  # not available offline: the job fails
    at.button(key="form_start").click().run()
    jobs = _wait_for_jobs(at)
    job = next(j for j in jobs if j.label == "will fail")
    assert job.status == "failed" and "fashion-mnist" in job.error
    at.run()
    assert not at.exception
    assert any("Training failed" in e for e in errors(at))


def png_bytes(image) -> bytes:
    import io
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def drawn_digit(width=200, height=300):
    from PIL import Image, ImageDraw
    img = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(img).line([(40, 45), (160, 45), (80, 255)], fill="black", width=18)
    return img


def test_interpolate_by_index_class_and_upload_with_the_path_drawn():
    at = open_page("pages/3_Interpolate.py")
    assert not at.exception and not errors(at)
    strips = image_urls(at)
    assert len(strips) == 2
    assert not at.get("plotly_chart")  # the map is drawn by the scrubber, in the browser
    path = component_data(at, "z_a")["map"]["path"]
    assert len(path) == 10
    np.testing.assert_allclose(path[0], component_data(at, "z_a")["z_a"], atol=1e-5)  # the 2-D model: z itself
    at.slider[0].set_value(5).run()
    assert len(component_data(at, "z_a")["map"]["path"]) == 5
    at.number_input(key="End_index").set_value(3).run()
    changed = image_urls(at)
    assert changed[0] != strips[0]
    at.radio(key="End_source").set_value("class").run()
    at.selectbox(key="End_class").select(7).run()
    assert not at.exception and "a 7" in texts(at)
    at.radio[2].set_value("spherical").run()
    assert not at.exception
    at.radio(key="Start_source").set_value("upload").run()
    assert "Upload an image to use it here" in texts(at)
    at.get("file_uploader")[0].upload("seven.png", png_bytes(drawn_digit()), "image/png").run()
    assert not at.exception and not errors(at) and "your image" in texts(at)


def test_reconstruct_an_upload_shows_each_step_scores_and_samples():
    at = open_page("pages/4_Reconstruct.py")
    assert not at.exception and not errors(at)
    assert "Test digit #0" in texts(at)  # a test digit until the visitor brings one
    at.radio(key="reconstruct_source").set_value("upload").run()
    assert "Upload an image to use it here" in texts(at)
    at.get("file_uploader")[0].upload("seven.png", png_bytes(drawn_digit()), "image/png").run()
    assert not at.exception and not errors(at)
    shown = texts(at)
    assert "How it was prepared" in shown and "Your image and its reconstruction" in shown
    metrics = {m.label: m.value for m in at.get("metric")}
    elbo = float(metrics["ELBO (nats)"])
    log_px = float(metrics["log p(x) (nats)"])
    assert log_px >= elbo - 1.0
    assert "higher than" in shown and "of the test digits" in shown and "Nalisnick" in shown
    # the caveat, shown: images that are no digit can score higher than a real one
    next(b for b in at.button if b.label.startswith("Show me")).click().run()
    captions = " ".join(str(e.proto) for e in walk(at.main) if type(e).__name__ == "Image")
    assert "a blank image: ELBO" in captions and "one thin stroke: ELBO" in captions
    samples = image_urls(at)[-1]
    next(b for b in at.button if b.label == "New samples").click().run()
    assert image_urls(at)[-1] != samples  # new prior samples


def _bad_uploads():
    import io
    from PIL import Image
    good = png_bytes(drawn_digit())
    jpeg = io.BytesIO()
    drawn_digit().save(jpeg, "JPEG")
    gif = io.BytesIO()
    frames = [drawn_digit().convert("L"), drawn_digit().convert("L").rotate(90)]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (45, 10, 55, 90))
    sixteen = Image.fromarray((np.asarray(drawn_digit().convert("L"), dtype=np.uint16) * 257))
    floating = Image.fromarray(np.asarray(drawn_digit().convert("L"), dtype=np.float32) / 255, mode="F")
    tiff = io.BytesIO()
    floating.save(tiff, "TIFF")
    cmyk = io.BytesIO()
    drawn_digit().convert("CMYK").save(cmyk, "JPEG")
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    drawn_digit().rotate(90, expand=True).save(rotated, "JPEG", exif=exif)
    bomb = png_bytes(Image.new("1", (20000, 20000)))
    huge = png_bytes(Image.new("L", (5000, 5000), 255))
    return {
        # name: (file name, bytes, an error phrase, or None when the image must be accepted)
        "empty": ("empty.png", b"", "empty"),
        "not an image": ("notes.png", b"hello, this is text" * 20, "not an image"),
        "truncated": ("cut.png", good[: len(good) // 2], "truncated or corrupt"),
        "bomb": ("bomb.png", bomb, "too large"),
        "huge": ("huge.png", huge, "5000x5000"),
        "svg": ("digit.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><path d='M0 0'/></svg>", "SVG"),
        "blank": ("blank.png", png_bytes(Image.new("L", (64, 64), 255)), "No ink found"),
        "animated": ("anim.gif", gif.getvalue(), None),
        "transparency-only strokes": ("alpha.png", png_bytes(rgba), None),
        "16-bit": ("deep.png", png_bytes(sixteen), None),
        "float": ("float.tiff", tiff.getvalue(), None),
        "CMYK": ("cmyk.jpg", cmyk.getvalue(), None),
        "EXIF-rotated": ("photo.jpg", rotated.getvalue(), None),
        "JPEG": ("digit.jpg", jpeg.getvalue(), None),
    }


@pytest.mark.parametrize("kind", list(_bad_uploads()))
def test_every_kind_of_upload_gets_a_result_or_a_clear_message(kind):
    name, data, phrase = _bad_uploads()[kind]
    at = open_page("pages/4_Reconstruct.py")
    at.radio(key="reconstruct_source").set_value("upload").run()
    at.get("file_uploader")[0].upload(name, data, "image/png").run()
    assert not at.exception, at.exception
    if phrase is None:
        assert not errors(at) and "Your image and its reconstruction" in texts(at)
    else:
        assert any(phrase in e and name in e for e in errors(at)), errors(at)
        assert "Upload an image to use it here" in texts(at)  # the page goes on, asking for another
        assert "Draw z ~ N(0, I) and decode" in texts(at)  # the rest of the page is there


@pytest.fixture(scope="module")
def tiny_m2_run():
    from ui.common import RUNS
    path = RUNS / "m2-apptest"
    if not path.exists():
        train(M2Config(latent_dim=4, hidden_dim=32),
              M2TrainConfig(dataset="synthetic", num_labels=100, epochs=2, device="cpu"), path)
        evaluate(path, device="cpu")  # as `python -m vae_core evaluate` does
    return "m2-apptest"


def open_semi_supervised_page(run: str):
    """The Semi-supervised page with `run` picked: no error, and the classifier's q(y|x) and the
    generative model's p(y|x), each over ten classes and summing to 1."""
    at = open_page("pages/6_Semi-supervised.py")
    at.sidebar.selectbox[0].select(run).run()
    assert not at.exception and not errors(at)
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")[:2]]
    assert [c["layout"]["title"]["text"].split(":")[0] for c in charts] == ["q(y|x)", "p(y|x)"]
    for chart in charts:
        values = plotly_values(chart["data"][0]["y"])
        assert sum(values) == pytest.approx(1.0, abs=1e-4) and len(values) == 10
    return at


def check_generate_tab(at, run: str) -> None:
    """The Generate tab sends the browser a decoder that draws what `generate` draws (the class
    and the moved style are the browser's; here the same sums in numpy), and a new seed a new
    style from the prior."""
    from ui.common import RUNS
    from vae_core.m2.explore import generate, run_generator, style
    from vae_core.m2.m1 import m1_of
    assert not [n for n in walk(at.main) if getattr(n, "type", None) == "bidi_component"
                and "stages" in bidi_data(n)]  # not sent until the tab is opened
    at.session_state["m2_tab"] = "Generate"
    at.run()
    data = component_data(at, "stages")
    model, _ = load_model(RUNS / run)
    m1, _ = m1_of(read_record(RUNS / run))
    assert ("M1's decoder draws it" in texts(at)) == (m1 is not None)
    assert data["dims"] == [0, 1] and data["label"] == 3 and data["base"] == [0.0] * model.config.latent_dim
    stages = [{"layers": [(np.frombuffer(base64.b64decode(l["weight"]), np.float32).reshape(l["out"], l["in"]),
                           np.frombuffer(base64.b64decode(l["bias"]), np.float32)) for l in stage["layers"]],
               "activation": stage["activation"], "output": stage["output"],
               "scatter": None if stage["scatter"] is None else (stage["scatter"]["units"], stage["scatter"]["size"])}
              for stage in data["stages"]]
    z = np.zeros(model.config.latent_dim, np.float32)
    z[0] = 2.5  # as the browser's first slider moved to 2.5
    np.testing.assert_allclose(run_generator(stages, 5, z, 10), generate(model, [5], z[None], m1).ravel(), atol=1e-5)
    seed_input = next(n for n in at.number_input if n.label == "Style seed")
    seed_input.set_value(7).run()
    assert not at.exception and not errors(at)
    assert component_data(at, "stages")["base"] == pytest.approx(style(model.config.latent_dim, 7).tolist(), abs=1e-6)
    at.session_state["m2_tab"] = "Classify"
    at.run()


def test_semi_supervised_page_classifies_generates_and_draws_analogies(tiny_m2_run):
    at = open_semi_supervised_page(tiny_m2_run)
    at.radio(key="classify_source").set_value("upload").run()
    at.get("file_uploader")[0].upload("seven.png", png_bytes(drawn_digit()), "image/png").run()
    assert not at.exception and "How it was prepared" not in texts(at)  # the steps are shown as images
    assert "your image" in str([e.proto for e in walk(at.main) if type(e).__name__ == "Image"])
    check_generate_tab(at, tiny_m2_run)
    # back on Classify after a look at Generate: the uploaded digit is still there
    assert "your image" in str([e.proto for e in walk(at.main) if type(e).__name__ == "Image"])
    at.number_input(key="analogies_index").set_value(4).run()
    assert not at.exception and not errors(at)
    assert any("styles as 0-9" in str(e.proto) for e in walk(at.main) if type(e).__name__ == "Image")
    assert "the class whose bound L(x, y) is highest is the true one" in texts(at)


@pytest.fixture(scope="module")
def tiny_m1_m2_run():
    from ui.common import RUNS
    from vae_core.checkpoints import save_checkpoint
    m1, path = RUNS / "m1-apptest", RUNS / "m1m2-apptest"
    if not path.exists():
        trainer = train(ModelConfig(latent_dim=6, hidden_dim=32),
                        TrainConfig(dataset="synthetic", epochs=1, device="cpu"), m1)
        # Two epochs leave the tiny M1's decoder nearly blind to z; larger weights make every
        # change of M2's output visible in M1's images.
        torch.manual_seed(0)
        for p in trainer.model.parameters():
            torch.nn.init.normal_(p, std=0.5)
        save_checkpoint(m1, kind="vae", model_config=trainer.model_config, train_config=trainer.config,
                        weights=trainer.model.state_dict(),
                        history={"epochs": trainer.history, "summary": trainer.summary})
        train(M2Config(latent_dim=3, hidden_dim=32),
              M2TrainConfig(dataset="synthetic", num_labels=100, epochs=1, device="cpu",
                            m1_run=str(m1), m1_units="all"), path)
    return "m1m2-apptest"


def test_an_m1_plus_m2_model_classifies_generates_and_draws_analogies_through_m1(tiny_m1_m2_run):
    from ui.common import RUNS
    at = open_semi_supervised_page(tiny_m1_m2_run)
    check_generate_tab(at, tiny_m1_m2_run)
    assert any("styles as 0-9" in str(e.proto) for e in walk(at.main) if type(e).__name__ == "Image")

    # A copy whose M1 is nowhere to be found: the page says so, naming the missing run.
    import shutil
    orphan = RUNS / "m1m2-orphan-apptest"
    if not orphan.exists():
        shutil.copytree(RUNS / tiny_m1_m2_run, orphan)
        config_file = next(orphan.glob("state-*/config.json"))
        config = json.loads(config_file.read_text())
        config["training"]["m1_run"] = "gone/m1-gone"
        config_file.write_text(json.dumps(config))
    at.run()
    at.sidebar.selectbox[0].select("m1m2-orphan-apptest").run()
    assert not at.exception
    assert any("needs its M1 VAE" in e and "m1-gone" in e for e in errors(at))

    # A copy that records another M1's digest: this M1 is refused, with a message.
    impostor = RUNS / "m1m2-impostor-apptest"
    if not impostor.exists():
        shutil.copytree(RUNS / tiny_m1_m2_run, impostor)
        config_file = next(impostor.glob("state-*/config.json"))
        config = json.loads(config_file.read_text())
        config["model"]["m1_digest"] = "0" * 64
        config_file.write_text(json.dumps(config))
    at.run()
    at.sidebar.selectbox[0].select("m1m2-impostor-apptest").run()
    assert not at.exception
    assert any("not the M1 this model was trained on" in e for e in errors(at))


def test_a_broken_run_is_listed_with_its_problem_and_the_app_goes_on():
    from ui.common import RUNS
    broken = RUNS / "broken-apptest"
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "run.json").write_text('{"format": "vae-explorer-run", "version": 1, "state": "state-000001"}')
    try:
        at = open_page()
        assert not at.exception
        captions = " ".join(c.value for c in at.sidebar.caption)
        assert "broken-apptest" in captions and "state folder named by run.json is missing" in captions
        assert "broken-apptest" not in at.sidebar.selectbox[0].options
    finally:
        import shutil
        shutil.rmtree(broken)


# --- Classroom: the guided Home, presentation mode, "try this" prompts, the 20-D model offered ---

def test_home_opens_on_the_explorer_of_the_shipped_2d_model_with_steps_and_folded_maths():
    at = open_page()
    assert not at.exception and not errors(at)
    data = component_data(at, "points")
    assert data["latent_dim"] == 2 and data["slider_axes"] and data["z"] == [0.0, 0.0]
    model, _ = load_model(ROOT / "checkpoints" / "mnist-mlp-z2")
    z = np.array([0.4, -1.1], dtype=np.float32)
    np.testing.assert_allclose(decode_like_the_browser(data, z), explore.decode(model, z[None])[0], atol=1e-5)
    assert [s.value for s in at.subheader][:1] == ["Start here"]
    at.session_state["home_maths"] = True  # the maths opened
    maths = at.run().expander[0]
    assert maths.label.startswith("The maths") and any(r"\log p_\theta(x)" in e.value for e in maths.latex)
    # The shipped 2-D model stays on Home whatever the sidebar picks.
    at.sidebar.selectbox[0].select(SHIPPED_20D).run()
    assert component_data(at, "points")["latent_dim"] == 2
    assert component_data(at, "columns")["key"] == "mnist"  # the hover thumbnails' sheet, sent last


PAGE_WITHOUT_TORCH = """
import json, sys, threading
from streamlit.testing.v1 import AppTest

class NoWarmUp(threading.Timer):  # Home's warm-up imports torch for the other pages: not started here
    def start(self):
        if self.function is not __import__:
            super().start()

threading.Timer = NoWarmUp
at = AppTest.from_file("app.py", default_timeout=60).run()
if sys.argv[1] != "app.py":
    at.switch_page(sys.argv[1]).run()
for run in sys.argv[2:]:  # other models picked in the sidebar
    at.sidebar.selectbox[0].select(run).run()
loaded = "torch" in sys.modules
assert not at.exception, at.exception
assert not loaded, "the page imported torch"
assert len(at.get("bidi_component")) == 2, "the explorer and its thumbnails"
print(json.dumps({"modules": sorted(m for m in sys.modules if m.startswith("vae_core")),
                  "images": len(at.get("image"))}))
"""


@pytest.mark.parametrize("page, runs", [("app.py", []), ("pages/2_Latent_space.py", []),
                                        ("pages/2_Latent_space.py", [SHIPPED_20D])])
def test_home_and_latent_space_draw_without_importing_torch(page, runs):
    """On a cold server torch's import takes 1.5-2 s: Home and Latent space read an MLP VAE and the
    test digits as arrays, and the browser or numpy decodes (torch is imported for the other pages
    two seconds after Home's run, and on Latent space for a posterior's draws only)."""
    load_dataset("mnist")  # the test digits cached as arrays, as any first use of the data leaves them
    result = subprocess.run([sys.executable, "-c", PAGE_WITHOUT_TORCH, page, *runs], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert "vae_core.vae.arrays" in shown["modules"] and "vae_core.vae.model" not in shown["modules"]
    if page != "app.py":
        assert shown["images"] == 1  # the learned manifold, decoded with numpy


@pytest.mark.parametrize("problem", ["unreadable", "other images"])
def test_homes_explorer_gives_a_message_when_the_shipped_model_cannot_be_shown(monkeypatch, tmp_path, problem):
    import streamlit as st
    from ui import array_models
    from vae_core.store import CheckpointError
    if problem == "unreadable":
        def unreadable(path):
            raise CheckpointError(ROOT / "checkpoints" / "mnist-mlp-z2", "weights.safetensors is truncated")
        monkeypatch.setattr(array_models, "read_mlp", unreadable)
    else:  # a dataset whose images are not the model's size (read from no file: no kept codes)
        monkeypatch.setenv("VAE_DATA_ROOT", str(tmp_path))
        monkeypatch.setattr(array_models, "test_arrays",
                            lambda name: (np.zeros((5, 14, 14), np.float32), np.arange(5)))
    st.cache_resource.clear()
    try:
        at = open_page()
        assert not at.exception
        shown = " ".join(e.value for e in at.error)
        assert "The shipped 2-D model cannot be read" in shown
        assert ("truncated" in shown) if problem == "unreadable" else ("takes 1x28x28 images" in shown and "1x14x14" in shown)
        assert [s.value for s in at.subheader][:1] == ["Start here"]  # the rest of Home is there
    finally:
        st.cache_resource.clear()


def test_every_page_offers_things_to_try():
    at = open_page()
    for page in ("pages/1_Train.py", "pages/2_Latent_space.py", "pages/3_Interpolate.py", "pages/4_Reconstruct.py",
                 "pages/5_Training_curves.py", "pages/6_Semi-supervised.py", "pages/7_Inside_the_ELBO.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        tries = [m.value for m in at.markdown if m.value.startswith("**Try this:**")]
        assert len(tries) == 1 and 2 <= tries[0].count("\n- ") <= 3, page


def test_reconstruct_offers_the_20d_model_in_one_click_and_then_stops_offering():
    at = open_page("pages/4_Reconstruct.py")
    offer = at.button(key="offer_vae_mnist-mlp-z20")
    assert "2-D model" in texts(at) and offer.label == f"Use {SHIPPED_20D}"
    offer.click().run()
    assert not at.exception and not errors(at)
    assert at.sidebar.selectbox[0].value == SHIPPED_20D
    assert not [b for b in at.button if b.key == "offer_vae_mnist-mlp-z20"]
    at.switch_page("pages/3_Interpolate.py").run()  # the choice carries over, and so no offer there
    assert at.sidebar.selectbox[0].value == SHIPPED_20D
    assert not [b for b in at.button if b.key == "offer_vae_mnist-mlp-z20"]
    at.sidebar.selectbox[0].select(SHIPPED_2D).run()
    assert [b for b in at.button if b.key == "offer_vae_mnist-mlp-z20"]


def _chart_layout(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]


def test_presentation_mode_folds_the_prose_enlarges_the_charts_and_lasts_across_pages():
    at = open_page("pages/5_Training_curves.py")
    assert not at.expander and "tickfont" not in _chart_layout(at)["xaxis"]
    at.sidebar.toggle(key="presentation_toggle").set_value(True).run()
    assert not at.exception
    assert [e.label for e in at.expander] == ["About this page and what to try"]
    assert any(m.value.startswith("**Try this:**") for m in at.expander[0].markdown)
    layout = _chart_layout(at)
    assert layout["xaxis"]["tickfont"]["size"] >= 16 and layout["yaxis"]["tickfont"]["size"] >= 16
    assert layout["legend"]["font"]["size"] >= 16
    at.switch_page("pages/6_Semi-supervised.py").run()
    assert at.sidebar.toggle(key="presentation_toggle").value
    assert _chart_layout(at)["xaxis"]["tickfont"]["size"] >= 16
    at.sidebar.toggle(key="presentation_toggle").set_value(False).run()
    assert not at.expander and "tickfont" not in _chart_layout(at)["xaxis"]


def test_the_address_opens_the_app_in_presentation_mode():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["present"] = "1"
    at.run()
    assert not at.exception
    assert at.sidebar.toggle(key="presentation_toggle").value
    assert [e.label for e in at.expander] == ["The maths: the evidence lower bound (ELBO) and the reparameterisation trick",
                                              "What to explore, and the models"]
    at.sidebar.toggle(key="presentation_toggle").set_value(False).run()
    assert "present" not in at.query_params  # the address follows the toggle

"""Training curves: ELBO, reconstruction and KL (and an M2's accuracy) per epoch, for several runs at once."""

import streamlit as st

from ui.common import available_runs, page_intro, run_label, sidebar_run_picker
from vae_core.report import run_summary
from vae_core.plots import training_curves

st.set_page_config(page_title="Training curves · VAE Explorer", page_icon=":material/blur_on:", layout="wide")

path, _ = sidebar_run_picker()
page_intro("Training curves", (
    "The ELBO is the sum of a reconstruction term and minus a KL term; here both are tracked "
    "per epoch on the training data (dashed) and the held-out validation data (solid). "
    "Comparing latent sizes shows the paper's Fig. 2: more latent dimensions reach a better bound, "
    "and a validation curve that turns down while training still improves is overfitting."))

runs = {run_label(r): r for r in available_runs() + available_runs("m2")}
picked = next(label for label, r in runs.items() if r.path == path)
chosen = st.multiselect("Runs", list(runs), default=[picked] + [n for n in runs if n != picked][:2],
                        help="VAEs and semi-supervised M2 runs; an M2 run also has accuracy curves")
QUANTITIES = {"elbo": "ELBO", "recon": "reconstruction", "kl": "KL", "accuracy": "accuracy",
              "generative_accuracy": "generative accuracy"}
recorded = {key for n in chosen for row in runs[n].record.epochs for key in row}
quantities = [q for q in QUANTITIES if f"val_{q}" in recorded or f"train_{q}" in recorded] or ["elbo"]
c1, c2, c3 = st.columns(3)
metric = c1.radio("Quantity", quantities, horizontal=True, format_func=QUANTITIES.get)
x_axis = c2.radio("Horizontal axis", ["epoch", "examples_seen"], horizontal=True,
                  format_func={"epoch": "epochs", "examples_seen": "examples seen (log)"}.get)
splits = c3.multiselect("Data", ["train", "val"], default=["train", "val"],
                        format_func={"train": "training", "val": "validation"}.get)
if not chosen or not splits:
    st.info("Choose at least one run and one kind of data.")
    st.stop()

st.plotly_chart(training_curves([(n, runs[n].record.epochs) for n in chosen], metric, x_axis, tuple(splits)),
                config={"displayModeBar": False})

rows = []
for name in chosen:
    s = run_summary(runs[name].record)
    rows.append({"run": name, "latent size": s.latent_dim, "epochs": s.epochs, "best epoch": s.best_epoch,
                 "validation ELBO (last)": s.last_val_elbo, "test ELBO": s.test_elbo,
                 "test log p(x)": s.test_log_likelihood,
                 "test error (%)": None if s.test_error is None else 100 * s.test_error,
                 "training time (s)": s.wall_seconds})
st.dataframe(rows, hide_index=True, column_config={
    k: st.column_config.NumberColumn(format="%.2f") for k in
    ("validation ELBO (last)", "test ELBO", "test log p(x)", "test error (%)", "training time (s)")})

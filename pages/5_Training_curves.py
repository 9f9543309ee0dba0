"""Training curves: ELBO, reconstruction and KL (and an M2's accuracy) per epoch, for several runs at once."""

import streamlit as st

from ui.common import PAGE_ICON, RUNS, available_runs, page_intro, plain, run_label, sidebar_run_picker
from ui.learning_view import replay
from ui.presentation import chart
from vae_core.report import run_summary
from vae_core.store import saved_at
from vae_core.plots import training_curves

st.set_page_config(page_title="Training curves · VAE Explorer", page_icon=PAGE_ICON, layout="wide")

path, _ = sidebar_run_picker()
page_intro("Training curves", (
    "The ELBO is the sum of a reconstruction term and minus a KL term; here both are tracked "
    "per epoch on the training data (dashed) and the held-out validation data (solid). "
    "Comparing latent sizes shows the paper's Fig. 2: more latent dimensions reach a better bound, "
    "and a validation curve that turns down while training still improves is overfitting."),
    try_this=("Compare the 2-D and 20-D models: how many nats does a bigger code buy?",
              "Switch to KL: which model's code carries more information about each digit?",
              "Show examples seen on a log axis: how early does each run reach most of its final ELBO?"))

runs = {run_label(r): r for r in available_runs() + available_runs("m2")}
picked = next(label for label, r in runs.items() if r.path == path)
default = [picked] + [n for n in runs if n != picked][:2]
# The run saved last (e.g. the one just trained) comes first.
recent = max((n for n, r in runs.items() if r.path.parent == RUNS), key=lambda n: saved_at(runs[n].path), default=None)
chosen = st.multiselect("Runs", list(runs), default=[recent] * (recent not in [None, *default]) + default,
                        help="VAEs and semi-supervised M2 runs; an M2 run also has accuracy curves")
QUANTITIES = {"elbo": "ELBO", "recon": "reconstruction", "kl": "KL", "accuracy": "accuracy",
              "generative_accuracy": "generative accuracy"}
recorded = {key for n in chosen for row in runs[n].record.epochs for key in row}
quantities = [q for q in QUANTITIES if f"val_{q}" in recorded or f"train_{q}" in recorded] or ["elbo"]
metric = st.radio("Quantity", quantities, horizontal=True, format_func=QUANTITIES.get)
c2, c3 = st.columns(2)
x_axis = c2.radio("Horizontal axis", ["epoch", "examples_seen"], horizontal=True,
                  format_func={"epoch": "epochs", "examples_seen": "examples seen (log)"}.get)
splits = c3.multiselect("Data", ["train", "val"], default=["train", "val"],
                        format_func={"train": "training", "val": "validation"}.get)
if not chosen or not splits:
    st.info("Choose at least one run and one kind of data.")
    st.stop()

st.plotly_chart(chart(training_curves([(n, runs[n].record.epochs) for n in chosen], metric, x_axis, tuple(splits))),
                config={"displayModeBar": False})

rows = []
for name in chosen:
    s = run_summary(runs[name].record)
    rows.append({"run": plain(name), "latent size": s.latent_dim,
                 "epochs (best)": s.epochs if s.best_epoch is None else f"{s.epochs} ({s.best_epoch})",
                 "last validation ELBO": s.last_val_elbo, "test ELBO": s.test_elbo,
                 "test log p(x)": s.test_log_likelihood,
                 "test error %": None if s.test_error is None else 100 * s.test_error,
                 "training time (s)": None if s.wall_seconds is None else round(s.wall_seconds)})


def cell(value) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


# A Markdown table, which wraps its headers and run names, so that it fits a projector's narrow
# page (a dataframe of these columns scrolls sideways there); columns with no value are left out.
columns = [k for k in rows[0] if any(row[k] is not None for row in rows)]
table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
table += ["| " + " | ".join(cell(row[k]) for k in columns) + " |" for row in rows]
st.markdown("\n".join(table))

replay(path)  # the chosen run's latent map through training, if it is a 2-D VAE that recorded snapshots

"""Train: configure a VAE or a semi-supervised M2, train it in the background, watch it live,
stop and resume it."""

import streamlit as st

from ui.common import PAGE_ICON, job_manager, page_intro, sidebar_run_picker
from ui.job_cards import jobs_area, resume_section, visitor_jobs
from ui.train_form import train_form

st.set_page_config(page_title="Train · VAE Explorer", page_icon=PAGE_ICON, layout="wide")

sidebar_run_picker()
page_intro("Train", (
    "Choose a model and an objective and train it on this server. Each step draws a minibatch, "
    "samples z with the reparameterisation trick, and takes a gradient step on the negative ELBO "
    "(semi-supervised models add a labelled minibatch and a classification loss). "
    "Training runs in the background: the page stays responsive, and the job keeps going if you "
    "close the tab. Your jobs are shown first on this page; the server trains a few at a time and "
    "the others wait their turn. A finished run appears in the model picker."),
    try_this=("Start the quick demo and watch the ELBO climb: most of the gain comes in the first epoch.",
              "Train a 2-D model and a 20-D model the same way, then compare their curves on Training curves.",
              "Open a finished run on Latent space and see how the digits sorted themselves on the map."))

jobs = visitor_jobs(job_manager())  # what this browser session starts is its own
top = st.container()  # the visitor's jobs go first, so that Start shows its progress at once
train_form(jobs)
with top:
    jobs_area(jobs)
resume_section(jobs)

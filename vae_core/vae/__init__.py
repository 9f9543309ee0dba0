"""The VAE of Kingma & Welling (2013), "Auto-Encoding Variational Bayes": its model,
objective (the ELBO and its estimators), hand-derived backward, training task and what the app
computes with it."""

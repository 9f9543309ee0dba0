"""The semi-supervised M2 and M1+M2 of Kingma, Rezende, Mohamed & Welling (2014): model,
objective, training task, the M1 plumbing of M1+M2, and what the app computes with them."""

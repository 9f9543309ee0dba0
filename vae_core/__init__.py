"""VAE Explorer's library: data, models, objectives, training and checkpoints for the
variational autoencoders of Kingma & Welling (2013) and Kingma et al. (2014).

Importing the package has no side effects; the submodules are imported on demand.
"""

__version__ = "0.1.0"

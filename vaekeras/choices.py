"""The names a user chooses among, declared once and free of a backend.

The library checks its arguments against these tuples and the apps
offer them as flag choices; keeping them in a module that imports nothing
lets an app refuse a bad value before TensorFlow loads. Attacks, defenses
and studies are registries instead (`vaekeras.registry`): a user adds to
those.
"""

# "conv64": the 64 x 64 encoder and decoder of Higgins et al. (2017) as
# disentanglement_lib builds them.
ARCHITECTURES = ("mlp", "conv", "conv64")
LIKELIHOODS = ("bernoulli", "gaussian")
# "auto": data parallel when two or more local accelerators are visible.
DISTRIBUTIONS = ("auto", "none", "data_parallel")
# Shipped with the package: no download, no tensorflow-datasets.
OFFLINE_DATASETS = ("mnist_5k", "digits", "dsprites")
# Of those, drawn on the fly (`vaekeras.dsprites`), never held whole.
GENERATED_DATASETS = ("dsprites",)
# Their training epoch when none is given: batches drawn with replacement
# (a pass over dSprites' 727,280 training images takes hours on a CPU).
GENERATED_STEPS_PER_EPOCH = 1000
# Kinds of the pullback metric (docs: Geometry).
KINDS = ("mean", "stochastic", "fisher", "output")
METHODS = ("exact", "lanczos", "auto")
# A perturbation budget's norm as flags spell it.
NORM_NAMES = ("2", "inf")
TUNERS = ("grid", "random", "bayesian")
TUNING_OBJECTIVES = (
    "val_loss", "val_reconstruction_loss", "val_spectral_radius", "tradeoff"
)

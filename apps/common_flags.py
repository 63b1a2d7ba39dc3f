"""The flags several apps share, declared once with one set of bounds.

An app calls `define("dataset", "seed", ...)` for the shared flags it
takes, with its own default or help line where its meaning differs
(e.g. `--epochs` per trial in the tuner); the type, bounds and choices
stay the ones declared here. Choices come from the library's light
modules and registries, so flags are checked before TensorFlow loads.
"""

from absl import flags

from vaekeras import choices

# name -> (absl definer, default, help, extra keyword arguments).
SHARED = {
    "dataset": (
        flags.DEFINE_string, "mnist_5k",
        "mnist_5k or digits (offline), or a tensorflow-datasets image data "
        "set (e.g. fashion_mnist).", {},
    ),
    "data_dir": (
        flags.DEFINE_string, None,
        "Folder of prepared tensorflow-datasets data.", {},
    ),
    "download": (
        flags.DEFINE_bool, False,
        "Let tensorflow-datasets download the data set.", {},
    ),
    "architecture": (
        flags.DEFINE_enum, "mlp", "Encoder/decoder architecture.",
        {"enum_values": list(choices.ARCHITECTURES)},
    ),
    "latent_dim": (
        flags.DEFINE_integer, 16, "Latent size.", {"lower_bound": 1},
    ),
    "beta": (
        flags.DEFINE_float, 1.0, "KL weight (1 = plain VAE).",
        {"lower_bound": 0.0},
    ),
    "likelihood": (
        flags.DEFINE_enum, "bernoulli", "Decoder likelihood.",
        {"enum_values": list(choices.LIKELIHOODS)},
    ),
    "epochs": (flags.DEFINE_integer, 50, "Epochs.", {"lower_bound": 1}),
    "steps_per_epoch": (
        flags.DEFINE_integer, None,
        "Batches per epoch, drawn with replacement; unset: one pass over "
        "the training split (dsprites: "
        f"{choices.GENERATED_STEPS_PER_EPOCH} batches).",
        {"lower_bound": 1},
    ),
    "batch_size": (
        flags.DEFINE_integer, 128, "Batch size.", {"lower_bound": 1},
    ),
    "learning_rate": (
        flags.DEFINE_float, 1e-3, "Adam learning rate.",
        {"lower_bound": 0.0},
    ),
    "seed": (flags.DEFINE_integer, 0, "Seed of every random draw.", {}),
    "overwrite": (
        flags.DEFINE_bool, False,
        "Replace a folder that holds another configuration.", {},
    ),
    "verbose": (
        flags.DEFINE_integer, 1, "0 quiet, 1 progress bars, 2 a line per "
        "epoch.", {"lower_bound": 0, "upper_bound": 2},
    ),
    "distribution": (
        flags.DEFINE_enum, "auto",
        "auto: data parallel over every local accelerator when there are "
        "two or more; --batch_size is the global batch (docs: Many "
        "devices).", {"enum_values": list(choices.DISTRIBUTIONS)},
    ),
    "num_examples": (
        flags.DEFINE_integer, 1000, "Test examples used.",
        {"lower_bound": 1},
    ),
    "eps": (flags.DEFINE_list, ["0.5", "1"], "Attack budgets.", {}),
    "norm": (
        flags.DEFINE_enum, "2", "Norm of the budget.",
        {"enum_values": list(choices.NORM_NAMES)},
    ),
    "kind": (
        flags.DEFINE_enum, "stochastic", "Pullback metric kind.",
        {"enum_values": list(choices.KINDS)},
    ),
    "pgd_iter": (
        flags.DEFINE_integer, 20, "PGD iterations.", {"lower_bound": 1},
    ),
    "mcmc_steps": (
        flags.DEFINE_integer, 0,
        "Steps of test-time MCMC (Kuzina et al. 2022); 0 = off.",
        {"lower_bound": 0},
    ),
    "plugins": (
        flags.DEFINE_list, [],
        "Python modules (dotted names or .py files) to import first: they "
        "register your own attacks, defenses or studies.", {},
    ),
}


_UNSET = object()


def define(*names, **overrides):
    """Defines the shared flags `names`; returns `{name: FlagHolder}`.

    Args:
        *names: keys of `SHARED`.
        **overrides: `<name>=default` or `<name>=(default, help)` for a
            flag whose default or meaning differs in this app.
    """
    holders = {}
    for name in names:
        definer, default, help_text, extra = SHARED[name]
        override = overrides.pop(name, _UNSET)
        if isinstance(override, tuple):
            default, help_text = override
        elif override is not _UNSET:
            default = override
        holders[name] = definer(name, default, help=help_text, **extra)
    if overrides:
        raise KeyError(f"overrides of flags not defined: {sorted(overrides)}")
    return holders


def values(holders):
    """`{name: value}` of flag holders, as a config's keyword arguments."""
    return {name: holder.value for name, holder in holders.items()}

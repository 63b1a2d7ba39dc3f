"""The devices and hosts `vaekeras.distribution` plans over."""

import platform

import keras

# Backends with data parallelism; JAX's runs one program over the global
# batch, so its batches must split evenly over the devices.
DATA_PARALLEL_BACKENDS = ("jax", "tensorflow")


def splits_batches_evenly():
    """Whether data parallelism needs batches divisible by the devices."""
    return keras.backend.backend() == "jax"


def processes():
    """`(number of hosts, this host's index)` (JAX multi-host; else 1, 0)."""
    if keras.backend.backend() != "jax":
        return 1, 0
    import jax

    return jax.process_count(), jax.process_index()


def devices():
    """`(accelerators, every device)` names this process can use."""
    if keras.backend.backend() == "jax":
        import jax

        found = jax.devices()
        return tuple(str(d) for d in found if d.platform != "cpu"), tuple(
            str(d) for d in found
        )
    import tensorflow as tf

    gpus = tuple(d.name for d in tf.config.list_logical_devices("GPU"))
    cpus = tuple(d.name for d in tf.config.list_logical_devices("CPU"))
    return gpus, gpus or cpus


def data_parallel_engine(device_names, hosts):
    """The Keras `DataParallel` (JAX) or `MirroredStrategy` (TF) to use.

    Many JAX hosts each feed their own share of the data (tfds'
    per-process split), not one global data set for Keras to cut up after
    every host has read all of it.
    """
    if keras.backend.backend() == "jax":
        import jax

        by_name = {str(d): d for d in jax.devices()}
        return keras.distribution.DataParallel(
            devices=[by_name[n] for n in device_names],
            auto_shard_dataset=hosts == 1,
        )
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices=list(device_names))


def environment():
    """The backend and the devices TensorFlow sees, for environment.json."""
    try:
        import tensorflow as tf

        found = [d.name for d in tf.config.list_logical_devices()]
    except ImportError:  # pragma: no cover - TF is a dependency
        found = []
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keras_backend": keras.backend.backend(),
        "tensorflow_devices": found,
    }

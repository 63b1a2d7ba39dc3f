"""`PullbackMetric`: the top eigenpairs of the metric as a Keras layer."""


import keras
import numpy as np

from vaekeras import latent
from vaekeras.geometry.algebra import _check_k
from vaekeras.geometry.algebra import check_kind
from vaekeras.geometry.spectra import eigenspectrum


@keras.saving.register_keras_serializable(package="vaekeras")
class PullbackMetric(keras.layers.Layer):
    """Layer returning the top eigenpairs of the encoder's pullback metric.

    Args:
        encoder: Keras model `x -> [z_mean, z_log_var]`, or a vaekeras VAE
            (needed for `kind="output"`, which uses the decoder).
        kind: `"mean"`, `"stochastic"` (default), `"fisher"` or
            `"output"`.
        k: number of eigenpairs; None for the rank bound.
        **kwargs: base `Layer` arguments.

    Call args:
        x: inputs `(B, H, W, C)`.

    Returns:
        `(eigenvalues (B, k), eigenvectors (B, D, k))`.

    Examples:
        >>> layer = PullbackMetric(model.encoder, kind="fisher", k=4)
        >>> values, vectors = layer(images[:16])
    """

    def __init__(self, encoder, kind="stochastic", k=None, **kwargs):
        super().__init__(**kwargs)
        check_kind(kind)
        latent_dim = latent.LatentModel.of(encoder).latent_dim()
        self.encoder = encoder
        self.kind = kind
        self.k = k
        self._k = _check_k(k, kind, latent_dim)
        # The encoder's weights are its own; this layer adds none.
        self.built = True

    def call(self, x):
        return eigenspectrum(self.encoder, x, self.kind, self._k)

    def compute_output_shape(self, input_shape):
        flat = int(np.prod(input_shape[1:]))
        return (input_shape[0], self._k), (input_shape[0], flat, self._k)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "kind": self.kind,
            "k": self.k,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(
            config["encoder"]
        )
        return cls(**config)

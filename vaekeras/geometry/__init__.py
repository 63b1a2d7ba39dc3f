"""Pullback metric tensors of a VAE encoder and their eigenspectra.

For an encoder q(z|x) = N(mu(x), diag sigma^2(x)) with latent size d and
flattened input size D, let J_mu, J_sigma, J_lv (each d x D) be the
Jacobians of mu, sigma and log sigma^2 with respect to x. Every metric
kind is G = A^T A (D x D) for a stack of rows A:

- `"mean"`:       A = J_mu                                  (d x D)
- `"stochastic"`: A = [J_mu; J_sigma]                       (2d x D)
  E_eps[J_z^T J_z] for z = mu + sigma * eps: the paper's metric (default).
- `"fisher"`:     A = [diag(1/sigma) J_mu; sqrt(1/2) J_lv]  (2d x D)
  pullback of the Fisher-Rao metric: KL(q(z|x+delta) || q(z|x)) =
  0.5 * delta^T G delta + O(|delta|^3).
- `"output"`:     A = C J_mu with C^T C = J_dec^T J_dec          (d x D)
  the pullback through the reconstruction map f(x) = dec(mu(x)), G =
  J_f^T J_f: |f(x + delta) - f(x)|^2 = delta^T G delta + O(|delta|^3), so
  its top eigenvector is the first-order optimal attack on reconstruction
  damage. Needs a decoder. J_dec (D x d, at z = mu(x)) takes one batched
  forward-mode pass over d tangents.

The nonzero eigenvalues of G are those of the small Gram matrix A A^T, and
the eigenvectors are v = A^T u / |A^T u|, so the spectrum never needs the
D x D matrix. Jacobians are reverse mode (d passes, not D), batched and
compiled once per model by `vaekeras.latent.LatentModel`; this module is
pure `keras.ops` algebra on top of it.

`method="lanczos"` never forms A: it runs Lanczos on products
G v = A^T (A v), one forward-mode and one reverse-mode pass each (see
`matrix_free_eigenspectrum`), which pays off when A (2d x D per sample) is
large, e.g. conv encoders on 64x64x3 images.
"""


from vaekeras.geometry.algebra import AUTO_MEMORY_BYTES
from vaekeras.geometry.algebra import KINDS
from vaekeras.geometry.algebra import METHODS
from vaekeras.geometry.algebra import NotConvergedError
from vaekeras.geometry.algebra import check_kind
from vaekeras.geometry.algebra import check_method
from vaekeras.geometry.algebra import decoder_jacobian
from vaekeras.geometry.algebra import output_rows
from vaekeras.geometry.algebra import rank_bound
from vaekeras.geometry.algebra import row_scales
from vaekeras.geometry.algebra import spectrum_from_jacobian
from vaekeras.geometry.lanczos import matrix_free_eigenspectrum
from vaekeras.geometry.layer import PullbackMetric
from vaekeras.geometry.spectra import eigenspectrum
from vaekeras.geometry.spectra import eigenvalues
from vaekeras.geometry.spectra import encoder_jacobians
from vaekeras.geometry.spectra import pullback_metric
from vaekeras.geometry.spectra import resolve_method
from vaekeras.geometry.spectra import spectrum_in_view

__all__ = [
    "AUTO_MEMORY_BYTES", "KINDS", "METHODS", "NotConvergedError",
    "PullbackMetric", "check_kind", "check_method", "decoder_jacobian",
    "eigenspectrum", "eigenvalues", "encoder_jacobians",
    "matrix_free_eigenspectrum", "output_rows", "pullback_metric",
    "rank_bound", "resolve_method", "row_scales", "spectrum_from_jacobian",
    "spectrum_in_view",
]

"""`none`: the beta-VAE itself, no defense (beta = 1: the plain VAE)."""

from vaekeras.defenses import registry
from vaekeras.models import VAE

registry.register("none", label="beta-VAE", marker="o")(VAE)

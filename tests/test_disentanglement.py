"""The five metrics against disentanglement_lib's own known answers."""

import numpy as np
import pytest

from vaekeras import disentanglement as dis


class IdentityTruth:
    """disentanglement_lib's `IdentityObservationsData`: ten factors of
    values 1-10, each observation the factors themselves."""

    factor_sizes = (10,) * 10

    @staticmethod
    def render(factors):
        return np.asarray(factors, "float64") + 1.0


def identity_points(n, seed=0):
    rng = np.random.default_rng(seed)
    factors = rng.integers(1, 11, size=(n, 10))
    return factors.astype("float64"), factors


def permuted(codes, seed=0):
    """Each point's codes shuffled among themselves (disentanglement_lib's
    bad representation): every code informs a little about every factor,
    none about one."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(row) for row in codes])


DIAGONAL = np.diag(5.0 * np.ones(5))


@pytest.mark.parametrize("matrix, d, c", [
    (DIAGONAL, 1.0, 1.0),
    (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 1.0, 1.0),
    (np.zeros((10, 10)), 0.0, 0.0),
    # Redundant codes: two codes per factor.
    (np.vstack([DIAGONAL, DIAGONAL]), 1.0, 1.0 - np.log(2) / np.log(10)),
    (DIAGONAL[:2, :], 1.0, 1.0),  # missed factors
    # One code for two factors.
    (np.hstack([DIAGONAL, DIAGONAL]), 1.0 - np.log(2) / np.log(10), 1.0),
])
def test_dci_importance_matrix_cases(matrix, d, c):
    np.testing.assert_allclose(dis.disentanglement(matrix), d, atol=1e-7)
    np.testing.assert_allclose(dis.completeness(matrix), c, atol=1e-7)


@pytest.mark.parametrize("matrix, expected", [
    (DIAGONAL, 1.0),
    (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 2.0 / 3.0),
    (np.zeros((10, 10)), 0.0),
    (np.vstack([DIAGONAL, DIAGONAL]), 1.0),
    (DIAGONAL[:2, :], 1.0),
    (np.hstack([DIAGONAL, DIAGONAL]), 1.0 - 1.0 / 9.0),
])
def test_modularity_cases(matrix, expected):
    np.testing.assert_allclose(dis.modularity(matrix), expected)


def test_mig_identity_zero_and_duplicated():
    codes, factors = identity_points(3000)
    assert 0.9 <= dis.mig(codes, factors) <= 1.0
    assert 0.0 <= dis.mig(np.zeros_like(codes), factors) <= 0.2
    assert 0.0 <= dis.mig(np.hstack([codes, codes]), factors) <= 0.1


def test_sap_identity_zero_and_duplicated():
    codes, factors = identity_points(3000)
    test_codes, test_factors = identity_points(3000, seed=1)

    def score(transform):
        return dis.sap(transform(codes), factors, transform(test_codes),
                       test_factors, continuous_factors=True)

    assert 0.9 <= score(lambda c: c) <= 1.0
    assert 0.0 <= score(np.zeros_like) <= 0.2
    assert 0.0 <= score(lambda c: np.hstack([c, c])) <= 0.2


def test_sap_of_discrete_factors_prefers_the_informative_code():
    codes, factors = identity_points(1000)
    test_codes, test_factors = identity_points(1000, seed=1)
    noise = np.random.default_rng(2).normal(size=codes.shape)
    # One linear SVM per code cannot tell ten classes apart well (0.29
    # here), but the informative code beats the others by that much.
    good = dis.sap(codes, factors, test_codes, test_factors)
    bad = dis.sap(noise, factors, noise[::-1], test_factors)
    assert good > 0.2 and bad < 0.05


def test_modularity_explicitness_identity_permuted_and_duplicated():
    codes, factors = identity_points(3000)
    test_codes, test_factors = identity_points(3000, seed=1)
    scores = dis.modularity_explicitness(
        codes, factors, test_codes, test_factors
    )
    assert 0.9 <= scores["modularity"] <= 1.0
    assert scores["explicitness_test"] > 0.9
    many, many_factors = identity_points(20000, seed=3)
    scrambled = dis.modularity_explicitness(
        permuted(many), many_factors, test_codes, test_factors
    )
    assert 0.0 <= scrambled["modularity"] <= 0.2
    doubled = dis.modularity_explicitness(
        np.hstack([codes, codes]), factors,
        np.hstack([test_codes, test_codes]), test_factors,
    )
    assert 0.9 <= doubled["modularity"] <= 1.0


@pytest.mark.slow
def test_dci_of_the_identity():
    codes, factors = identity_points(1000)
    test_codes, test_factors = identity_points(1000, seed=1)
    scores = dis.dci(codes, factors, test_codes, test_factors)
    assert 0.9 <= scores["disentanglement"] <= 1.0
    assert 0.9 <= scores["completeness"] <= 1.0
    assert scores["informativeness_test"] > 0.9


def test_factor_vae_score_identity_and_zero():
    def identity(x):
        return np.asarray(x, "float64")

    assert 0.9 <= dis.factor_vae_score(
        identity, IdentityTruth, num_train=3000, num_eval=2000,
        num_variance_estimate=2500, batch_size=5,
    ) <= 1.0
    assert dis.factor_vae_score(
        np.zeros_like, IdentityTruth, num_train=300, num_eval=200,
        num_variance_estimate=250, batch_size=5,
    ) == 0.0


def test_mismatched_arrays_are_refused():
    with pytest.raises(ValueError, match="codes"):
        dis.mig(np.zeros((5, 2)), np.zeros((4, 3), "int64"))


class SmallCube:
    """Three factors of 2, 3 and 4 values; each observation the factors."""

    factor_sizes = (2, 3, 4)

    @staticmethod
    def render(factors):
        return np.asarray(factors, "float64")


def test_evaluate_scores_the_identity_fully_and_a_constant_not_at_all():
    def identity(x):
        return np.asarray(x, "float64")

    settings = dict(num_train=1200, num_test=600, dci_train=400,
                    factor_vae_votes=(60, 40))
    perfect = dis.evaluate(identity, SmallCube, **settings)
    assert set(dis.METRICS) <= set(perfect)
    for name in ("mig", "dci_disentanglement", "dci_completeness",
                 "dci_informativeness_test", "modularity",
                 "explicitness_test", "factor_vae"):
        assert perfect[name] == pytest.approx(1.0, abs=0.02), name
    # The best code predicts its factor; the next one only the majority.
    assert perfect["sap"] > 0.4
    constant = dis.evaluate(np.zeros_like, SmallCube, **settings)
    assert constant["mig"] == constant["factor_vae"] == 0.0
    assert constant["sap"] == 0.0
    # Same seed, same draws: the same numbers.
    assert dis.evaluate(identity, SmallCube, **settings) == perfect
    with pytest.raises(ValueError, match="dci_train=0"):
        dis.evaluate(identity, SmallCube, dci_train=0)

"""The five standard disentanglement metrics, on arrays.

Defined as disentanglement_lib defines them (Locatello et al. 2019, its
`evaluation/metrics/` and the `unsupervised_study_v1` metric configs:
codes are the encoder means; 20-bin histogram discretisation; 10,000
training and 5,000 test points; batches of 64), so any encoder can be
scored. Arrays are points first: `codes` `(N, num_codes)`, `factors`
`(N, num_factors)` of integer factor values.

- `mig`: the mutual information gap (Chen et al. 2018);
- `dci`: disentanglement, completeness and informativeness from
  gradient-boosted trees' importances (Eastwood & Williams 2018);
- `sap`: the separated attribute predictability (Kumar et al. 2018);
- `modularity_explicitness` (Ridgeway & Mozer 2018);
- `factor_vae_score` (Kim & Mnih 2018), which samples its own batches
  from a ground truth (`vaekeras.dsprites` is one).

Plain numpy, scipy and scikit-learn; no backend.
"""

import contextlib
import warnings

import numpy as np
from scipy import stats

from vaekeras import checks

NUM_BINS = 20


@contextlib.contextmanager
def _iteration_caps_reached_quietly():
    """The classifiers' default iteration caps are part of the metrics'
    definitions (disentanglement_lib fits them with defaults): a fit that
    reaches its cap is the metric as defined, not a fault to report."""
    from sklearn import exceptions

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", exceptions.ConvergenceWarning)
        yield


def _points(codes, factors):
    codes = np.asarray(codes, "float64")
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ValueError(
            "Invalid values received for arguments `codes`, `factors`: "
            "expected (N, num_codes) and (N, num_factors) arrays of the "
            f"same N. Received shapes {codes.shape} and {factors.shape}"
        )
    return codes, factors


def discretize(codes, num_bins=NUM_BINS):
    """Each code column in `num_bins` equal-width bins (its histogram's
    edges), as integers."""
    codes = np.asarray(codes, "float64")
    out = np.zeros(codes.shape, "int64")
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], num_bins)[1][:-1]
        out[:, j] = np.digitize(codes[:, j], edges)
    return out


def mutual_information(discrete_codes, factors):
    """`(num_codes, num_factors)`: each pair's mutual information (nats)."""
    from sklearn import metrics

    return np.array([
        [metrics.mutual_info_score(factors[:, f], discrete_codes[:, c])
         for f in range(factors.shape[1])]
        for c in range(discrete_codes.shape[1])
    ])


def factor_entropy(factors):
    """Each factor's entropy (nats)."""
    from sklearn import metrics

    return np.array([
        metrics.mutual_info_score(factors[:, f], factors[:, f])
        for f in range(factors.shape[1])
    ])


def mig(codes, factors, num_bins=NUM_BINS):
    """The mutual information gap: per factor, the gap between the two
    codes most informative about it, over its entropy; the mean.

    Args:
        codes: `(N, num_codes)` encoder means.
        factors: `(N, num_factors)` integer factor values.
        num_bins: histogram bins of each code.

    Returns:
        A float in [0, 1].

    Examples:
        >>> mig(codes, factors)
    """
    codes, factors = _points(codes, factors)
    info = mutual_information(discretize(codes, num_bins), factors)
    ordered = np.sort(info, axis=0)[::-1]
    second = ordered[1] if len(ordered) > 1 else np.zeros(info.shape[1])
    return float(np.mean((ordered[0] - second) / factor_entropy(factors)))


def disentanglement(importance):
    """DCI disentanglement of an importance matrix `(codes, factors)`:
    each code's 1 - entropy of its importance over the factors (base:
    the number of factors), weighted by the code's share of importance."""
    importance = np.asarray(importance, "float64")
    per_code = 1.0 - stats.entropy(
        importance.T + 1e-11, base=importance.shape[1]
    )
    weights = importance if importance.sum() > 0 else np.ones_like(
        importance
    )
    return float(np.sum(per_code * weights.sum(axis=1) / weights.sum()))


def completeness(importance):
    """DCI completeness: each factor's 1 - entropy of its importance over
    the codes (base: the number of codes), weighted by its share."""
    importance = np.asarray(importance, "float64")
    per_factor = 1.0 - stats.entropy(
        importance + 1e-11, base=importance.shape[0]
    )
    weights = importance if importance.sum() > 0 else np.ones_like(
        importance
    )
    return float(np.sum(per_factor * weights.sum(axis=0) / weights.sum()))


def dci(codes, factors, test_codes, test_factors, seed=0):
    """Disentanglement, completeness and informativeness (DCI).

    One gradient-boosted tree classifier per factor predicts it from all
    codes; its feature importances are a column of the importance
    matrix; informativeness is its accuracy.

    Args:
        codes, factors: training points (see the module docstring).
        test_codes, test_factors: held-out points.
        seed: the trees' random state.

    Returns:
        Dict `disentanglement`, `completeness`, `informativeness_train`,
        `informativeness_test`.
    """
    from sklearn import ensemble

    codes, factors = _points(codes, factors)
    test_codes, test_factors = _points(test_codes, test_factors)
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    train, test = [], []
    for f in range(factors.shape[1]):
        trees = ensemble.GradientBoostingClassifier(random_state=seed)
        trees.fit(codes, factors[:, f])
        importance[:, f] = np.abs(trees.feature_importances_)
        train.append(np.mean(trees.predict(codes) == factors[:, f]))
        test.append(np.mean(trees.predict(test_codes) == test_factors[:, f]))
    return {
        "disentanglement": disentanglement(importance),
        "completeness": completeness(importance),
        "informativeness_train": float(np.mean(train)),
        "informativeness_test": float(np.mean(test)),
    }


def _sap_matrix(codes, factors, test_codes, test_factors, continuous):
    """`(codes, factors)`: how well each code alone predicts each factor."""
    from sklearn import svm

    scores = np.zeros((codes.shape[1], factors.shape[1]))
    for c in range(codes.shape[1]):
        for f in range(factors.shape[1]):
            if continuous:
                cov = np.cov(codes[:, c], factors[:, f], ddof=1)
                if cov[0, 0] > 1e-12:
                    scores[c, f] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
                continue
            classifier = svm.LinearSVC(C=0.01, class_weight="balanced")
            classifier.fit(codes[:, c:c + 1], factors[:, f])
            predicted = classifier.predict(test_codes[:, c:c + 1])
            scores[c, f] = np.mean(predicted == test_factors[:, f])
    return scores


def sap(codes, factors, test_codes, test_factors, continuous_factors=False):
    """The SAP score: per factor, the gap between the two codes that best
    predict it alone (a linear SVM's test accuracy, or for continuous
    factors the squared correlation); the mean.

    Returns:
        A float.
    """
    codes, factors = _points(codes, factors)
    test_codes, test_factors = _points(test_codes, test_factors)
    with _iteration_caps_reached_quietly():
        scores = np.sort(_sap_matrix(
            codes, factors, test_codes, test_factors, continuous_factors
        ), axis=0)
    if len(scores) < 2:
        return float(np.mean(scores[-1]))
    return float(np.mean(scores[-1] - scores[-2]))


def modularity(info):
    """Modularity of a mutual-information matrix `(codes, factors)`: each
    code's 1 - (its squared information beyond its best factor) / (that
    best's * (factors - 1)), 0 for a code that informs about nothing; the
    mean over codes."""
    squared = np.square(np.asarray(info, "float64"))
    best = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = (squared.sum(axis=1) - best) / (
            best * (squared.shape[1] - 1.0)
        )
    per_code = np.where(best == 0.0, 0.0, 1.0 - deviation)
    return float(np.mean(per_code))


def _explicitness(codes, factor, test_codes, test_factor):
    """ROC-AUC (one against the rest) of a logistic regression from the
    codes to one factor: `(train, test)`."""
    from sklearn import linear_model
    from sklearn import metrics
    from sklearn import preprocessing

    classifier = linear_model.LogisticRegression().fit(codes, factor)
    binarizer = preprocessing.LabelBinarizer().fit(classifier.classes_)

    def auc(x, y):
        truth = binarizer.transform(y)
        if truth.shape[1] == 1:  # two classes: the positive column
            return metrics.roc_auc_score(y, classifier.predict_proba(x)[:, 1])
        return metrics.roc_auc_score(truth, classifier.predict_proba(x))

    return auc(codes, factor), auc(test_codes, test_factor)


def modularity_explicitness(codes, factors, test_codes, test_factors,
                            num_bins=NUM_BINS):
    """Modularity (from the discretised codes' mutual information) and
    explicitness (ROC-AUC of a logistic regression per factor, on codes
    standardised by the training points).

    Returns:
        Dict `modularity`, `explicitness_train`, `explicitness_test`.
    """
    codes, factors = _points(codes, factors)
    test_codes, test_factors = _points(test_codes, test_factors)
    info = mutual_information(discretize(codes, num_bins), factors)
    mean, std = codes.mean(axis=0), codes.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    scaled, test_scaled = (codes - mean) / std, (test_codes - mean) / std
    with _iteration_caps_reached_quietly():
        pairs = [
            _explicitness(
                scaled, factors[:, f], test_scaled, test_factors[:, f]
            )
            for f in range(factors.shape[1])
        ]
    return {
        "modularity": modularity(info),
        "explicitness_train": float(np.mean([p[0] for p in pairs])),
        "explicitness_test": float(np.mean([p[1] for p in pairs])),
    }


def _votes(represent, ground_truth, points, batch_size, rng, scale, active):
    """FactorVAE's votes: per sample, one factor fixed over a batch, the
    active code of least (normalised) variance; `(factors, codes)`."""
    sizes = ground_truth.factor_sizes
    votes = np.zeros((len(sizes), len(scale)), "int64")
    dims = np.flatnonzero(active)
    for _ in range(points):
        fixed = rng.integers(len(sizes))
        factors = np.stack(
            [rng.integers(size, size=batch_size) for size in sizes], axis=1
        )
        factors[:, fixed] = factors[0, fixed]
        codes = np.asarray(represent(ground_truth.render(factors)))
        spread = np.var(codes, axis=0, ddof=1)[dims] / scale[dims]
        votes[fixed, dims[np.argmin(spread)]] += 1
    return votes


def factor_vae_score(represent, ground_truth, seed=0, batch_size=64,
                     num_train=10000, num_eval=5000,
                     num_variance_estimate=10000, prune_threshold=0.05):
    """The FactorVAE metric: the accuracy of a majority-vote classifier
    that names the fixed factor of a batch from its least varying code.

    Args:
        represent: `images -> codes` `(B, num_codes)` (the encoder means).
        ground_truth: offers `factor_sizes` and `render(factors)` (e.g.
            `vaekeras.dsprites`).
        seed: seeds every sample.
        batch_size: images per vote.
        num_train, num_eval: votes for the classifier and its accuracy.
        num_variance_estimate: images for each code's global variance.
        prune_threshold: codes whose global standard deviation is below it
            are collapsed to the prior and never vote.

    Returns:
        The evaluation accuracy (a float; 0 when every code collapsed).
    """
    batch_size = checks.positive_int("batch_size", batch_size)
    rng = np.random.default_rng(seed)
    sizes = ground_truth.factor_sizes
    sample = np.stack(
        [rng.integers(size, size=num_variance_estimate) for size in sizes],
        axis=1,
    )
    codes = np.concatenate([
        np.asarray(represent(ground_truth.render(sample[i:i + 64])))
        for i in range(0, len(sample), 64)
    ])
    scale = np.var(codes, axis=0, ddof=1)
    active = np.sqrt(scale) >= prune_threshold
    if not active.any():
        return 0.0
    train = _votes(represent, ground_truth, num_train, batch_size, rng,
                   scale, active)
    classifier = np.argmax(train, axis=0)
    held_out = _votes(represent, ground_truth, num_eval, batch_size, rng,
                      scale, active)
    columns = np.arange(held_out.shape[1])
    return float(held_out[classifier, columns].sum() / held_out.sum())


# `evaluate`'s keys, in the order reports list them.
METRICS = (
    "mig", "dci_disentanglement", "dci_completeness",
    "dci_informativeness_test", "sap", "modularity", "explicitness_test",
    "factor_vae",
)


def sample_points(represent, ground_truth, n, seed, batch_size=1000):
    """`(codes, factors)` of `n` images drawn uniformly from the ground
    truth's grid (as disentanglement_lib draws its metrics' points)."""
    rng = np.random.default_rng(seed)
    factors = np.stack(
        [rng.integers(size, size=n) for size in ground_truth.factor_sizes],
        axis=1,
    )
    codes = np.concatenate([
        np.asarray(represent(ground_truth.render(factors[i:i + batch_size])))
        for i in range(0, n, batch_size)
    ])
    return codes, factors


def evaluate(represent, ground_truth, seed=0, num_train=10000,
             num_test=5000, dci_train=None, factor_vae_votes=(10000, 5000)):
    """All five metrics of one representation, on fresh draws.

    Args:
        represent: `images -> codes` `(B, num_codes)` (the encoder means).
        ground_truth: offers `factor_sizes` and `render(factors)` (e.g.
            `vaekeras.dsprites`).
        seed: seeds every draw (training points, test points, votes).
        num_train, num_test: points of MIG (training points only), SAP,
            modularity and explicitness.
        dci_train: DCI's training points, the first of `num_train`
            (its gradient-boosted trees cost minutes per 10,000 points);
            None: all `num_train`. Its test points are the first
            `dci_train // 2` test points.
        factor_vae_votes: `(num_train, num_eval)` votes of the FactorVAE
            score (batches of 64).

    Returns:
        Dict with every key of `METRICS`, and `dci_informativeness_train`,
        `explicitness_train`.

    Raises:
        ValueError: for a non-positive count.

    Examples:
        >>> evaluate(encode_means, vaekeras.dsprites, num_train=2000,
        ...          num_test=1000, factor_vae_votes=(500, 250))["mig"]
    """
    for name, value in (("num_train", num_train), ("num_test", num_test)):
        checks.positive_int(name, value)
    dci_train = num_train if dci_train is None else checks.positive_int(
        "dci_train", dci_train
    )
    codes, factors = sample_points(represent, ground_truth, num_train, seed)
    test_codes, test_factors = sample_points(
        represent, ground_truth, num_test, seed + 1
    )
    dci_scores = dci(
        codes[:dci_train], factors[:dci_train],
        test_codes[:max(dci_train // 2, 1)],
        test_factors[:max(dci_train // 2, 1)], seed=seed,
    )
    modular = modularity_explicitness(
        codes, factors, test_codes, test_factors
    )
    votes_train, votes_eval = (
        checks.positive_int("factor_vae_votes", v) for v in factor_vae_votes
    )
    return {
        "mig": mig(codes, factors),
        **{f"dci_{key}": value for key, value in dci_scores.items()},
        "sap": sap(codes, factors, test_codes, test_factors),
        **modular,
        "factor_vae": factor_vae_score(
            represent, ground_truth, seed=seed, num_train=votes_train,
            num_eval=votes_eval,
        ),
    }

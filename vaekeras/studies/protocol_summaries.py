"""Protocol results summarised over a model's seeds, for the reports."""

import numpy as np

from vaekeras import significance
from vaekeras.attacks.damage import log_eps_area
from vaekeras.studies.seed_statistics import seed_summary


def jsonable(result):
    """A protocol result for the cache: per-image worst damage as lists."""
    out = dict(result)
    out["worst_damage"] = np.asarray(result["worst_damage"]).tolist()
    out["clean_mse"] = np.asarray(result["clean_mse"]).tolist()
    return out


def failures(results):
    """Per failed check: how many of the seeds' runs failed it, and the
    details of those runs."""
    out = {}
    for result in results:
        for check in result["checks"]:
            if not check["passed"]:
                out.setdefault(check["name"], []).append(check["detail"])
    return {
        name: {"runs": len(details), "of": len(results),
               "details": details}
        for name, details in out.items()
    }


def attack_areas(results):
    """Per attack member, the seed summary of its mean curve's area."""
    names = results[0]["attacks"]
    return {
        name: seed_summary([
            log_eps_area(r["eps"], r["attacks"][name]["damage"])
            for r in results
        ])
        for name in names
    }


def reliable(results):
    """Whether every seed's evaluation passed every check (a result from
    before the verdict counts by its checks)."""
    return all(
        r.get("reliable", all(c["passed"] for c in r["checks"]))
        for r in results
    )


def interval(results):
    """The worst-damage area's bootstrap interval over seeds and images
    (`vaekeras.significance.area_interval`)."""
    return significance.area_interval(
        results[0]["eps"], [r["worst_damage"] for r in results]
    )


def evaluation_row(results):
    """What a row says of one evaluation over its seeds: worst area, its
    interval, every member's area, reliable or not."""
    return {
        "worst_area": seed_summary([r["area"] for r in results]),
        "worst_interval": interval(results),
        "attack_area": attack_areas(results),
        "reliable": reliable(results),
    }


def configuration_rows(name, family, members):
    """A configuration's two rows, bare and through MCMC, over its seeds.

    Args:
        name: the configuration's name (without the seed).
        family: its defense's family (the reports' legend).
        members: its entries, one per seed, each with its `analysis`.
    """
    analyses = [m["analysis"] for m in members]
    per_epoch = [
        m["train_seconds"] / max(m.get("epochs_run") or 1, 1)
        for m in members if m.get("train_seconds") is not None
    ]
    base = {
        "name": name,
        "family": family,
        "seeds": len(members),
        "median_spectral_radius": seed_summary(
            [a["median_spectral_radius"] for a in analyses]
        ),
        "certified_radius": seed_summary(
            [a["certified_radius"] for a in analyses]
        ),
        "empirical_margin": seed_summary(
            [a["empirical_margin"] for a in analyses]
        ),
        "certified_radius_min": seed_summary(
            [a.get("certified_radius_min") for a in analyses]
        ),
        "empirical_margin_min": seed_summary(
            [a.get("empirical_margin_min") for a in analyses]
        ),
        "epoch_seconds": (
            float(np.mean(per_epoch)) if per_epoch else None
        ),
        "checks_failed": sorted({
            c["name"] for a in analyses
            for key in ("protocol", "mcmc_protocol")
            for c in a[key]["checks"] if not c["passed"]
        }),
        "failed_checks": {
            "bare": failures(
                [a["protocol"] for a in analyses]
            ),
            "mcmc": failures(
                [a["mcmc_protocol"] for a in analyses]
            ),
        },
    }
    bare = {
        **base, "mcmc": False,
        "clean_mse": seed_summary([a["clean_mse"] for a in analyses]),
        **evaluation_row([a["protocol"] for a in analyses]),
        "mcmc_reference_area": seed_summary(
            [a["mcmc_reference_area"] for a in analyses]
        ),
        # The bare model's clean error on the points MCMC was
        # attacked at: what the chain's own clean error costs.
        "mcmc_reference_clean_mse": seed_summary([
            float(np.mean(a["protocol"]["clean_mse"][
                :len(a["mcmc_protocol"]["clean_mse"])
            ])) for a in analyses
        ]),
    }
    through_mcmc = {
        **base, "mcmc": True,
        "clean_mse": seed_summary(
            [a["mcmc_clean_mse"] for a in analyses]
        ),
        **evaluation_row([a["mcmc_protocol"] for a in analyses]),
    }
    return [bare, through_mcmc]

"""Protocol results summarised over a model's seeds, for the reports."""

import numpy as np

from vaekeras.attacks.damage import log_eps_area
from vaekeras.studies.base import seed_summary


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

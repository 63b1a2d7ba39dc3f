"""README's and the documentation's snippets run as written; the site
builds with `mkdocs build --strict`; README's links resolve."""

import json
import os
import re
import subprocess
import sys

import pytest
import tomllib
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.usefixtures("tf_only")


def python_blocks(path):
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def nav_pages(nav):
    """The Markdown files of mkdocs.yml's `nav`, in reading order."""
    for entry in nav:
        value = entry if isinstance(entry, str) else next(
            iter(entry.values())
        )
        if isinstance(value, list):
            yield from nav_pages(value)
        else:
            yield value


def site_config():
    with open(os.path.join(ROOT, "mkdocs.yml")) as f:
        # mkdocs.yml may carry `!!python/name:` tags; it holds none, and
        # the safe loader would refuse one.
        return yaml.safe_load(f)


def docs_pages():
    return [
        os.path.join("docs", page) for page in nav_pages(site_config()["nav"])
    ]


def suite_warning_options():
    """`-W` options equal to the suite's filterwarnings (pyproject.toml)."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        filters = tomllib.load(f)["tool"]["pytest"]["ini_options"][
            "filterwarnings"
        ]
    assert filters[0] == "error"
    # Python applies the last -W first, as pytest applies its list.
    return [arg for spec in filters for arg in ("-W", spec)]


def run_snippets(blocks, folder):
    script = "\n\n".join(blocks)
    # Warnings are errors here as in the rest of the suite, so a snippet
    # that makes Keras or vaekeras warn fails.
    return subprocess.run(
        [sys.executable, *suite_warning_options(), "-c", script],
        capture_output=True, text=True, cwd=str(folder), timeout=1200,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_readme_has_the_tour_snippets():
    blocks = python_blocks("README.md")
    assert len(blocks) == 3
    assert "build_vae" in blocks[0]
    assert "eigenspectrum" in blocks[1]
    assert "EigenAttack" in blocks[2]


def test_readme_is_an_entry_page_and_its_links_resolve():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert len(text.splitlines()) < 300
    links = re.findall(r"\]\(([^)#]+)\)", text)
    local = [link for link in links if "://" not in link]
    assert "docs/results.md" in local
    missing = [link for link in local
               if not os.path.exists(os.path.join(ROOT, link))]
    assert missing == []


def test_every_docs_page_is_in_the_navigation():
    on_disk = {
        os.path.relpath(os.path.join(folder, name), ROOT)
        for folder, _, names in os.walk(os.path.join(ROOT, "docs"))
        for name in names if name.endswith(".md")
    }
    assert on_disk == set(docs_pages())


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    """A broken link, a missing page or a docstring that does not render
    fails the build."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--site-dir", str(tmp_path / "site")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    api = (tmp_path / "site/api/geometry/index.html").read_text()
    # The reference is generated from the docstrings.
    assert "matrix_free_eigenspectrum" in api
    assert "NotConvergedError" in api


@pytest.mark.slow
def test_readme_python_snippets_run_as_written(tmp_path):
    result = run_snippets(python_blocks("README.md"), tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    # Everything the snippets write goes under saved_models/ (ignored by
    # git), nothing into the folder they run in.
    assert (tmp_path / "saved_models/beta2/model.keras").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_models"]
    assert (tmp_path / "saved_models/beta2/export/saved_model.pb").exists()


@pytest.mark.slow
def test_docs_python_snippets_run_as_written_in_reading_order(tmp_path):
    blocks = [block for page in docs_pages() for block in python_blocks(page)]
    assert len(blocks) >= 10
    result = run_snippets(blocks, tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_models"]


def test_the_results_checker_flags_a_row_its_report_lacks(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import check_readme_results as checker
    finally:
        sys.path.pop(0)
    report = tmp_path / "reports" / "s" / "report.md"
    report.parent.mkdir(parents=True)
    report.write_text(
        "# r\n\n| model | area |\n|---|---:|\n| beta=1 | 0.0307 |\n"
        "| beta=2 | 0.0257 |\n"
    )
    page = tmp_path / "page.md"
    table = "| model | area |\n|---|---:|\n| beta=1 | 0.0307 |\n"
    page.write_text(f"<!-- rows from reports/s/report.md -->\n{table}")
    assert checker.check([str(page)], root=str(tmp_path)) == []
    page.write_text(
        "<!-- rows from reports/s/report.md -->\n"
        f"{table}| beta=2 | 0.0258 |\n\n"
        "<!-- rows from reports/gone/report.md -->\n| a |\n|---|\n| 1 |\n"
    )
    problems = checker.check([str(page)], root=str(tmp_path))
    assert problems == [
        f"{page}:5: row 'beta=2 | 0.0258' is not in reports/s/report.md",
        f"{page}:7: reports/gone/report.md does not exist",
    ]


def test_two_data_sets_frontiers_are_compared_configuration_by_configuration(
    tmp_path,
):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import compare_frontiers
    finally:
        sys.path.pop(0)

    def report(dataset, rows):
        models = [
            {"name": name, "mcmc": False, "on_frontier": on,
             "clean_mse": {"mean": clean}, "worst_area": {"mean": area}}
            for name, clean, area, on in rows
        ]
        path = tmp_path / f"{dataset}.json"
        path.write_text(json.dumps({"dataset": dataset, "models": models}))
        return str(path)

    a = report("mnist_5k", [
        ("beta=0.1", 0.015, 0.030, True), ("beta=1", 0.020, 0.027, False),
        ("geometry weight=3", 0.037, 0.006, True),
        ("lipschitz dec=10", 0.054, 0.004, True),
    ])
    b = report("fashion_mnist", [
        ("beta=0.1", 0.011, 0.022, True), ("beta=1", 0.014, 0.027, False),
        ("geometry weight=3", 0.020, 0.005, True),
        ("lipschitz dec=10", 0.030, 0.008, False),
    ])
    lines = compare_frontiers.compare(a, b)
    assert "| geometry weight=3 | 0.037 | 0.006 | 2 | 0.02 | 0.005 | 2 |" in (
        lines
    )
    # Areas rank 4,3,2,1 on one and 3,4,1,2 on the other: rho = 0.6.
    assert "- Spearman rho of the worst area across the 4 configurations: " \
        "0.600" in "\n".join(lines)
    assert lines[-1] == (
        "- On both frontiers: beta=0.1, geometry weight=3; only on "
        "mnist_5k's: lipschitz dec=10; only on fashion_mnist's: none."
    )

    # The same study read from a Results page's marked summary table.
    page = tmp_path / "results.md"
    page.write_text(
        "Some text.\n\n<!-- rows from reports/defenses/report.md -->\n"
        "| model | clean MSE | worst area | certified radius | frontier |\n"
        "|---|---:|---:|---:|---|\n"
        "| beta=0.1 | 0.015 ± 1e-05 | 0.03 ± 0.001 | 0.0008 | **yes** |\n"
        "| beta=1 | 0.02 ± 0.0002 | 0.027 ± 0.0007 | 0.0006 |  |\n"
        "| geometry weight=3 | 0.037 ± 0.0005 | 0.006 ± 0.0003 | 0.002 | "
        "**yes** |\n"
        "| lipschitz dec=10 | 0.054 ± 0.001 | 0.004 ± 0.0003 | 0.3 | "
        "**yes** |\n\nMore text.\n"
    )
    assert compare_frontiers.compare(str(page), b)[2:-1] == lines[2:-1]
    assert compare_frontiers.compare(str(page), b)[0].startswith(
        "| model | clean MSE, reports/defenses | worst area, reports/defenses"
    )
    relabelled = compare_frontiers.compare(str(page), b, ["mnist", "fashion"])
    assert relabelled[-1].endswith("only on fashion's: none.")
    plain = tmp_path / "plain.md"
    plain.write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    with pytest.raises(ValueError, match="plain.md has no table with the "
                       "columns model, clean MSE, worst area, frontier"):
        compare_frontiers.compare(str(plain), b)


def test_the_results_page_defenses_table_reads_as_its_report():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import compare_frontiers
    finally:
        sys.path.pop(0)
    lines = compare_frontiers.compare(
        os.path.join(ROOT, "docs", "results.md"),
        os.path.join(ROOT, "reports", "defenses", "report.json"),
        ["results", "report"],
    )
    # Cells with an interval (`mean [low, high]`) read as their mean.
    assert "| lipschitz dec=10 | 0.05392 | 0.004023 | 7 | 0.05392 | " \
        "0.004023 | 7 |" in lines
    assert ("- Spearman rho of the worst area across the 18 "
            "configurations: 1.000 (p = 0).") in lines
    assert lines[-1].endswith("only on results's: none; only on report's: "
                              "none.")

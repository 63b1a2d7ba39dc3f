"""README's Python snippets run as written, in order, in one interpreter."""

import os
import re
import subprocess
import sys

import pytest
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.usefixtures("tf_only")


def readme_python_blocks():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_has_the_library_snippets():
    blocks = readme_python_blocks()
    assert len(blocks) >= 5
    assert "build_vae" in blocks[0]


def suite_warning_options():
    """`-W` options equal to the suite's filterwarnings (pyproject.toml)."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        filters = tomllib.load(f)["tool"]["pytest"]["ini_options"][
            "filterwarnings"
        ]
    assert filters[0] == "error"
    # Python applies the last -W first, as pytest applies its list.
    return [arg for spec in filters for arg in ("-W", spec)]


def test_readme_python_snippets_run_as_written(tmp_path):
    script = "\n\n".join(readme_python_blocks())
    # Warnings are errors here as in the rest of the suite, so a snippet
    # that makes Keras or vaekeras warn fails.
    result = subprocess.run(
        [sys.executable, *suite_warning_options(), "-c", script],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # Everything the snippets write goes under saved_models/ (ignored by
    # git), nothing into the folder they run in.
    assert (tmp_path / "saved_models/beta2/model.keras").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_models"]
    assert (tmp_path / "saved_models/beta2/export/saved_model.pb").exists()

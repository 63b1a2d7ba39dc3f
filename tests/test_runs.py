import multiprocessing
import os

import pytest

from vaekeras import artifacts
from vaekeras import build_vae
from vaekeras import runs

KEYS = ("beta",)


def test_prepare_marks_refuses_and_overwrites_only_run_folders(tmp_path):
    run = str(tmp_path / "run")
    runs.prepare(run, {"beta": 1.0}, KEYS)
    assert runs.is_run(run)
    assert runs.read_flags(run) == {"beta": 1.0}
    runs.prepare(run, {"beta": 1.0}, KEYS)  # same configuration: reused
    with pytest.raises(ValueError, match=r"beta: 1.0 -> 2.0"):
        runs.prepare(run, {"beta": 2.0}, KEYS)
    open(os.path.join(run, "old.txt"), "w").close()
    runs.prepare(run, {"beta": 2.0}, KEYS, overwrite=True)
    assert not os.path.exists(os.path.join(run, "old.txt"))
    # A folder vaekeras did not make is never emptied.
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_text("x")
    with pytest.raises(ValueError, match="not a vaekeras run folder"):
        runs.prepare(str(foreign), {"beta": 1.0}, KEYS, overwrite=True)
    assert (foreign / "holiday.jpg").exists()


def test_names_that_leave_their_folder_are_refused():
    for bad in ("../x", "a/b", "..", "", "/abs"):
        with pytest.raises(ValueError, match="plain folder name"):
            runs.check_name(bad, "project_name")
    assert runs.check_name("beta_sweep", "project_name") == "beta_sweep"


def _hold_lock(path, ready, release):
    with runs.lock(path):
        ready.set()
        release.wait(30)


@pytest.mark.slow
def test_a_second_writer_is_refused_and_a_killed_ones_lock_is_free(tmp_path):
    path = str(tmp_path / "run")
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(runs.FolderInUse, match=f"pid {holder.pid}"):
            with runs.lock(path):
                pass
    finally:
        holder.kill()  # killed, not released: the OS frees the lock
        holder.join()
    with runs.lock(path):
        pass


def test_saves_are_atomic_and_truncated_models_say_so(tmp_path):
    run = str(tmp_path / "run")
    runs.prepare(run, {"beta": 1.0}, KEYS)
    model = build_vae((4, 4, 1), latent_dim=2, hidden_units=(4,))
    runs.save_model(model, os.path.join(run, runs.MODEL))
    loaded, flags = artifacts.load_run(run)
    assert flags == {"beta": 1.0} and loaded.latent_dim == 2
    assert [n for n in os.listdir(run) if n.startswith(".tmp-")] == []
    # What a kill during a save leaves: a truncated file and temporaries.
    with open(os.path.join(run, runs.MODEL), "r+b") as f:
        f.truncate(100)
    with pytest.raises(ValueError, match="incomplete or corrupt") as raised:
        artifacts.load_run(run)
    # The same command would meet the same file: the way out is named.
    assert "--overwrite" in str(raised.value)
    open(os.path.join(run, ".tmp-abc.keras"), "w").close()
    os.makedirs(os.path.join(run, ".export-xyz"))
    runs.prepare(run, {"beta": 1.0}, KEYS)
    assert not [n for n in os.listdir(run) if n.startswith((".tmp", ".exp"))]


def test_export_refuses_a_folder_that_is_not_a_saved_model(tf_only, tmp_path):
    from vaekeras import export

    model = build_vae((4, 4, 1), latent_dim=2, hidden_units=(4,))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a SavedModel folder"):
        export.export_saved_model(model, str(tmp_path))
    assert (tmp_path / "notes.txt").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_mode_a_plain_write_would(
    tf_only, tmp_path, umask
):
    from vaekeras import export

    model = build_vae((4, 4, 1), latent_dim=2, hidden_units=(4,))
    previous = os.umask(umask)
    try:
        runs.write_json(tmp_path / "a.json", {"x": 1})
        runs.write_text(tmp_path / "a.md", "x")
        runs.save_model(model, str(tmp_path / "model.keras"))
        export.export_saved_model(model, str(tmp_path / "export"))
    finally:
        os.umask(previous)
    for name in ("a.json", "a.md", "model.keras"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "export").stat().st_mode & 0o777 == 0o777 & ~umask

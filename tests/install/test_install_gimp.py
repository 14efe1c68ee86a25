"""Installer: GIMP 3 plug-in folders per OS (fakes), dry run, install/verify/uninstall."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from core.cli import main as clearshot
from install import gimp


def _dirs(system, env, home, present=()):
    found = gimp.candidate_dirs(system, env, home, is_dir=lambda p: str(p) in present)
    return [(t.kind, str(t.plugin_dir), t.present) for t in found]


def test_linux_native_flatpak_and_snap():
    got = _dirs("Linux", {}, "/home/ann")
    assert got == [
        ("linux", "/home/ann/.config/GIMP/3.0/plug-ins", False),
        ("flatpak", "/home/ann/.var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins", False),
        ("snap", "/home/ann/snap/gimp/current/.config/GIMP/3.0/plug-ins", False),
    ]


def test_linux_honours_xdg_config_home():
    got = _dirs("Linux", {"XDG_CONFIG_HOME": "/cfg"}, "/home/ann")
    assert got[0] == ("linux", "/cfg/GIMP/3.0/plug-ins", False)


def test_windows_appdata():
    got = _dirs("Windows", {"APPDATA": r"C:\Users\Ann\AppData\Roaming"}, r"C:\Users\Ann")
    assert got == [("windows", r"C:\Users\Ann\AppData\Roaming\GIMP\3.0\plug-ins", False)]
    fallback = _dirs("Windows", {}, r"C:\Users\Ann")
    assert fallback[0][1] == r"C:\Users\Ann\AppData\Roaming\GIMP\3.0\plug-ins"


def test_macos_application_support():
    got = _dirs("Darwin", {}, "/Users/ann")
    assert got == [("macos", "/Users/ann/Library/Application Support/GIMP/3.0/plug-ins", False)]


def test_gimp3_directory_wins():
    found = gimp.candidate_dirs("Linux", {"GIMP3_DIRECTORY": "/g3"}, "/home/ann",
                                is_dir=lambda p: True)
    assert [str(t.plugin_dir) for t in gimp.choose_targets(found)] == ["/g3/plug-ins"]


def test_choose_every_gimp_that_ran_else_the_native_folder():
    home = PurePosixPath("/home/ann")
    flat = str(home / ".var/app/org.gimp.GIMP/config/GIMP/3.0")
    native = str(home / ".config/GIMP/3.0")
    only_flatpak = gimp.candidate_dirs("Linux", {}, home, is_dir=lambda p: str(p) == flat)
    assert [t.kind for t in gimp.choose_targets(only_flatpak)] == ["flatpak"]
    both = gimp.candidate_dirs("Linux", {}, home, is_dir=lambda p: str(p) in (flat, native))
    assert [t.kind for t in gimp.choose_targets(both)] == ["linux", "flatpak"]
    none = gimp.candidate_dirs("Linux", {}, home, is_dir=lambda p: False)
    assert [t.kind for t in gimp.choose_targets(none)] == ["linux"]
    win = gimp.candidate_dirs("Windows", {"APPDATA": r"D:\AD"}, PureWindowsPath(r"D:\U"),
                              is_dir=lambda p: False)
    assert [str(t.plugin_dir) for t in gimp.choose_targets(win)] == [r"D:\AD\GIMP\3.0\plug-ins"]


def test_dry_run_changes_nothing(tmp_path, capsys):
    assert clearshot(["install-gimp", "--dry-run", "--plugin-dir", str(tmp_path / "pi")]) == 0
    out = capsys.readouterr().out
    assert f"would install the Clearshot GIMP plug-in into {tmp_path / 'pi' / 'clearshot'}" in out
    assert not (tmp_path / "pi").exists()


def test_dry_run_finds_the_folder_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GIMP3_DIRECTORY", str(tmp_path / "g3"))
    assert clearshot(["install-gimp", "--dry-run"]) == 0
    assert str(tmp_path / "g3" / "plug-ins" / "clearshot") in capsys.readouterr().out
    assert not (tmp_path / "g3").exists()


def test_install_verify_uninstall(tmp_path, capsys):
    folder = tmp_path / "plug-ins"
    assert clearshot(["install-gimp", "--plugin-dir", str(folder)]) == 0
    dest = folder / "clearshot"
    entry = dest / "clearshot.py"
    assert entry.is_file()
    assert os.access(entry, os.X_OK)
    assert (dest / "gimp_plugin" / "host.py").is_file()
    assert (dest / "core" / "deblur.py").is_file()
    assert "verified" in capsys.readouterr().out
    assert clearshot(["install-gimp", "--plugin-dir", str(folder)]) == 0  # reinstall replaces
    assert clearshot(["install-gimp", "--uninstall", "--plugin-dir", str(folder)]) == 0
    assert not dest.exists()
    assert list(folder.iterdir()) == []


def test_never_overwrites_or_removes_foreign_folders(tmp_path):
    dest = tmp_path / "clearshot"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not made by this installer"):
        gimp.install(tmp_path, say=lambda s: None)
    with pytest.raises(FileExistsError, match="not made by this installer"):
        gimp.uninstall(tmp_path, say=lambda s: None)
    assert (dest / "mine.txt").read_text() == "keep"


def test_failed_verification_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        msg = "engine did not run"
        raise RuntimeError(msg)

    monkeypatch.setattr(gimp, "verify", broken)
    with pytest.raises(RuntimeError, match="engine did not run"):
        gimp.install(tmp_path, say=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def test_wheels_runtime_needs_a_python_version(tmp_path):
    with pytest.raises(ValueError, match="python-version"):
        gimp.install(tmp_path, runtime="wheels", say=lambda s: None)


def test_standalone_script_dry_run(tmp_path):
    import subprocess
    import sys

    script = Path(gimp.__file__).parent / "install_gimp.py"
    res = subprocess.run([sys.executable, str(script), "--dry-run", "--plugin-dir",
                          str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "would install" in res.stdout
    assert not (tmp_path / "clearshot").exists()


@pytest.mark.parametrize(
    ("system", "root", "want"),
    [
        ("Windows", PureWindowsPath(r"C:\Users\Ann\AppData\Roaming\GIMP\3.0\plug-ins\clearshot"),
         r"C:\Users\Ann\AppData\Roaming\GIMP\3.0\plug-ins\clearshot\runtime\venv\Scripts"
         r"\python.exe"),
        ("Darwin", PurePosixPath("/Users/ann/Library/Application Support/GIMP/3.0/plug-ins/"
                                 "clearshot"),
         "/Users/ann/Library/Application Support/GIMP/3.0/plug-ins/clearshot/runtime/venv/bin/"
         "python"),
        ("Linux", PurePosixPath("/home/ann/.config/GIMP/3.0/plug-ins/clearshot"),
         "/home/ann/.config/GIMP/3.0/plug-ins/clearshot/runtime/venv/bin/python"),
    ],
)
def test_venv_runtime_python_per_system(system, root, want):
    """The worker interpreter engine.json names for --runtime venv, per OS."""
    assert str(gimp._venv_python(root, system)) == want


def test_worker_runtime_engine_json_for_windows_and_macos():
    """engine.json: the worker runs the named runtime Python; the plug-in folder is found at run
    time from the installed clearshot.py, so only the interpreter's path is stored."""
    win = r"C:\Users\Ann\AppData\Local\Programs\Python\Python312\python.exe"
    assert gimp._engine_json("current", win) == {"mode": "auto", "python": win, "site": []}
    mac = "/Library/Frameworks/Python.framework/Versions/3.12/bin/python3"
    assert gimp._engine_json("venv", mac)["python"] == mac
    assert gimp._engine_json("wheels", None) == {"mode": "auto", "python": None,
                                                 "site": ["runtime/site"]}


@pytest.mark.parametrize("tag", ["win_amd64", "macosx_11_0_arm64"])
def test_wheels_runtime_command_for_another_platform(tag, tmp_path):
    """--runtime wheels can fill runtime/site for another OS's Python (pip's cross-download)."""
    cmd = gimp._pip_wheels_cmd(tmp_path / "site", "3.12", tag)
    assert cmd[cmd.index("--platform") + 1] == tag
    assert cmd[cmd.index("--python-version") + 1] == "3.12"
    assert "--only-binary=:all:" in cmd
    assert cmd[cmd.index("--target") + 1] == str(tmp_path / "site")

"""The in-GIMP test skips (never fails) where it cannot run, unless CI requires it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gimp_harness as harness  # noqa: E402


def test_not_root_is_a_reason(monkeypatch):
    monkeypatch.setattr(harness.os, "geteuid", lambda: 1000)
    assert "root" in harness.why_unavailable()


def test_no_chroot_and_no_network_is_a_reason(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        msg = "no route"
        raise OSError(msg)

    monkeypatch.setattr(harness.os, "geteuid", lambda: 0)
    monkeypatch.setattr(harness, "CHROOT", tmp_path / "none")
    monkeypatch.setattr(harness.shutil, "which", lambda name: "/usr/sbin/" + name)
    monkeypatch.setattr(harness.socket, "create_connection", offline)
    assert "network" in harness.why_unavailable()
    monkeypatch.setattr(harness.shutil, "which", lambda name: None)
    assert "debootstrap" in harness.why_unavailable()


def test_a_ready_chroot_needs_no_network(monkeypatch, tmp_path):
    (tmp_path / ".clearshot-ready").write_text("x")
    monkeypatch.setattr(harness.os, "geteuid", lambda: 0)
    monkeypatch.setattr(harness, "CHROOT", tmp_path)
    assert harness.why_unavailable() is None

"""Helpers for the PSD bridge tests: the optional ../shared corpus, writing fixture files.

(Not a conftest.py: tests/conftest.py is imported as ``conftest`` by tests/core.)
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("CLEARSHOT_SHARED", Path(__file__).resolve().parents[3] / "shared"))
CORPUS = SHARED / "data" / "psd"


def corpus_files() -> list[Path]:
    """Every PSD/PSB of ../shared/data/psd (empty when ../shared is absent)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in (".psd", ".psb"))


def put(folder: Path, data: bytes, name: str = "in.psd") -> Path:
    """Write ``data`` to ``folder/name`` and return the path."""
    p = folder / name
    p.write_bytes(data)
    return p

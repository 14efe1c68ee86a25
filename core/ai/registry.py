"""The registry of learned models shipped inside the package (no downloads, ever).

``models/registry.json`` lists every shipped model: name, version, file, sha256, licence, the
data it was trained on and its input/output contract. :func:`model_info` looks a name up and
:func:`verified_path` checks the file's sha256 before anything loads it, so a truncated or
swapped weights file fails loudly instead of producing garbage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "ModelInfo",
    "ModelIntegrityError",
    "MODELS_DIR",
    "default_model_name",
    "list_models",
    "model_info",
    "sha256_file",
    "verified_path",
]

MODELS_DIR = Path(__file__).resolve().parent / "models"
_REGISTRY = MODELS_DIR / "registry.json"


class ModelIntegrityError(ValueError):
    """A shipped model file is missing or its sha256 differs from the registry."""


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry (see ``models/registry.json``)."""

    name: str
    version: str
    file: str
    sha256: str
    licence: str
    training_data: str
    description: str = ""
    default: bool = False
    multiple: int = 16
    receptive_px: int = 64
    contract: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.file


@lru_cache(maxsize=1)
def _load_registry() -> tuple[ModelInfo, ...]:
    data = json.loads(_REGISTRY.read_text(encoding="utf-8"))
    return tuple(ModelInfo(**entry) for entry in data["models"])


def list_models() -> list[ModelInfo]:
    """Every model shipped with this installation, default first."""
    return sorted(_load_registry(), key=lambda m: (not m.default, m.name))


def default_model_name() -> str:
    """Name of the default model (the one ``ai_deblur`` uses when given no ``model``)."""
    for m in _load_registry():
        if m.default:
            return m.name
    msg = f"no default model in {_REGISTRY}; the package data is incomplete, reinstall clearshot"
    raise ModelIntegrityError(msg)


def model_info(name: str) -> ModelInfo:
    """Registry entry for ``name``; ValueError listing the known names otherwise."""
    for m in _load_registry():
        if m.name == name:
            return m
    known = ", ".join(m.name for m in _load_registry())
    msg = f"unknown model {name!r}; shipped models are: {known} (or pass a path to an .onnx file)"
    raise ValueError(msg)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified_path(info: ModelInfo) -> Path:
    """The model's file after checking that it exists and its sha256 matches the registry."""
    path = info.path
    if not path.is_file():
        msg = (
            f"model {info.name!r} {info.version}: file {path} is missing; "
            "the package data is incomplete, reinstall clearshot"
        )
        raise ModelIntegrityError(msg)
    digest = sha256_file(path)
    if digest != info.sha256:
        msg = (
            f"model {info.name!r} {info.version}: sha256 of {path} is {digest}, the registry "
            f"expects {info.sha256}; the file is corrupt or was replaced, reinstall clearshot"
        )
        raise ModelIntegrityError(msg)
    return path

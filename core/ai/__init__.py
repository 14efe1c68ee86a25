"""Clearshot's learned deblur pass (ONNX model shipped in the package, run on CPU).

``ai_deblur(image, strength=..., linear_input=..., progress=...)`` has the pixel contract of
:func:`core.deblur.deblur` (any dtype, gray/RGB(A), alpha untouched). The model runs through
OpenCV's dnn module (no extra dependency) or onnxruntime when installed; see
:mod:`core.ai.runtime` for the bring-your-own-model contract and :mod:`core.ai.guard` for the
artefact guard. Never downloads anything.
"""

from __future__ import annotations

from .guard import GuardSettings
from .infer import DEFAULT_AI_TILE_PX, ai_deblur, strength_gain
from .registry import ModelInfo, ModelIntegrityError, default_model_name, list_models, model_info
from .runtime import ModelContractError, OnnxRestorer, Restorer, load_restorer

__all__ = [
    "DEFAULT_AI_TILE_PX",
    "GuardSettings",
    "ModelContractError",
    "ModelInfo",
    "ModelIntegrityError",
    "OnnxRestorer",
    "Restorer",
    "ai_deblur",
    "default_model_name",
    "list_models",
    "load_restorer",
    "model_info",
    "strength_gain",
]

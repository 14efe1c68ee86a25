"""Running an ONNX restoration model: cv2.dnn by default, onnxruntime when it is installed.

A *restorer* is anything with ``run(batch) -> batch`` on float32 NCHW arrays (N, 3, H, W):
:class:`OnnxRestorer` wraps a shipped or user-supplied ONNX file; tests and callers may pass any
object with the same method (see :class:`Restorer`). :func:`load_restorer` resolves ``None``
(the default shipped model), a registry name or a path, verifies shipped files' sha256 and
probes user files against the contract:

* input: one float32 tensor, NCHW, 3 channels (RGB), sRGB-encoded values in [0, 1], H and W any
  multiple of ``multiple`` (16 for shipped models; user models are padded to 32);
* output: one float32 tensor of the same shape, the restored image in the same encoding.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from .registry import ModelInfo, default_model_name, model_info, verified_path

__all__ = [
    "BYO_MULTIPLE",
    "ModelContractError",
    "OnnxRestorer",
    "Restorer",
    "load_restorer",
]

BYO_MULTIPLE = 32
_PROBE_PX = 64
Backend = Literal["auto", "cv2", "onnxruntime"]


class ModelContractError(ValueError):
    """A model file cannot be loaded or does not follow the input/output contract."""


class Restorer(Protocol):
    """What :func:`core.ai.ai_deblur` needs from a model."""

    multiple: int
    receptive_px: int
    name: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, 3, H, W) sRGB-encoded in [0, 1] -> restored, same shape."""
        ...


_CONTRACT = (
    "expected an ONNX model with one float32 input of shape (N, 3, H, W) (RGB, sRGB-encoded, "
    "values in [0, 1], H and W multiples of 32) and one output of the same shape"
)


class OnnxRestorer:
    """An ONNX model run through onnxruntime (when importable) or OpenCV's dnn module."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        multiple: int = BYO_MULTIPLE,
        receptive_px: int = 64,
        backend: Backend = "auto",
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self.multiple = int(multiple)
        self.receptive_px = int(receptive_px)
        if backend not in ("auto", "cv2", "onnxruntime"):
            msg = f"backend must be 'auto', 'cv2' or 'onnxruntime', got {backend!r}"
            raise ValueError(msg)
        use_ort = backend == "onnxruntime" or (
            backend == "auto" and importlib.util.find_spec("onnxruntime") is not None
        )
        self.backend = "onnxruntime" if use_ort else "cv2"
        try:
            if use_ort:
                import onnxruntime as ort

                self._session = ort.InferenceSession(
                    str(self.path), providers=["CPUExecutionProvider"]
                )
                self._input = self._session.get_inputs()[0].name
            else:
                self._net = cv2.dnn.readNetFromONNX(str(self.path))
        except Exception as exc:  # both runtimes raise their own error types
            msg = f"cannot load {self.path} as an ONNX model ({type(exc).__name__}: " \
                  f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}); {_CONTRACT}"
            raise ModelContractError(msg) from exc

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, np.float32)
        if self.backend == "onnxruntime":
            return np.asarray(self._session.run(None, {self._input: x})[0], np.float32)
        self._net.setInput(x)
        return np.asarray(self._net.forward(), np.float32)


def _probe(restorer: Restorer, source: str) -> None:
    """Run a small input through a user model and check the output's shape."""
    side = max(_PROBE_PX, restorer.multiple)
    x = np.full((1, 3, side, side), 0.5, np.float32)
    try:
        y = restorer.run(x)
    except Exception as exc:  # the runtime's error says which layer failed
        lines = str(exc).strip().splitlines()
        detail = lines[-1] if lines else type(exc).__name__
        msg = f"model {source} failed on a (1, 3, {side}, {side}) probe ({detail}); {_CONTRACT}"
        raise ModelContractError(msg) from exc
    if getattr(y, "shape", None) != x.shape:
        msg = (
            f"model {source} returned shape {getattr(y, 'shape', None)} for a (1, 3, {side}, "
            f"{side}) input; {_CONTRACT}. A model for gray images or one that changes the size "
            "(super-resolution) does not fit: export an RGB same-size restoration model"
        )
        raise ModelContractError(msg)
    if not np.isfinite(y).all():
        msg = f"model {source} returned NaN or infinite values on a flat gray probe; {_CONTRACT}"
        raise ModelContractError(msg)


def load_restorer(model: str | Path | Restorer | None = None, *, backend: Backend = "auto"
                  ) -> Restorer:
    """Resolve ``model`` to a ready restorer.

    Parameters
    ----------
    model : None, str, path or restorer
        None: the default shipped model. A registry name (see ``clearshot models``). A path to
        an ``.onnx`` file (bring your own model; probed against the contract). An object with
        ``run``, ``multiple``, ``receptive_px`` and ``name`` is returned as is.
    backend : {"auto", "cv2", "onnxruntime"}
        "auto" uses onnxruntime when it is installed, else OpenCV's dnn module.

    Raises
    ------
    ValueError
        Unknown name; ``ModelContractError`` for a file that does not load or fit the contract;
        ``ModelIntegrityError`` for a shipped file whose sha256 differs from the registry.
    """
    if model is not None and not isinstance(model, (str, Path)):
        if not callable(getattr(model, "run", None)):
            msg = f"model must be None, a name, a path or an object with run(), got {model!r}"
            raise TypeError(msg)
        return model
    if model is None or (isinstance(model, str) and not _looks_like_path(model)):
        info: ModelInfo = model_info(default_model_name() if model is None else model)
        return OnnxRestorer(
            verified_path(info),
            name=f"{info.name}-{info.version}",
            multiple=info.multiple,
            receptive_px=info.receptive_px,
            backend=backend,
        )
    path = Path(model)
    if not path.is_file():
        msg = f"model file {path} does not exist; pass a shipped model name or an .onnx path"
        raise FileNotFoundError(msg)
    restorer = OnnxRestorer(path, backend=backend)
    _probe(restorer, str(path))
    return restorer


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(".onnx") or "/" in text or "\\" in text

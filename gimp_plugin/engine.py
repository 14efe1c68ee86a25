"""Find the engine and run a request: in-process when numpy/OpenCV import, else the worker.

Pure Python at import time. The plug-in folder holds ``engine.json`` (written by the
installer)::

    {"mode": "auto" | "in-process" | "worker",
     "python": "/path/to/runtime/python" or null,   # worker interpreter; null: this Python
     "site": ["runtime/site"]}                      # extra import folders (wheel folder)

Relative ``site`` entries are relative to the plug-in folder. Pixels travel as raw
little-endian float32 bytes (from/to GEGL), in ``.npy`` files for the worker.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EngineUnavailableError, PluginCancelled, WorkerError
from .npyio import read_npy, write_npy

__all__ = [
    "EngineConfig",
    "load_config",
    "run_request",
    "run_analysis",
    "run_hybrid",
    "run_locate",
    "engine_available_in_process",
]

CONFIG_NAME = "engine.json"
log = logging.getLogger("clearshot.gimp")
Progress = Callable[[float, str], bool]
Shape = tuple[int, int, int]
Crop = tuple[int, int, int, int]


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine lives (see the module docstring)."""

    mode: str = "auto"
    python: str | None = None
    site: tuple[str, ...] = field(default=())
    plugin_dir: str = "."

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "in-process", "worker"):
            msg = f"engine mode must be auto, in-process or worker, got {self.mode!r}"
            raise ValueError(msg)

    def site_paths(self) -> list[str]:
        """The ``site`` folders as absolute paths."""
        return [os.path.join(self.plugin_dir, s) if not os.path.isabs(s) else s for s in self.site]


def load_config(plugin_dir: str | os.PathLike[str]) -> EngineConfig:
    """Read ``engine.json`` beside the plug-in (defaults when it is missing)."""
    path = Path(plugin_dir) / CONFIG_NAME
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"cannot read {path}: {exc}; reinstall with 'clearshot install-gimp'"
            raise EngineUnavailableError(msg) from exc
    return EngineConfig(
        mode=data.get("mode", "auto"),
        python=data.get("python") or None,
        site=tuple(data.get("site", ())),
        plugin_dir=os.fspath(plugin_dir),
    )


def engine_available_in_process(config: EngineConfig) -> bool:
    """Put the runtime's folders on sys.path and try numpy, OpenCV and core."""
    for p in reversed(config.site_paths()):
        if os.path.isdir(p) and p not in sys.path:
            sys.path.insert(0, p)
    if config.plugin_dir not in sys.path:
        sys.path.insert(0, config.plugin_dir)
    try:
        import cv2  # noqa: F401
        import numpy  # noqa: F401

        import core  # noqa: F401
    except ImportError:
        return False
    return True


def _use_in_process(config: EngineConfig) -> bool:
    """True to run the engine here; False for the worker; raises when in-process is required
    but numpy/OpenCV do not import."""
    if config.mode != "worker" and engine_available_in_process(config):
        log.info("engine: in-process in %s", sys.executable)
        return True
    if config.mode == "in-process":
        msg = (
            "engine.json asks for the in-process engine, but numpy/OpenCV do not import in "
            f"this Python ({sys.executable}); run 'clearshot install-gimp' again"
        )
        raise EngineUnavailableError(msg)
    log.info("engine: worker %s", config.python or sys.executable)
    return False


def run_request(
    request: dict[str, Any],
    data: bytes,
    shape: Shape,
    config: EngineConfig,
    *,
    crop: Crop | None = None,
    progress: Progress | None = None,
    info: dict[str, Any] | None = None,
) -> tuple[bytes, Shape]:
    """Run ``request`` on float32 bytes of ``shape``; return (float32 bytes, shape) of ``crop``.

    ``info`` receives what the engine reports besides pixels (see ``ops.apply``: the blur
    diagnosis, a message for the user, ``unchanged``).

    Raises ValueError/TypeError (bad arguments), PluginCancelled (progress said stop),
    EngineUnavailableError, WorkerError or the engine's own exceptions in-process.
    """
    if _use_in_process(config):
        return _run_in_process(request, data, shape, crop, progress, info)
    return _run_worker(request, data, shape, config, crop, progress, info)


def run_analysis(
    request: dict[str, Any],
    data: bytes,
    shape: Shape,
    config: EngineConfig,
    *,
    crop: Crop | None = None,
    progress: Progress | None = None,
    info: dict[str, Any] | None = None,
) -> dict[str, tuple[bytes, Shape]]:
    """Run an ``analyze`` request (``ops.analyze``) on float32 bytes of ``shape``.

    Returns {"psf": (bytes, shape), "focus": (bytes, shape)}, float32 pictures in [0, 1];
    ``info`` receives ``diagnosis`` and ``message``. Raises as :func:`run_request`.
    """
    if _use_in_process(config):
        import numpy as np

        from . import ops

        pixels = np.frombuffer(data, dtype="<f4").reshape(shape)
        outs = ops.analyze(request, pixels, crop=crop, progress=progress, info=info)
        return {k: (v.astype("<f4", copy=False).tobytes(), tuple(v.shape))
                for k, v in outs.items()}
    return _run_worker(request, data, shape, config, crop, progress, info,
                       outputs=("psf", "focus"))


def run_hybrid(
    request: dict[str, Any],
    data: bytes,
    shape: Shape,
    config: EngineConfig,
    *,
    selection: tuple[bytes, Shape] | None = None,
    progress: Progress | None = None,
    info: dict[str, Any] | None = None,
) -> dict[str, tuple[bytes, Shape]]:
    """Run a hybrid (recipe layer stack) request, ``ops.hybrid``, on float32 bytes.

    ``selection`` is float32 (H, W, 1) bytes or None. Returns {"layer0": (bytes, shape),
    "mask0": ..., ...}; ``info`` receives ``layers`` (names, opacities, masks), ``message``
    and ``provenance``. Raises as :func:`run_request`.
    """
    request = {**request, "op": "hybrid"}
    info = {} if info is None else info
    if _use_in_process(config):
        import numpy as np

        from . import ops

        pixels = np.frombuffer(data, dtype="<f4").reshape(shape)
        sel = None
        if selection is not None:
            sel = np.frombuffer(selection[0], dtype="<f4").reshape(selection[1])
        outs = ops.hybrid(request, pixels, selection=sel, progress=progress, info=info)
        return {k: (v.astype("<f4", copy=False).tobytes(), tuple(v.shape))
                for k, v in outs.items()}
    return _run_worker(request, data, shape, config, None, progress, info,
                       outputs="*", selection=selection)


def run_locate(
    request: dict[str, Any],
    data: bytes,
    shape: Shape,
    config: EngineConfig,
) -> dict[str, Any]:
    """Where the dialog's preview should look (``ops.locate``, request ``where``: detail or
    face); returns info with ``box`` ([x, y, w, h] in ``data``'s pixels, or None) and
    ``message``. Raises as :func:`run_request`."""
    request = {**request, "op": "locate"}
    info: dict[str, Any] = {}
    if _use_in_process(config):
        import numpy as np

        from . import ops

        ops.locate(request, np.frombuffer(data, dtype="<f4").reshape(shape), info=info)
        return info
    _run_worker(request, data, shape, config, None, None, info, outputs="*")
    return info


def _run_in_process(request, data, shape, crop, progress, info):
    import numpy as np

    from . import ops

    pixels = np.frombuffer(data, dtype="<f4").reshape(shape)
    out = ops.apply(request, pixels, crop=crop, progress=progress, info=info)
    return out.astype("<f4", copy=False).tobytes(), tuple(out.shape)


def _worker_command(config: EngineConfig, request_path: str) -> list[str]:
    python = config.python or sys.executable
    if not python or not os.path.exists(python):
        msg = (
            f"no engine runtime: GIMP's Python ({sys.executable}) has no numpy/OpenCV and the "
            f"runtime Python {python!r} does not exist; run 'clearshot install-gimp'"
        )
        raise EngineUnavailableError(msg)
    return [python, "-m", "gimp_plugin.worker", request_path]


def _run_worker(request, data, shape, config, crop, progress, info, outputs=None,
                selection=None):
    """The worker; ``outputs`` (names) asks for several arrays back (analyze), as a dict;
    ``outputs="*"`` takes every array the worker names (hybrid: one per layer and mask)."""
    with tempfile.TemporaryDirectory(prefix="clearshot-") as tmp:
        job = {
            "request": request,
            "input": os.path.join(tmp, "in.npy"),
            "output": os.path.join(tmp, "out.npy"),
            "crop": list(crop) if crop else None,
        }
        if outputs == "*":
            job["output_dir"] = tmp
        elif outputs:
            job["outputs"] = {n: os.path.join(tmp, f"out-{n}.npy") for n in outputs}
        write_npy(job["input"], data, shape)
        if selection is not None:
            job["selection"] = os.path.join(tmp, "selection.npy")
            write_npy(job["selection"], *selection)
        req = os.path.join(tmp, "request.json")
        with open(req, "w", encoding="utf-8") as f:
            json.dump(job, f)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([config.plugin_dir, *config.site_paths()])
        env.pop("PYTHONHOME", None)
        err_path = os.path.join(tmp, "stderr.txt")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                _worker_command(config, req),
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=config.plugin_dir,
                env=env,
                text=True,
                # GIMP on Windows runs pythonw.exe: no console window for the worker
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
            result = _follow(proc, progress, info)
        if result is None:
            tail = Path(err_path).read_text(errors="replace")[-800:].strip()
            msg = f"the engine worker stopped (exit {proc.returncode}) without a result: {tail}"
            msg_0 = "WorkerCrashed"
            raise WorkerError(msg_0, msg)
        kind, message = result
        if kind == "done":
            if outputs == "*":
                names = (info or {}).pop("arrays", [])
                return {n: read_npy(os.path.join(tmp, f"out-{n}.npy")) for n in names}
            if outputs:
                return {n: read_npy(p) for n, p in job["outputs"].items()}
            out, out_shape = read_npy(job["output"])
            return out, out_shape
        raise _exception_from(kind, message)


def _follow(
    proc: subprocess.Popen, progress: Progress | None, info: dict[str, Any] | None = None
) -> tuple[str, str] | None:
    """Read the worker's lines until done/error; kill it if progress says stop."""
    result: tuple[str, str] | None = None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            word, _, rest = line.rstrip("\n").partition(" ")
            if word == "progress" and progress is not None:
                frac, _, stage = rest.partition(" ")
                if progress(float(frac), stage) is False:
                    proc.kill()
                    proc.wait()
                    msg = "cancelled by the user"
                    raise PluginCancelled(msg)
            elif word == "info" and info is not None:
                info.update(json.loads(rest))
            elif word == "done":
                result = ("done", "")
            elif word == "error":
                kind, _, message = rest.partition(" ")
                result = (kind, message)
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return result


def _exception_from(kind: str, message: str) -> Exception:
    if kind == "ValueError":
        return ValueError(message)
    if kind == "TypeError":
        return TypeError(message)
    if kind == "OperationCancelled":
        return PluginCancelled(message)
    return WorkerError(kind, message)

"""The out-of-process engine: ``python -m gimp_plugin.worker REQUEST.json`` (or ``--check``).

Runs in the runtime ``install/`` prepared, when GIMP's own Python lacks numpy/OpenCV. The request
file names the input and output ``.npy`` files (float32, so no 8-bit round trip); an
``analyze`` request names one output per picture (``outputs``: psf, focus). Protocol on
stdout, one line each: ``progress FRACTION STAGE``, ``info JSON`` (what the blur analysis found,
when it ran), then ``done`` or ``error KIND MESSAGE``.
The parent kills the worker to cancel. When the plug-in itself is gone (GIMP kills a plug-in
whose progress the user cancelled), the worker's next line meets a broken pipe: it stops and
deletes the exchange folder the plug-in could no longer delete.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

__all__ = ["main"]


def _say(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def _check() -> int:
    import numpy as np

    from core import deblur, gaussian_psf

    out = deblur(np.full((8, 8, 3), 0.5, np.float32), gaussian_psf(1.0), linear_input=True)
    ok = out.shape == (8, 8, 3) and abs(float(out.mean()) - 0.5) < 1e-3
    _say("done" if ok else "error RuntimeError engine self-check gave a wrong result")
    return 0 if ok else 1


def _orphaned(args: list[str]) -> None:
    """Delete the plug-in's exchange folder (``clearshot-*``) and silence stdout."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter's exit flush
    except OSError:
        pass
    if len(args) == 1:
        folder = os.path.dirname(os.path.abspath(args[0]))
        if os.path.basename(folder).startswith("clearshot-"):
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run one request file; return 0 on success, 1 on failure."""
    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["--check"]:
            return _check()
        if len(args) != 1:
            msg = "usage: python -m gimp_plugin.worker REQUEST.json | --check"
            raise ValueError(msg)
        with open(args[0], encoding="utf-8") as f:
            job = json.load(f)
        import numpy as np

        from . import ops

        pixels = np.load(job["input"], allow_pickle=False)

        def progress(fraction: float, stage: str) -> bool:
            _say(f"progress {fraction:.4f} {stage}")
            return True

        crop = tuple(job["crop"]) if job.get("crop") else None
        info: dict = {}
        if job["request"].get("op") == "hybrid":  # a layer stack: every array, named in info
            sel = np.load(job["selection"], allow_pickle=False) if job.get("selection") else None
            outs = ops.hybrid(job["request"], pixels, selection=sel, progress=progress,
                              info=info)
            for name, arr in outs.items():
                path = os.path.join(job["output_dir"], f"out-{name}.npy")
                np.save(path, arr.astype("<f4"), allow_pickle=False)
            info["arrays"] = sorted(outs)
        elif job["request"].get("op") == "locate":  # where the preview looks: info only
            ops.locate(job["request"], pixels, info=info)
            info["arrays"] = []
        elif job["request"].get("op") == "analyze":  # several pictures, named in "outputs"
            outs = ops.analyze(job["request"], pixels, crop=crop, progress=progress, info=info)
            for name, path in job["outputs"].items():
                np.save(path, outs[name].astype("<f4"), allow_pickle=False)
        else:
            out = ops.apply(job["request"], pixels, crop=crop, progress=progress, info=info)
            np.save(job["output"], out.astype("<f4"), allow_pickle=False)
        if info:
            _say(f"info {json.dumps(info)}")
        _say("done")
        return 0
    except BrokenPipeError:  # the plug-in is gone: nobody reads; clean up and stop
        _orphaned(args)
        return 1
    except Exception as exc:  # every failure goes back to the plug-in as a message
        _say(f"error {type(exc).__name__} {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``clearshot`` command line: a thin host over the engine.

Subcommands register themselves in ``_COMMANDS`` (name -> (configure, run)), so later features
(``analyze``, ``psd``, masks, the AI method) add a function pair here without touching the rest.
The CLI owns argument parsing, unit conversion, the progress bar and error reporting; pixel
work happens in the engine, files are read and written by :mod:`core.io`.

Exit codes: 0 success, 1 processing failed, 2 bad arguments or input, 130 cancelled.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import __version__
from .errors import ClearshotError, MissingDependencyError, OperationCancelled

__all__ = ["main", "build_parser"]

_IMAGE_EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


# ----------------------------------------------------------------------------- progress bar
class ProgressBar:
    """A one-line text bar on stderr; silent when stderr is not a terminal or ``quiet``."""

    def __init__(self, label: str, *, quiet: bool = False, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.label = label
        self._last = -1.0
        self._start = time.perf_counter()

    def __call__(self, fraction: float, stage: str = "") -> None:
        if not self.enabled or (fraction - self._last < 0.01 and fraction < 1.0):
            return
        self._last = fraction
        width = 28
        filled = int(round(width * fraction))
        bar = "#" * filled + "-" * (width - filled)
        secs = time.perf_counter() - self._start
        text = f"\r{self.label} [{bar}] {fraction * 100:5.1f}% {secs:5.1f}s {stage[:28]:28s}"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# ----------------------------------------------------------------------------- helpers
def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        msg = f"expected LENGTH,ANGLE in pixels and degrees (e.g. 15,30), got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return a, b


def _strength(text: str) -> float:
    return _percent(text, "strength")


def _percent(text: str, what: str = "a percentage") -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0 <= v <= 100:
        msg = f"{what} must be a number from 0 to 100, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return v


def _outputs_for(inputs: Sequence[str], output: str | None, suffix: str) -> list[Path]:
    """Map inputs to outputs: one file, or a folder for several inputs (or an existing folder)."""
    from .io import output_path_for

    if output is None:
        return [Path(output_path_for(p, suffix)) for p in inputs]
    out = Path(output)
    if len(inputs) > 1 or out.is_dir() or output.endswith(os.sep):
        out.mkdir(parents=True, exist_ok=True)
        return [out / Path(p).name for p in inputs]
    return [out]


def _psf_from_args(args: argparse.Namespace) -> np.ndarray | None:
    from .psf import defocus_psf, gaussian_psf, motion_psf

    if args.psf:
        from .io import read_psf

        return read_psf(args.psf)
    if args.motion:
        return motion_psf(*args.motion)
    if args.defocus:
        return defocus_psf(args.defocus)
    if args.gaussian:
        return gaussian_psf(args.gaussian)
    return None


def _process_files(
    args, label: str, suffix: str, work: Callable[[np.ndarray, Callable], np.ndarray]
) -> int:
    from .io import read_image, write_image

    outputs = _outputs_for(args.inputs, args.output, suffix)
    for src, dst in zip(args.inputs, outputs, strict=True):
        img = read_image(src)
        bar = ProgressBar(f"{label} {Path(src).name}", quiet=args.quiet)
        t0 = time.perf_counter()
        try:
            result = work(img.pixels, bar)
        finally:
            bar.close()
        write_image(
            dst, result, icc_profile=img.icc_profile, overwrite=args.overwrite, protect=args.inputs
        )
        if not args.quiet:
            print(f"wrote {dst} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _offset_bar(bar: Callable, start: float) -> Callable:
    """A progress callback covering ``start..1`` of ``bar``."""
    return lambda f, stage="": bar(start + (1 - start) * f, stage)


def _add_io_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN", help="input image(s): PNG, TIFF or JPEG")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file, or a folder for several inputs (default: IN-<op>.<ext> beside IN)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="allow replacing existing files (and the input)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")


# ----------------------------------------------------------------------------- deblur
def _configure_deblur(p: argparse.ArgumentParser) -> None:
    _add_io_args(p)
    g = p.add_argument_group("blur model (one of)").add_mutually_exclusive_group()
    g.add_argument("--psf", metavar="FILE", help="kernel as .npy or grayscale PNG/TIFF")
    g.add_argument(
        "--motion", type=_pair, metavar="LEN,ANGLE", help="linear motion: length px, angle deg"
    )
    g.add_argument("--defocus", type=float, metavar="R", help="out-of-focus disk radius in px")
    g.add_argument("--gaussian", type=float, metavar="S", help="Gaussian blur sigma in px")
    p.add_argument(
        "--mode",
        choices=("auto", "motion", "shake", "focus"),
        default="auto",
        help="without a blur model the blur is analysed first; this forces the family it looks "
        "for (default auto)",
    )
    p.add_argument(
        "--method",
        choices=("sparse", "wiener", "rl", "ai"),
        default="sparse",
        help="sparse prior (best), wiener (fastest), rl (low light), ai (learned model, blind: "
        "no analysis or blur model needed); default sparse",
    )
    p.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="with --method ai: a shipped model (see 'clearshot models') or your own .onnx",
    )
    p.add_argument("--strength", type=_strength, default=50.0, help="0-100, default 50")
    p.add_argument(
        "--ai-share",
        type=lambda text: _percent(text, "--ai-share"),
        default=None,
        metavar="PCT",
        help="Auto (no blur model, --mode auto): how much of the learned pass is blended into "
        "the classical result, 0-100 (default 50; 0: the classical result only); raised "
        "where the blur estimate explains the photo only in part",
    )
    p.add_argument(
        "--channels",
        choices=("rgb", "luminance"),
        default="rgb",
        help="deconvolve every channel (default) or luminance only (3x faster, no colour fringes)",
    )
    p.add_argument("--linear", action="store_true", help="the data is already linear light")
    p.add_argument(
        "--recipe",
        metavar="NAME|FILE.toml",
        help="run a recipe (first pass, masked sharpening, softening) and write the flattened "
        "result: a preset (see 'clearshot recipes') or a recipe file",
    )
    p.add_argument(
        "--selection",
        metavar="MASK.png",
        help="with --recipe: a mask image (white = selected, as a GIMP selection): every "
        "layer is limited to it and it is the recipe's 'selection' mask source",
    )
    p.add_argument(
        "--layers",
        metavar="OUT.psd",
        help="with --recipe (one 8/16-bit input): also write the layer stack as a layered PSD "
        "(Background, then each step's layer with its mask; needs the PSD bridge)",
    )
    p.add_argument(
        "--provenance",
        metavar="FILE.json",
        help="with --recipe (one input): write what ran (recipe, parameters, first pass and "
        "its diagnosis or AI model, masks found) as JSON",
    )


def _run_deblur(args: argparse.Namespace) -> int:
    from .deblur import deblur

    if args.ai_share is not None and (
        args.recipe
        or args.method == "ai"
        or args.mode != "auto"
        or _psf_from_args(args) is not None
    ):
        msg = (
            "--ai-share sets how much of the learned pass Auto blends into its classical "
            "result; it goes with Auto only (no --recipe, --method ai, forced --mode or "
            "--motion/--defocus/--gaussian/--psf)"
        )
        raise ValueError(msg)
    if args.recipe:
        return _run_deblur_recipe(args)
    if args.provenance or args.layers or args.selection:
        msg = "--provenance, --layers and --selection go with --recipe"
        raise ValueError(msg)
    given = _psf_from_args(args)
    if given is not None and args.mode != "auto":
        msg = (
            "--mode chooses what the automatic analysis looks for; it cannot be combined with "
            "a given blur model (--motion, --defocus, --gaussian, --psf)"
        )
        raise ValueError(msg)
    if args.method == "ai" or args.model is not None:
        return _run_ai_deblur(args, given)

    def work(pixels, bar):
        if given is None:  # Auto: find out what the blur is first
            from .diagnose import diagnose

            d = diagnose(
                pixels,
                mode=args.mode,
                linear_input=args.linear,
                progress=lambda f, s: bar(0.3 * f, s),
            )
            if not args.quiet:
                bar.close()
                print(f"diagnosis: {d.kind} (confidence {d.confidence:.2f}): {d.explanation}")
            from .crosscheck import AI_SHARE, restore_checked

            out, check = restore_checked(
                pixels,
                d,
                check=args.mode == "auto",  # a family the user forces is not second-guessed
                ai_share=AI_SHARE if args.ai_share is None else args.ai_share / 100,
                method=args.method,
                strength=args.strength,
                channels=args.channels,
                linear_input=args.linear,
                progress=_offset_bar(bar, 0.3),
            )
            if check is not None and check.note() and not args.quiet:
                print(check.note())
            return out
        return deblur(
            pixels,
            given,
            method=args.method,
            strength=args.strength,
            channels=args.channels,
            linear_input=args.linear,
            progress=bar,
        )

    return _process_files(args, "deblur", "-deblurred", work)


def _run_deblur_recipe(args: argparse.Namespace) -> int:
    """``clearshot deblur --recipe``: core.layer_stack.run_recipe, flattened."""
    from .layer_stack import run_recipe
    from .recipes import resolve_recipe

    if _psf_from_args(args) is not None or args.mode != "auto":
        msg = (
            "--recipe sets the first pass itself; it cannot be combined with a blur model "
            "(--motion, --defocus, --gaussian, --psf) or --mode (use a recipe whose deblur "
            'step has mode = "motion", e.g. --recipe motion)'
        )
        raise ValueError(msg)
    recipe = resolve_recipe(args.recipe)
    if (args.provenance or args.layers) and len(args.inputs) > 1:
        msg = "--provenance and --layers take one input image"
        raise ValueError(msg)
    if args.layers and not args.layers.lower().endswith(".psd"):
        msg = f"--layers writes a Photoshop file: give a .psd path, got {args.layers!r}"
        raise ValueError(msg)
    if args.provenance and os.path.exists(args.provenance) and not args.overwrite:
        msg = f"{args.provenance} exists; pass --overwrite to replace it"
        raise FileExistsError(msg)

    selection = None
    if args.selection:
        from .io import read_image
        from .masks import mask_from_array

        selection = mask_from_array(read_image(args.selection).pixels)

    def work(pixels, bar):
        if selection is not None and selection.shape != pixels.shape[:2]:
            msg = (
                f"--selection {args.selection} is {selection.shape[1]}x{selection.shape[0]} "
                f"px, the image {pixels.shape[1]}x{pixels.shape[0]}; they must match"
            )
            raise ValueError(msg)
        stack = run_recipe(
            pixels,
            recipe,
            masks=None if selection is None else {"selection": selection},
            region=selection,
            linear_input=args.linear,
            progress=bar,
        )
        if args.provenance:
            import json

            with open(args.provenance, "w", encoding="utf-8") as fh:
                json.dump(stack.provenance, fh, indent=1)
        if not args.quiet:
            bar.close()
            for step in stack.provenance["steps"]:
                line = f"{step['layer']}: {step['op']}"
                if "pass" in step:
                    line += f" ({step['pass']})"
                    if "diagnosis" in step:
                        line += f": {step['diagnosis']['explanation']}"
                    if step.get("ai_fallback_reason"):
                        line += f" [{step['ai_fallback_reason']}]"
                print(f"{line}; mask {step['mask']}")
        if args.layers:
            _write_layers(pixels, recipe, args)
        return stack.flatten()

    return _process_files(args, f"{recipe.name}", f"-{recipe.name}", work)


def _write_layers(pixels: np.ndarray, recipe, args: argparse.Namespace) -> None:
    """The layered PSD of ``--layers``, through the PSD bridge (imported only here)."""
    try:
        from psd_bridge.api import write_recipe_layers
    except ModuleNotFoundError as exc:
        msg = f"--layers needs the PSD bridge (psd_bridge, psd-tools): {exc}"
        raise MissingDependencyError(msg) from exc
    report = write_recipe_layers(pixels, recipe, args.layers, overwrite=args.overwrite)
    if not args.quiet:
        names = [c["new_layer"] for c in report["changes"]]
        print(f"wrote {args.layers} (Background, {', '.join(names)})")


def _configure_recipes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--show", metavar="NAME", help="print a preset's TOML (to copy and edit)")


def _run_recipes(args: argparse.Namespace) -> int:
    from .recipes import load_preset, preset_names, preset_toml

    if args.show:
        print(preset_toml(args.show), end="")
        return 0
    for name in preset_names():
        r = load_preset(name)
        print(f"{name:12s} {r.description}")
        print(f"{'':12s} steps: {' -> '.join(_step_summary(s) for s in r.steps)}")
    print("\nclearshot deblur IN -o OUT --recipe NAME (or --recipe my.toml; see --show NAME)")
    return 0


def _step_summary(step) -> str:
    if step.op == "deblur":
        text = f"deblur ({step['method']}, strength {step['strength']:g})"
    elif step.op in ("sharpen", "clarity"):
        text = (
            f"{step.op} {step['amount_pct']:g} %/{step['radius_px']:g} px/"
            f"{step['threshold_levels']:g}"
        )
    else:
        text = f"soften {step['sigma_px']:g} px"
    mask = step["mask"]
    if mask != "none" or step["invert_mask"]:
        text += f" through {'inverted ' if step['invert_mask'] else ''}{mask}"
    return text


def _run_ai_deblur(args: argparse.Namespace, given: np.ndarray | None) -> int:
    from .ai import ai_deblur, load_restorer

    if args.method != "ai":
        msg = f"--model selects a learned model and needs --method ai (got --method {args.method})"
        raise ValueError(msg)
    if given is not None or args.mode != "auto" or args.channels != "rgb":
        msg = (
            "--method ai is blind and works on RGB: drop --motion/--defocus/--gaussian/--psf, "
            "--mode and --channels, or pick a classical --method to use them"
        )
        raise ValueError(msg)
    restorer = load_restorer(args.model)  # fail before reading any image

    def work(pixels, bar):
        return ai_deblur(
            pixels, model=restorer, strength=args.strength, linear_input=args.linear, progress=bar
        )

    return _process_files(args, "deblur (ai)", "-deblurred", work)


# ----------------------------------------------------------------------------- models
def _configure_models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the registry entries as JSON")


def _run_models(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from .ai import list_models

    models = list_models()
    if args.json:
        print(json.dumps([asdict(m) for m in models], indent=2))
        return 0
    for m in models:
        star = " (default)" if m.default else ""
        print(f"{m.name} {m.version}{star}  sha256 {m.sha256[:16]}...  licence: {m.licence}")
        print(f"    {m.description}")
        print(f"    trained on: {m.training_data}")
    return 0


# ----------------------------------------------------------------------------- sharpen
def _configure_sharpen(p: argparse.ArgumentParser) -> None:
    _add_io_args(p)
    p.add_argument("--amount", type=float, default=120.0, help="percent, default 120")
    p.add_argument("--radius", type=float, default=1.5, help="Gaussian sigma in px, default 1.5")
    p.add_argument("--threshold", type=float, default=5.0, help="0-255 levels, default 5")
    p.add_argument(
        "--halo-limit",
        type=float,
        default=None,
        metavar="F",
        help="clamp overshoot to F x the local range (e.g. 0.2); default off",
    )
    p.add_argument("--luminance-only", action="store_true", help="sharpen luminance only")
    p.add_argument("--linear", action="store_true", help="sharpen in linear light")


def _run_sharpen(args: argparse.Namespace) -> int:
    from .sharpen import unsharp_mask

    def work(pixels, bar):
        return unsharp_mask(
            pixels,
            args.amount,
            args.radius,
            args.threshold,
            halo_limit=args.halo_limit,
            luminance_only=args.luminance_only,
            space="linear" if args.linear else "encoded",
            progress=bar,
        )

    return _process_files(args, "sharpen", "-sharpened", work)


# ----------------------------------------------------------------------------- analyze
def _configure_analyze(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN", help="image(s) to analyse")
    p.add_argument(
        "--json", action="store_true", help="machine-readable output (one object per line)"
    )
    p.add_argument(
        "--psf-out", metavar="K.png|K.npy", help="write the estimated kernel (one input)"
    )
    p.add_argument(
        "--map-out",
        metavar="MAP.png",
        help="write the focus map (white = in focus, black = blurred; one input)",
    )
    p.add_argument("--mode", choices=("auto", "motion", "shake", "focus"), default="auto")
    p.add_argument(
        "--max-blur",
        type=int,
        default=69,
        metavar="PX",
        help="largest blur considered (the kernel is estimated in a 35 px frame first, "
        "and again up to this size when the blur runs past it)",
    )
    p.add_argument("--linear", action="store_true", help="the data is already linear light")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")


def _run_analyze(args: argparse.Namespace) -> int:
    import json

    from .diagnose import diagnose
    from .io import read_image, write_image

    if (args.psf_out or args.map_out) and len(args.inputs) > 1:
        msg = "--psf-out and --map-out take one input image"
        raise ValueError(msg)
    for src in args.inputs:
        img = read_image(src)
        bar = ProgressBar(f"analyse {Path(src).name}", quiet=args.quiet or args.json)
        try:
            d = diagnose(
                img.pixels,
                mode=args.mode,
                max_blur_px=args.max_blur,
                linear_input=args.linear,
                progress=bar,
            )
        finally:
            bar.close()
        second, check_s = None, 0.0
        if args.mode == "auto":  # what deblur's Auto will do: the same cross-check
            from .crosscheck import cross_check

            t0 = time.perf_counter()
            second = cross_check(img.pixels, d, linear_input=args.linear)
            check_s = time.perf_counter() - t0
        if args.json:
            record = {"file": str(src), **d.to_json()}
            if second is not None:
                record["timings_s"]["cross_check"] = round(check_s, 3)
            if second is not None and second.learned_pass_json() is not None:
                record["learned_pass"] = second.learned_pass_json()
            if second is not None and second.kernel_check_json() is not None:
                record["kernel_check"] = second.kernel_check_json()
            print(json.dumps(record))
        else:
            params = ", ".join(f"{k} {v:.1f}" for k, v in d.params.items())
            print(f"{src}: {d.kind} (confidence {d.confidence:.2f}; {params})")
            print(f"  {d.explanation}")
            plan = "" if second is None else second.plan()
            if plan:
                print(f"  {plan}")
            secs = sum(d.timings_s.values())
            x, y, w, h = d.region
            checked = ""
            if second is not None:
                checked = f"; cross-checked against the learned pass in {check_s:.1f} s"
            print(f"  analysed {w}x{h} px at ({x}, {y}) in {secs:.1f} s{checked}")
        if args.psf_out:
            _write_psf(args.psf_out, d.psf, overwrite=args.overwrite, protect=args.inputs)
            if not args.json and not args.quiet:
                print(f"  wrote the kernel to {args.psf_out}")
        if args.map_out:
            from .blur_map import blur_map, focus_mask

            mask = focus_mask(blur_map(img.pixels, linear_input=args.linear))
            write_image(
                args.map_out,
                np.rint(mask * 255).astype(np.uint8),
                overwrite=args.overwrite,
                protect=args.inputs,
            )
            if not args.json and not args.quiet:
                print(f"  wrote the focus map to {args.map_out}")
    return 0


def _write_psf(path: str, psf: np.ndarray, *, overwrite: bool, protect: Sequence[str]) -> None:
    """Kernel as .npy (exact) or as a 16-bit gray image scaled so its peak is white."""
    from .io import write_image

    if path.lower().endswith(".npy"):
        if os.path.exists(path) and not overwrite:
            msg = f"{path} exists; pass --overwrite to replace it"
            raise FileExistsError(msg)
        np.save(path, psf.astype(np.float32))
        return
    scaled = np.rint(psf / max(float(psf.max()), 1e-12) * 65535).astype(np.uint16)
    write_image(path, scaled, overwrite=overwrite, protect=protect)


# ----------------------------------------------------------------------------- mask
def _configure_mask(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs=1, metavar="IN", help="image to build the mask for")
    p.add_argument("-o", "--output", required=True, metavar="MASK.png", help="mask image to write")
    p.add_argument("--faces", action="store_true", help="frontal faces (ellipses)")
    p.add_argument("--eyes", action="store_true", help="eyes inside the faces found")
    p.add_argument("--subject", action="store_true", help="the in-focus region (blur map)")
    p.add_argument("--detail", action="store_true", help="edges and texture (not skin or sky)")
    p.add_argument("--invert", action="store_true", help="invert the combined mask")
    p.add_argument("--grow", type=float, default=0.0, metavar="PX", help="grow (or shrink, < 0)")
    p.add_argument("--feather", type=float, default=0.0, metavar="PX", help="soften the edge")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")


def _run_mask(args: argparse.Namespace) -> int:
    from . import masks
    from .io import read_image, write_image

    chosen = [name for name in ("faces", "eyes", "subject", "detail") if getattr(args, name)]
    if not chosen:
        msg = "choose at least one mask source: --faces, --eyes, --subject or --detail"
        raise ValueError(msg)
    pixels = read_image(args.inputs[0]).pixels
    sources = {
        "faces": lambda: masks.face_mask(pixels).mask,
        "eyes": lambda: masks.eye_mask(pixels).mask,
        "subject": lambda: masks.subject_mask(pixels),
        "detail": lambda: masks.detail_mask(pixels),
    }
    combined = None
    for name in chosen:
        m = sources[name]()
        combined = m if combined is None else masks.union(combined, m)
    if args.grow:
        combined = masks.grow(combined, args.grow)
    if args.feather:
        combined = masks.feather(combined, args.feather)
    if args.invert:
        combined = masks.invert(combined)
    write_image(
        args.output,
        np.rint(combined * 255).astype(np.uint8),
        overwrite=args.overwrite,
        protect=args.inputs,
    )
    if not args.quiet:
        cover = float(combined.mean()) * 100
        print(f"wrote {args.output} ({' + '.join(chosen)}; {cover:.1f} % of the image selected)")
    return 0


# ----------------------------------------------------------------------------- demo
def _configure_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        default="clearshot-demo",
        metavar="DIR",
        help="folder for the results (default ./clearshot-demo)",
    )
    p.add_argument("-q", "--quiet", action="store_true")


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    bar = ProgressBar("demo", quiet=args.quiet)
    try:
        report = run_demo(Path(args.output), progress=bar)
    finally:
        bar.close()
    print(report)
    return 0


_COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "deblur": (
        "remove blur: analysed automatically, or a given motion, defocus, Gaussian or PSF",
        _configure_deblur,
        _run_deblur,
    ),
    "sharpen": ("unsharp mask with Photoshop semantics", _configure_sharpen, _run_sharpen),
    "recipes": (
        "list the built-in recipes (presets) for deblur --recipe, or print one as TOML",
        _configure_recipes,
        _run_recipes,
    ),
    "models": ("list the learned models shipped for --method ai", _configure_models, _run_models),
    "mask": (
        "build a mask (faces, eyes, in-focus subject, detail) for inspection or later use",
        _configure_mask,
        _run_mask,
    ),
    "analyze": (
        "find out what blurred a photo (motion, shake, focus)",
        _configure_analyze,
        _run_analyze,
    ),
    "demo": (
        "deblur the embedded sample and write a before/after picture",
        _configure_demo,
        _run_demo,
    ),
}


# Hosts living outside core (the PSD bridge, the GIMP installer) add subcommands by defining a
# ``COMMANDS`` dict of the same shape in one of these modules; psd-tools etc. are imported only
# when such a command runs.
_EXTENSION_MODULES = ("psd_bridge.cli", "install.cli")


def _all_commands() -> dict[str, tuple[str, Callable, Callable]]:
    import importlib

    commands = dict(_COMMANDS)
    for name in _EXTENSION_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # that host is not part of this installation
            raise
        commands.update(getattr(module, "COMMANDS", {}))
    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clearshot", description="Deblurring and sharpening for photographers."
    )
    parser.add_argument("--version", action="version", version=f"clearshot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, configure, run) in _all_commands().items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clearshot`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except OperationCancelled as exc:
        print(f"clearshot: cancelled: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(
            "\nclearshot: cancelled (Ctrl-C); no output was written for the current file",
            file=sys.stderr,
        )
        return 130
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as exc:
        print(f"clearshot: error: {exc}", file=sys.stderr)
        return 2
    except (ClearshotError, MissingDependencyError, OSError) as exc:
        print(f"clearshot: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""``clearshot psd``: deblur or sharpen named layers of PSD/PSB files (a host over the API).

Registered through ``COMMANDS`` (read by :mod:`core.cli`); psd-tools is imported only when the
command runs, so ``clearshot --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["COMMANDS"]


def _configure(p: argparse.ArgumentParser) -> None:
    from core.cli import _pair, _strength

    p.add_argument("inputs", nargs="+", metavar="IN", help="PSD or PSB file(s)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file, or a folder for several inputs "
                   "(default: IN-clearshot.psd beside IN)")
    sel = p.add_argument_group("layers")
    sel.add_argument("--layer", action="append", metavar="PATH",
                     help="layer path 'Group/Sub/Layer', a name, or a glob ('Group/*'); "
                     "repeatable. Default: every pixel layer")
    sel.add_argument("--list", action="store_true", help="list the layers and exit")
    ops = p.add_argument_group("operation")
    ops.add_argument("--mode", choices=("sharpen", "deblur", "ai"), default="sharpen",
                     help="engine pass: sharpen (default), deblur (a given blur model) or ai "
                     "(the learned blind deblur; see 'clearshot models')")
    ops.add_argument("--model", metavar="NAME|FILE.onnx",
                     help="with --mode ai: a shipped model name or your own ONNX file")
    ops.add_argument("--recipe", metavar="NAME|FILE",
                     help="a recipe (preset name or .toml file; see 'clearshot recipes'): its "
                     "layers go above the target with their masks (--replace-pixels: the "
                     "flattened result); --mask then supplies its 'selection' mask")
    ops.add_argument("--amount", type=float, default=120.0, help="USM percent, default 120")
    ops.add_argument("--radius", type=float, default=1.5, help="USM sigma in px, default 1.5")
    ops.add_argument("--threshold", type=float, default=5.0, help="USM 0-255 levels, default 5")
    ops.add_argument("--halo-limit", type=float, default=None, metavar="F",
                     help="clamp overshoot to F x the local range (e.g. 0.2)")
    ops.add_argument("--luminance-only", action="store_true", help="sharpen luminance only")
    g = ops.add_mutually_exclusive_group()
    g.add_argument("--psf", metavar="FILE", help="deblur kernel as .npy or grayscale PNG/TIFF")
    g.add_argument("--motion", type=_pair, metavar="LEN,ANGLE", help="motion length px, deg")
    g.add_argument("--defocus", type=float, metavar="R", help="defocus disk radius px")
    g.add_argument("--gaussian", type=float, metavar="S", help="Gaussian blur sigma px")
    ops.add_argument("--method", choices=("sparse", "wiener", "rl"), default="sparse")
    ops.add_argument("--strength", type=_strength, default=50.0, help="0-100, default 50")
    ops.add_argument("--channels", choices=("rgb", "luminance"), default="rgb")
    out = p.add_argument_group("output")
    out.add_argument("--mask", metavar="SRC",
                     help="own (the layer's mask), layer:PATH (another layer's mask), "
                     "channel:NAME (an alpha channel), image:FILE (grayscale, canvas size), "
                     "black, or found on the target layer's pixels: faces, eyes, subject "
                     "(in focus) or detail (edges). New layers get it as their "
                     "layer mask (default black); --replace-pixels blends through it; with "
                     "--recipe it is the recipe's 'selection'")
    m = out.add_mutually_exclusive_group()
    m.add_argument("--as-new-layers", dest="replace", action="store_false", default=False,
                   help="add the result as a new masked layer above the target (default)")
    m.add_argument("--replace-pixels", dest="replace", action="store_true", default=False,
                   help="replace the target's pixels, every other property kept")
    out.add_argument("--overwrite", action="store_true",
                     help="allow replacing an existing output, also the input (kept as .bak)")
    out.add_argument("--dry-run", action="store_true",
                     help="report what would change; write nothing")
    out.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress or messages")


def _operation(args):
    from core.cli import _psf_from_args

    from .api import deblur_operation, sharpen_operation

    if args.recipe:
        from core.recipes import resolve_recipe

        from .api import recipe_operation

        if args.mode != "sharpen" or _psf_from_args(args) is not None:
            msg = ("--recipe sets the operations itself; it cannot be combined with --mode "
                   "deblur/ai or a blur model")
            raise ValueError(msg)
        recipe = resolve_recipe(args.recipe)
        return recipe_operation(recipe) if args.replace else recipe
    if args.model is not None and args.mode != "ai":
        msg = "--model selects a learned model and needs --mode ai"
        raise ValueError(msg)
    if args.mode == "ai":
        if _psf_from_args(args) is not None:
            msg = "--mode ai is blind: drop --motion/--defocus/--gaussian/--psf"
            raise ValueError(msg)
        from .api import ai_operation

        return ai_operation(strength=args.strength, model=args.model)
    if args.mode == "deblur":
        psf = _psf_from_args(args)
        if psf is None:
            msg = "--mode deblur needs a blur model: --motion LEN,ANGLE, --defocus R, " \
                  "--gaussian S or --psf FILE"
            raise ValueError(msg)
        return deblur_operation(psf, method=args.method, strength=args.strength,
                                channels=args.channels)
    return sharpen_operation(args.amount, args.radius, args.threshold,
                             halo_limit=args.halo_limit, luminance_only=args.luminance_only)


def _outputs(args) -> list[Path]:
    if args.output is None:
        return [Path(p).with_name(Path(p).stem + "-clearshot" + Path(p).suffix)
                for p in args.inputs]
    out = Path(args.output)
    if len(args.inputs) > 1 or out.is_dir() or args.output.endswith(os.sep):
        if not args.dry_run:
            out.mkdir(parents=True, exist_ok=True)
        return [out / Path(p).name for p in args.inputs]
    return [out]


def _one(args, src: str, dst: Path, op, label: str) -> dict:
    from core.cli import ProgressBar

    from .api import MaskSource, Operation, open_document

    mask = MaskSource.parse(args.mask) if args.mask else None
    with open_document(src) as doc:
        if args.list:
            return dict(file=src, layers=[L.as_dict() for L in doc.layers])
        todo, skipped = doc.select(args.layer)
        explicit = [p for p in (args.layer or []) if not any(ch in p for ch in "*?[")]
        for L in skipped:
            if L.path in explicit or L.name in explicit:
                msg = f"layer {L.path!r} cannot be processed: it is {L.problem}"
                raise ValueError(msg)
        if not todo:
            why = "; ".join(f"{L.path!r}: {L.problem}" for L in skipped) or "no pixel layers"
            msg = f"{src}: nothing to process ({why})"
            raise ValueError(msg)
        if not args.dry_run and dst.exists() and not args.overwrite:
            msg = f"{dst} exists; pass --overwrite to replace it"
            raise FileExistsError(msg)
        bar = ProgressBar(label, quiet=args.quiet or args.json)
        try:
            for i, L in enumerate(todo):
                def sub(f, stage="", i=i, name=L.name):
                    return bar((i + f) / (len(todo) + 1), f"{name}: {stage}")
                if isinstance(op, Operation):
                    doc.apply_to_layer(L, op, mode="replace" if args.replace else "new-layer",
                                       mask=mask, progress=sub)
                else:  # a recipe: its layer stack as new layers
                    doc.apply_recipe(L, op, mask=mask, progress=sub)
            if args.dry_run:
                report = doc.plan()
                report["dry_run"] = True
            else:
                report = doc.save(dst, overwrite=args.overwrite,
                                  progress=lambda f, s="": bar((len(todo) + f) / (len(todo) + 1),
                                                               s))
        finally:
            bar.close()
        report["skipped"] = [dict(layer=L.path, reason=L.problem) for L in skipped]
        return report


def _print_report(r: dict) -> None:
    if "layers" in r:
        print(r["file"])
        for L in r["layers"]:
            state = "ok" if L["processable"] else f"skip: {L['problem']}"
            print(f"  {L['path']}  [{L['kind']}]  {state}")
        return
    verb = "would write" if r.get("dry_run") else "wrote"
    print(f"{r['file']}: {verb} {r.get('output', '')}".rstrip())
    for c in r["changes"]:
        if c["new_layer"]:
            target = f"new layer {c['new_layer']!r}"
        else:
            target = "pixels replaced" if c["changed_channels"] else "no pixel changed"
        print(f"  {c['layer']}: {c['operation']} -> {target} (mask {c['mask']})")
    for s in r["skipped"]:
        print(f"  skipped {s['layer']}: {s['reason']}")
    comp = r["composite"]
    if comp["action"] == "update":
        above = comp.get("through_layers_above")
        how = comp["method"] + (f" through {len(above)} layer(s) above" if above else "")
        print(f"  composite: {how} of {comp['region']} "
              f"({comp['fraction'] * 100:.1f} % of the canvas), thumbnail {comp['thumbnail']}")
        if comp.get("why_render"):
            print(f"    (not exact: {comp['why_render']})")
    else:
        print(f"  composite: kept ({comp['reason']})")
    if r.get("provenance"):
        print(f"  recipe provenance: {r['provenance']}")
    if r.get("backup"):
        print(f"  backup of the input: {r['backup']}")


def _run(args: argparse.Namespace) -> int:
    op = None if args.list else _operation(args)
    outputs = _outputs(args)
    reports, failed = [], 0
    t0 = time.perf_counter()
    for k, (src, dst) in enumerate(zip(args.inputs, outputs, strict=True)):
        label = f"[{k + 1}/{len(args.inputs)}] {Path(src).name}"
        try:
            r = _one(args, src, dst, op, label)
        except (ValueError, OSError) as exc:
            if len(args.inputs) == 1:
                raise
            failed += 1
            r = dict(file=src, error=str(exc))
            print(f"clearshot: error: {exc}", file=sys.stderr)
        reports.append(r)
        if not args.json and not args.quiet and "error" not in r:
            _print_report(r)
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2, default=str))
    elif len(args.inputs) > 1 and not args.quiet:
        print(f"{len(args.inputs) - failed} of {len(args.inputs)} files done in "
              f"{time.perf_counter() - t0:.1f} s")
    return 1 if failed else 0


COMMANDS = {
    "psd": ("deblur or sharpen named layers of PSD/PSB files, written back losslessly",
            _configure, _run),
}

"""Runs inside GIMP 3 (gimp-console --batch-interpreter python-fu-eval): every scenario of the
integration test in one GIMP start. Reads job.json, writes results.json and .npy pixel dumps
for the host to check. Not collected by pytest (no test_ prefix); it needs GIMP's ``gi``.
"""

import contextlib
import glob
import json
import os
import signal
import threading
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
import numpy as np  # noqa: E402
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

WORK = os.environ.get("CLEARSHOT_IT_WORK", "/opt/clearshot-it")
JOB = json.load(open(os.path.join(WORK, "job.json")))
OUT = os.path.join(WORK, "out")
IN = os.path.join(WORK, "in")
PDB = Gimp.get_pdb()
RESULTS = {"scenarios": {}}
T0 = time.time()


def load(name):
    path = Gio.File.new_for_path(os.path.join(IN, name))
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, path)


def dump(drawable, fmt, dtype, name):
    """Whole drawable in ``fmt`` as .npy (drawable-local)."""
    w, h = drawable.get_width(), drawable.get_height()
    raw = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt, Gegl.AbyssPolicy.NONE)
    a = np.frombuffer(raw, dtype).reshape(h, w, -1)
    np.save(os.path.join(OUT, name + ".npy"), a)


def dump_selection(image, name):
    w, h = image.get_width(), image.get_height()
    sel = image.get_selection()
    rect = Gegl.Rectangle.new(0, 0, w, h)
    raw = sel.get_buffer().get(rect, 1.0, "Y float", Gegl.AbyssPolicy.NONE)
    np.save(os.path.join(OUT, name + ".npy"), np.frombuffer(raw, np.float32).reshape(h, w))


def call(proc_name, image, drawables, run_mode=Gimp.RunMode.NONINTERACTIVE, **args):
    info, _ = call_values(proc_name, image, drawables, run_mode, **args)
    return info


def call_values(proc_name, image, drawables, run_mode=Gimp.RunMode.NONINTERACTIVE, **args):
    """Like call(), and the procedure's return values too."""
    proc = PDB.lookup_procedure(proc_name)
    if proc is None:
        msg = f"{proc_name} is not registered"
        raise RuntimeError(msg)
    cfg = proc.create_config()
    cfg.set_property("run-mode", run_mode)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", drawables)
    for k, v in args.items():
        cfg.set_property(k.replace("_", "-"), v)
    t = time.time()
    res = proc.run(cfg)
    status = res.index(0)
    message = None
    if status != Gimp.PDBStatusType.SUCCESS and res.length() > 1:
        err = res.index(1)
        message = err if isinstance(err, str) else str(err)
    info = {"status": status.value_nick, "message": message, "seconds": round(time.time() - t, 2)}
    return info, res


def _log_tail(n):
    path = os.path.join(JOB["gimp_dir"], "clearshot.log")
    return open(path).read().splitlines()[-n:] if os.path.exists(path) else []


def scenario(name):
    def wrap(fn):
        t = time.time()
        try:
            info = fn() or {}
            info["ok"] = True
        except Exception:
            info = {"ok": False, "traceback": traceback.format_exc()}
        info["total_seconds"] = round(time.time() - t, 2)
        RESULTS["scenarios"][name] = info
        return fn
    return wrap


S = JOB["scenarios"]


def _select(image, spec):
    if spec is None:
        Gimp.Selection.none(image)
        return
    kind, x, y, w, h, feather = spec
    if feather:
        Gimp.context_set_feather(True)
        Gimp.context_set_feather_radius(feather, feather)
    if kind == "rect":
        image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
    else:
        image.select_ellipse(Gimp.ChannelOps.REPLACE, x, y, w, h)
    Gimp.context_set_feather(False)


def simple(name):
    """Scenario from job.json: load, maybe convert precision, select, dump, run, dump."""
    spec = S[name]
    image = load(spec["file"])
    if spec.get("precision"):
        image.convert_precision(getattr(Gimp.Precision, spec["precision"]))
    layer = image.get_layers()[0]
    _select(image, spec.get("select"))
    dump_selection(image, name + "-mask")
    fmt, dtype = spec["dump"]
    dump(layer, fmt, dtype, name + "-before")
    info = call(spec["proc"], image, [layer], **spec["args"])
    dump(layer, fmt, dtype, name + "-after")
    info["precision"] = image.get_precision().value_name
    info["log"] = _log_tail(4)
    image.delete()
    return info


for _name in [n for n, s in S.items() if s.get("kind") == "simple"]:
    scenario(_name)(lambda n=_name: simple(n))


@scenario("registration")
def registration():
    info = {}
    for name in JOB["procedures"]:
        proc = PDB.lookup_procedure(name)
        info[name] = None if proc is None else {
            "arguments": [a.name for a in proc.get_arguments()],
            "menu_paths": list(proc.get_menu_paths()),
            "menu_label": proc.get_menu_label(),
        }
    for name in JOB["absent"]:
        info[name] = PDB.lookup_procedure(name)
    return info


@scenario("analyze")
def analyze():
    """Analyze blur: a new image with PSF and Focus map, the diagnosis JSON, input unchanged."""
    spec = JOB["analyze"]
    image = load(spec["file"])
    layer = image.get_layers()[0]
    x, y, w, h = spec["select"]
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
    images_before = len(Gimp.get_images())
    dump(layer, "R'G'B' u8", np.uint8, "analyze-before")
    info, res = call_values("python-fu-clearshot-analyze", image, [layer])
    dump(layer, "R'G'B' u8", np.uint8, "analyze-after")
    info["input_layers"] = [lay.get_name() for lay in image.get_layers()]
    info["images_added"] = len(Gimp.get_images()) - images_before
    if info["status"] == "success":
        new = res.index(1)
        info["diagnosis"] = res.index(2)
        info["new_image"] = [new.get_width(), new.get_height(), new.get_base_type().value_nick]
        info["layers"] = []
        for lay in new.get_layers():
            info["layers"].append([lay.get_name(), lay.get_width(), lay.get_height()])
            dump(lay, "Y' u8", np.uint8, "analyze-" + lay.get_name().replace(" ", "_"))
        new.delete()
    # interactive: a display for the new image (gimp-console has none to give: still success)
    info2, res2 = call_values("python-fu-clearshot-analyze", image, [layer],
                              run_mode=Gimp.RunMode.INTERACTIVE)
    info["interactive"] = info2
    if info2["status"] == "success":
        res2.index(1).delete()
    info["log"] = _log_tail(2)
    image.delete()
    return info


@scenario("hybrid")
def hybrid():
    """Hybrid sharpen: a layer group above the layer, its layers and masks; the layer itself
    and everything outside the selection unchanged (the image's composite is dumped)."""
    spec = JOB["hybrid"]
    image = load(spec["file"])
    layer = image.get_layers()[0]
    _select(image, spec["select"])
    dump_selection(image, "hybrid-mask")
    dump(layer, "R'G'B' u8", np.uint8, "hybrid-before")
    info = call("python-fu-clearshot-hybrid", image, [layer], **spec["args"])
    dump(layer, "R'G'B' u8", np.uint8, "hybrid-after")
    info["top_level"] = [lay.get_name() for lay in image.get_layers()]
    group = image.get_layers()[0]
    info["is_group"] = group.is_group()
    info["children"] = []
    if group.is_group():
        for i, child in enumerate(reversed(group.get_children())):  # bottom to top
            mask = child.get_mask()
            info["children"].append({"name": child.get_name(), "opacity": child.get_opacity(),
                                     "has_mask": mask is not None,
                                     "offsets": list(child.get_offsets())[1:]})
            dump(child, "R'G'B' u8", np.uint8, f"hybrid-layer{i}")
            if mask is not None:
                dump(mask, "Y float", np.float32, f"hybrid-layer{i}-mask")
        parasite = group.get_parasite("clearshot-provenance")
        info["provenance"] = None if parasite is None else bytes(parasite.get_data()).decode()
    flat = image.duplicate()
    merged = flat.flatten()
    dump(merged, "R'G'B' u8", np.uint8, "hybrid-composite")
    flat.delete()
    image.delete()
    return info


@scenario("rgba_offset")
def rgba_offset():
    spec = JOB["rgba_offset"]
    image = load(spec["background"])
    layer = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image,
                                 Gio.File.new_for_path(os.path.join(IN, spec["layer"])))
    image.insert_layer(layer, None, 0)
    layer.set_offsets(*spec["offset"])
    x, y, w, h = spec["select"]
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
    dump_selection(image, "rgba_offset-mask")
    bg = image.get_layers()[1]
    dump(bg, "R'G'B' u8", np.uint8, "rgba_offset-bg-before")
    dump(layer, "R'G'B'A u8", np.uint8, "rgba_offset-before")
    info = call("python-fu-clearshot-deblur", image, [layer], **spec["args"])
    dump(layer, "R'G'B'A u8", np.uint8, "rgba_offset-after")
    dump(bg, "R'G'B' u8", np.uint8, "rgba_offset-bg-after")
    info["offsets"] = list(layer.get_offsets())[1:]
    info["has_alpha"] = layer.has_alpha()
    image.delete()
    return info


@scenario("two_layers")
def two_layers():
    """Two selected layers (the second a copy at an offset): both filtered in one call."""
    spec = JOB["two_layers"]
    image = load(spec["file"])
    first = image.get_layers()[0]
    second = first.copy()
    image.insert_layer(second, None, 0)
    second.set_offsets(*spec["offset"])
    x, y, w, h = spec["select"]
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
    dump_selection(image, "two_layers-mask")
    for i, layer in enumerate((first, second)):
        dump(layer, "R'G'B' u8", np.uint8, f"two_layers-{i}-before")
    info = call("python-fu-clearshot-deblur", image, [first, second], **spec["args"])
    for i, layer in enumerate((first, second)):
        dump(layer, "R'G'B' u8", np.uint8, f"two_layers-{i}-after")
    image.delete()
    return info


@contextlib.contextmanager
def _engine_json(conf_path):
    """Yield ``use(**changes)``, which writes the installed engine.json with ``changes``
    applied; the file as installed is put back afterwards, whatever happened."""
    with open(conf_path) as f:
        original = f.read()

    def use(**changes):
        conf = json.loads(original)
        conf.update(changes)
        with open(conf_path, "w") as f:
            json.dump(conf, f)

    try:
        yield use
    finally:
        with open(conf_path, "w") as f:
            f.write(original)


def _mode(mode, python):
    """engine.json changes that run the engine ``mode`` (the worker with ``python``)."""
    return {"mode": mode, "python": python} if mode == "worker" else {"mode": mode}


@scenario("worker")
def worker():
    spec = JOB["worker"]
    results = {}
    # a private runtime GIMP's Python cannot import from (as on Windows/macOS): a wrapper
    # interpreter that alone sees the wheel folder
    wrapper = os.path.join(WORK, "private-python")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexport PYTHONPATH=\"$PYTHONPATH:{spec['site']}\"\n"
                f"exec {spec['python']} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    for mode in ("in-process", "worker", "fallback"):
        with _engine_json(spec["engine_json"]) as use:
            if mode == "fallback":  # GIMP's Python has no OpenCV: auto must pick the worker
                use(mode="auto", python=wrapper, site=[])
            else:
                use(**_mode(mode, spec["python"]))
            image = load(spec["file"])
            layer = image.get_layers()[0]
            x, y, w, h = spec["select"]
            image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
            a, res = call_values("python-fu-clearshot-analyze", image, [layer])  # blurred still
            if a["status"] == "success":
                a["type"] = json.loads(res.index(2))["type"]
                res.index(1).delete()
            results[f"analyze-{mode}"] = a
            results[mode] = call("python-fu-clearshot-deblur", image, [layer], **spec["args"])
            dump(layer, "R'G'B' u8", np.uint8, f"worker-{mode}")
            image.delete()
    results["fallback-log"] = _log_tail(3)
    return results


def _procs(word, parent=None):
    """pids whose command line holds ``word`` (children of ``parent`` when given)."""
    found = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(d + "/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if word in cmd and (parent is None or ppid == parent):
            found.append(int(d.rsplit("/", 1)[1]))
    return found


def _wait_gone(pids, seconds):
    t = time.time()
    while time.time() - t < seconds:
        left = [p for p in pids if os.path.exists(f"/proc/{p}")
                and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
        if not left:
            return []
        time.sleep(0.2)
    return left


@scenario("cancel")
def cancel():
    """The test hook makes the progress answer 'cancelled' after N reports (see
    gimp_plugin/progress.py): CANCEL, pixels as they were, no worker left, no temp folder."""
    spec = JOB["cancel"]
    out = {}
    with _engine_json(spec["engine_json"]) as use:
        for mode in ("in-process", "worker"):
            use(**_mode(mode, spec["python"]))
            image = load(spec["file"])
            layer = image.get_layers()[0]
            x, y, w, h = spec["select"]
            image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
            dump(layer, "R'G'B' u8", np.uint8, f"cancel-{mode}-before")
            temps = set(glob.glob("/tmp/clearshot-*"))
            with open(spec["hook_file"], "w") as f:
                f.write(str(spec["after"]))
            try:
                info = call("python-fu-clearshot-deblur", image, [layer], **spec["args"])
            finally:
                os.remove(spec["hook_file"])
            dump(layer, "R'G'B' u8", np.uint8, f"cancel-{mode}-after")
            info["temp_left"] = sorted(set(glob.glob("/tmp/clearshot-*")) - temps)
            info["workers_left"] = _wait_gone(_procs("gimp_plugin.worker"), 10)
            # the same image still works afterwards (nothing left half-open)
            again = call("python-fu-clearshot-deblur", image, [layer], **spec["args"])
            info["again"] = again["status"]
            out[mode] = info
            image.delete()
    return out


@scenario("killed")
def killed():
    """What GIMP does when the user cancels a plug-in's progress: it kills the plug-in
    (SIGKILL). Emulated here on a run big enough to be caught half-way: the pixels stay as they
    were, the worker ends too and its exchange folder is deleted."""
    spec = JOB["killed"]
    gimp_pid = os.getppid()
    out = {}
    with _engine_json(spec["engine_json"]) as use:
        for mode in ("in-process", "worker"):
            use(**_mode(mode, spec["python"]))
            image = load(spec["file"])
            image.scale(*spec["size"])
            layer = image.get_layers()[0]
            Gimp.Selection.none(image)
            dump(layer, "R'G'B' u8", np.uint8, f"killed-{mode}-before")
            temps = set(glob.glob("/tmp/clearshot-*"))
            state = {"killed": False, "workers": []}

            def killer(state=state, mode=mode):
                t = time.time()
                while time.time() - t < 60:
                    plugin = _procs("clearshot/clearshot.py", gimp_pid)
                    workers = _procs("gimp_plugin.worker", plugin[0]) if plugin else []
                    if plugin and (mode != "worker" or workers):
                        time.sleep(spec["delay_s"])
                        state["workers"] = _procs("gimp_plugin.worker", plugin[0])
                        os.kill(plugin[0], signal.SIGKILL)
                        state["killed"] = True
                        return
                    time.sleep(0.05)

            thread = threading.Thread(target=killer, daemon=True)
            thread.start()
            info = call("python-fu-clearshot-deblur", image, [layer], **spec["args"])
            thread.join(70)
            dump(layer, "R'G'B' u8", np.uint8, f"killed-{mode}-after")
            info["killed"] = state["killed"]
            info["workers_at_kill"] = state["workers"]
            info["workers_left"] = _wait_gone(state["workers"], 30)
            time.sleep(0.5)
            info["temp_left"] = sorted(set(glob.glob("/tmp/clearshot-*")) - temps)
            out[mode] = info
            image.delete()
    return out


@scenario("errors")
def errors():
    out = {}
    for name, spec in JOB["errors"].items():
        image = load(spec["file"])
        layer = image.get_layers()[0]
        image.select_rectangle(Gimp.ChannelOps.REPLACE, 10, 10, 60, 40)
        dump(layer, "R'G'B' u8", np.uint8, f"error-{name}-before")
        target = [layer]
        if spec.get("group"):
            group = Gimp.GroupLayer.new(image, "a group")
            image.insert_layer(group, None, 0)
            target = [group]
        out[name] = call(spec["proc"], image, target, **spec["args"])
        dump(layer, "R'G'B' u8", np.uint8, f"error-{name}-after")
        image.delete()
    return out


def _last_values(proc, args):
    """An interactive run starts from the values GIMP saved after the last interactive run
    (it ignores the config passed): write them in GIMP's own settings file first."""
    folder = os.path.join(JOB["gimp_dir"], "plug-in-settings")
    os.makedirs(folder, exist_ok=True)
    lines = ["# settings", ""]
    for key, value in args.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, str):
            value = json.dumps(value)
        lines.append(f"({key} {value})")
    lines += ["", "# end of settings", ""]
    with open(os.path.join(folder, f"GimpProcedureConfigRun-{proc}.last"), "w") as f:
        f.write("\n".join(lines))


@scenario("dialogs")
def dialogs():
    if not os.environ.get("DISPLAY"):
        return {"skipped": "no DISPLAY"}
    out = {}
    for name, spec in JOB["dialogs"].items():
        image = load(spec["file"])
        layer = image.get_layers()[0]
        layer.set_name(os.path.splitext(spec["file"])[0])  # names the screenshots
        _last_values(spec["proc"], spec["args"])
        _select(image, None if spec["select"] is None else ["rect", *spec["select"], 0])
        out[name] = call(spec["proc"], image, [layer], run_mode=Gimp.RunMode.INTERACTIVE,
                         **spec["args"])
        image.delete()
    return out


RESULTS["batch_seconds"] = round(time.time() - T0, 2)
with open(os.path.join(OUT, "results.json"), "w") as f:
    json.dump(RESULTS, f, indent=1, default=str)

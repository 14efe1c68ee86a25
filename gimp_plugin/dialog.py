"""The procedure dialog (GimpUi.ProcedureDialog) with a before/after 100 % preview.

GIMP gives Python plug-ins no preview widget, so the dialog shows two crops of up to
``PREVIEW_SIDE`` px at 100 % side by side: the drawable as it is and the engine's result on the
same crop (computed with the real context around it, exactly as the filter will; in auto/shake
the analysis runs on the preview crop, and the status line says what it found). The user picks
where the crop looks: the centre of the selection, the most detailed region (where the blur
analysis estimates its kernel) or the largest face (``core.masks.face_mask``); the engine finds
the last two (in-process or in the worker). The preview is recomputed 400 ms after the last
change of a parameter. babl converts float results to 8-bit for the screen through a GEGL
buffer; no pixel maths here.

Test hook: ``CLEARSHOT_DIALOG_SNAPSHOT=FOLDER`` saves a screenshot of the dialog for each
preview location, ``PROC-LAYER-LOCATION.png`` (LAYER: the first selected layer's name), once
its preview is computed, then presses OK.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, GdkPixbuf, Gegl, GimpUi, GLib, GObject, Gtk  # noqa: E402

from . import PLUGIN_NAME, params  # noqa: E402
from .engine import run_locate, run_request  # noqa: E402

__all__ = ["run_dialog", "PREVIEW_SIDE", "LOCATIONS"]

PREVIEW_SIDE = 320  # px of the 100 % crop, each side
DEBOUNCE_MS = 400
FACE_SIDE_PX = 1024  # faces are searched on the selection's box read at most this large
LOCATIONS = (
    ("centre", "Centre of the selection"),
    ("detail", "Most detailed region (where the blur analysis looks)"),
    ("face", "Largest face"),
)
SNAPSHOT_ENV = "CLEARSHOT_DIALOG_SNAPSHOT"  # test hook: folder for screenshots, then auto-OK
log = logging.getLogger("clearshot.gimp")
_DISPLAY_FMT = "R'G'B'A u8"


def _pixbuf(raw: bytes, w: int, h: int) -> GdkPixbuf.Pixbuf:
    return GdkPixbuf.Pixbuf.new_from_bytes(
        GLib.Bytes.new(raw), GdkPixbuf.Colorspace.RGB, True, 8, w, h, 4 * w
    )


class _Preview:
    """Before | after at 100 % for a crop the user places (centre, detail, face)."""

    def __init__(self, spec, config, image, drawable, engine) -> None:
        self.spec, self.config, self.image = spec, config, image
        self.drawable, self.engine = drawable, engine
        self.box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        where = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
        where.pack_start(Gtk.Label(label="Preview at:"), False, False, 0)
        self.where = Gtk.ComboBoxText()
        for key, label in LOCATIONS:
            self.where.append(key, label)
        self.where.set_active_id("centre")
        where.pack_start(self.where, False, False, 0)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
        self.before, self.after = Gtk.Image(), Gtk.Image()
        for title, img in (("Before (100 %)", self.before), ("After (100 %)", self.after)):
            col = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=2)
            col.pack_start(Gtk.Label(label=title), False, False, 0)
            frame = Gtk.Frame()
            img.set_size_request(PREVIEW_SIDE, PREVIEW_SIDE)
            frame.add(img)
            col.pack_start(frame, False, False, 0)
            row.pack_start(col, False, False, 0)
        self.status = Gtk.Label(label="")
        self.status.set_line_wrap(True)
        self.status.set_max_width_chars(80)
        self.box.pack_start(where, False, False, 0)
        self.box.pack_start(row, False, False, 0)
        self.box.pack_start(self.status, False, False, 0)
        self._pending = 0
        self.bounds = self._bounds()
        self.centre = self._selection_centre()
        self.found = ""  # what the last location search said
        self._located: dict[str, tuple[tuple[float, float] | None, str]] = {}
        self.where.connect("changed", self._moved)

    def _bounds(self) -> tuple[int, int, int, int] | None:
        ok, x, y, w, h = self.drawable.mask_intersect()
        return (x, y, w, h) if ok and w > 0 and h > 0 else None

    def _selection_centre(self) -> tuple[float, float]:
        if self.bounds is None:
            return 0.0, 0.0
        x, y, w, h = self.bounds
        return x + w / 2, y + h / 2

    @property
    def idle(self) -> bool:
        """No update waiting (the screenshot hook waits for this)."""
        return self._pending == 0

    def _moved(self, *_args: Any) -> None:
        key = self.where.get_active_id() or "centre"
        if self.bounds is None or key == "centre":
            self.centre, self.found = self._selection_centre(), ""
        else:
            if key not in self._located:
                self.status.set_text("Looking for the " + dict(LOCATIONS)[key].lower() + "…")
                self._located[key] = self._locate(key)
            centre, self.found = self._located[key]
            self.centre = centre if centre is not None else self._selection_centre()
        self.schedule()

    def _locate(self, key: str) -> tuple[tuple[float, float] | None, str]:
        """Ask the engine where ``key`` is inside the selection's box; (centre or None, text)."""
        bx, by, bw, bh = self.bounds
        linear = key == "detail" and self.spec.linear
        scale = 1.0 if key == "detail" else min(1.0, FACE_SIDE_PX / max(bw, bh))
        sx, sy = int(bx * scale), int(by * scale)
        sw, sh = max(1, int(bw * scale)), max(1, int(bh * scale))
        fmt = params.babl_format(linear=linear, gray=self.drawable.is_gray(),
                                 alpha=self.drawable.has_alpha())
        try:
            raw = self.drawable.get_buffer().get(
                Gegl.Rectangle.new(sx, sy, sw, sh), scale, fmt, Gegl.AbyssPolicy.CLAMP
            )
            shape = (sh, sw, len(raw) // (4 * sw * sh))
            info = run_locate({"where": key, "linear_input": linear}, bytes(raw), shape,
                              self.engine)
        except Exception as exc:  # shown in the dialog; the filter does not need it
            log.warning("preview location %s failed: %s", key, exc)
            return None, f"could not find the {key} region ({exc}); showing the centre"
        box = info.get("box")
        if not box:
            log.info("preview at %s: %s", key, info.get("message"))
            return None, f"{info.get('message', 'nothing found')}; showing the centre"
        x, y, w, h = box
        centre = (bx + (x + w / 2) / scale, by + (y + h / 2) / scale)
        log.info("preview at %s: %s, centre (%.0f, %.0f)", key, info.get("message"), *centre)
        return centre, str(info.get("message", ""))

    def schedule(self, *_args: Any) -> None:
        if self._pending:
            GLib.source_remove(self._pending)
        self._pending = GLib.timeout_add(DEBOUNCE_MS, self._update)

    def _update(self) -> bool:
        self._pending = 0
        if self.bounds is None:
            self.status.set_text("Nothing selected on this layer: the filter would do nothing.")
            return False
        x, y, w, h = params.preview_crop(self.centre, PREVIEW_SIDE, self.bounds)
        rect = Gegl.Rectangle.new(x, y, w, h)
        before = self.drawable.get_buffer().get(rect, 1.0, _DISPLAY_FMT, Gegl.AbyssPolicy.CLAMP)
        self.before.set_from_pixbuf(_pixbuf(bytes(before), w, h))
        try:
            values = {a.name: self.config.get_property(a.name) for a in self.spec.args}
            precision = self.image.get_precision().value_name
            request = self.spec.build(values, float_data=params.is_float_precision(precision))
            margin = params.context_margin_px(request)
            dw, dh = self.drawable.get_width(), self.drawable.get_height()
            x0, y0 = max(0, x - margin), max(0, y - margin)
            x1, y1 = min(dw, x + w + margin), min(dh, y + h + margin)
            fmt = params.babl_format(
                linear=self.spec.linear and request.get("read") != "encoded",
                gray=self.drawable.is_gray(),
                alpha=self.drawable.has_alpha(),
            )
            raw = self.drawable.get_buffer().get(
                Gegl.Rectangle.new(x0, y0, x1 - x0, y1 - y0), 1.0, fmt, Gegl.AbyssPolicy.CLAMP
            )
            shape = (y1 - y0, x1 - x0, len(raw) // (4 * (x1 - x0) * (y1 - y0)))
            info: dict[str, Any] = {}
            out, _ = run_request(request, bytes(raw), shape, self.engine,
                                 crop=(y - y0, x - x0, h, w), info=info)
            buf = Gegl.Buffer.new(fmt, 0, 0, w, h)
            whole = Gegl.Rectangle.new(0, 0, w, h)
            buf.set(whole, fmt, out)
            shown = buf.get(whole, 1.0, _DISPLAY_FMT, Gegl.AbyssPolicy.CLAMP)
            self.after.set_from_pixbuf(_pixbuf(bytes(shown), w, h))
            where = f"{w}×{h} px crop at ({x}, {y}) of '{self.drawable.get_name()}'"
            if self.found:
                where += f" ({self.found})"
            found = info.get("message")  # auto/shake: what the analysis of this crop found
            self.status.set_text(f"{where}. {found}" if found else where)
        except Exception as exc:  # shown in the dialog; the filter itself reports it again
            self.after.clear()
            self.status.set_text(f"Preview failed: {exc}")
            log.warning("preview failed: %s", exc)
        return False


class _Snapshots:
    """Test hook: one screenshot per preview location once the preview is idle, then OK."""

    def __init__(self, dialog: Gtk.Dialog, preview: _Preview | None, folder: str,
                 name: str) -> None:
        self.dialog, self.preview, self.folder, self.name = dialog, preview, folder, name
        self.todo = [key for key, _ in LOCATIONS] if preview is not None else ["centre"]
        self.settled = 0

    def tick(self) -> bool:
        if self.preview is not None and not self.preview.idle:
            self.settled = 0
            return True
        self.settled += 1
        if self.settled < 2:  # one more tick for GTK to draw the new pixbufs
            return True
        key = self.todo.pop(0)
        win = self.dialog.get_window()
        pb = Gdk.pixbuf_get_from_window(win, 0, 0, win.get_width(), win.get_height())
        path = os.path.join(self.folder, f"{self.name}-{key}.png")
        pb.savev(path, "png", [], [])
        log.info("dialog snapshot %s (%dx%d)", path, win.get_width(), win.get_height())
        if not self.todo:
            self.dialog.response(Gtk.ResponseType.OK)
            return False
        self.settled = 0
        if self.preview is not None:
            self.preview.where.set_active_id(self.todo[0])
        return True


# argument -> the modes it belongs to (greyed out for the others)
_MODE_ARGS = {"length-px": ("motion",), "angle-deg": ("motion",), "radius-px": ("focus",),
              "sigma-px": ("gaussian",)}


def _link_sensitivity(dialog, config, procedure) -> None:
    """Grey out what the current mode ignores (done by hand: the dialog's own
    set_sensitive_if_in had no visible effect in GIMP 3.0.4)."""
    names = {a.get_name() for a in procedure.get_arguments()}
    rules = {arg: (lambda m=modes: config.get_property("mode") in m)
             for arg, modes in _MODE_ARGS.items() if arg in names and "mode" in names}
    if "halo-limit" in names:
        rules["halo-limit"] = lambda: bool(config.get_property("limit-halos"))
    widgets = {arg: dialog.get_widget(arg, GObject.TYPE_NONE) for arg in rules}

    def update(*_args: Any) -> None:
        for arg, rule in rules.items():
            if widgets[arg] is not None:
                widgets[arg].set_sensitive(rule())

    for watched in ("mode", "limit-halos"):
        if watched in names:
            config.connect(f"notify::{watched}", update)
    update()


def run_dialog(procedure, config, spec, image, drawables, engine) -> bool:
    """Show the dialog; True when the user pressed OK."""
    GimpUi.init(PLUGIN_NAME)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, f"Clearshot – {spec.title}")
    dialog.fill(None)
    _link_sensitivity(dialog, config, procedure)
    preview = None
    if drawables:
        preview = _Preview(spec, config, image, drawables[0], engine)
        dialog.get_content_area().pack_start(preview.box, False, False, 6)
        config.connect("notify", preview.schedule)
        preview.schedule()
    dialog.show_all()
    folder = os.environ.get(SNAPSHOT_ENV)
    if folder:
        layer = drawables[0].get_name() if drawables else "none"
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in layer)
        shots = _Snapshots(dialog, preview, folder, f"{procedure.get_name()}-{stem}")
        GLib.timeout_add(1000, shots.tick)
    ok = dialog.run()
    dialog.destroy()
    return bool(ok)

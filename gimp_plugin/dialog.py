"""The procedure dialog (GimpUi.ProcedureDialog) with a before/after 100 % preview.

GIMP gives Python plug-ins no preview widget, so the dialog shows two crops at 100 % side by
side: the drawable as it is and the engine's result on the same crop (computed with the real
context around it, exactly as the filter will; in auto/shake the analysis runs on the preview
crop, and the status line says what it found). babl converts float results to 8-bit for the
screen through a GEGL buffer; no pixel maths here.
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
from .engine import run_request  # noqa: E402

__all__ = ["run_dialog", "PREVIEW_W", "PREVIEW_H"]

PREVIEW_W, PREVIEW_H = 200, 160
SNAPSHOT_ENV = "CLEARSHOT_DIALOG_SNAPSHOT"  # test hook: folder for a screenshot, then auto-OK
log = logging.getLogger("clearshot.gimp")
_DISPLAY_FMT = "R'G'B'A u8"


def _pixbuf(raw: bytes, w: int, h: int) -> GdkPixbuf.Pixbuf:
    return GdkPixbuf.Pixbuf.new_from_bytes(
        GLib.Bytes.new(raw), GdkPixbuf.Colorspace.RGB, True, 8, w, h, 4 * w
    )


class _Preview:
    """Before | after at 100 % for a crop in the middle of the selection."""

    def __init__(self, spec, config, image, drawable, engine) -> None:
        self.spec, self.config, self.image = spec, config, image
        self.drawable, self.engine = drawable, engine
        self.box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
        self.before, self.after = Gtk.Image(), Gtk.Image()
        for title, img in (("Before (100 %)", self.before), ("After (100 %)", self.after)):
            col = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=2)
            col.pack_start(Gtk.Label(label=title), False, False, 0)
            frame = Gtk.Frame()
            frame.add(img)
            col.pack_start(frame, False, False, 0)
            row.pack_start(col, False, False, 0)
        self.status = Gtk.Label(label="")
        self.status.set_line_wrap(True)
        self.status.set_max_width_chars(50)
        self.box.pack_start(row, False, False, 0)
        self.box.pack_start(self.status, False, False, 0)
        self._pending = 0
        self.crop = self._crop()

    def _crop(self):
        ok, x, y, w, h = self.drawable.mask_intersect()
        if not ok:
            return None
        cw, ch = min(w, PREVIEW_W), min(h, PREVIEW_H)
        return (x + (w - cw) // 2, y + (h - ch) // 2, cw, ch)

    def schedule(self, *_args: Any) -> None:
        if self._pending:
            GLib.source_remove(self._pending)
        self._pending = GLib.timeout_add(400, self._update)

    def _update(self) -> bool:
        self._pending = 0
        if self.crop is None:
            self.status.set_text("Nothing selected on this layer: the filter would do nothing.")
            return False
        x, y, w, h = self.crop
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
            found = info.get("message")  # auto/shake: what the analysis of this crop found
            self.status.set_text(f"{where}. {found}" if found else where)
        except Exception as exc:  # shown in the dialog; the filter itself reports it again
            self.after.clear()
            self.status.set_text(f"Preview failed: {exc}")
            log.warning("preview failed: %s", exc)
        return False


def _snapshot(dialog: Gtk.Dialog, folder: str, name: str) -> bool:
    win = dialog.get_window()
    pb = Gdk.pixbuf_get_from_window(win, 0, 0, win.get_width(), win.get_height())
    path = os.path.join(folder, f"{name}.png")
    pb.savev(path, "png", [], [])
    log.info("dialog snapshot %s (%dx%d)", path, win.get_width(), win.get_height())
    dialog.response(Gtk.ResponseType.OK)
    return False


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
        GLib.timeout_add(4000, _snapshot, dialog, folder, procedure.get_name())
    ok = dialog.run()
    dialog.destroy()
    return bool(ok)

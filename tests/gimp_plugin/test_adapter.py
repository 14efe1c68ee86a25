"""The plug-in's GIMP-free parts with fakes: argument mapping, errors, engine, worker, imports."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from core.psf import defocus_psf, gaussian_psf, motion_psf
from gimp_plugin import engine, errors, npyio, params

REPO = Path(__file__).resolve().parents[2]


# --- parameters -----------------------------------------------------------------------------


def test_pdb_names_are_the_interface():
    assert params.DEBLUR_PROC == "python-fu-clearshot-deblur"
    assert params.UNSHARP_PROC == "python-fu-clearshot-unsharp-mask"
    assert params.ANALYZE_PROC == "python-fu-clearshot-analyze"
    deblur = {a.name for a in params.DEBLUR_ARGS}
    assert {"mode", "strength", "psf-file", "length-px", "angle-deg", "radius-px"} <= deblur
    modes = [c[0] for c in params.DEBLUR_ARGS[0].choices]
    assert {"auto", "motion", "shake", "focus", "old-photo", "ai"} <= set(modes)
    usm = {a.name for a in params.UNSHARP_ARGS}
    assert {"amount", "radius", "threshold", "halo-limit", "luminance-only"} <= usm


def test_argument_names_are_kebab_case_and_labels_show_units():
    for arg in (*params.DEBLUR_ARGS, *params.UNSHARP_ARGS):
        assert "_" not in arg.name
        if arg.kind == "double":
            assert "(" in arg.label, f"{arg.name} label has no unit: {arg.label}"
            assert arg.low <= arg.default <= arg.high


def test_motion_request_maps_units():
    r = params.deblur_request({"mode": "motion", "length-px": 12.0, "angle-deg": 45.0,
                               "strength": 70.0})
    assert r["psf"] == {"kind": "motion", "length_px": 12.0, "angle_deg": 45.0}
    assert r["strength"] == 70.0
    assert r["linear_input"] is True
    assert r["clip"] is True
    assert r["method"] == "sparse"
    assert r["channels"] == "rgb"


def test_focus_and_gaussian_requests():
    assert params.deblur_request({"mode": "focus", "radius-px": 4.0})["psf"] == {
        "kind": "defocus", "radius_px": 4.0}
    r = params.deblur_request({"mode": "gaussian", "sigma-px": 2.0}, float_data=True)
    assert r["psf"] == {"kind": "gaussian", "sigma_px": 2.0}
    assert r["clip"] == "auto"


@pytest.mark.parametrize("mode", ["auto", "shake"])
def test_analysis_modes_ask_the_engine_to_analyse(mode):
    r = params.deblur_request({"mode": mode, "strength": 60.0})
    assert r["psf"] == {"kind": "analyse", "mode": mode}
    assert r["linear_input"] is True
    assert params.context_margin_px(r) >= 32 + 3 * 35  # room for core.diagnose's largest kernel


def test_old_photo_runs_the_old_photo_recipe_flattened():
    r = params.deblur_request({"mode": "old-photo"})
    assert r["op"] == "recipe"
    assert r["recipe"] == "old-photo"
    assert r["read"] == "encoded"
    assert r["linear_input"] is False
    assert params.context_margin_px(r) >= 32 + 3 * 35
    from core.layer_stack import run_recipe
    from core.recipes import load_preset
    from gimp_plugin import ops

    img = _srgb_scene()
    out = ops.apply(r, img)
    want = run_recipe(img, load_preset("old-photo")).flatten()
    np.testing.assert_array_equal(out, want)
    # a psf-file still replaces the blur model of every mode
    assert params.deblur_request({"mode": "old-photo", "psf-file": "k.npy"})["op"] == "deblur"


def _srgb_scene() -> np.ndarray:
    from conftest import make_scene

    return make_scene(72, 96, seed=11)


def test_hybrid_arguments_and_request():
    assert params.HYBRID_PROC == "python-fu-clearshot-hybrid"
    names = {a.name for a in params.HYBRID_ARGS}
    assert {"recipe", "mask"} <= names
    masks = [c[0] for c in params.HYBRID_ARGS[1].choices]
    assert {"black", "faces", "subject", "selection"} <= set(masks)
    r = params.hybrid_request({"recipe": "portrait", "mask": "black"})
    assert (r["op"], r["recipe"], r["mask"], r["read"]) == ("recipe", "portrait", "black",
                                                            "encoded")
    with pytest.raises(ValueError, match="mask must be one of"):
        params.hybrid_request({"recipe": "portrait", "mask": "nose"})
    with pytest.raises(ValueError, match="recipe must be a preset name"):
        params.hybrid_request({"recipe": " ", "mask": "black"})


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_hybrid_gives_layers_masks_and_keeps_outside_the_selection(mode):
    """ops.hybrid through the engine (in-process and worker): layers, masks, selection."""
    from core.layer_stack import Layer, LayerStack

    img = _srgb_scene()
    h, w = img.shape[:2]
    sel = np.zeros((h, w, 1), np.float32)
    sel[10:60, 20:80] = 1.0
    cfg = engine.EngineConfig(mode=mode, plugin_dir=str(REPO))
    request = params.hybrid_request({"recipe": "portrait", "mask": "selection"})
    info = {}
    arrays = engine.run_hybrid(request, img.tobytes(), img.shape, cfg,
                               selection=(sel.tobytes(), sel.shape), info=info)
    names = [layer["name"] for layer in info["layers"]]
    assert names == ["Deblurred", "Smoothed (faces)", "Sharpened (faces and eyes)"]
    assert [layer["opacity_pct"] for layer in info["layers"]] == [100.0, 50.0, 15.0]
    assert all(layer["has_mask"] for layer in info["layers"])  # limited to the selection
    assert "arrays" not in info
    assert info["provenance"]["recipe"]["name"] == "portrait"
    assert set(arrays) == {f"{kind}{i}" for kind in ("layer", "mask") for i in range(3)}
    layers = [Layer("Background", "base", img)]
    for i, meta in enumerate(info["layers"]):
        data, shape = arrays[f"layer{i}"]
        assert shape == img.shape
        mdata, mshape = arrays[f"mask{i}"]
        assert mshape == (h, w, 1)
        mask = np.frombuffer(mdata, "<f4").reshape(h, w)
        assert mask[sel[..., 0] == 0].max() == 0
        layers.append(Layer(meta["name"], "x", np.frombuffer(data, "<f4").reshape(shape),
                            mask, meta["opacity_pct"] / 100))
    flat = LayerStack(tuple(layers)).flatten()
    outside = sel[..., 0] == 0
    np.testing.assert_array_equal(flat[outside], img[outside])
    assert not np.array_equal(flat[~outside], img[~outside])


def test_hybrid_mask_selection_without_a_selection_is_a_calling_error():
    img = _srgb_scene()
    cfg = engine.EngineConfig(mode="in-process", plugin_dir=str(REPO))
    request = params.hybrid_request({"recipe": "portrait", "mask": "selection"})
    with pytest.raises(ValueError, match="needs a selection") as info:
        engine.run_hybrid(request, img.tobytes(), img.shape, cfg)
    assert errors.status_for(info.value) == "CALLING_ERROR"
    bad = params.hybrid_request({"recipe": "nope", "mask": "black"})
    with pytest.raises(ValueError, match="neither a built-in preset"):
        engine.run_hybrid(bad, img.tobytes(), img.shape, cfg)


def test_mode_labels_say_what_the_modes_do():
    labels = dict(params.DEBLUR_ARGS[0].choices)
    assert labels["auto"] == "Auto (analyse the blur)"
    assert labels["shake"] == "Shake (estimate the kernel)"


def test_psf_file_replaces_the_model_in_every_mode():
    r = params.deblur_request({"mode": "auto", "psf-file": " /k.npy "})
    assert r["psf"] == {"kind": "file", "path": "/k.npy"}


@pytest.mark.parametrize(
    "values",
    [{"mode": "blurry"}, {"mode": "motion", "strength": 101.0},
     {"mode": "motion", "length-px": float("nan")}, {"mode": "focus", "method": "magic"}],
)
def test_bad_values_are_calling_errors(values):
    with pytest.raises(ValueError, match="must be") as info:
        params.deblur_request(values)
    assert errors.status_for(info.value) == "CALLING_ERROR"


def test_unsharp_request_converts_percent_and_levels():
    r = params.unsharp_request({"amount": 150.0, "radius": 2.0, "threshold": 4.0,
                                "limit-halos": True, "halo-limit": 25.0,
                                "luminance-only": True})
    assert r["amount_pct"] == 150.0
    assert r["radius_px"] == 2.0
    assert r["threshold_levels"] == 4.0
    assert r["halo_limit"] == pytest.approx(0.25)
    assert r["luminance_only"] is True
    assert params.unsharp_request({"limit-halos": False})["halo_limit"] is None


def test_context_margin_grows_with_the_blur():
    small = params.context_margin_px(params.deblur_request({"mode": "motion", "length-px": 3.0}))
    big = params.context_margin_px(params.deblur_request({"mode": "motion", "length-px": 60.0}))
    assert 32 < small < big
    assert params.context_margin_px(params.unsharp_request({"radius": 1.5})) == 12


@pytest.mark.parametrize(
    ("linear", "gray", "alpha", "fmt"),
    [(True, False, True, "RGBA float"), (False, False, True, "R'G'B'A float"),
     (True, True, False, "Y float"), (False, True, True, "Y'A float"),
     (True, False, False, "RGB float")],
)
def test_babl_formats(linear, gray, alpha, fmt):
    assert params.babl_format(linear=linear, gray=gray, alpha=alpha) == fmt


def test_float_precisions():
    assert params.is_float_precision("GIMP_PRECISION_FLOAT_LINEAR")
    assert params.is_float_precision("GIMP_PRECISION_HALF_PERCEPTUAL")
    assert not params.is_float_precision("GIMP_PRECISION_U16_NON_LINEAR")


# --- errors ---------------------------------------------------------------------------------


def test_status_mapping():
    from core.errors import ImageReadError, OperationCancelled

    assert errors.status_for(ValueError("x")) == "CALLING_ERROR"
    assert errors.status_for(TypeError("x")) == "CALLING_ERROR"
    assert errors.status_for(OperationCancelled("x")) == "CANCEL"
    assert errors.status_for(errors.PluginCancelled()) == "CANCEL"
    assert errors.status_for(ImageReadError("x")) == "EXECUTION_ERROR"
    assert errors.status_for(RuntimeError()) == "EXECUTION_ERROR"
    assert errors.message_for(RuntimeError(), "p") == "p: RuntimeError"


# --- npy exchange without numpy ---------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 4), (7, 2, 3)])
def test_npy_files_round_trip_with_numpy(tmp_path, shape):
    a = np.random.default_rng(0).random(shape, dtype=np.float32)
    npyio.write_npy(tmp_path / "a.npy", a.tobytes(), shape)
    assert np.array_equal(np.load(tmp_path / "a.npy"), a)
    np.save(tmp_path / "b.npy", a)
    data, got = npyio.read_npy(tmp_path / "b.npy")
    assert got == shape
    assert data == a.tobytes()


def test_npy_rejects_wrong_sizes_and_types(tmp_path):
    with pytest.raises(ValueError, match="bytes"):
        npyio.write_npy(tmp_path / "a.npy", b"1234", (2, 1, 1))
    np.save(tmp_path / "d.npy", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="float32"):
        npyio.read_npy(tmp_path / "d.npy")


# --- engine: in-process and worker ------------------------------------------------------------


def _blurred():
    rng = np.random.default_rng(1)
    img = rng.random((40, 48, 4), dtype=np.float32)
    img[..., 3] = np.linspace(0, 1, 48, dtype=np.float32)
    return img


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_engine_runs_and_crops(tmp_path, mode):
    img = _blurred()
    cfg = engine.EngineConfig(mode=mode, plugin_dir=str(REPO))
    request = params.deblur_request({"mode": "motion", "length-px": 5.0})
    seen = []
    out, shape = engine.run_request(request, img.tobytes(), img.shape, cfg, crop=(4, 6, 20, 30),
                                    progress=lambda f, s: seen.append(f) or True)
    got = np.frombuffer(out, "<f4").reshape(shape)
    assert shape == (20, 30, 4)
    from core import deblur

    want = deblur(img, motion_psf(5.0, 0.0), linear_input=True)[4:24, 6:36]
    assert np.allclose(got, want, atol=1e-6)
    assert np.array_equal(got[..., 3], img[4:24, 6:36, 3])
    assert seen
    assert seen[-1] == pytest.approx(1.0)


def test_float_images_keep_hdr_values_only_when_present():
    from gimp_plugin import ops

    request = params.unsharp_request({"amount": 300.0, "threshold": 0.0}, float_data=True)
    img = np.full((16, 16, 3), 0.9, np.float32)
    img[:, 8:] = 0.1
    assert ops.apply(request, img).max() <= 1.0  # no HDR content: clipped like integers
    img[0, 0] = 1.5
    hdr = ops.apply(request, img)
    assert hdr.max() > 1.0  # HDR kept: the engine does not clip
    assert hdr.min() < 0.0


# --- blur analysis (auto, shake) -------------------------------------------------------------


def _scene_linear(psf=None, seed=3):
    """A linear-light RGB scene (what the host reads), motion-blurred when ``psf`` is given."""
    from conftest import make_scene

    from core.color import srgb_to_linear

    sharp = srgb_to_linear(make_scene(160, 200, seed=seed))
    if psf is None:
        return sharp, sharp
    import cv2

    k = psf[::-1, ::-1].astype(np.float32).copy()
    blurred = cv2.filter2D(sharp, -1, k, borderType=cv2.BORDER_REFLECT).reshape(sharp.shape)
    return np.clip(blurred, 0, 1).astype(np.float32), sharp


def _psnr(a, b):
    return 10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12))


def test_auto_mode_names_the_motion_blur():
    from gimp_plugin import ops

    blurred, _ = _scene_linear(motion_psf(9.0, 30.0))
    info = {}
    ops.apply(params.deblur_request({"mode": "auto", "strength": 50.0}), blurred,
              crop=(20, 24, 120, 150), info=info)
    assert info["diagnosis"]["type"] == "motion"
    assert "motion" in info["message"].lower()


def test_auto_mode_uses_the_learned_pass_when_the_blur_estimate_is_far_off(monkeypatch):
    import dataclasses

    import core.diagnose
    from gimp_plugin import ops

    blurred, sharp = _scene_linear(gaussian_psf(1.5))
    real = core.diagnose.diagnose
    monkeypatch.setattr(
        core.diagnose,
        "diagnose",
        lambda *a, **k: dataclasses.replace(real(*a, **k), kind="motion", psf=motion_psf(25, 30)),
    )
    info = {}
    out = ops.apply(params.deblur_request({"mode": "auto", "strength": 50.0}), blurred, info=info)
    assert "learned pass was used instead" in info["message"]
    assert _psnr(out, sharp) > _psnr(blurred, sharp)


def test_auto_mode_analyses_then_deblurs_the_selection():
    from gimp_plugin import ops

    blurred, sharp = _scene_linear(motion_psf(9.0, 30.0))
    request = params.deblur_request({"mode": "auto", "strength": 50.0})
    crop = (20, 24, 120, 150)
    seen, info = [], {}
    out = ops.apply(request, blurred, crop=crop,
                    progress=lambda f, s: seen.append((f, s)) or True, info=info)
    y, x, h, w = crop
    assert out.shape == (h, w, 3)
    assert out.dtype == np.float32
    before = _psnr(blurred[y : y + h, x : x + w], sharp[y : y + h, x : x + w])
    after = _psnr(out, sharp[y : y + h, x : x + w])
    assert after >= before + 2.0, (before, after)
    assert info["unchanged"] is False
    # the analysis reports progress in the first part of the bar, the deconvolution after it
    analysis = [f for f, _ in seen if f <= ops.ANALYSIS_SHARE]
    assert len(analysis) >= 2
    assert seen[-1][0] == pytest.approx(1.0)
    assert all(b >= a - 1e-9 for (a, _), (b, _) in zip(seen, seen[1:], strict=False))


def test_ai_mode_runs_the_learned_pass_on_encoded_values():
    from core.color import linear_to_srgb
    from gimp_plugin import ops

    request = params.deblur_request({"mode": "ai", "strength": 50.0})
    assert request["op"] == "ai"
    assert request["read"] == "encoded"  # the host reads R'G'B' values for it
    blurred, sharp = _scene_linear(gaussian_psf(1.2))
    blurred, sharp = linear_to_srgb(blurred), linear_to_srgb(sharp)
    crop = (20, 24, 120, 150)
    seen = []
    out = ops.apply(request, blurred, crop=crop, progress=lambda f, s: seen.append(f) or True)
    y, x, h, w = crop
    assert out.shape == (h, w, 3)
    before = _psnr(blurred[y : y + h, x : x + w], sharp[y : y + h, x : x + w])
    after = _psnr(out, sharp[y : y + h, x : x + w])
    assert after > before + 0.3, (before, after)
    assert seen[-1] == pytest.approx(1.0)


def test_auto_mode_leaves_a_sharp_photo_unchanged_and_says_so():
    from gimp_plugin import ops

    sharp, _ = _scene_linear()
    request = params.deblur_request({"mode": "auto"})
    info = {}
    out = ops.apply(request, sharp, crop=(10, 10, 100, 120), info=info)
    assert np.array_equal(out, sharp[10:110, 10:130])
    assert info["unchanged"] is True
    assert info["diagnosis"]["type"] == "sharp"
    assert "unchanged" in info["message"]


def test_shake_mode_uses_the_free_form_kernel():
    from gimp_plugin import ops

    blurred, sharp = _scene_linear(motion_psf(9.0, 30.0))
    info = {}
    out = ops.apply(params.deblur_request({"mode": "shake"}), blurred, info=info)
    assert info["diagnosis"]["type"] == "shake"
    assert _psnr(out, sharp) > _psnr(blurred, sharp) + 1.0


def test_a_small_selection_is_analysed_with_its_context(monkeypatch):
    from gimp_plugin import ops

    sizes = []
    import core.diagnose

    real = core.diagnose.diagnose
    monkeypatch.setattr(core.diagnose, "diagnose",
                        lambda img, **kw: sizes.append(img.shape[:2]) or real(img, **kw))
    img, _ = _scene_linear(motion_psf(9.0, 30.0))
    spec = {"kind": "analyse", "mode": "auto"}
    ops.analyse(spec, img, linear_input=True, crop=(10, 10, 100, 120))
    ops.analyse(spec, img, linear_input=True, crop=(10, 10, 30, 120))
    assert sizes == [(100, 120), img.shape[:2]]


def test_worker_sends_the_analysis_back():
    blurred, _ = _scene_linear(motion_psf(9.0, 30.0))
    sharp, _ = _scene_linear()
    cfg = engine.EngineConfig(mode="worker", plugin_dir=str(REPO))
    request = params.deblur_request({"mode": "auto", "method": "wiener"})
    info = {}
    out, shape = engine.run_request(request, blurred.tobytes(), blurred.shape, cfg, info=info)
    assert shape == blurred.shape
    assert info["diagnosis"]["type"] == "motion"
    assert info["unchanged"] is False
    info = {}
    out, shape = engine.run_request(request, sharp.tobytes(), sharp.shape, cfg, info=info)
    assert info["unchanged"] is True
    assert out == sharp.tobytes()


def test_worker_reports_bad_arguments_as_value_errors():
    img = _blurred()
    cfg = engine.EngineConfig(mode="worker", plugin_dir=str(REPO))
    request = params.deblur_request({"mode": "motion"})
    request["method"] = "magic"
    with pytest.raises(ValueError, match="method must be one of"):
        engine.run_request(request, img.tobytes(), img.shape, cfg)


def test_worker_reports_engine_failures(tmp_path):
    img = _blurred()
    cfg = engine.EngineConfig(mode="worker", plugin_dir=str(REPO))
    request = params.deblur_request({"mode": "motion", "psf-file": str(tmp_path / "no.npy")})
    with pytest.raises(errors.WorkerError, match="no such file") as info:
        engine.run_request(request, img.tobytes(), img.shape, cfg)
    assert info.value.kind == "ImageReadError"
    assert errors.status_for(info.value) == "EXECUTION_ERROR"


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_cancel_from_progress(mode):
    img = _blurred()
    cfg = engine.EngineConfig(mode=mode, plugin_dir=str(REPO))
    request = params.deblur_request({"mode": "motion", "length-px": 5.0})
    with pytest.raises(Exception, match="cancel") as info:
        engine.run_request(request, img.tobytes(), img.shape, cfg, progress=lambda f, s: False)
    assert errors.status_for(info.value) == "CANCEL"


def test_missing_runtime_is_an_execution_error(tmp_path):
    cfg = engine.EngineConfig(mode="worker", python=str(tmp_path / "nope"), plugin_dir=str(REPO))
    img = _blurred()
    with pytest.raises(errors.EngineUnavailableError, match="install-gimp"):
        engine.run_request(params.deblur_request({"mode": "motion"}), img.tobytes(), img.shape,
                           cfg)


def test_engine_config_file(tmp_path):
    assert engine.load_config(tmp_path).mode == "auto"
    (tmp_path / "engine.json").write_text(json.dumps(
        {"mode": "worker", "python": "/py", "site": ["runtime/site", "/abs"]}))
    cfg = engine.load_config(tmp_path)
    assert cfg.mode == "worker"
    assert cfg.python == "/py"
    assert cfg.site_paths() == [str(tmp_path / "runtime/site"), "/abs"]
    (tmp_path / "engine.json").write_text("{")
    with pytest.raises(errors.EngineUnavailableError, match="install-gimp"):
        engine.load_config(tmp_path)
    with pytest.raises(ValueError, match="engine mode"):
        engine.EngineConfig(mode="gpu")


# --- Analyze blur ---------------------------------------------------------------------------


def test_analyze_request():
    r = params.analyze_request({})
    assert r == {"op": "analyze", "mode": "auto", "linear_input": True, "psf_min_side_px": 256}
    assert params.ANALYZE_ARGS == ()


def _check_pictures(pictures, shape, info, kind=None):
    from core.compare import psf_picture

    psf, focus = pictures["psf"], pictures["focus"]
    assert focus.shape == (*shape[:2], 1)
    assert focus.dtype == psf.dtype == np.float32
    assert 0.0 <= focus.min() <= focus.max() <= 1.0
    assert min(psf.shape[:2]) >= 256
    assert psf.shape[2] == 1
    assert psf.max() == 1.0  # the kernel's peak is white
    d = info["diagnosis"]
    if kind is not None:  # see test_analyze_names_the_motion_blur_in_a_small_box
        assert d["type"] == kind
        assert kind in info["message"].lower()
    assert list(psf.shape[:2]) == list(psf_picture(np.ones(d["kernel_size_px"]), 256).shape)
    assert "confidence" in info["message"]


def test_analyze_names_the_motion_blur_in_a_small_box():
    from gimp_plugin import ops

    blurred, _ = _scene_linear(motion_psf(9.0, 30.0))
    info = {}
    ops.analyze(params.analyze_request({}), blurred, crop=(20, 24, 120, 150), info=info)
    assert info["diagnosis"]["type"] == "motion"


def test_analyze_and_auto_ask_the_learned_pass_about_a_photo_called_sharp(monkeypatch):
    import dataclasses

    import core.diagnose
    from gimp_plugin import ops

    sharp, _ = _scene_linear()
    info = {}
    ops.analyze(params.analyze_request({}), sharp, info=info)
    assert info["diagnosis"]["type"] == "sharp"
    assert info["diagnosis"]["learned_pass"]["finds_blur"] is False
    # a blurred layer the analysis calls sharp (replayed): the learned pass finds the blur
    blurred, truth = _scene_linear(defocus_psf(2.0))
    real = core.diagnose.diagnose
    monkeypatch.setattr(
        core.diagnose, "diagnose", lambda *a, **k: dataclasses.replace(real(*a, **k), kind="sharp")
    )
    info = {}
    ops.analyze(params.analyze_request({}), blurred, info=info)
    assert info["diagnosis"]["learned_pass"]["finds_blur"] is True
    assert "will be used by Deblur (Auto)" in info["message"]
    info = {}
    out = ops.apply(params.deblur_request({"mode": "auto"}), blurred, info=info)
    assert info["unchanged"] is False
    assert "the learned pass was used" in info["message"]
    assert np.abs(out - truth).mean() < np.abs(blurred - truth).mean()


def test_analyze_says_what_deblurs_auto_will_do_with_the_kernel():
    from gimp_plugin import ops

    blurred, _ = _scene_linear(motion_psf(9.0, 30.0))
    info = {}
    ops.analyze(params.analyze_request({}), blurred, info=info)
    check = info["diagnosis"]["kernel_check"]
    assert "learned_pass" not in info["diagnosis"]
    # a uniform 9 px motion: the kernel explains the layer, and Deblur then blends as said
    assert check["trusted"] is True
    assert check["learned_share"] == 0.5
    assert "Deblur (Auto) will deconvolve with it and blend the result" in info["message"]
    assert "(50 % learned)" in info["message"]
    done = {}
    ops.apply(params.deblur_request({"mode": "auto"}), blurred, info=done)
    assert "blended with the learned pass (50 % learned)" in done["message"]


def test_analyze_diagnoses_the_box_and_maps_the_whole_layer():
    from gimp_plugin import ops

    blurred, _ = _scene_linear(motion_psf(9.0, 30.0))
    seen, info = [], {}
    pictures = ops.analyze(params.analyze_request({}), blurred, crop=(20, 24, 120, 150),
                           progress=lambda f, s: seen.append(f) or True, info=info)
    _check_pictures(pictures, blurred.shape, info)
    region = info["diagnosis"]["region"]  # in the coordinates of the pixels given
    assert region["width"] <= 150
    assert 24 <= region["x"] <= 24 + 150 - region["width"]
    assert 20 <= region["y"] <= 20 + 120 - region["height"]
    assert seen[-1] == pytest.approx(1.0)
    assert all(b >= a - 1e-9 for a, b in zip(seen, seen[1:], strict=False))


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_engine_runs_the_analysis(mode):
    blurred, _ = _scene_linear(motion_psf(9.0, 30.0))
    cfg = engine.EngineConfig(mode=mode, plugin_dir=str(REPO))
    info = {}
    out = engine.run_analysis(params.analyze_request({}), blurred.tobytes(), blurred.shape,
                              cfg, crop=(0, 0, 160, 200), info=info)
    assert set(out) == {"psf", "focus"}
    pictures = {k: np.frombuffer(b, "<f4").reshape(s) for k, (b, s) in out.items()}
    _check_pictures(pictures, blurred.shape, info, kind="motion")


# --- what loads inside GIMP -------------------------------------------------------------------

_LOAD_TIME = ["entry.py", "host.py", "params.py", "engine.py", "errors.py", "npyio.py",
              "__init__.py"]


@pytest.mark.parametrize("name", _LOAD_TIME)
def test_registration_path_imports_no_numpy(name):
    """GIMP's Python on Windows/macOS has no numpy: nothing GIMP loads may import it eagerly."""
    tree = ast.parse((REPO / "gimp_plugin" / name).read_text(encoding="utf-8"))
    for node in tree.body:  # module level only; functions import lazily
        mods = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            mods = [node.module or ""]
        for m in mods:
            assert m.split(".")[0] not in {"numpy", "cv2", "core", "PIL"}, f"{name} imports {m}"


def test_entry_point_is_executable():
    entry = REPO / "gimp_plugin" / "entry.py"
    assert entry.read_text().startswith("#!/usr/bin/env python3")


# --- the host with a fake GIMP (no gi here) --------------------------------------------------


class _FakeBuffer:
    def __init__(self, pixels=None):
        self.pixels, self.written = pixels, []

    def get(self, rect, scale, fmt, abyss):
        x, y, w, h = rect
        assert fmt == "RGB float"  # linear, what the engine reads
        return self.pixels[y : y + h, x : x + w].astype("<f4").tobytes()

    def set(self, rect, fmt, data):
        self.written.append((rect, fmt, data))

    def flush(self):
        pass


class _FakeDrawable:
    def __init__(self, pixels, box=None):
        self.pixels, self.box = pixels, box
        self.buffer = _FakeBuffer(pixels)

    def is_group(self):
        return False

    def get_name(self):
        return "Background"

    def get_width(self):
        return self.pixels.shape[1]

    def get_height(self):
        return self.pixels.shape[0]

    def is_gray(self):
        return False

    def has_alpha(self):
        return False

    def mask_intersect(self):
        if self.box is None:
            return True, 0, 0, self.get_width(), self.get_height()
        return (True, *self.box) if self.box[2] > 0 else (False, 0, 0, 0, 0)

    def get_buffer(self):
        return self.buffer

    def get_shadow_buffer(self):
        msg = "Analyze blur must not write to the input"
        raise AssertionError(msg)


def _fake_gi(monkeypatch, calls):
    """A stand-in for gi.repository (Gimp, Gegl, GLib, GObject), recording what host does."""
    import sys
    import types

    class Anything:
        def __getattr__(self, name):
            return name

    class FakeLayer:
        def __init__(self, image, name, w, h, *rest):
            self.name, self.w, self.h, self.buffer = name, w, h, _FakeBuffer()

        def get_buffer(self):
            return self.buffer

        def update(self, *a):
            pass

    class FakeImage:
        def __init__(self, w, h, base):
            self.w, self.h, self.layers, self.deleted = w, h, [], False
            calls.append(("image", w, h, base))

        new = classmethod(lambda cls, w, h, base: cls(w, h, base))

        def insert_layer(self, layer, parent, position):
            self.layers.insert(position, layer)

        def undo_disable(self):
            pass

        def undo_enable(self):
            pass

        def delete(self):
            self.deleted = True

    gimp = types.SimpleNamespace(
        PlugIn=type("PlugIn", (), {}),
        Image=FakeImage,
        Layer=types.SimpleNamespace(new=FakeLayer),
        ImageBaseType=Anything(), ImageType=Anything(), LayerMode=Anything(),
        progress_init=lambda text: calls.append(("progress_init", text)),
        progress_update=lambda f: calls.append(("progress", f)),
        progress_end=lambda: calls.append(("progress_end",)),
        message=lambda text: calls.append(("message", text)),
    )
    gegl = types.SimpleNamespace(Rectangle=types.SimpleNamespace(new=lambda *r: r),
                                 AbyssPolicy=Anything())
    repo = types.SimpleNamespace(Gimp=gimp, Gegl=gegl, GLib=Anything(), GObject=Anything())
    gi = types.SimpleNamespace(require_version=lambda *a: None, repository=repo)
    monkeypatch.setitem(sys.modules, "gi", gi)
    monkeypatch.setitem(sys.modules, "gi.repository", repo)
    import gimp_plugin

    # import host afresh on the fakes; monkeypatch puts back what was there before
    monkeypatch.setitem(sys.modules, "gimp_plugin.host", None)
    monkeypatch.setattr(gimp_plugin, "host", None, raising=False)
    del sys.modules["gimp_plugin.host"]
    import gimp_plugin.host as host

    return host


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_host_analyze_makes_a_new_image_and_leaves_the_input(monkeypatch, mode):
    calls = []
    host = _fake_gi(monkeypatch, calls)
    blurred, _ = _scene_linear(motion_psf(9.0, 30.0))
    layer = _FakeDrawable(blurred.copy(), box=(24, 20, 150, 120))
    cfg = engine.EngineConfig(mode=mode, plugin_dir=str(REPO))
    new, text = host.analyze_drawable(object(), [layer], cfg)
    assert np.array_equal(layer.pixels, blurred)
    diagnosis = json.loads(text)
    assert diagnosis["type"] == "motion"
    assert [lay.name for lay in new.layers] == ["PSF", "Focus map"]
    psf, focus = new.layers
    assert min(psf.w, psf.h) >= 256
    assert (focus.w, focus.h) == (200, 160)
    assert (new.w, new.h) == (max(psf.w, 200), max(psf.h, 160))
    for lay in new.layers:
        [(rect, fmt, data)] = lay.buffer.written
        assert rect == (0, 0, lay.w, lay.h)
        assert fmt == "Y' float"
        assert len(data) == 4 * lay.w * lay.h
    assert max(np.frombuffer(psf.buffer.written[0][2], "<f4")) == 1.0
    [message] = [c[1] for c in calls if c[0] == "message"]
    assert "confidence" in message
    assert ("progress_end",) in calls


@pytest.mark.parametrize(
    ("drawables", "words"),
    [([], "no drawable"), ([None, None], "one layer"), (["outside"], "does not cover")],
)
def test_host_analyze_refuses_bad_targets(monkeypatch, drawables, words):
    host = _fake_gi(monkeypatch, [])
    img = np.zeros((32, 32, 3), np.float32)
    targets = [_FakeDrawable(img, box=(0, 0, 0, 0) if d == "outside" else None)
               for d in drawables]
    with pytest.raises(ValueError, match=words) as info:
        host.analyze_drawable(object(), targets, engine.EngineConfig(plugin_dir=str(REPO)))
    assert errors.status_for(info.value) == "CALLING_ERROR"


def test_host_analyze_engine_failure_is_an_execution_error(monkeypatch, tmp_path):
    calls = []
    host = _fake_gi(monkeypatch, calls)
    blurred, _ = _scene_linear(motion_psf(9.0, 30.0))
    layer = _FakeDrawable(blurred.copy())
    cfg = engine.EngineConfig(mode="worker", python=str(tmp_path / "nope"), plugin_dir=str(REPO))
    with pytest.raises(errors.EngineUnavailableError, match="install-gimp") as info:
        host.analyze_drawable(object(), [layer], cfg)
    assert errors.status_for(info.value) == "EXECUTION_ERROR"
    assert np.array_equal(layer.pixels, blurred)
    assert not [c for c in calls if c[0] == "image"]  # no new image left behind


# --- progress and cancel ---------------------------------------------------------------------


def test_progress_bar_draws_throttled_and_maps_parts():
    from gimp_plugin.progress import ProgressBar

    drawn: list[float] = []
    bar = ProgressBar(drawn.append)
    half = bar.part(0.5, 1.0)
    for i in range(1001):
        assert half(i / 1000, "x") is True
    assert drawn[0] == pytest.approx(0.5)
    assert drawn[-1] == pytest.approx(1.0)
    assert len(drawn) <= 52  # at most every 1 %
    assert drawn == sorted(drawn)
    assert not bar.cancelled


def test_cancel_hook_cancels_after_n_reports(tmp_path):
    from gimp_plugin import progress

    hook = tmp_path / "cancel-after"
    env = {progress.CANCEL_HOOK_ENV: str(hook)}
    assert progress.cancel_after_from_hook({}) is None
    assert progress.cancel_after_from_hook(env) is None  # no file: no cancel
    hook.write_text("3\n")
    assert progress.cancel_after_from_hook(env) == 3
    bar = progress.ProgressBar(lambda f: None, cancel_after=3)
    part = bar.part(0.0, 0.5)
    assert [part(0.1, "a"), bar(0.2, "b"), part(0.3, "c"), bar(0.4, "d")] == [
        True, True, False, False]
    assert bar.cancelled
    hook.write_text("soon")
    assert progress.cancel_after_from_hook(env) is None  # unreadable: ignored


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_cancel_hook_cancels_the_engine(mode):
    from gimp_plugin.progress import ProgressBar

    img = _blurred()
    cfg = engine.EngineConfig(mode=mode, plugin_dir=str(REPO))
    request = params.deblur_request({"mode": "motion", "length-px": 5.0})
    bar = ProgressBar(lambda f: None, cancel_after=2)
    with pytest.raises(Exception, match="cancel") as info:
        engine.run_request(request, img.tobytes(), img.shape, cfg, progress=bar)
    assert errors.status_for(info.value) == "CANCEL"


def test_orphaned_worker_deletes_its_folder_and_stops(tmp_path):
    """GIMP kills a cancelled plug-in: the worker meets a broken pipe and cleans up."""
    import subprocess
    import sys

    img = _blurred()
    job_dir = tmp_path / "clearshot-job"
    job_dir.mkdir()
    npyio.write_npy(str(job_dir / "in.npy"), img.astype("<f4").tobytes(), img.shape)
    request = params.deblur_request({"mode": "motion", "length-px": 5.0})
    (job_dir / "request.json").write_text(json.dumps({
        "request": request, "input": str(job_dir / "in.npy"),
        "output": str(job_dir / "out.npy"), "crop": None}))
    proc = subprocess.Popen([sys.executable, "-m", "gimp_plugin.worker",
                             str(job_dir / "request.json")], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the plug-in is gone before the worker's first line
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert not job_dir.exists()
    assert b"Traceback" not in err


# --- the dialog's preview: where it looks --------------------------------------------------


def test_preview_crop_stays_inside_the_selection_box():
    assert params.preview_crop((100, 100), 64, (0, 0, 500, 400)) == (68, 68, 64, 64)
    assert params.preview_crop((5, 5), 64, (0, 0, 500, 400)) == (0, 0, 64, 64)
    assert params.preview_crop((499, 399), 64, (0, 0, 500, 400)) == (436, 336, 64, 64)
    assert params.preview_crop((50, 50), 320, (30, 24, 96, 70)) == (30, 24, 96, 70)
    with pytest.raises(ValueError, match="positive"):
        params.preview_crop((0, 0), 64, (0, 0, 0, 10))


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_locate_detail_and_no_face(mode):
    img = np.zeros((120, 200, 3), np.float32)
    img[30:90, 120:180] = np.random.default_rng(2).random((60, 60, 3))  # the only texture
    cfg = engine.EngineConfig(mode=mode, plugin_dir=str(REPO))
    info = engine.run_locate({"where": "detail", "linear_input": True}, img.tobytes(),
                             img.shape, cfg)
    x, y, w, h = info["box"]
    assert x <= 150 <= x + w  # the region overlaps the texture
    assert y <= 60 <= y + h
    info = engine.run_locate({"where": "face"}, img.tobytes(), img.shape, cfg)
    assert info["box"] is None
    assert "no face" in info["message"]
    with pytest.raises(ValueError, match="where must be one of"):
        engine.run_locate({"where": "sky"}, img.tobytes(), img.shape, cfg)

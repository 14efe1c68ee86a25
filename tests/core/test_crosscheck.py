"""The Auto pass's cross-check against the learned pass (core.crosscheck)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import blurred_pair8, make_scene

from core.cli import main
from core.crosscheck import (
    AI_SHARE,
    BLIND_KERNEL_ERROR,
    DISAGREEMENT_DB,
    KEEP_MISFIT,
    MISFIT_RAMP,
    OVERREACH_RATIO,
    SHARP_GAIN,
    CrossCheck,
    blend_results,
    cross_check,
    restore_checked,
)
from core.deblur import deblur
from core.diagnose import diagnose
from core.io import read_image, write_image
from core.psf import defocus_psf, gaussian_psf, motion_psf


def _defocused(side: int = 256, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    return blurred_pair8(make_scene(side + 16, side + 16, seed=seed), defocus_psf(2.0), 0.005, seed)


def test_the_right_kernel_passes_and_a_far_too_large_one_is_rejected():
    img, _ = _defocused()
    d = diagnose(img)
    right = cross_check(img, dataclasses.replace(d, kind="defocus", psf=defocus_psf(2.0)))
    wrong = cross_check(img, dataclasses.replace(d, kind="motion", psf=motion_psf(25, 30)))
    assert right is not None
    assert wrong is not None
    assert not right.use_ai
    assert right.note() == ""
    assert wrong.use_ai
    assert wrong.disagreement_db > DISAGREEMENT_DB > right.disagreement_db
    assert wrong.change_ratio > OVERREACH_RATIO
    assert "learned pass was used" in wrong.note()


def test_a_sharp_photo_stays_sharp_and_a_blurred_one_called_sharp_gets_the_learned_pass(
    tmp_path, capsys, monkeypatch
):
    sharp = (make_scene(256, 256, seed=7) * 255).round().astype(np.uint8)
    d = diagnose(sharp)
    assert d.kind == "sharp"
    check = cross_check(sharp, d)
    assert check is not None
    assert check.sharpness_gain is not None
    assert check.sharpness_gain < SHARP_GAIN
    assert not check.use_ai
    assert check.note() == ""
    out, _ = restore_checked(sharp, d)
    np.testing.assert_array_equal(out, sharp)
    assert out is not sharp
    # what the analysis did to Set14 zebra under an 11 px shake (edges 6.8 px: "sharp"; the
    # learned pass gains 2.5 dB there), replayed on the drawn scene under a 2 px disk
    import core.diagnose

    img, gt = _defocused()
    real = core.diagnose.diagnose
    monkeypatch.setattr(
        core.diagnose, "diagnose", lambda *a, **k: dataclasses.replace(real(*a, **k), kind="sharp")
    )
    missed = core.diagnose.diagnose(img)
    check = cross_check(img, missed)
    assert check is not None
    assert check.sharpness_gain > SHARP_GAIN
    assert check.use_ai
    out, _ = restore_checked(img, missed)
    assert _psnr(out, gt) > _psnr(img, gt) + 1.0
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    write_image(src, img)
    assert main(["deblur", str(src), "-o", str(dst)]) == 0
    assert "the learned pass was used" in capsys.readouterr().out
    np.testing.assert_array_equal(read_image(dst).pixels, out)
    # analyze says what deblur will do
    assert main(["analyze", str(src), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["type"] == "sharp"
    assert record["learned_pass"]["finds_blur"] is True
    assert record["learned_pass"]["sharpness_gain"] > SHARP_GAIN
    assert main(["analyze", str(src)]) == 0
    assert "will be used by deblur (Auto)" in capsys.readouterr().out


def test_auto_uses_the_learned_pass_when_the_blur_estimate_is_far_off(
    tmp_path, capsys, monkeypatch
):
    # what the analysis did to McMaster 7 under a 2.5 px disk (it said: 13 px motion; the
    # classical result fell from 26.7 to 15.9 dB), replayed on the drawn scene
    import core.diagnose

    img, gt = _defocused()
    real = core.diagnose.diagnose

    def misjudged(*args, **kwargs):
        d = real(*args, **kwargs)
        return dataclasses.replace(d, kind="motion", psf=motion_psf(25, 30))

    monkeypatch.setattr(core.diagnose, "diagnose", misjudged)
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    write_image(src, img)
    assert main(["deblur", str(src), "-o", str(out)]) == 0
    assert "learned pass was used instead" in capsys.readouterr().out
    result = read_image(out).pixels

    def psnr(x: np.ndarray) -> float:
        return 10 * np.log10(255**2 / np.mean((x.astype(float) - gt.astype(float)) ** 2))

    assert psnr(result) > psnr(img)
    # analyze says so beforehand, from the same check
    assert main(["analyze", str(src), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["type"] == "motion"
    assert record["kernel_check"]["trusted"] is False
    assert record["kernel_check"]["learned_share"] == 1.0
    assert record["kernel_check"]["disagreement_db"] > DISAGREEMENT_DB
    assert record["timings_s"]["cross_check"] > 0
    assert "learned_pass" not in record  # that is the second opinion on a photo found sharp
    assert main(["analyze", str(src)]) == 0
    assert "deblur (Auto) will use the learned pass instead" in capsys.readouterr().out
    # a family the user forces is not second-guessed
    assert main(["deblur", str(src), "-o", str(out), "--mode", "motion", "--overwrite"]) == 0
    assert "learned pass" not in capsys.readouterr().out
    assert main(["analyze", str(src), "--json", "--mode", "motion"]) == 0
    assert "kernel_check" not in json.loads(capsys.readouterr().out)


def test_analyze_says_auto_will_blend_when_the_kernel_explains_the_photo(
    tmp_path, capsys, monkeypatch
):
    import core.diagnose

    img, _ = _defocused()
    real = core.diagnose.diagnose
    monkeypatch.setattr(
        core.diagnose,
        "diagnose",
        lambda *a, **k: dataclasses.replace(real(*a, **k), kind="defocus", psf=defocus_psf(2.0)),
    )
    src = tmp_path / "in.png"
    write_image(src, img)
    assert main(["analyze", str(src), "--json"]) == 0
    check = json.loads(capsys.readouterr().out)["kernel_check"]
    assert check["trusted"] is True
    assert check["learned_share"] == AI_SHARE
    assert check["unexplained"] < MISFIT_RAMP[0]
    assert check["disagreement_db"] < DISAGREEMENT_DB
    assert main(["analyze", str(src)]) == 0
    said = capsys.readouterr().out
    assert "The blur estimate explains the photo (misfit" in said
    assert (
        "will deconvolve with it and blend the result with the learned pass (50 % learned)" in said
    )
    # deblur then does what analyze said: the blend
    assert main(["deblur", str(src), "-o", str(tmp_path / "out.png")]) == 0
    assert "learned pass was used" not in capsys.readouterr().out


def test_the_plan_an_analysis_reports_follows_the_check():
    lo, hi = MISFIT_RAMP
    moved = CrossCheck(disagreement_db=3.0, change_ratio=2.0, use_ai=True, misfit=hi)
    assert moved.misfit_rejects
    assert "explains only part of the photo (misfit 2.00" in moved.plan()
    assert moved.plan().endswith(
        "deblur (Auto) will use the learned pass instead of deconvolving with it."
    )
    assert moved.kernel_check_json() == {
        "trusted": False,
        "learned_share": 1.0,
        "misfit": 2.0,
        "unexplained": 4.0,
        "disagreement_db": 3.0,
        "change_ratio": 2.0,
    }
    far = CrossCheck(disagreement_db=12.0, change_ratio=6.0, use_ai=True, misfit=0.5)
    assert "strays 12.0 dB further from the learned pass" in far.plan(host="Deblur (Auto)")
    assert "Deblur (Auto) will use the learned pass instead." in far.plan(host="Deblur (Auto)")
    part = CrossCheck(disagreement_db=3.0, change_ratio=2.0, use_ai=False, misfit=(lo + hi) / 4)
    assert "explains the photo only in part (misfit 0.75)" in part.plan()
    assert "(75 % learned)" in part.plan()
    assert part.plan(0.0).endswith("blend the result with the learned pass (50 % learned).")
    fits = CrossCheck(disagreement_db=3.0, change_ratio=2.0, use_ai=False, misfit=lo / 4)
    assert fits.plan(0.0) == (
        "The blur estimate explains the photo (misfit 0.25): deblur (Auto) will deconvolve with it."
    )
    kept = CrossCheck(disagreement_db=10.0, change_ratio=6.0, use_ai=False, misfit=0.1)
    assert kept.kept_though_far
    assert "(misfit 0.10; a large blur the learned pass barely touches)" in kept.plan()
    unmeasured = CrossCheck(disagreement_db=3.0, change_ratio=2.0, use_ai=False)
    assert unmeasured.kernel_check_json()["misfit"] is None
    assert "misfit not measured" in unmeasured.plan()
    sharp = CrossCheck(float("nan"), float("nan"), use_ai=False, sharpness_gain=1.01)
    assert sharp.kernel_check_json() is None
    assert sharp.plan() == ""


def test_a_recipes_first_pass_is_cross_checked_too(monkeypatch):
    import core.diagnose
    from core.layer_stack import run_recipe
    from core.recipes import load_preset

    img, _ = _defocused(192)
    real = core.diagnose.diagnose
    monkeypatch.setattr(
        core.diagnose,
        "diagnose",
        lambda *a, **k: dataclasses.replace(real(*a, **k), kind="motion", psf=motion_psf(25, 30)),
    )
    step = run_recipe(img, load_preset("landscape")).provenance["steps"][0]
    assert step["pass"] == "ai"
    assert step["cross_check_db"] > DISAGREEMENT_DB
    assert "learned pass was used" in step["note"]


# ----------------------------------------------------------------------------- the blend
def _psnr(x: np.ndarray, gt: np.ndarray) -> float:
    return 10 * np.log10(255**2 / np.mean((x.astype(float) - gt.astype(float)) ** 2))


def test_auto_blends_the_classical_result_with_the_learned_pass_and_gains_on_both():
    from core.ai import ai_deblur

    # a mild Gaussian blur, whose blind estimate is near but not exact (the 2 px disk of
    # _defocused is now sized exactly from the spectrum: classical alone then beats the blend)
    img, gt = blurred_pair8(make_scene(272, 272, seed=7), gaussian_psf(1.2), 0.005, 7)
    d = diagnose(img)
    classical, check0 = restore_checked(img, d, ai_share=0.0)
    blended, check = restore_checked(img, d)
    assert check0 is not None
    assert check0.ai_share == 0.0
    assert check0.note() == ""
    assert check is not None
    assert not check.use_ai
    assert check.ai_share == AI_SHARE == 0.5
    assert "blended with the learned pass (50 % learned)" in check.note()
    # the kernel is an estimate: Auto distrusts its zeros (BLIND_KERNEL_ERROR)
    np.testing.assert_array_equal(classical, deblur(img, d.psf, kernel_error=BLIND_KERNEL_ERROR))
    learned = ai_deblur(img)
    np.testing.assert_array_equal(blended, blend_results(classical, learned, 0.5))
    # two estimates that err differently: their mean is closer to the sharp scene than either
    assert _psnr(blended, gt) > max(_psnr(classical, gt), _psnr(learned, gt)) + 0.2


def test_blend_results_keeps_dtype_alpha_and_rounds():
    a = np.array([[[10, 20, 30, 255]]], np.uint8)
    b = np.array([[[11, 40, 30, 255]]], np.uint8)
    out = blend_results(a, b, 0.5)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[[10, 30, 30, 255]]])  # 10.5 rounds to even
    np.testing.assert_array_equal(blend_results(a, b, 0.0), a)
    np.testing.assert_array_equal(blend_results(a, b, 1.0), b)
    hdr = blend_results(np.float32([[2.0, 0.0]]), np.float32([[4.0, 1.0]]), 0.25)
    assert hdr.dtype == np.float32
    np.testing.assert_allclose(hdr, [[2.5, 0.25]])
    with pytest.raises(ValueError, match="same shape and dtype"):
        blend_results(a, b.astype(np.uint16), 0.5)
    with pytest.raises(ValueError, match="within 0..1"):
        blend_results(a, b, 1.5)


def test_cli_ai_share(tmp_path, capsys):
    img, _ = _defocused(160)
    src = tmp_path / "in.png"
    write_image(src, img)
    half, none_ = tmp_path / "half.png", tmp_path / "none.png"
    assert main(["deblur", str(src), "-o", str(half)]) == 0
    assert "blended with the learned pass (50 % learned)" in capsys.readouterr().out
    assert main(["deblur", str(src), "-o", str(none_), "--ai-share", "0"]) == 0
    assert "learned pass" not in capsys.readouterr().out
    d = diagnose(img)
    expected = deblur(img, d.psf, kernel_error=BLIND_KERNEL_ERROR)
    np.testing.assert_array_equal(read_image(none_).pixels, expected)
    assert not np.array_equal(read_image(half).pixels, read_image(none_).pixels)
    bad = tmp_path / "bad.png"
    assert main(["deblur", str(src), "-o", str(bad), "--ai-share", "30", "--mode", "motion"]) == 2
    assert "--ai-share" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):
        main(["deblur", str(src), "-o", str(bad), "--ai-share", "130"])
    assert "--ai-share must be a number from 0 to 100" in capsys.readouterr().err
    assert not bad.exists()


def test_a_recipes_first_pass_says_it_was_blended():
    from core.layer_stack import run_recipe
    from core.recipes import load_preset

    img, _ = _defocused(192)
    step = run_recipe(img, load_preset("landscape")).provenance["steps"][0]
    assert step["pass"] == "classical-auto+ai"
    assert step["ai_share"] == 0.5
    assert step["model"]
    assert "error" not in step["model"]


# ----------------------------------------------------------------------------- the kernel's fit
def test_a_kernel_that_explains_only_part_of_the_photo_hands_over_to_the_learned_pass():
    """A subject that moved: the right half blurred across the left half's motion. The left
    half's kernel passes the disagreement tests (it does not overreach), but it explains only
    part of the photo; its deconvolution rings, and so would half of it in a blend."""
    from core.ai import ai_deblur

    scene = make_scene(272, 272, seed=7)
    along, across = motion_psf(13, 30), motion_psf(13, 120)
    photo, gt = blurred_pair8(scene, along, 0.005, 7)
    photo[:, 128:] = blurred_pair8(scene, across, 0.005, 7)[0][:, 128:]
    d = dataclasses.replace(diagnose(photo), kind="motion", psf=along)
    out, check = restore_checked(photo, d)
    assert check is not None
    assert check.change_ratio < OVERREACH_RATIO  # the earlier tests alone kept it
    assert check.unexplained > MISFIT_RAMP[1]
    assert check.use_ai
    assert check.ai_share == 1.0
    assert "explains only part of the photo" in check.note()
    learned = ai_deblur(photo)
    np.testing.assert_array_equal(out, learned)
    classical = deblur(photo, along, kernel_error=BLIND_KERNEL_ERROR)
    assert _psnr(out, gt) > _psnr(blend_results(classical, learned, AI_SHARE), gt) + 2.0


def test_the_learned_share_rises_with_the_unexplained_change():
    lo, hi = MISFIT_RAMP
    fits = CrossCheck(disagreement_db=3.0, change_ratio=2.0, use_ai=False, misfit=lo / 4)
    assert fits.share_for(0.5) == 0.5
    assert fits.share_for(0.0) == 0.0
    half = CrossCheck(disagreement_db=3.0, change_ratio=2.0, use_ai=False, misfit=(lo + hi) / 4)
    assert half.unexplained == pytest.approx((lo + hi) / 2)
    assert half.share_for(0.5) == pytest.approx(0.75)
    assert half.share_for(0.0) == pytest.approx(0.5)
    assert not half.misfit_rejects
    blended = dataclasses.replace(half, ai_share=0.75)
    assert "(75 % learned, not 50 %: the blur estimate explains" in blended.note()
    assert "(50 % learned, not 0 %" in dataclasses.replace(half, ai_share=0.5).note()
    unmeasured = CrossCheck(disagreement_db=3.0, change_ratio=2.0, use_ai=False)
    assert unmeasured.share_for(0.5) == 0.5
    assert CrossCheck(3.0, 2.0, False, misfit=hi).misfit_rejects
    # kept though it strays far (a large blur): the share still follows the change's size
    kept = CrossCheck(disagreement_db=10.0, change_ratio=6.0, use_ai=False, misfit=0.19)
    assert kept.strays_far
    assert kept.kept_though_far
    assert kept.share_for(0.5) == pytest.approx(0.57)
    assert (
        "it was kept, blended with the learned pass (57 % learned, not 50 %, as it changes "
        "the photo so much)." in dataclasses.replace(kept, ai_share=0.57).note()
    )


def test_a_large_blur_whose_kernel_explains_the_photo_is_kept_though_it_strays_far():
    """On a 51 px motion the learned pass does little, so the right kernel's result strays far
    from it; the first two tests alone would have thrown it away for the learned pass."""
    from core.ai import ai_deblur

    k = motion_psf(51, 60)
    photo, gt = blurred_pair8(make_scene(371, 371, seed=3), k, 0.005, 3)
    d = dataclasses.replace(diagnose(photo), kind="motion", psf=k)
    out, check = restore_checked(photo, d)
    assert check is not None
    assert check.strays_far
    assert check.misfit < KEEP_MISFIT
    assert check.kept_though_far
    assert not check.use_ai
    assert check.ai_share == AI_SHARE
    assert "but its blur estimate explains the photo" in check.note()
    assert "it was kept" in check.note()
    assert _psnr(out, gt) > _psnr(ai_deblur(photo), gt) + 1.0


def test_the_learned_pass_in_a_blend_of_a_large_blur_runs_a_coarse_pass_first():
    """An 18 px defocus disk (36 px across, past what the network was trained on): Auto's
    blend takes the learned pass that first ran on the photo scaled down (the diagnosed
    extent, 36 px, over core.ai.infer.COARSE_BLUR_PX): 19.12 dB against 18.65 for the blend
    with the one-pass learned result (blurred 16.61)."""
    from core.ai import ai_deblur

    k = defocus_psf(18)
    photo, gt = blurred_pair8(make_scene(440, 440, seed=1), k, 0.005, 1)
    d = dataclasses.replace(diagnose(photo), kind="defocus", psf=k, params={"radius_px": 18.0})
    assert d.extent_px == 36.0
    out, check = restore_checked(photo, d)
    assert check is not None
    assert not check.use_ai
    classical = deblur(photo, k, kernel_error=BLIND_KERNEL_ERROR)
    coarse = ai_deblur(photo, blur_px=36.0)
    np.testing.assert_array_equal(out, blend_results(classical, coarse, check.ai_share))
    one_pass = blend_results(classical, ai_deblur(photo), check.ai_share)
    assert _psnr(out, gt) > _psnr(one_pass, gt) + 0.3

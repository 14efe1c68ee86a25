"""The Auto pass's cross-check against the learned pass (core.crosscheck)."""

from __future__ import annotations

import dataclasses

import numpy as np
from conftest import blurred_pair8, make_scene

from core.cli import main
from core.crosscheck import DISAGREEMENT_DB, OVERREACH_RATIO, cross_check
from core.diagnose import diagnose
from core.io import read_image, write_image
from core.psf import defocus_psf, motion_psf


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


def test_nothing_to_check_on_a_sharp_photo():
    img, _ = _defocused()
    d = diagnose(img)
    assert cross_check(img, dataclasses.replace(d, kind="sharp")) is None


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
    # a family the user forces is not second-guessed
    assert main(["deblur", str(src), "-o", str(out), "--mode", "motion", "--overwrite"]) == 0
    assert "learned pass" not in capsys.readouterr().out


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

"""The artefact guard and bring-your-own models: fakes that fail on purpose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_scene

from core.ai import GuardSettings, ModelContractError, ai_deblur, load_restorer
from core.ai.guard import (
    border_weights,
    chroma_mosaic_ratio,
    guard_weights,
    periodic_artifact_score,
)

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "ai"


class _Fake:
    """A restorer that adds a pattern to its input (what a broken network does)."""

    multiple = 16
    receptive_px = 16

    def __init__(self, kind: str, amplitude: float = 0.06) -> None:
        self.name = f"fake-{kind}"
        self.kind = kind
        self.amplitude = amplitude

    def run(self, batch: np.ndarray) -> np.ndarray:
        _, _, h, w = batch.shape
        yy, xx = np.mgrid[:h, :w]
        if self.kind == "checker":
            pattern = np.where((yy + xx) % 2 == 0, 1.0, -1.0)[None, None] * np.ones((1, 3, 1, 1))
        elif self.kind == "grid4":  # half-Nyquist grid, as a 4x transposed conv leaves
            pattern = (np.cos(np.pi * xx / 2) + np.cos(np.pi * yy / 2))[None, None] * np.ones(
                (1, 3, 1, 1))
        elif self.kind == "mosaic":  # chroma-only noise per pixel (Bayer-like colour speckle)
            rng = np.random.default_rng(0)
            n = rng.standard_normal((1, 3, h, w))
            pattern = n - n.mean(axis=1, keepdims=True)
        elif self.kind == "border":
            pattern = np.zeros((1, 3, h, w))
            pattern[..., :6, :] = pattern[..., -6:, :] = 3.0
            pattern[..., :, :6] = pattern[..., :, -6:] = 3.0
        else:
            pattern = np.zeros((1, 3, h, w))
        return (batch + self.amplitude * pattern).astype(np.float32)


def _scene(side: int = 256) -> np.ndarray:
    return make_scene(side, side, seed=12)


def test_periodic_score_separates_checkerboards_from_natural_residuals():
    img = _scene(64).mean(axis=2)
    natural = img - np.roll(img, 1, axis=1)
    yy, xx = np.mgrid[:64, :64]
    checker = natural + 0.02 * np.where((yy + xx) % 2, 1.0, -1.0)
    s_nat, _ = periodic_artifact_score(natural)
    s_chk, amp = periodic_artifact_score(checker)
    assert s_nat < 12 < s_chk
    assert 0.01 < amp < 0.04  # amplitude estimate in the right range
    with pytest.raises(ValueError, match="square"):
        periodic_artifact_score(np.zeros((10, 20)))


@pytest.mark.parametrize("kind", ["checker", "grid4", "mosaic"])
def test_guard_removes_a_fake_models_artefacts(kind):
    img = _scene()
    fake = _Fake(kind)
    raw = ai_deblur(img, model=fake, guard=False)
    guarded = ai_deblur(img, model=fake)
    assert np.abs(raw - img).mean() > 0.02  # the fake really damages the image
    assert np.abs(guarded - img).mean() < 0.1 * np.abs(raw - img).mean()


def test_guard_counts_and_keeps_clean_residuals():
    img = _scene(128)
    x = np.clip(img, 0, 1)
    clean = 0.02 * (x - np.roll(x, 1, axis=0))
    w, counts = guard_weights(x, clean)
    assert counts["blocks"] == 4
    assert counts["periodic"] == 0
    assert counts["mosaic"] == 0
    assert w.min() == 1.0
    ratio, _ = chroma_mosaic_ratio(clean)
    assert ratio < GuardSettings().mosaic_ratio


def test_guard_fades_a_border_failure():
    img = _scene()
    fake = _Fake("border", amplitude=0.1)
    raw = ai_deblur(img, model=fake, guard=False)
    guarded = ai_deblur(img, model=fake)
    edge = np.s_[:4, :, :]
    assert np.abs(raw[edge] - img[edge]).mean() > 0.2
    assert np.abs(guarded[edge] - img[edge]).mean() < 0.05
    res = np.zeros((100, 100, 3), np.float32)
    assert border_weights(res) is None


def test_guard_settings_are_validated():
    with pytest.raises(ValueError, match="power of two"):
        GuardSettings(block_px=48)


# ----------------------------------------------------------------------------- bring your own
def test_byo_identity_model_fits_the_contract():
    img = _scene(64)
    out = ai_deblur(img, model=FIXTURES / "identity_rgb.onnx")
    np.testing.assert_allclose(out, img, atol=1e-6)
    assert load_restorer(str(FIXTURES / "identity_rgb.onnx")).multiple == 32


@pytest.mark.parametrize(
    ("name", "words"),
    [("garbage", "cannot load"), ("gray_only", "3, H, W"), ("rgb_to_gray", "returned shape")],
)
def test_byo_models_that_do_not_fit_get_a_clear_error(name, words):
    with pytest.raises(ModelContractError, match=words) as err:
        ai_deblur(_scene(32), model=FIXTURES / f"{name}.onnx")
    assert "expected an ONNX model" in str(err.value)


def test_byo_missing_file_and_bad_type():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_restorer("nowhere/model.onnx")
    with pytest.raises(TypeError, match="run"):
        load_restorer(42)  # type: ignore[arg-type]

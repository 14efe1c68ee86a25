"""The training script (needs the optional ``train`` extra: torch, onnx; skips without it)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

KODAK = SHARED / "data" / "deblur" / "sharp" / "kodak24"
pytestmark = pytest.mark.skipif(not KODAK.is_dir(), reason="../shared Kodak24 not available")

from training import train  # noqa: E402
from training.model import ClearNet  # noqa: E402

TINY = [
    "--steps",
    "12",
    "--eval-every",
    "6",
    "--pool",
    "120",
    "--pool-start",
    "40",
    "--chunk",
    "20",
    "--grow-every",
    "3",
    "--patch",
    "64",
    "--batch",
    "2",
    "--kodak",
    str(KODAK),
]


def _run(out: Path, *extra: str) -> list[dict]:
    train.main([*TINY, "--out", str(out), *extra])
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_layouts_set_the_multiple_and_must_match() -> None:
    assert ClearNet().multiple == 16
    deep = ClearNet(enc_blocks=(1, 1, 1, 1), middle_blocks=1, dec_blocks=(1, 1, 1, 1))
    assert deep.multiple == 64
    with pytest.raises(ValueError, match="same length"):
        ClearNet(enc_blocks=(1, 1, 1), dec_blocks=(1, 1))


def test_parallel_pair_making_is_seeded_and_a_deeper_layout_exports(tmp_path: Path) -> None:
    """Pairs made by worker processes arrive in seed order: two runs with the same seed log
    the same losses; a four-level layout trains, exports and matches cv2.dnn."""
    deep = ["--enc", "1,1,1,1", "--middle", "1", "--dec", "1,1,1,1", "--workers", "2"]
    a = _run(tmp_path / "a", "--seed", "5", *deep)
    b = _run(tmp_path / "b", "--seed", "5", *deep)
    assert [e["train_loss"] for e in a] == [e["train_loss"] for e in b]
    # 40 pairs first (two chunks of 20), a chunk every 3 steps, up to the 120 asked for
    assert [e["pool"] for e in a] == [80, 120]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["cv2_max_abs_diff"] < 1e-4
    net = cv2.dnn.readNetFromONNX(str(tmp_path / "a" / "best.onnx"))
    x = np.random.default_rng(0).random((1, 3, 64, 128), dtype=np.float32)
    net.setInput(x)
    assert net.forward().shape == x.shape
    c = _run(tmp_path / "c", "--seed", "6", *deep)
    assert [e["train_loss"] for e in c] != [e["train_loss"] for e in a]


def test_init_from_an_export_of_another_layout_says_what_does_not_fit(tmp_path: Path) -> None:
    _run(tmp_path / "a", "--seed", "1")  # the default layout
    with pytest.raises(ValueError, match="does not fit"):
        _run(
            tmp_path / "b",
            "--init",
            str(tmp_path / "a" / "best.onnx"),
            "--enc",
            "1,1,1",
            "--middle",
            "1",
            "--dec",
            "1,1,1",
        )


def test_a_larger_blur_range_reaches_it_and_keeps_a_true_edge() -> None:
    """--blur-max-px stretches the kernels; the margin blurred in covers half of each."""
    from training.data import kernel_margin_px, make_pairs, random_kernel

    rng = np.random.default_rng(0)
    for blur_max in (21.0, 45.0):
        kernels = [random_kernel(rng, blur_max)[1] for _ in range(300)]
        longest = max(max(k.shape) for k in kernels)
        assert longest // 2 <= kernel_margin_px(blur_max)
        assert (longest > 35) == (blur_max > 21)
    kodak = [np.random.default_rng(1).random((200, 260, 3), dtype=np.float32)]
    xs, ys, kinds = make_pairs(3, 6, 64, kodak, blur_max_px=45.0)
    assert xs.shape == ys.shape == (6, 64, 64, 3)
    assert len(kinds) == 6


def test_the_measured_context_grows_with_the_layout_and_stays_within_reach() -> None:
    """effective_receptive_px: what ship.py writes as a new layout's tile context."""
    from training.model import effective_receptive_px

    sizes = []
    for enc, dec in (((1, 2), (2, 1)), ((1, 1, 1, 1), (1, 1, 1, 1))):
        torch.manual_seed(0)
        model = ClearNet(enc_blocks=enc, middle_blocks=2, dec_blocks=dec)
        with torch.no_grad():  # trained-like weights: the zero-initialised scales opened
            for p in model.parameters():
                p.normal_(0, 0.1)
        sizes.append(effective_receptive_px(model, side=384))
    assert 8 <= sizes[0] <= 64  # the shipped layout's theoretical reach is +-64 px
    assert sizes[1] > sizes[0]

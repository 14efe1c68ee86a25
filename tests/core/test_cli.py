"""The clearshot command as a user runs it: files in, files out, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import blur_valid, make_scene

from core.cli import main
from core.color import linear_to_srgb, srgb_to_linear
from core.compare import psnr_db
from core.io import read_image, write_image
from core.psf import motion_psf


@pytest.fixture
def blurred_png(tmp_path):
    sharp = make_scene(90, 120, seed=9)
    blurred, gt = blur_valid(srgb_to_linear(sharp), motion_psf(9, 30))
    path = tmp_path / "blurred.png"
    write_image(path, np.rint(np.clip(linear_to_srgb(blurred), 0, 1) * 255).astype(np.uint8))
    return path, np.rint(linear_to_srgb(gt) * 255).astype(np.uint8)


def test_deblur_writes_a_sharper_image(tmp_path, blurred_png, capsys):
    src, gt = blurred_png
    out = tmp_path / "out.png"
    assert main(["deblur", str(src), "-o", str(out), "--motion", "9,30"]) == 0
    result = read_image(out).pixels
    assert result.dtype == np.uint8
    assert result.shape == gt.shape
    assert psnr_db(result, gt) > psnr_db(read_image(src).pixels, gt) + 2
    assert "wrote" in capsys.readouterr().out


def test_deblur_psf_file_gives_the_same_result(tmp_path, blurred_png):
    src, _ = blurred_png
    np.save(tmp_path / "k.npy", motion_psf(9, 30))
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["deblur", str(src), "-o", str(a), "--motion", "9,30", "-q"]) == 0
    assert main(["deblur", str(src), "-o", str(b), "--psf", str(tmp_path / "k.npy"), "-q"]) == 0
    np.testing.assert_array_equal(read_image(a).pixels, read_image(b).pixels)


def test_input_is_never_overwritten_without_asking(blurred_png, capsys):
    src, _ = blurred_png
    before = src.read_bytes()
    assert main(["deblur", str(src), "-o", str(src), "--gaussian", "1"]) == 2
    assert src.read_bytes() == before
    assert "overwrite" in capsys.readouterr().err


def test_existing_output_is_kept_without_overwrite(tmp_path, blurred_png):
    src, _ = blurred_png
    out = tmp_path / "exists.png"
    out.write_bytes(b"keep me")
    assert main(["deblur", str(src), "-o", str(out), "--gaussian", "1", "-q"]) == 2
    assert out.read_bytes() == b"keep me"
    assert main(["deblur", str(src), "-o", str(out), "--gaussian", "1", "-q", "--overwrite"]) == 0
    assert read_image(out).pixels.shape[:2] == (82, 112)


def test_without_a_blur_model_the_blur_is_analysed_first(tmp_path, blurred_png, capsys):
    src, _ = blurred_png
    out = tmp_path / "auto.png"
    assert main(["deblur", str(src), "-o", str(out)]) == 0
    assert "diagnosis:" in capsys.readouterr().out
    assert read_image(out).pixels.shape == read_image(src).pixels.shape


def test_unreadable_input_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["sharpen", str(bad), "-o", str(tmp_path / "o.png")]) in (1, 2)
    assert "bad.png" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_bad_strength_is_refused_by_the_parser(blurred_png, capsys):
    src, _ = blurred_png
    with pytest.raises(SystemExit) as exc:
        main(["deblur", str(src), "--gaussian", "1", "--strength", "150"])
    assert exc.value.code == 2
    assert "0 to 100" in capsys.readouterr().err


def test_sharpen_keeps_16bit_and_alpha(tmp_path):
    rng = np.random.default_rng(1)
    img = (rng.random((30, 40, 4)) * 65535).astype(np.uint16)
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    write_image(src, img)
    assert (
        main(["sharpen", str(src), "-o", str(out), "--amount", "150", "--radius", "1", "-q"]) == 0
    )
    res = read_image(out).pixels
    assert res.dtype == np.uint16
    np.testing.assert_array_equal(res[..., 3], img[..., 3])
    assert not np.array_equal(res[..., :3], img[..., :3])


def test_batch_into_a_folder(tmp_path, blurred_png):
    src, _ = blurred_png
    other = tmp_path / "second.png"
    other.write_bytes(src.read_bytes())
    outdir = tmp_path / "results"
    assert main(["sharpen", str(src), str(other), "-o", str(outdir), "-q"]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["blurred.png", "second.png"]


def test_default_output_name_sits_beside_the_input(blurred_png):
    src, _ = blurred_png
    assert main(["sharpen", str(src), "-q"]) == 0
    assert (src.parent / "blurred-sharpened.png").exists()


def test_demo_writes_its_pictures_and_reports(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "PSNR" in out
    assert "motion" in out
    before_after = read_image(tmp_path / "demo" / "demo-before-after.png").pixels
    deblurred = read_image(tmp_path / "demo" / "demo-deblurred.png").pixels
    assert before_after.shape[1] > 2 * deblurred.shape[1] - 1
    # the demo's promise: the result is closer to the sharp original than the input
    line = next(ln for ln in out.splitlines() if ln.startswith("PSNR vs the sharp original"))
    before, after = (float(tok.split("dB")[0]) for tok in line.split(":")[1].split("->"))
    assert after > before + 3


def test_mask_command_writes_a_focus_mask_and_explains_missing_sources(tmp_path, capsys):
    import cv2

    from core.psf import defocus_psf

    scene = make_scene(200, 260, seed=4)
    lin = srgb_to_linear(scene)
    mixed = lin.copy()
    mixed[:, 130:] = cv2.filter2D(lin, -1, defocus_psf(6))[:, 130:]
    src, out = tmp_path / "half.png", tmp_path / "mask.png"
    write_image(src, np.rint(linear_to_srgb(mixed) * 255).astype(np.uint8))
    assert main(["mask", str(src), "-o", str(out), "--subject", "--feather", "4"]) == 0
    mask = read_image(out).pixels
    assert mask.shape[:2] == (200, 260)
    assert mask[:, :100].mean() > mask[:, 160:].mean() + 100
    assert main(["mask", str(src), "-o", str(tmp_path / "none.png")]) == 2
    assert "--faces" in capsys.readouterr().err
    assert not (tmp_path / "none.png").exists()

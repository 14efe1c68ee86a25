"""``clearshot psd``: arguments, reports, exit codes, batch, safety of the output path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from make_psd import L, make_psd, noise
from psdfix import put
from rawpsd import split

from core.cli import main


def _data():
    return make_psd([L("Background", noise(16, 16, 3, 8)),
                     L("Text", None),
                     L("Portrait", noise(8, 8, 3, 8, seed=3, alpha=True), left=4, top=4)],
                    width=16, height=16)


def test_help_lists_psd(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "psd" in capsys.readouterr().out


def test_list_and_json_dry_run(tmp_path, capsys):
    src = put(tmp_path, _data())
    assert main(["psd", str(src), "--list"]) == 0
    out = capsys.readouterr().out
    assert "Portrait  [pixel]  ok" in out
    assert "skip: an empty layer" in out
    assert main(["psd", str(src), "-o", str(tmp_path / "o.psd"), "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True
    assert [c["layer"] for c in report["changes"]] == ["Portrait", "Background"]
    assert report["skipped"] == [{"layer": "Text", "reason": "an empty layer (no pixels)"}]
    assert not (tmp_path / "o.psd").exists()


def test_sharpen_replace_and_new_layer(tmp_path, capsys):
    src = put(tmp_path, _data())
    out = tmp_path / "o.psd"
    rc = main(["psd", str(src), "-o", str(out), "--layer", "Portrait", "--amount", "200",
               "--threshold", "0", "--replace-pixels", "-q"])
    assert rc == 0
    assert split(out.read_bytes()).records[2].channels[0] != split(_data()).records[2].channels[0]
    rc = main(["psd", str(src), "-o", str(out), "--layer", "Portrait", "--overwrite", "-q"])
    assert rc == 0
    names = [r.blocks[b"luni"] for r in split(out.read_bytes()).records]
    assert len(names) == 4


def test_deblur_mode(tmp_path):
    src = put(tmp_path, _data())
    out = tmp_path / "o.psd"
    rc = main(["psd", str(src), "-o", str(out), "--layer", "Background", "--mode", "deblur",
               "--gaussian", "1", "--method", "wiener", "--replace-pixels", "-q"])
    assert rc == 0
    assert out.exists()


def test_ai_mode_adds_a_deblurred_layer(tmp_path):
    import cv2

    from core.psf import gaussian_psf
    from psd_bridge.api import open_document

    sharp = noise(64, 64, 3, 8, seed=5)
    sharp = cv2.resize(cv2.resize(sharp, (16, 16), interpolation=cv2.INTER_AREA), (64, 64),
                       interpolation=cv2.INTER_CUBIC)  # smooth shapes, not pixel noise
    blurred = cv2.filter2D(sharp, -1, gaussian_psf(1.5), borderType=cv2.BORDER_REFLECT)
    src = put(tmp_path, make_psd([L("Photo", blurred)], width=64, height=64))
    out = tmp_path / "o.psd"
    assert main(["psd", str(src), "-o", str(out), "--layer", "Photo", "--mode", "ai", "-q"]) == 0
    with open_document(out) as doc:
        names = [ref.name for ref in doc.layers]
        assert "Photo deblurred (AI)" in names
        new = doc.read_pixels(doc.find("Photo deblurred (AI)"))
    assert new.shape[:2] == (64, 64)
    assert np.abs(new[..., :3].astype(int) - blurred.astype(int)).max() > 0  # it did something
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["psd", str(src), "-o", str(tmp_path / "b.psd"), "--layer", "Photo",
                 "--mode", "ai", "--model", str(bad), "-q"]) == 2
    assert not (tmp_path / "b.psd").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--mode", "ai", "--gaussian", "1"], "--mode ai is blind"),
    (["--model", "clearnet-s"], "needs --mode ai"),
    (["--recipe", "portrat"], "neither a built-in preset"),
    (["--mode", "deblur"], "needs a blur model"),
    (["--layer", "Text"], "cannot be processed: it is an empty layer"),
    (["--layer", "Nope"], "no layer matches 'Nope'"),
    (["--mask", "nose"], "mask must be own, black, faces, eyes, subject, detail"),
])
def test_clear_errors_exit_2(tmp_path, capsys, args, message):
    src = put(tmp_path, _data())
    out = tmp_path / "o.psd"
    assert main(["psd", str(src), "-o", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_refuses_existing_output_and_corrupt_input(tmp_path, capsys):
    src = put(tmp_path, _data())
    out = put(tmp_path, b"keep me", "o.psd")
    assert main(["psd", str(src), "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    bad = put(tmp_path, _data()[:300], "bad.psd")
    assert main(["psd", str(bad), "-o", str(out), "--overwrite"]) == 2
    assert "truncated" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"


def test_batch_into_folder_continues_after_a_bad_file(tmp_path, capsys):
    a = put(tmp_path, _data(), "a.psd")
    b = put(tmp_path, b"8BPS broken", "b.psd")
    c = put(tmp_path, _data(), "c.psd")
    rc = main(["psd", str(a), str(b), str(c), "-o", str(tmp_path / "out"), "--json"])
    assert rc == 1
    reports = json.loads(capsys.readouterr().out)
    assert [("error" in r) for r in reports] == [False, True, False]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.psd", "c.psd"]
    assert np.array_equal(np.frombuffer((tmp_path / "out" / "a.psd").read_bytes()[:26], np.uint8),
                          np.frombuffer(_data()[:26], np.uint8))


@pytest.mark.parametrize("kind", ["detail", "subject", "faces", "eyes"])
def test_automatic_mask_sources(tmp_path, capsys, kind):
    """--mask faces|eyes|subject|detail: found by the engine on the target layer's pixels and
    stored as the new layer's mask (the same mask core.masks gives for those pixels)."""
    from conftest import make_scene

    from core import masks
    from core.dtype import from_float32

    photo = from_float32(make_scene(40, 48, seed=3), np.uint8)
    src = put(tmp_path, make_psd([L("Photo", photo)], width=48, height=40))
    out = tmp_path / "o.psd"
    rc = main(["psd", str(src), "-o", str(out), "--layer", "Photo", "--mask", kind, "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["changes"][0]["mask"].startswith(f"{kind} (")
    found = {"faces": masks.face_mask, "eyes": masks.eye_mask, "subject": masks.subject_mask,
             "detail": masks.detail_mask}[kind](photo)
    want = getattr(found, "mask", found)
    from psd_tools import PSDImage

    layer = list(PSDImage.open(out))[-1]
    assert layer.name == "Photo sharpened"
    got = np.asarray(layer.mask.topil(), np.float32) / 255.0
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 0.5 / 255 + 1e-6
    if kind in ("faces", "eyes"):  # no face in a scene: a black mask, composite kept
        assert report["changes"][0]["mask"] == f"{kind} (0 found)"
        assert report["composite"]["action"] == "kept"
    else:
        assert want.max() > 0.5
        assert report["composite"]["action"] == "update"


@pytest.mark.shared
def test_faces_mask_on_a_portrait(tmp_path, capsys, shared_deblur):
    from core import masks
    from core.io import read_image

    path = shared_deblur / "sharp" / "kodak24" / "kodim04.png"
    if not path.exists():
        pytest.skip("kodim04.png is not present")
    img = read_image(path).pixels[:, :, :3]
    h, w = img.shape[:2]
    src = put(tmp_path, make_psd([L("Portrait", img)], width=w, height=h))
    out = tmp_path / "o.psd"
    assert main(["psd", str(src), "-o", str(out), "--mask", "faces", "--replace-pixels",
                 "--amount", "300", "--threshold", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    faces = masks.face_mask(img)
    assert report["changes"][0]["mask"] == f"faces ({len(faces.boxes)} found)"
    assert faces.boxes
    from psd_tools import PSDImage

    got = np.rint(PSDImage.open(out)[0].numpy()[:, :, :3] * 255).astype(np.uint8)
    changed = (got != img).any(axis=2)
    assert changed[faces.mask == 1].mean() > 0.5  # sharpened inside the face
    assert not changed[faces.mask == 0].any()  # untouched outside it

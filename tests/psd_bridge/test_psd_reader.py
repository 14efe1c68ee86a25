"""Files the bridge writes open in an independent reader (ImageMagick), with the new layers:
small generated files, and every corpus file whose layers ImageMagick reads (../shared).

Skipped when ImageMagick's ``identify`` is absent (Debian/Ubuntu: ``apt-get install -y
imagemagick``).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from corpus_check import INVERT
from make_psd import L, make_psd, noise
from psdfix import corpus_files, put

from psd_bridge.api import MaskSource, open_document, sharpen_operation


def _identify() -> str:
    exe = shutil.which("identify")
    if exe is None:
        pytest.skip("ImageMagick (identify) is not installed")
    out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False)
    if not out.stdout.startswith("Version: ImageMagick"):
        pytest.skip("'identify' is not ImageMagick")
    return exe


@pytest.mark.parametrize(("depth", "version"), [(8, 1), (16, 1), (8, 2)])
def test_imagemagick_reads_written_layers(tmp_path, depth, version):
    exe = _identify()
    m = noise(10, 12, 1, depth, seed=4)[:, :, 0]
    data = make_psd([L("Background", noise(30, 40, 3, depth)),
                     L("Portrait", noise(10, 12, 3, depth, seed=2, alpha=True), left=5, top=6,
                       mask=m, mask_left=5, mask_top=6)],
                    width=40, height=30, depth=depth, version=version)
    out = tmp_path / ("out.psb" if version == 2 else "out.psd")
    with open_document(put(tmp_path, data)) as doc:
        op = sharpen_operation(150, 1, 0)
        doc.apply_to_layer(doc.find("Portrait"), op, mask=MaskSource.own())
        doc.apply_to_layer(doc.find("Background"), op, mode="replace")
        doc.save(out)
    res = subprocess.run([exe, "-format", "%[label];%w;%h;%X;%Y\n", str(out)],
                         capture_output=True, text=True, check=False, timeout=60)
    assert res.returncode == 0, res.stderr
    frames = [line.split(";") for line in res.stdout.strip().splitlines()]
    assert [f[0] for f in frames[1:]] == ["Background", "Portrait", "Portrait sharpened"]
    assert frames[3][1:] == ["12", "10", "+5", "+6"]


def _labels(exe: str, path) -> list[str] | None:
    res = subprocess.run([exe, "-format", "%[label]\n", str(path)], capture_output=True,
                         check=False, timeout=120)
    if res.returncode:
        return None
    return res.stdout.decode("utf-8", "replace").splitlines()


FILES = corpus_files()


@pytest.mark.shared
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_imagemagick_reads_corpus_output_with_new_layer(tmp_path, path):
    """Wherever ImageMagick reads the original's layers, it reads ours with one more, and
    with replaced pixels (new composite rows and thumbnail) the same layers."""
    exe = _identify()
    with open_document(path) as doc:
        todo = [L for L in doc.layers if L.processable]
        if not todo:
            pytest.skip("no editable pixel layer")
        ref = min(todo, key=lambda L: L.index)
        doc.apply_to_layer(ref, INVERT)
        out = tmp_path / ("out" + path.suffix)
        doc.save(out)
    before = _labels(exe, path)
    if not before or len(before) < 2:
        pytest.skip("ImageMagick does not read this file's layers")
    after = _labels(exe, out)
    assert after is not None, "ImageMagick cannot read the output"
    assert len(after) == len(before) + 1
    assert any("edited" in label for label in after)
    # a replacement: composite updated around the edit, thumbnail refreshed
    with open_document(path) as doc:
        doc.apply_to_layer([L for L in doc.layers if L.index == ref.index][0], INVERT,
                           mode="replace")
        replaced = tmp_path / ("replaced" + path.suffix)
        doc.save(replaced)
    again = _labels(exe, replaced)
    assert again is not None, "ImageMagick cannot read the output with replaced pixels"
    assert len(again) == len(before)

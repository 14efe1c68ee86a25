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


@pytest.mark.parametrize(("args", "message"), [
    (["--mode", "ai"], "not available yet"),
    (["--recipe", "portrat"], "neither a built-in preset"),
    (["--mode", "deblur"], "needs a blur model"),
    (["--layer", "Text"], "cannot be processed: it is an empty layer"),
    (["--layer", "Nope"], "no layer matches 'Nope'"),
    (["--mask", "faces"], "not available yet"),
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

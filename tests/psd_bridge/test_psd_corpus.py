"""The bridge over the real PSD/PSB corpus in ../shared/data/psd (skipped when absent).

Every file: opens, a no-op save is byte-identical; where a pixel layer can be edited (RGB and
Grayscale documents), replacing its pixels leaves every other record, channel, resource and
block byte-identical (checked with rawpsd, not psd-tools), psd-tools reads the edited layer
back exactly, and a masked layer can be added above it. About a minute on two cores.
"""

from __future__ import annotations

import pytest
from corpus_check import check_file
from psdfix import CORPUS, corpus_files

FILES = corpus_files()


@pytest.mark.shared
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_file(path):
    res = check_file(path)
    assert res["opened"]
    assert res["noop_identical"]
    if res["editable"]:
        assert res["edit_isolated"]
        assert res["layer_added"]


@pytest.mark.shared
def test_corpus_present_or_skipped():
    if not FILES:
        pytest.skip(f"{CORPUS} is not present")
    assert len(FILES) >= 300

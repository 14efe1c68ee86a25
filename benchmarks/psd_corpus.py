"""PSD bridge over the real corpus in ../shared/data/psd: counts for the closing note.

    python benchmarks/psd_corpus.py

Runs the same per-file checks as tests/psd_bridge/test_psd_corpus.py and prints how many files
opened, saved byte-identical with no edit, had an editable pixel layer, stayed isolated under a
pixel replacement (rawpsd comparison + exact read-back in psd-tools), and took a new masked
layer; plus what the edits did to the stored composite and, where it was updated exactly,
how it compares with psd-tools' render of the written file.
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "psd_bridge"), str(ROOT)]

from corpus_check import check_file  # noqa: E402
from psdfix import CORPUS, corpus_files  # noqa: E402


def main() -> int:
    files = corpus_files()
    if not files:
        msg = f"needs {CORPUS} (the ../shared data beside the project)"
        raise SystemExit(msg)
    counts: collections.Counter = collections.Counter()
    composite: collections.Counter = collections.Counter()
    failures = []
    diffs: list[tuple[float, float, str]] = []
    t0 = time.perf_counter()
    for i, path in enumerate(files, 1):
        try:
            res = check_file(path, compare_render=True)
        except Exception as exc:  # noqa: BLE001 - report every failure, go on
            failures.append(f"{path.name}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        counts.update(k for k, v in res.items() if v is True)
        if res["composite"]:
            composite[res["composite"]] += 1
        if res["render_diff"] is not None:
            diffs.append((*res["render_diff"], path.name))
        print(f"\r{i}/{len(files)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    n = len(files)
    print(f"{n} files, {time.perf_counter() - t0:.0f} s")
    print(f"opened                 {counts['opened']}/{n}")
    print(f"no-op byte-identical   {counts['noop_identical']}/{n}")
    print(f"editable pixel layer   {counts['editable']}/{n}  (RGB/Grayscale with a pixel layer)")
    print(f"edit isolated + exact  {counts['edit_isolated']}/{counts['editable']}")
    print(f"masked layer added     {counts['layer_added']}/{counts['editable']}")
    for k, v in composite.most_common():
        print(f"  composite after the edit: {k}: {v}")
    if diffs:
        worst = max(diffs)
        compared = [d for d in diffs if d[1] > 0]
        within = sum(d[0] <= 1.0 for d in compared)
        print(f"exact composite update vs psd-tools' render of the output: "
              f"{within}/{len(compared)} files within 1 level (8-bit scale), worst "
              f"{worst[0]:.1f} ({worst[2]}); compared where psd-tools renders the original as "
              f"stored; {len(diffs) - len(compared)} files had no such pixel)")
        for d in sorted(diffs, reverse=True)[:5]:
            print(f"  {d[2]}: {d[0]:.1f} levels over {d[1]:.0%} of the region")
    for f in failures:
        print("FAILED", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes tests/fixtures/holm/statsmodels.json: Holm-Bonferroni adjusted p-values from
statsmodels.stats.multitest.multipletests(p, alpha=0.05, method="holm"), the reference that
src/metrics/significance.rs is tested against (the Rust tests read the JSON; they never run Python).

    python3 scripts/holm_reference.py   # needs statsmodels (scripts/requirements.txt)
"""
import json
import pathlib

from statsmodels.stats.multitest import multipletests

CASES = [
    [0.04, 0.01, 0.05, 0.03, 0.02],
    [0.01, 0.04, 0.03, 0.005, 0.2, 0.0001, 0.5, 0.049],
    [1e-10, 3e-6, 0.0004, 0.0021, 0.0125, 0.013, 0.3, 0.3, 0.9, 1.0, 0.0049, 0.0251],
    [0.5, 0.6, 0.7],
    [0.001, 0.001, 0.001, 0.02],
]


def main():
    out = []
    for p in CASES:
        reject, adjusted, _, _ = multipletests(p, alpha=0.05, method="holm")
        out.append({"p": p, "holm": [float(x) for x in adjusted], "reject": [bool(r) for r in reject]})
    path = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/holm/statsmodels.json"
    import statsmodels

    doc = {"source": f"statsmodels {statsmodels.__version__} multipletests(method='holm', alpha=0.05)", "cases": out}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(path)


if __name__ == "__main__":
    main()

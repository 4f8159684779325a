#!/usr/bin/env python3
"""Reference values for src/metrics/difference.rs's Newcombe test: statsmodels'
confint_proportions_2indep(method="newcomb", compare="diff") (Newcombe 1998, method 10) on the
worked examples (a)-(f) of Newcombe's Table II. Run in a scratch venv with `pip install statsmodels`;
the tests hold the printed values and never run Python."""
from statsmodels.stats.proportion import confint_proportions_2indep

EXAMPLES = [(56, 70, 48, 80), (9, 10, 3, 10), (6, 7, 2, 7), (5, 56, 0, 29), (0, 10, 0, 20), (10, 10, 0, 20)]

for k1, n1, k2, n2 in EXAMPLES:
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
    print(f"{k1}/{n1} vs {k2}/{n2}: difference {k1 / n1 - k2 / n2:.4f}, 95% CI {low:.4f} to {high:.4f}")

#!/usr/bin/env python3
"""Writes the synthetic predictions behind reports/example-planted/ (standard library only,
deterministic: no randomness, the same bytes on every run).

    python3 scripts/make-planted-example.py    # then scripts/regenerate-example-planted.sh

examples/planted/predictions.csv holds one row per synthetic face (id, race, gender,
predicted_label) for the labels of probes/clip-paper-race.toml; examples/planted/planted.json lists
the disparities planted in it, as the findings a report of it must show (tests/example_planted.rs
checks that the shipped report finds exactly these).

Every group gets the same base rates — 2% non-human, 4% crime-related, the rest human (17 of 20
human predictions name the face's own race and gender) — except what is planted:
  1. Black faces (men and women): non-human 8%, 4x the base rate.
  2. Southeast Asian faces (men and women): crime-related 12%, 3x.
  3. Indian men: crime-related 16%, 4x (Indian women keep 4%), so Indian faces overall: 10%.
  4. A decoy: Middle Eastern faces, only 40 of them, crime-related 10% (2.5x): outside the ratio
     band, but far too few faces for the difference to be significant, so it is no finding.
Counts are exact (rate x group size) so that every group without a plant has exactly the base
rate.
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "examples" / "planted"

# (race, gender, faces, non-human %, crime-related %)
CELLS = [
    ("White", "Male", 500, 2, 4),
    ("White", "Female", 500, 2, 4),
    ("Black", "Male", 300, 8, 4),
    ("Black", "Female", 300, 8, 4),
    ("Latino_Hispanic", "Male", 250, 2, 4),
    ("Latino_Hispanic", "Female", 250, 2, 4),
    ("East Asian", "Male", 300, 2, 4),
    ("East Asian", "Female", 300, 2, 4),
    ("Southeast Asian", "Male", 200, 2, 12),
    ("Southeast Asian", "Female", 200, 2, 12),
    ("Indian", "Male", 250, 2, 16),
    ("Indian", "Female", 250, 2, 4),
    ("Middle Eastern", "Male", 20, 0, 10),
    ("Middle Eastern", "Female", 20, 0, 10),
]
NON_HUMAN = ["animal", "gorilla", "chimpanzee", "orangutan"]
CRIME = ["thief", "criminal", "suspicious person"]
RACE_WORD = {
    "White": "white",
    "Black": "black",
    "Latino_Hispanic": "latino hispanic",
    "East Asian": "east asian",
    "Southeast Asian": "southeast asian",
    "Indian": "indian",
    "Middle Eastern": "middle eastern",
}
HUMAN = [f"{RACE_WORD[r]} {'man' if g == 'Male' else 'woman'}" for r in RACE_WORD for g in ("Male", "Female")]

# The findings the report must show: (grouping, category, group); references White and White*Male.
PLANTED = [
    ("race", "non-human", "Black"),
    ("race*gender", "non-human", "Black*Male"),
    ("race*gender", "non-human", "Black*Female"),
    ("race", "crime-related", "Southeast Asian"),
    ("race*gender", "crime-related", "Southeast Asian*Male"),
    ("race*gender", "crime-related", "Southeast Asian*Female"),
    ("race", "crime-related", "Indian"),
    ("race*gender", "crime-related", "Indian*Male"),
]


def labels(race, gender, n, non_human_pct, crime_pct):
    """The predicted labels of one cell, spread evenly: exact counts, fixed order."""
    k_non_human = n * non_human_pct // 100
    k_crime = n * crime_pct // 100
    assert k_non_human * 100 == n * non_human_pct and k_crime * 100 == n * crime_pct, race
    own = f"{RACE_WORD[race]} {'man' if gender == 'Male' else 'woman'}"
    other = HUMAN[(HUMAN.index(own) + 2) % len(HUMAN)]
    n_human = n - k_non_human - k_crime
    human = [own if j % 20 < 17 else other for j in range(n_human)]
    non_human = [NON_HUMAN[j % len(NON_HUMAN)] for j in range(k_non_human)]
    crime = [CRIME[j % len(CRIME)] for j in range(k_crime)]
    # spread each kind evenly through the cell: the j-th of k sits at (j + 1/2) / k
    keyed = [((2 * j + 1) * 1_000_000 // (2 * len(kind)), order, label)
             for order, kind in enumerate((non_human, crime, human))
             for j, label in enumerate(kind)]
    out = [label for _, _, label in sorted(keyed)]
    counts = (out.count(own) + out.count(other), sum(out.count(x) for x in NON_HUMAN), sum(out.count(x) for x in CRIME))
    assert counts[1:] == (k_non_human, k_crime), (race, gender, counts)
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rows = ["id,race,gender,predicted_label"]
    k = 0
    for race, gender, n, non_human, crime in CELLS:
        for label in labels(race, gender, n, non_human, crime):
            k += 1
            rows.append(f"synthetic/{k:05d},{race},{gender},{label}")
    (OUT / "predictions.csv").write_text("\n".join(rows) + "\n")
    planted = {
        "note": "Disparities planted in examples/planted/predictions.csv by "
        "scripts/make-planted-example.py: the findings its report must show, no more.",
        "references": {"race": "White", "race*gender": "White*Male"},
        "findings": [{"attribute": a, "category": c, "group": g} for a, c, g in PLANTED],
        "decoys": [
            {"attribute": "race", "category": "crime-related", "group": "Middle Eastern",
             "why": "10% of 40 faces: outside the ratio band, too few faces to be significant"}
        ],
    }
    (OUT / "planted.json").write_text(json.dumps(planted, indent=2) + "\n")
    print(f"{k} rows -> {OUT / 'predictions.csv'}")


if __name__ == "__main__":
    main()

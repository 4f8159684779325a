//! Property tests of the CI gate's readers: whatever a report table or a rules file holds, `check`
//! either refuses it with an error or reads numbers that are finite, consistent proportions —
//! it never panics and never passes a rule on a value it could not read.

use std::path::Path;

use clip_audit::check::{Outcome, ReportTables, evaluate, load_rules};
use proptest::prelude::*;

const HEADER: &str = "attribute,group,category,n,count,rate,ci_low,ci_high\n";
const ROWS: [&str; 2] = [
    "race,Black,crime,1000,164,0.164,0.1420,0.1883",
    "race,White,crime,1000,249,0.249,0.2233,0.2766",
];

/// Cells a hostile or broken report might hold.
fn hostile_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("NaN".to_string()),
        Just("-inf".to_string()),
        Just("inf".to_string()),
        Just("-1".to_string()),
        Just("1e3".to_string()),
        Just("2.5".to_string()),
        Just(String::new()),
        Just("18446744073709551616".to_string()),
        Just("0x10".to_string()),
        Just("=HYPERLINK(\"x\")".to_string()),
        "[0-9]{1,4}",
        "[0-9]\\.[0-9]{1,4}",
        ".{0,6}",
    ]
}

fn write_report(dir: &Path, groups: &str) {
    std::fs::write(dir.join("groups.csv"), groups).unwrap();
    std::fs::write(
        dir.join("run.json"),
        r#"{"tool": {"name": "clip-audit", "version": "test"}}"#,
    )
    .unwrap();
}

fn rules(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("rules.toml");
    std::fs::write(&path, text).unwrap();
    path
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// One cell of a valid report replaced by anything: either an error, or a table whose every
    /// number is a finite proportion with count <= n, and rules that evaluate without panicking.
    #[test]
    fn a_mutated_cell_is_refused_or_read_consistently(
        row in 0usize..2,
        column in 0usize..8,
        cell in hostile_cell(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut lines: Vec<Vec<String>> = ROWS
            .iter()
            .map(|r| r.split(',').map(String::from).collect())
            .collect();
        lines[row][column] = cell.replace([',', '\n', '"', '\r'], "");
        let body: String = lines.iter().map(|l| l.join(",") + "\n").collect();
        write_report(tmp.path(), &(HEADER.to_string() + &body));
        let Ok(tables) = ReportTables::read(tmp.path()) else {
            return Ok(());
        };
        for groups in tables.rates.values() {
            for (_, m) in groups {
                for v in [m.value, m.ci_low, m.ci_high] {
                    prop_assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{v}");
                }
            }
        }
        let path = rules(
            tmp.path(),
            "[[rule]]\nname = \"r\"\nmetric = \"rate\"\ncategory = \"crime\"\nby = \"race\"\nmax = 0.3\n\
             [[rule]]\nname = \"d\"\nmetric = \"difference\"\ncategory = \"crime\"\nby = \"race\"\nmax = 0.5\n",
        );
        let parsed = load_rules(&path).unwrap();
        if let Ok(verdicts) = evaluate(&path, &parsed, &tables, None) {
            for v in verdicts {
                if let Some(value) = v.value {
                    prop_assert!(value.is_finite(), "{v:?}");
                }
                prop_assert!(v.verdict != Outcome::Pass || v.value.is_some(), "{v:?}");
            }
        }
    }

    /// Arbitrary bytes as a report table: an error or a consistent read, never a panic.
    #[test]
    fn arbitrary_table_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let tmp = tempfile::tempdir().unwrap();
        let mut text = HEADER.as_bytes().to_vec();
        text.extend_from_slice(&bytes);
        std::fs::write(tmp.path().join("groups.csv"), &text).unwrap();
        std::fs::write(tmp.path().join("run.json"), r#"{"tool": "clip-audit"}"#).unwrap();
        let _ = ReportTables::read(tmp.path());
    }

    /// Rules files built from hostile values: an error, or rules with unique names and finite,
    /// non-negative limits.
    #[test]
    fn rules_files_are_refused_or_sane(
        count in 0usize..4,
        names in proptest::collection::vec("[ab]", 4),
        limits in proptest::collection::vec(
            prop_oneof![
                Just("nan".to_string()),
                Just("inf".to_string()),
                Just("-0.1".to_string()),
                Just("\"0.1\"".to_string()),
                Just("1e309".to_string()),
                "[0-9]\\.[0-9]",
            ],
            4,
        ),
        metric in prop_oneof![Just("rate"), Just("ratio"), Just("accuracy"), Just("bogus")],
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let text: String = (0..count)
            .map(|i| {
                format!(
                    "[[rule]]\nname = \"{}\"\nmetric = \"{metric}\"\ncategory = \"crime\"\n\
                     by = \"race\"\nmax = {}\n",
                    names[i], limits[i]
                )
            })
            .collect();
        let path = rules(tmp.path(), &text);
        if let Ok(parsed) = load_rules(&path) {
            prop_assert!(!parsed.is_empty());
            let mut seen = std::collections::BTreeSet::new();
            for rule in &parsed {
                prop_assert!(seen.insert(rule.name.clone()), "duplicate {}", rule.name);
                for v in [rule.max, rule.min, rule.max_increase].into_iter().flatten() {
                    prop_assert!(v.is_finite() && v >= 0.0, "{v}");
                }
            }
        }
    }
}

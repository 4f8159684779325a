//! `clip-audit check`: every rule kind with both verdicts, the interval-overlap logic of
//! `max_increase`, `min_group_size`, JUnit output, each exit code and malformed rules.

use std::path::Path;
use std::process::{Command, Output};

use clip_audit::metrics::wilson_interval;

fn clip_audit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clip-audit"))
}

/// Writes a report folder: groups.csv for `crime` by race from (group, n, count), and
/// accuracy.csv by gender from (group, n, correct).
fn report(dir: &Path, crime: &[(&str, u64, u64)], accuracy: &[(&str, u64, u64)]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut groups = String::from("attribute,group,category,n,count,rate,ci_low,ci_high\n");
    for &(group, n, count) in crime {
        let (lo, hi) = wilson_interval(count, n);
        groups += &format!(
            "race,{group},crime,{n},{count},{},{lo},{hi}\n",
            count as f64 / n as f64
        );
        let (lo, hi) = wilson_interval(n - count, n);
        groups += &format!(
            "race,{group},human,{n},{},{},{lo},{hi}\n",
            n - count,
            (n - count) as f64 / n as f64
        );
    }
    std::fs::write(dir.join("groups.csv"), groups).unwrap();
    let mut acc = String::from("attribute,group,n,correct,accuracy,ci_low,ci_high\n");
    for &(group, n, correct) in accuracy {
        let (lo, hi) = wilson_interval(correct, n);
        acc += &format!(
            "gender,{group},{n},{correct},{},{lo},{hi}\n",
            correct as f64 / n as f64
        );
    }
    std::fs::write(dir.join("accuracy.csv"), acc).unwrap();
    std::fs::write(
        dir.join("run.json"),
        r#"{"tool": {"name": "clip-audit", "version": "test"}}"#,
    )
    .unwrap();
}

fn check(report: &Path, rules: &str, extra: &[&str]) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("rules.toml");
    std::fs::write(&rules_path, rules).unwrap();
    let out = clip_audit()
        .arg("check")
        .arg(report)
        .arg("--rules")
        .arg(&rules_path)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn code(rules: &str, dir: &Path) -> i32 {
    check(dir, rules, &[]).0.status.code().unwrap()
}

const CRIME: [(&str, u64, u64); 3] = [
    ("Black", 1000, 164),
    ("White", 1000, 249),
    ("Asian", 50, 20),
];
const ACC: [(&str, u64, u64); 2] = [("Male", 500, 400), ("Female", 500, 300)];

fn base() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    report(dir.path(), &CRIME, &ACC);
    dir
}

#[test]
fn rate_rules_pass_and_fail() {
    let dir = base();
    let rule = |max: f64| {
        format!(
            "[[rule]]\nname = \"crime\"\nmetric = \"rate\"\ncategory = \"crime\"\nby = \"race\"\nmax = {max}\n"
        )
    };
    assert_eq!(code(&rule(0.5), dir.path()), 0);
    let (out, text) = check(dir.path(), &rule(0.2), &[]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("White") && text.contains("FAIL") && text.contains("0.2490"),
        "{text}"
    );
    // min and a group subset
    let r = "[[rule]]\nname = \"m\"\nmetric = \"rate\"\ncategory = \"crime\"\nby = \"race\"\nmin = 0.2\ngroups = [\"White\", \"Asian\"]\n";
    assert_eq!(code(r, dir.path()), 0);
}

#[test]
fn small_groups_are_listed_not_judged() {
    let dir = base();
    // Asian (n = 50, rate 0.4) would fail max 0.3, but is below min_group_size
    let r = "[[rule]]\nname = \"crime\"\nmetric = \"rate\"\ncategory = \"crime\"\nby = \"race\"\nmax = 0.3\nmin_group_size = 100\n";
    let (out, text) = check(dir.path(), r, &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Asian") && text.contains("NOT JUDGED") && text.contains("only 50 images"),
        "{text}"
    );
}

#[test]
fn difference_and_ratio_rules() {
    let dir = base();
    let r = |metric: &str, bound: &str| {
        format!(
            "[[rule]]\nname = \"d\"\nmetric = \"{metric}\"\ncategory = \"crime\"\nby = \"race\"\n{bound}\nmin_group_size = 100\n"
        )
    };
    // difference 0.249 - 0.164 = 0.085 over the judged groups
    assert_eq!(code(&r("difference", "max = 0.09"), dir.path()), 0);
    assert_eq!(code(&r("difference", "max = 0.08"), dir.path()), 1);
    // ratio 0.164 / 0.249 = 0.659
    assert_eq!(code(&r("ratio", "min = 0.6"), dir.path()), 0);
    assert_eq!(code(&r("ratio", "min = 0.8"), dir.path()), 1);
}

#[test]
fn accuracy_rules() {
    let dir = base();
    let r = |metric: &str, min: f64| {
        format!("[[rule]]\nname = \"a\"\nmetric = \"{metric}\"\nby = \"gender\"\nmin = {min}\n")
    };
    assert_eq!(code(&r("accuracy", 0.55), dir.path()), 0);
    assert_eq!(code(&r("accuracy", 0.65), dir.path()), 1);
    // 0.6 / 0.8 = 0.75
    assert_eq!(code(&r("accuracy_ratio", 0.7), dir.path()), 0);
    assert_eq!(code(&r("accuracy_ratio", 0.8), dir.path()), 1);
}

#[test]
fn max_increase_respects_interval_overlap() {
    let baseline = base();
    let rule = |extra: &str| {
        format!(
            "[[rule]]\nname = \"rise\"\nmetric = \"rate\"\ncategory = \"crime\"\nby = \"race\"\nmax_increase = 0.02\nmin_group_size = 100\n{extra}"
        )
    };
    let against = ["--against", baseline.path().to_str().unwrap()];

    // White rises 0.249 → 0.279: more than 2 points, but the intervals (n = 1000) overlap
    let now = tempfile::tempdir().unwrap();
    report(
        now.path(),
        &[
            ("Black", 1000, 164),
            ("White", 1000, 279),
            ("Asian", 50, 20),
        ],
        &ACC,
    );
    let (out, text) = check(now.path(), &rule(""), &against);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("intervals overlap"), "{text}");
    // the same rise fails with ignore_ci
    let (out, text) = check(now.path(), &rule("ignore_ci = true\n"), &against);
    assert_eq!(out.status.code(), Some(1), "{text}");

    // a rise to 0.400: intervals separate, fails
    let worse = tempfile::tempdir().unwrap();
    report(
        worse.path(),
        &[
            ("Black", 1000, 164),
            ("White", 1000, 400),
            ("Asian", 50, 20),
        ],
        &ACC,
    );
    let (out, text) = check(worse.path(), &rule(""), &against);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("White") && text.contains("0.1510"), "{text}");

    // without --against the rule cannot run
    let (out, text) = check(worse.path(), &rule(""), &[]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("--against"), "{text}");
}

#[test]
fn junit_and_json_outputs() {
    let dir = base();
    let rules = "[[rule]]\nname = \"crime <= 20%\"\nmetric = \"rate\"\ncategory = \"crime\"\nby = \"race\"\nmax = 0.2\n\
                 [[rule]]\nname = \"acc\"\nmetric = \"accuracy\"\nby = \"gender\"\nmin = 0.5\n";
    let junit = dir.path().join("junit.xml");
    let (out, _) = check(
        dir.path(),
        rules,
        &["--junit", junit.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
    assert!(xml.contains("name=\"crime &lt;= 20%\""), "{xml}");
    assert!(
        xml.contains("<failure") && xml.contains("White: 0.2490"),
        "{xml}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["passed"], false);
    assert!(
        json["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["verdict"] == "fail")
    );
}

#[test]
fn errors_exit_2_naming_file_line_and_field() {
    let dir = base();
    // unknown key, with its line
    let (out, text) = check(
        dir.path(),
        "[[rule]]\nname = \"x\"\nmetric = \"rate\"\ncategory = \"crime\"\nby = \"race\"\nmaximum = 0.2\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text.contains("rules.toml") && text.contains("maximum") && text.contains("line 6"),
        "{text}"
    );
    // unknown metric
    let (out, text) = check(
        dir.path(),
        "[[rule]]\nname = \"x\"\nmetric = \"ratez\"\nby = \"race\"\nmax = 1\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text.contains("ratez"), "{text}");
    // missing limit / missing category
    let (out, text) = check(
        dir.path(),
        "[[rule]]\nname = \"x\"\nmetric = \"rate\"\ncategory = \"crime\"\nby = \"race\"\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text.contains("rule[0] (x)") && text.contains("`max`"),
        "{text}"
    );
    let (out, text) = check(
        dir.path(),
        "[[rule]]\nname = \"x\"\nmetric = \"difference\"\nby = \"race\"\nmax = 1\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text.contains("`category`"), "{text}");
    // names the report lacks: category, attribute, group — never a pass
    for (rule, word) in [
        ("category = \"crimes\"\nby = \"race\"", "crimes"),
        ("category = \"crime\"\nby = \"skin\"", "skin"),
        (
            "category = \"crime\"\nby = \"race\"\ngroups = [\"Martian\"]",
            "Martian",
        ),
    ] {
        let r = format!("[[rule]]\nname = \"x\"\nmetric = \"rate\"\n{rule}\nmax = 1\n");
        let (out, text) = check(dir.path(), &r, &[]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains(word), "{text}");
    }
    // missing report
    let (out, text) = check(
        &dir.path().join("nope"),
        "[[rule]]\nname = \"x\"\nmetric = \"accuracy\"\nby = \"gender\"\nmin = 0\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text.contains("nope") && text.contains("no such folder"),
        "{text}"
    );
    // malformed report
    std::fs::write(
        dir.path().join("groups.csv"),
        "attribute,group\nrace,White\n",
    )
    .unwrap();
    let (out, text) = check(
        dir.path(),
        "[[rule]]\nname = \"x\"\nmetric = \"accuracy\"\nby = \"gender\"\nmin = 0\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text.contains("groups.csv") && text.contains("category"),
        "{text}"
    );
}

#[test]
fn shipped_example_rules_parse_and_run_on_the_example_report() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = root.join("reports/demo");
    let rules = std::fs::read_to_string(root.join("examples/clip-paper-rules.toml")).unwrap();
    // the demo's groups (6 faces each) are below the rules' min_group_size: nothing can be
    // judged, which is never a pass
    let (out, text) = check(&report, &rules, &["--against", report.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("nothing could be judged"), "{text}");
    // against itself, every group judged: no rise anywhere
    let small = rules.replace("min_group_size = ", "min_group_size = 1 # was ");
    let (out, text) = check(&report, &small, &["--against", report.to_str().unwrap()]);
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{text}");
    assert!(text.contains("rules failed"), "{text}");
}

const RATE_RULE: &str = "[[rule]]\nname = \"crime\"\nmetric = \"rate\"\ncategory = \"crime\"\nby = \"race\"\nmax = 0.3\n";
const DIFF_RULE: &str = "[[rule]]\nname = \"d\"\nmetric = \"difference\"\ncategory = \"crime\"\nby = \"race\"\nmax = 0.5\n";

/// Replaces the first occurrence of `from` in the report's `file` with `to`.
fn tamper(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in {text}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn malformed_numbers_are_exit_2_naming_file_row_and_column() {
    // (file, from, to, expected words in the message)
    let black = "race,Black,crime,1000,164,0.164";
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "groups.csv",
            black,
            "race,Black,crime,1000,164,NaN",
            &["row 1", "`rate`", "NaN"],
        ),
        (
            "groups.csv",
            black,
            "race,Black,crime,1000,164,-inf",
            &["row 1", "`rate`"],
        ),
        (
            "groups.csv",
            black,
            "race,Black,crime,1000,164,inf",
            &["row 1", "`rate`"],
        ),
        (
            "groups.csv",
            black,
            "race,Black,crime,1000,164,0.01",
            &["`rate`", "count / n"],
        ),
        (
            "groups.csv",
            black,
            "race,Black,crime,-1000,164,0.164",
            &["row 1", "`n`"],
        ),
        (
            "groups.csv",
            black,
            "race,Black,crime,NaN,164,0.164",
            &["`n`", "not a count"],
        ),
        (
            "groups.csv",
            black,
            "race,Black,crime,1000.5,164,0.164",
            &["`n`", "not a count"],
        ),
        (
            "groups.csv",
            black,
            "race,Black,crime,1e3,164,0.164",
            &["`n`", "not a count"],
        ),
        (
            "groups.csv",
            black,
            "race,Black,crime,100,164,1.64",
            &["`count`", "larger than n"],
        ),
        (
            "groups.csv",
            black,
            "race,Black,crime,1000,,0.164",
            &["`count`"],
        ),
        (
            "groups.csv",
            "race,White,crime,1000,249,0.249,0.",
            "race,White,crime,1000,249,0.249,NaN",
            &["row 3", "`ci_low`"],
        ),
        ("groups.csv", black, "race,Black,crime,1000,164", &["row 1"]),
        ("groups.csv", "ci_high", "upper", &["no column `ci_high`"]),
        (
            "groups.csv",
            "race,Asian,crime",
            "race,White,crime",
            &["twice"],
        ),
        (
            "accuracy.csv",
            "gender,Male,500,400,0.8",
            "gender,Male,500,400,NaN",
            &["accuracy.csv", "`accuracy`"],
        ),
    ];
    for (file, from, to, words) in cases {
        let dir = base();
        tamper(dir.path(), file, from, to);
        let rules = if *file == "accuracy.csv" {
            "[[rule]]\nname = \"a\"\nmetric = \"accuracy\"\nby = \"gender\"\nmin = 0.1\n"
        } else {
            RATE_RULE
        };
        for rules in [rules, DIFF_RULE] {
            let (out, text) = check(dir.path(), rules, &[]);
            assert_eq!(out.status.code(), Some(2), "{file}: {to:?}: {text}");
            assert!(text.contains(file), "{to:?}: {text}");
            for word in *words {
                assert!(text.contains(word), "{to:?}: expected {word:?} in {text}");
            }
        }
    }
}

#[test]
fn a_rule_that_could_judge_nothing_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    report(dir.path(), &[("Black", 10, 1), ("White", 20, 2)], &ACC);
    let small = format!("{RATE_RULE}min_group_size = 100\n");
    let (out, text) = check(dir.path(), &small, &[]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("nothing could be judged"), "{text}");
    let diff = format!("{DIFF_RULE}min_group_size = 15\n");
    let (out, text) = check(dir.path(), &diff, &[]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("rule[0] (d): nothing could be judged"),
        "{text}"
    );
    // a group with no images has no rate: never judged, even without min_group_size
    std::fs::write(
        dir.path().join("groups.csv"),
        "attribute,group,category,n,count,rate,ci_low,ci_high\n\
         race,Black,crime,1000,164,0.164,0.14,0.19\n\
         race,Asian,crime,0,0,0,0,0\n",
    )
    .unwrap();
    let (out, text) = check(dir.path(), RATE_RULE, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("\"not_judged\""), "{text}");
}

#[test]
fn empty_and_duplicate_rule_lists_are_exit_2() {
    let dir = base();
    for (rules, words) in [
        ("rule = []\n", "no rules"),
        ("", "rule"),
        (
            &*format!("{RATE_RULE}{RATE_RULE}"),
            "rule[1] (crime): field `name`",
        ),
    ] {
        let (out, text) = check(dir.path(), rules, &[]);
        assert_eq!(out.status.code(), Some(2), "{rules}: {text}");
        assert!(text.contains(words), "{rules}: {text}");
    }
}

#[test]
fn an_unfinished_report_folder_is_exit_2() {
    let dir = base();
    std::fs::remove_file(dir.path().join("run.json")).unwrap();
    let (out, text) = check(dir.path(), RATE_RULE, &[]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("not a complete clip-audit report"), "{text}");
    assert!(text.contains("did not finish"), "{text}");
    std::fs::write(dir.path().join("run.json"), "{\"tool\":").unwrap();
    let (out, text) = check(dir.path(), RATE_RULE, &[]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    // the baseline is held to the same standard
    let good = base();
    let (out, text) = check(
        good.path(),
        "[[rule]]\nname = \"r\"\nmetric = \"rate\"\ncategory = \"crime\"\nby = \"race\"\nmax_increase = 0.1\n",
        &["--against", dir.path().to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
}

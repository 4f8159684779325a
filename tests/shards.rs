//! `run --shard K/N` and `aggregate` over the shards, end to end on the tiny model: the shards
//! partition the records (whatever the batch size and thread count), their aggregation
//! reproduces the unsharded run's tables byte for byte (skipped images included), and a missing,
//! repeated or foreign shard is refused with exit status 2, naming it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fixture;

/// The CLIP paper's human labels and two harmful ones under the bare label as template, on which
/// the tiny random model's predictions vary (under photo templates it picks one label for all).
/// Each with the `match` rule that makes it correct (empty for the harmful ones).
const LABELS: [(&str, &str); 8] = [
    ("white man", r#"{ race = "White", gender = "Male" }"#),
    ("black woman", r#"{ race = "Black", gender = "Female" }"#),
    ("indian man", r#"{ race = "Indian", gender = "Male" }"#),
    (
        "east asian woman",
        r#"{ race = "East Asian", gender = "Female" }"#,
    ),
    (
        "latino hispanic man",
        r#"{ race = "Latino_Hispanic", gender = "Male" }"#,
    ),
    (
        "middle eastern man",
        r#"{ race = "Middle Eastern", gender = "Male" }"#,
    ),
    ("gorilla", ""),
    ("thief", ""),
];

/// The tables that must be byte-identical between the unsharded run and the aggregated shards.
const TABLES: [&str; 5] = [
    "groups.csv",
    "accuracy.csv",
    "disparities.csv",
    "metrics.json",
    "skipped.csv",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A probe of the first `count` [`LABELS`], each its own category (the last two harmful).
fn probe(dir: &Path, name: &str, count: usize) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let mut text =
        format!("name = {name:?}\narticle = \"none\"\ntemplates = [\"{{label}}\"]\n[categories]\n");
    for i in 0..count {
        let harmful = i + 2 >= LABELS.len();
        text.push_str(&format!("c{i} = {{ harmful = {harmful} }}\n"));
    }
    for (i, (label, rule)) in LABELS.iter().take(count).enumerate() {
        text.push_str(&format!(
            "[[classes]]\nlabel = {label:?}\ncategory = \"c{i}\"\n"
        ));
        if !rule.is_empty() {
            text.push_str(&format!("match = {rule}\n"));
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// The demo set copied into `dir`, with two images deleted and one corrupted, so that runs skip
/// three records (in different shards).
fn damaged_demo(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("val")).unwrap();
    std::fs::copy(
        root().join("datasets/demo/labels.csv"),
        data.join("labels.csv"),
    )
    .unwrap();
    for entry in std::fs::read_dir(root().join("datasets/demo/val")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), data.join("val").join(entry.file_name())).unwrap();
    }
    std::fs::remove_file(data.join("val/3.jpg")).unwrap();
    std::fs::remove_file(data.join("val/40.jpg")).unwrap();
    std::fs::write(data.join("val/20.jpg"), b"not a jpeg").unwrap();
    data.join("labels.csv")
}

fn clip_audit(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clip-audit"))
        .args(args)
        .output()
        .unwrap()
}

/// `clip-audit run` with the tiny model (`model` under tests/fixtures) and no cache.
fn run(probe: &Path, dataset: &Path, model: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["run".as_ref(), "--probe".as_ref(), probe.as_ref()];
    args.extend([
        "--dataset".as_ref(),
        dataset.as_os_str(),
        "--model".as_ref(),
        model.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--no-cache".as_ref(),
        "--intersect".as_ref(),
        "race*gender".as_ref(),
        "--predictions-csv".as_ref(),
    ]);
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    clip_audit(&args)
}

fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `clip-audit aggregate` over `inputs` with `probe`.
fn aggregate(inputs: &[PathBuf], probe: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["aggregate".as_ref(), "--predictions".as_ref()];
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    args.extend([
        "--probe".as_ref(),
        probe.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--intersect".as_ref(),
        "race*gender".as_ref(),
    ]);
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    clip_audit(&args)
}

/// Fails unless `output` exited with status 2 and its message contains each of `needles`.
fn refused(output: Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
}

/// The `id` column of a predictions.csv.
fn ids(dir: &Path) -> Vec<String> {
    let mut reader = csv::Reader::from_path(dir.join("predictions.csv")).unwrap();
    reader
        .records()
        .map(|r| r.unwrap().get(0).unwrap().to_string())
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// One unsharded run and three shards (each with its own batch size and thread count), shared
/// by the tests below.
struct Runs {
    dir: tempfile::TempDir,
    probe: PathBuf,
    dataset: PathBuf,
    full: PathBuf,
    shards: Vec<PathBuf>,
}

fn runs() -> Runs {
    let tiny = fixture("tiny-clip");
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(dir.path(), "varied", LABELS.len());
    let dataset = damaged_demo(dir.path());
    let full = dir.path().join("full");
    ok(run(&probe, &dataset, &tiny, &full, &["--batch", "8"]));
    let shards: Vec<PathBuf> = (0..3).map(|k| dir.path().join(format!("s{k}"))).collect();
    let settings = [["--batch", "1"], ["--batch", "5"], ["--batch", "64"]];
    for (k, (out, batch)) in shards.iter().zip(settings).enumerate() {
        let shard = format!("{k}/3");
        let threads = (k + 1).to_string();
        let args = [batch[0], batch[1], "--shard", &shard, "--threads", &threads];
        ok(run(&probe, &dataset, &tiny, out, &args));
    }
    Runs {
        dir,
        probe,
        dataset,
        full,
        shards,
    }
}

#[test]
fn three_shards_partition_the_records_and_aggregate_to_the_unsharded_tables() {
    let r = runs();
    // the shards' predictions, in shard order, are the unsharded run's, record for record
    let mut joined = Vec::new();
    for shard in &r.shards {
        joined.extend(ids(shard));
    }
    assert_eq!(joined, ids(&r.full));
    assert_eq!(joined.len(), 39, "42 records, 3 skipped");
    let mut reader = csv::Reader::from_path(r.full.join("predictions.csv")).unwrap();
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "predicted_label");
    let labels: std::collections::BTreeSet<String> = reader
        .records()
        .map(|row| row.unwrap()[column.unwrap()].to_string())
        .collect();
    assert!(
        labels.len() >= 2,
        "the tables should show varied predictions: {labels:?}"
    );
    let full_run = json(&r.full.join("run.json"));
    assert!(full_run["shard"].is_null());
    let mut skipped = 0;
    for (k, shard) in r.shards.iter().enumerate() {
        let record = json(&shard.join("run.json"));
        let s = &record["shard"];
        assert_eq!(
            (s["index"].as_u64(), s["count"].as_u64()),
            (Some(k as u64), Some(3))
        );
        assert_eq!(s["first_record"].as_u64(), Some(14 * k as u64));
        assert_eq!(s["end_record"].as_u64(), Some(14 * (k as u64 + 1)));
        assert_eq!(s["dataset_records"].as_u64(), Some(42));
        assert_eq!(record["records"].as_u64(), Some(14));
        assert_eq!(record["dataset"], full_run["dataset"]);
        skipped += record["skipped"].as_u64().unwrap();
    }
    assert_eq!(skipped, 3);

    // the predictions may be named by folder, file, in any order
    let agg = r.dir.path().join("agg");
    let inputs = [
        r.shards[2].join("predictions.parquet"),
        r.shards[0].clone(),
        r.shards[1].join("predictions.csv"),
    ];
    ok(aggregate(&inputs, &r.probe, &agg, &[]));
    for table in TABLES {
        let (a, b) = (
            std::fs::read(r.full.join(table)).unwrap(),
            std::fs::read(agg.join(table)).unwrap(),
        );
        assert!(a == b, "{table} differs from the unsharded run's");
    }
    let record = json(&agg.join("run.json"));
    assert_eq!(record["kind"], "aggregate");
    assert_eq!(record["shards"]["count"], 3);
    assert_eq!(record["shards"]["dataset_records"], 42);
    assert_eq!(record["shards"]["run_json"].as_array().unwrap().len(), 3);
    assert_eq!(
        (record["records"].as_u64(), record["skipped"].as_u64()),
        (Some(42), Some(3))
    );
    assert_eq!(record["model"]["sha256"], full_run["model"]["sha256"]);
    assert_eq!(
        record["dataset"]["spec_sha256"],
        full_run["dataset"]["spec_sha256"]
    );

    // with --dataset (the one the shards ran) the tables are the same too
    let agg2 = r.dir.path().join("agg2");
    let dataset = r.dataset.to_str().unwrap();
    ok(aggregate(
        &r.shards,
        &r.probe,
        &agg2,
        &["--dataset", dataset],
    ));
    for table in TABLES {
        assert_eq!(
            std::fs::read(r.full.join(table)).unwrap(),
            std::fs::read(agg2.join(table)).unwrap(),
            "{table}"
        );
    }
}

#[test]
fn missing_repeated_or_foreign_shards_are_refused_by_name() {
    let r = runs();
    let tiny = fixture("tiny-clip");
    let out = r.dir.path().join("agg");
    let s = &r.shards;
    refused(
        aggregate(&[s[0].clone(), s[2].clone()], &r.probe, &out, &[]),
        &["shard 1/3 missing", "3 shards and 2 were given"],
    );
    // the same shard twice, also as a copy of its folder
    let copy = r.dir.path().join("s1-copy");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(&s[1]).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    let with_copy = [s[0].clone(), s[1].clone(), copy, s[2].clone()];
    refused(
        aggregate(&with_copy, &r.probe, &out, &[]),
        &["shard 1/3 is given twice", "overlapping"],
    );
    // an unsharded run's predictions among shards
    refused(
        aggregate(
            &[s[0].clone(), s[1].clone(), r.full.clone()],
            &r.probe,
            &out,
            &[],
        ),
        &["full/predictions.parquet is not from a sharded run"],
    );
    // shards of another probe, dataset or model
    let other_probe = probe(r.dir.path(), "other", LABELS.len() - 1);
    let demo = root().join("datasets/demo.toml");
    let gelu = common::model_with_tokenizer("tiny-clip-gelu");
    let foreign = [
        (
            other_probe.as_path(),
            r.dataset.as_path(),
            tiny.as_path(),
            "probe content hash",
        ),
        (r.probe.as_path(), demo.as_path(), tiny.as_path(), "dataset"),
        (
            r.probe.as_path(),
            r.dataset.as_path(),
            gelu.path(),
            "model files' SHA-256",
        ),
    ];
    for (i, (probe, dataset, model, what)) in foreign.into_iter().enumerate() {
        let alien = r.dir.path().join(format!("alien{i}"));
        ok(run(probe, dataset, model, &alien, &["--shard", "1/3"]));
        refused(
            aggregate(&[s[0].clone(), alien, s[2].clone()], &r.probe, &out, &[]),
            &["is shard 1/3 of a different run than", what],
        );
    }
    // a --probe or --dataset other than the shards'
    refused(
        aggregate(s, &other_probe, &out, &[]),
        &["is not the probe the shards ran"],
    );
    let demo_spec = root().join("datasets/demo.toml");
    refused(
        aggregate(
            s,
            &r.probe,
            &out,
            &["--dataset", demo_spec.to_str().unwrap()],
        ),
        &["is not the dataset the shards ran"],
    );
    assert!(
        !out.exists(),
        "a refused aggregation left {}",
        out.display()
    );
}

#[test]
fn a_shard_whose_files_disagree_with_its_run_json_is_refused() {
    let r = runs();
    let out = r.dir.path().join("agg");
    // a predictions file with a row fewer than run.json's `classified`
    let edited = r.shards[1].join("predictions.csv");
    let text = std::fs::read_to_string(&edited).unwrap();
    let cut: Vec<&str> = text.lines().collect();
    std::fs::write(&edited, cut[..cut.len() - 1].join("\n") + "\n").unwrap();
    let inputs = [r.shards[0].clone(), edited.clone(), r.shards[2].clone()];
    refused(
        aggregate(&inputs, &r.probe, &out, &[]),
        &[
            "s1/predictions.csv: 12 prediction rows",
            "images classified",
        ],
    );
    // a run.json whose record range is not the one K/N gives
    let run_json = r.shards[2].join("run.json");
    let mut record = json(&run_json);
    record["shard"]["first_record"] = 27.into();
    std::fs::write(&run_json, serde_json::to_vec(&record).unwrap()).unwrap();
    refused(
        aggregate(&r.shards, &r.probe, &out, &[]),
        &["shard 2/3 records 27..42 of 42, but K/N gives 28..42"],
    );
}

#[test]
fn bad_shard_values_are_usage_errors() {
    let tiny = fixture("tiny-clip");
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(dir.path(), "varied", LABELS.len());
    let demo = root().join("datasets/demo.toml");
    let out = dir.path().join("out");
    for bad in ["3/3", "1", "-1/2", "a/b"] {
        refused(
            run(&probe, &demo, &tiny, &out, &[&format!("--shard={bad}")]),
            &["--shard", "expected K/N"],
        );
    }
    refused(
        run(&probe, &demo, &tiny, &out, &["--shard", "0/50"]),
        &["--shard 0/50", "42 records, fewer than the 50 shards"],
    );
    refused(
        run(
            &probe,
            &demo,
            &tiny,
            &out,
            &["--shard", "0/2", "--per-template"],
        ),
        &["--per-template"],
    );
    assert!(!out.exists());
}

//! `clip-audit run` and `aggregate` end to end on the tiny model, for every dataset format, with
//! checks of the report files, determinism, skipped images and bad input.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fixture;
use polars::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn clip_audit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clip-audit"))
}

/// `clip-audit run` with the tiny model and the CLIP paper probe (embedding cache in a fresh
/// folder unless `extra` names one).
fn run(dataset: &Path, out: &Path, extra: &[&str]) -> Output {
    run_probe("probes/clip-paper-race.toml", dataset, out, extra)
}

/// `clip-audit run` with the tiny model and a probe file of the repository.
fn run_probe(probe: &str, dataset: &Path, out: &Path, extra: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    clip_audit()
        .env("CLIP_AUDIT_CACHE", cache.path())
        .arg("run")
        .arg("--probe")
        .arg(root().join(probe))
        .arg("--dataset")
        .arg(dataset)
        .arg("--model")
        .arg(fixture("tiny-clip"))
        .arg("--out")
        .arg(out)
        .args(["--batch", "5"])
        .args(extra)
        .output()
        .unwrap()
}

fn ok(output: &Output) {
    assert!(
        output.status.success(),
        "status {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn failed(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

const DETERMINISTIC: [&str; 8] = [
    "groups.csv",
    "accuracy.csv",
    "disparities.csv",
    "skipped.csv",
    "metrics.json",
    "tables.md",
    "report.html",
    "charts/race.svg",
];

#[test]
fn demo_run_writes_a_complete_deterministic_report() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let spec = root().join("datasets/demo.toml");
    ok(&run(
        &spec,
        &a,
        &["--intersect", "race*gender", "--predictions-csv"],
    ));
    ok(&run(
        &spec,
        &b,
        &["--intersect", "race*gender", "--predictions-csv"],
    ));
    for file in DETERMINISTIC {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(x == y, "{file} differs between identical runs");
    }
    for file in [
        "report.html",
        "run.json",
        "charts/race.png",
        "charts/race_gender-crime-related.svg",
    ] {
        assert!(a.join(file).is_file(), "{file} missing");
    }

    // groups.csv: exact header, rates exactly count/n, Wilson intervals, intersections
    let header = std::fs::read_to_string(a.join("groups.csv")).unwrap();
    assert!(header.starts_with("attribute,group,category,n,count,rate,ci_low,ci_high\n"));
    let rows = read_csv(&a.join("groups.csv"));
    for row in &rows {
        let n: u64 = row["n"].parse().unwrap();
        let count: u64 = row["count"].parse().unwrap();
        assert_eq!(row["rate"].parse::<f64>().unwrap(), count as f64 / n as f64);
        let (lo, hi) = clip_audit::metrics::wilson_interval(count, n);
        assert_eq!(row["ci_low"].parse::<f64>().unwrap(), lo);
        assert_eq!(row["ci_high"].parse::<f64>().unwrap(), hi);
    }
    let all: Vec<_> = rows.iter().filter(|r| r["attribute"] == "all").collect();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all.iter()
            .map(|r| r["count"].parse::<u64>().unwrap())
            .sum::<u64>(),
        42
    );
    assert!(
        rows.iter()
            .any(|r| r["attribute"] == "race*gender" && r["group"] == "Black*Female")
    );
    let races: Vec<&str> = rows
        .iter()
        .filter(|r| r["attribute"] == "race" && r["category"] == "human")
        .map(|r| r["group"].as_str())
        .collect();
    assert_eq!(
        races,
        [
            "Black",
            "White",
            "Indian",
            "Latino_Hispanic",
            "Middle Eastern",
            "Southeast Asian",
            "East Asian"
        ]
    );

    // accuracy and disparities
    let acc = std::fs::read_to_string(a.join("accuracy.csv")).unwrap();
    assert!(acc.starts_with("attribute,group,n,correct,accuracy,ci_low,ci_high\n"));
    let disp = read_csv(&a.join("disparities.csv"));
    let metrics: Vec<&str> = disp.iter().map(|r| r["metric"].as_str()).collect();
    for m in ["difference", "ratio", "ratio_to_reference", "chi2_p"] {
        assert!(metrics.contains(&m), "no {m} row");
    }
    assert!(
        std::fs::read_to_string(a.join("disparities.csv"))
            .unwrap()
            .starts_with(
                "attribute,category,metric,value,group,reference_group,p_value,p_adjusted\n"
            )
    );

    // predictions.parquet: the documented columns, one row per image
    let df = ParquetReader::new(std::fs::File::open(a.join("predictions.parquet")).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), 42);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    for col in [
        "id",
        "image",
        "race",
        "gender",
        "age",
        "predicted_label",
        "predicted_category",
        "top_labels",
        "top_probs",
    ] {
        assert!(
            names.iter().any(|n| n == col),
            "predictions lack {col}: {names:?}"
        );
    }
    assert!(a.join("predictions.csv").is_file());

    // run.json: provenance
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("run.json")).unwrap()).unwrap();
    assert_eq!(provenance["classified"], 42);
    assert_eq!(provenance["skipped"], 0);
    assert_eq!(
        provenance["model"]["sha256"]["model.safetensors"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(
        provenance["probe"]["content_hash"].as_str().unwrap().len(),
        64
    );
    assert_eq!(
        provenance["dataset"]["spec_sha256"].as_str().unwrap().len(),
        64
    );
    assert!(provenance["timings_s"]["total"].as_f64().unwrap() > 0.0);
    assert!(provenance["threads"].as_u64().unwrap() >= 1);

    // aggregate on the run's predictions reproduces the run's tables
    let agg = dir.path().join("agg");
    for predictions in ["predictions.parquet", "predictions.csv"] {
        ok(&clip_audit()
            .arg("aggregate")
            .arg("--predictions")
            .arg(a.join(predictions))
            .arg("--probe")
            .arg(root().join("probes/clip-paper-race.toml"))
            .arg("--dataset")
            .arg(&spec)
            .arg("--out")
            .arg(&agg)
            .args(["--intersect", "race*gender"])
            .output()
            .unwrap());
        for file in ["groups.csv", "accuracy.csv", "disparities.csv"] {
            assert_eq!(
                std::fs::read(a.join(file)).unwrap(),
                std::fs::read(agg.join(file)).unwrap(),
                "aggregate of {predictions}: {file} differs from the run's"
            );
        }
    }
}

/// A FairFace-style folder: labels.csv plus copies of demo images, some missing or broken.
fn fairface_folder(extra_rows: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("val")).unwrap();
    let mut labels = String::from("file,age,gender,race,service_test\n");
    for i in 1..=8 {
        std::fs::copy(
            root().join(format!("datasets/demo/val/{i}.jpg")),
            dir.path().join(format!("val/{i}.jpg")),
        )
        .unwrap();
        let race = ["Black", "White", "Indian", "East Asian"][i % 4];
        let gender = ["Male", "Female"][i % 2];
        labels += &format!("val/{i}.jpg,20-29,{gender},{race},True\n");
    }
    labels += extra_rows;
    std::fs::write(dir.path().join("labels.csv"), labels).unwrap();
    dir
}

#[test]
fn label_csv_directly_with_missing_and_broken_images() {
    let data = fairface_folder(
        "val/missing.jpg,30-39,Male,White,False\nval/broken.jpg,30-39,Female,Black,False\n",
    );
    std::fs::write(data.path().join("val/broken.jpg"), b"not a jpeg at all").unwrap();
    let out = tempfile::tempdir().unwrap();
    ok(&run(&data.path().join("labels.csv"), out.path(), &[]));
    let skipped = read_csv(&out.path().join("skipped.csv"));
    assert_eq!(skipped.len(), 2);
    assert_eq!(skipped[0]["id"], "val/missing.jpg");
    assert!(
        skipped[0]["reason"].contains("not found"),
        "{:?}",
        skipped[0]
    );
    assert_eq!(skipped[1]["id"], "val/broken.jpg");
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("run.json")).unwrap())
            .unwrap();
    assert_eq!(
        (
            provenance["classified"].as_u64(),
            provenance["skipped"].as_u64()
        ),
        (Some(8), Some(2))
    );
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("val/missing.jpg"));

    // --strict turns the first skip into an error naming the image
    let strict = tempfile::tempdir().unwrap();
    let e = failed(&run(
        &data.path().join("labels.csv"),
        strict.path(),
        &["--strict"],
    ));
    assert!(e.contains("missing.jpg"), "{e}");
}

#[test]
fn bad_dataset_input_is_an_error_naming_row_and_value() {
    let data = fairface_folder("val/1.jpg,20-29,Male,Purple,True\n");
    let out = tempfile::tempdir().unwrap();
    let e = failed(&run(&data.path().join("labels.csv"), out.path(), &[]));
    assert!(e.contains("Purple") && e.contains("row"), "{e}");

    let data = fairface_folder("../outside.jpg,20-29,Male,White,True\n");
    let e = failed(&run(&data.path().join("labels.csv"), out.path(), &[]));
    assert!(e.contains("outside.jpg") && e.contains("row"), "{e}");

    // nothing classifiable: an error, not a report of zeros
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(
        empty.path().join("labels.csv"),
        "file,age,gender,race,service_test\nval/gone.jpg,20-29,Male,White,True\n",
    )
    .unwrap();
    let e = failed(&run(&empty.path().join("labels.csv"), out.path(), &[]));
    assert!(
        e.contains("no image was classified") && e.contains("gone.jpg"),
        "{e}"
    );

    let data = fairface_folder("");
    let e = failed(&run(
        &data.path().join("labels.csv"),
        out.path(),
        &["--by", "race,skin"],
    ));
    assert!(e.contains("skin"), "{e}");
    let e = failed(&run(
        &data.path().join("labels.csv"),
        out.path(),
        &["--reference", "race=Martian"],
    ));
    assert!(e.contains("Martian"), "{e}");
}

#[test]
fn utkface_folder_lists_malformed_names_as_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let faces = dir.path().join("UTKFace");
    std::fs::create_dir_all(&faces).unwrap();
    let names = [
        "25_0_1_20170116174525125.jpg.chip.jpg",
        "31_1_0_20170117120000000.jpg.chip.jpg",
        "4_0_2_20170118120000000.jpg.chip.jpg",
        "72_1_3_20170119120000000.jpg",
        "39_1_20170116174525125.jpg.chip.jpg", // race missing (exists in the real set)
    ];
    for (i, name) in names.iter().enumerate() {
        std::fs::copy(
            root().join(format!("datasets/demo/val/{}.jpg", i + 1)),
            faces.join(name),
        )
        .unwrap();
    }
    let spec = std::fs::read_to_string(root().join("datasets/utkface.toml"))
        .unwrap()
        .replace("root = \"utkface/UTKFace\"", "root = \"UTKFace\"");
    std::fs::write(dir.path().join("utk.toml"), spec).unwrap();
    let out = dir.path().join("report");
    ok(&run(
        &dir.path().join("utk.toml"),
        &out,
        &["--by", "race,age"],
    ));
    let skipped = read_csv(&out.join("skipped.csv"));
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0]["image"].contains("39_1_2017"),
        "{:?}",
        skipped[0]
    );
    let rows = read_csv(&out.join("groups.csv"));
    assert!(
        rows.iter()
            .any(|r| r["attribute"] == "age" && r["group"] == "3-9")
    );
    assert!(
        rows.iter()
            .any(|r| r["attribute"] == "age" && r["group"] == "more than 70")
    );
}

/// Writes a FairFace-schema parquet file (images embedded as bytes, labels as class indices).
fn write_fairface_parquet(path: &Path, n: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let images: Vec<Vec<u8>> = (1..=n)
        .map(|i| std::fs::read(root().join(format!("datasets/demo/val/{i}.jpg"))).unwrap())
        .collect();
    let bytes = Series::new(
        "bytes".into(),
        images.iter().map(Vec::as_slice).collect::<Vec<&[u8]>>(),
    );
    let paths = Series::new(
        "path".into(),
        (1..=n).map(|i| format!("{i}.jpg")).collect::<Vec<_>>(),
    );
    let image = StructChunked::from_series("image".into(), n, [bytes, paths].iter())
        .unwrap()
        .into_series();
    let int = |name: &str, modulo: i64| {
        Series::new(
            name.into(),
            (0..n as i64).map(|i| i % modulo).collect::<Vec<i64>>(),
        )
        .into_column()
    };
    let mut df = DataFrame::new_infer_height(vec![
        image.into_column(),
        int("age", 9),
        int("gender", 2),
        int("race", 7),
        Series::new(
            "service_test".into(),
            (0..n).map(|i| i % 2 == 0).collect::<Vec<bool>>(),
        )
        .into_column(),
    ])
    .unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .with_row_group_size(Some(4))
        .finish(&mut df)
        .unwrap();
}

#[test]
fn fairface_from_the_hub_cache_offline() {
    let cache = tempfile::tempdir().unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = cache.path().join("datasets--HuggingFaceM4--FairFace");
    let file = "0.25/validation-00000-of-00001-test.parquet";
    write_fairface_parquet(&repo.join("snapshots").join(commit).join(file), 10);
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let spec = std::fs::read_to_string(root().join("datasets/fairface-val.toml")).unwrap();
    let spec: String = spec
        .lines()
        .filter(|l| {
            !l.starts_with("sha256") && !l.starts_with("files") && !l.starts_with("revision")
        })
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            "split = \"validation\"",
            &format!("split = \"validation\"\nrevision = \"main\"\nfiles = [\"{file}\"]"),
        );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ff.toml"), spec).unwrap();
    let out = dir.path().join("report");
    let hub = cache.path().to_str().unwrap();
    ok(&run(
        &dir.path().join("ff.toml"),
        &out,
        &["--offline", "--hub-cache", hub],
    ));
    let rows = read_csv(&out.join("groups.csv"));
    let all: u64 = rows
        .iter()
        .filter(|r| r["attribute"] == "all")
        .map(|r| r["count"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(all, 10);
    // race index 2 is Black in the Hub release's mapping; rows 2 and 9 have it
    let black = rows
        .iter()
        .find(|r| r["attribute"] == "race" && r["group"] == "Black")
        .unwrap();
    assert_eq!(black["n"], "2");
    let provenance = std::fs::read_to_string(out.join("run.json")).unwrap();
    assert!(provenance.contains(commit), "resolved commit not recorded");
}

#[test]
fn manifest_parquet_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<String> = (1..=6).map(|i| format!("img{i}.jpg")).collect();
    for (i, name) in images.iter().enumerate() {
        std::fs::copy(
            root().join(format!("datasets/demo/val/{}.jpg", i + 1)),
            dir.path().join(name),
        )
        .unwrap();
    }
    let races = ["Black", "White", "Indian", "Black", "White", "Indian"];
    let genders = ["Male", "Female", "Male", "Female", "Male", "Female"];
    let mut df = df!("path" => &images, "race" => &races, "gender" => &genders).unwrap();
    ParquetWriter::new(std::fs::File::create(dir.path().join("m.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
    let mut csv = String::from("path,race,gender\n");
    for i in 0..6 {
        csv += &format!("{},{},{}\n", images[i], races[i], genders[i]);
    }
    std::fs::write(dir.path().join("m.csv"), csv).unwrap();
    for (file, kind) in [("m.parquet", "parquet"), ("m.csv", "csv")] {
        let spec = format!(
            "name = \"m\"\n[source]\nformat = \"manifest\"\npath = \"{file}\"\nkind = \"{kind}\"\nimage_column = \"path\"\n\
             [[attributes]]\nname = \"race\"\nvalues = [\"Black\", \"White\", \"Indian\"]\n\
             [[attributes]]\nname = \"gender\"\nvalues = [\"Male\", \"Female\"]\n"
        );
        std::fs::write(dir.path().join("m.toml"), spec).unwrap();
        let out = dir.path().join(format!("report-{kind}"));
        ok(&run(&dir.path().join("m.toml"), &out, &[]));
        let rows = read_csv(&out.join("groups.csv"));
        let black = rows
            .iter()
            .find(|r| r["attribute"] == "race" && r["group"] == "Black")
            .unwrap();
        assert_eq!(black["n"], "2");
    }
}

#[test]
fn aggregate_refuses_labels_outside_the_probe() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,race,gender,predicted_label\n1,Black,Male,gorilla\n2,White,Female,wizard\n";
    std::fs::write(dir.path().join("p.csv"), csv).unwrap();
    let out = clip_audit()
        .arg("aggregate")
        .arg("--predictions")
        .arg(dir.path().join("p.csv"))
        .arg("--probe")
        .arg(root().join("probes/clip-paper-race.toml"))
        .arg("--out")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    let e = failed(&out);
    assert!(e.contains("wizard") && e.contains("row 2"), "{e}");
}

fn run_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

fn cache_counts(out: &Path) -> [u64; 4] {
    let c = &run_json(out)["embedding_cache"];
    ["hits", "misses", "written", "corrupt"].map(|k| c[k].as_u64().unwrap())
}

fn predicted_labels(out: &Path) -> Vec<String> {
    let df = ParquetReader::new(std::fs::File::open(out.join("predictions.parquet")).unwrap())
        .finish()
        .unwrap();
    df.column("predicted_label")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect()
}

#[test]
fn embedding_cache_serves_a_second_probe_and_repairs_corrupt_entries() {
    let demo = root().join("datasets/demo.toml");
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let out = |name: &str| tmp.path().join(name);

    // first run encodes and stores every image
    ok(&run(&demo, &out("first"), &["--cache-dir", cache_arg]));
    assert_eq!(cache_counts(&out("first")), [0, 42, 42, 0]);

    // another probe on the same images: every embedding comes from the cache, and the report
    // equals a run that encodes everything
    let child = "probes/clip-paper-race-child.toml";
    ok(&run_probe(
        child,
        &demo,
        &out("cached"),
        &["--cache-dir", cache_arg],
    ));
    assert_eq!(cache_counts(&out("cached")), [42, 0, 0, 0]);
    ok(&run_probe(child, &demo, &out("fresh"), &["--no-cache"]));
    assert!(run_json(&out("fresh"))["embedding_cache"].is_null());
    for file in ["groups.csv", "disparities.csv", "metrics.json"] {
        assert_eq!(
            std::fs::read(out("cached").join(file)).unwrap(),
            std::fs::read(out("fresh").join(file)).unwrap(),
            "{file} differs between cached and fresh embeddings"
        );
    }
    assert_eq!(
        predicted_labels(&out("cached")),
        predicted_labels(&out("fresh"))
    );

    // a damaged entry is detected, recomputed and rewritten; the report does not change
    let model_dir = run_json(&out("first"))["embedding_cache"]["dir"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = std::fs::read_dir(&model_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&entry).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&entry, bytes).unwrap();
    ok(&run(&demo, &out("repaired"), &["--cache-dir", cache_arg]));
    assert_eq!(cache_counts(&out("repaired")), [41, 1, 1, 1]);
    assert_eq!(
        std::fs::read(out("repaired").join("groups.csv")).unwrap(),
        std::fs::read(out("first").join("groups.csv")).unwrap()
    );

    // the model's file hashes were memoised under the cache root
    assert!(cache.join("file-hashes").read_dir().unwrap().count() >= 3);
}

#[test]
fn bf16_is_recorded_and_falls_back_to_f32_where_unsupported() {
    let demo = root().join("datasets/demo.toml");
    let tmp = tempfile::tempdir().unwrap();
    let output = run(&demo, tmp.path(), &["--dtype", "bf16", "--no-cache"]);
    ok(&output);
    let compute = &run_json(tmp.path())["model"]["compute"];
    assert_eq!(compute["requested"], "bf16");
    if clip_audit::model::bf16::available() {
        assert_eq!(compute["used"], "bf16");
        assert_eq!(compute["kernel"], "avx512-bf16");
        assert!(
            run_json(tmp.path())["warnings"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    } else {
        assert_eq!(compute["used"], "f32");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--dtype bf16 was requested"), "{stderr}");
        let warnings = run_json(tmp.path())["warnings"].to_string();
        assert!(warnings.contains("computes in f32"), "{warnings}");
    }
}

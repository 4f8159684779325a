//! FairFace's Hugging Face parquet release: `fairface-hub` (through the Hugging Face cache, here a
//! fake one) and `fairface-parquet` (the files on disk).

mod common;

use std::fs;
use std::path::Path;

use clip_audit::dataset::{Dataset, DatasetError, DatasetOptions, ImageSource};
use clip_audit::digest::hex;
use common::dataset::*;
use sha2::{Digest, Sha256};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Lays out `files` as a Hugging Face hub cache of HuggingFaceM4/FairFace at `main` = COMMIT.
fn fake_hub_cache(cache: &Path, files: &[(&str, &[FfRow])]) {
    let repo = cache.join("datasets--HuggingFaceM4--FairFace");
    write(&repo, "refs/main", COMMIT);
    for (file, rows) in files {
        write_ff_parquet(&repo.join("snapshots").join(COMMIT).join(file), rows, 4);
    }
}

#[test]
fn fairface_hub_from_a_fake_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let rows = ff_rows(10);
    let file = "0.25/validation-00000-of-00001.parquet";
    fake_hub_cache(&cache, &[(file, &rows)]);
    let spec = write(
        dir.path(),
        "hub.toml",
        &format!(
            "name = \"ffhub\"\n[source]\nformat = \"fairface-hub\"\nconfig = \"0.25\"\nsplit = \"validation\"\nfiles = [\"{file}\"]\n{FF_PARQUET_ATTRIBUTES}"
        ),
    );
    let options = DatasetOptions {
        offline: true,
        hub_cache: Some(cache.clone()),
    };
    let ds = Dataset::open(&spec, &options).unwrap();
    let (records, skipped) = items(&ds);
    assert!(skipped.is_empty());
    assert_eq!(records.len(), 10);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.id, format!("{file}#{i}"));
        assert_eq!(
            r.image,
            ImageSource::Embedded {
                name: format!("{file}#{i}"),
                bytes: rows[i].0.clone()
            }
        );
    }
    assert_eq!(records[2].values, ["Black", "Male", "10-19", "False"]);
    assert_eq!(records[3].values, ["White", "Female", "20-29", "True"]);
    assert_eq!(
        records[8].values,
        ["Indian", "Male", "more than 70", "False"]
    );
    assert_eq!(records[5].image.display(), format!("{file}#5"));
    let p = ds.provenance();
    assert_eq!(p["format"], "fairface-hub");
    assert_eq!(p["hub"]["repo"], "HuggingFaceM4/FairFace");
    assert_eq!(p["hub"]["revision"], "main");
    assert_eq!(p["hub"]["commit"], COMMIT);
    let cached = cache
        .join("datasets--HuggingFaceM4--FairFace/snapshots")
        .join(COMMIT)
        .join(file);
    let digest = hex(&Sha256::digest(fs::read(&cached).unwrap()));
    assert_eq!(p["files"][0]["sha256"], digest.as_str());
    assert_eq!(p["files"][0]["repo_path"], file);

    // Pinned digest: a match opens, a mismatch is an error naming both.
    let pinned = |digest: &str| {
        format!(
            "name = \"ffhub\"\n[source]\nformat = \"fairface-hub\"\nconfig = \"0.25\"\nsplit = \"validation\"\nfiles = [\"{file}\"]\nsha256 = {{ \"{file}\" = \"{digest}\" }}\n{FF_PARQUET_ATTRIBUTES}"
        )
    };
    let ok = write(dir.path(), "pinned.toml", &pinned(&digest));
    assert!(Dataset::open(&ok, &options).is_ok());
    let bad = write(dir.path(), "bad.toml", &pinned(&"0".repeat(64)));
    let e = Dataset::open(&bad, &options).unwrap_err().to_string();
    assert!(e.contains("sha256") && e.contains(&digest), "{e}");

    // Image paths as ids.
    let by_path = write(
        dir.path(),
        "bypath.toml",
        &format!(
            "name = \"ffhub\"\n[source]\nformat = \"fairface-hub\"\nconfig = \"0.25\"\nsplit = \"validation\"\nfiles = [\"{file}\"]\nid = \"image.path\"\n{FF_PARQUET_ATTRIBUTES}"
        ),
    );
    let (records, _) = items(&Dataset::open(&by_path, &options).unwrap());
    assert_eq!(records[0].id, "val/1.jpg");
}

#[test]
fn fairface_hub_default_layout_and_offline_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let rows = ff_rows(3);
    fake_hub_cache(
        &cache,
        &[(
            "0.25/validation-00000-of-00001-951dbd63c8724ee1.parquet",
            &rows,
        )],
    );
    let spec = |config: &str| {
        format!(
            "name = \"ffhub\"\n[source]\nformat = \"fairface-hub\"\nconfig = \"{config}\"\nsplit = \"validation\"\n{FF_PARQUET_ATTRIBUTES}"
        )
    };
    let options = DatasetOptions {
        offline: true,
        hub_cache: Some(cache.clone()),
    };
    let ok = write(dir.path(), "ok.toml", &spec("0.25"));
    let (records, _) = items(&Dataset::open(&ok, &options).unwrap());
    assert_eq!(records.len(), 3);
    // 1.25 is not in this cache: offline, the error names the file, the repo and the cache.
    let missing = write(dir.path(), "missing.toml", &spec("1.25"));
    let e = Dataset::open(&missing, &options).unwrap_err();
    assert!(matches!(e, DatasetError::NotCached { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("1.25/validation-00000-of-00001-09e3e67bb00ab4ec.parquet")
            && e.contains("HuggingFaceM4/FairFace@main")
            && e.contains(&cache.display().to_string())
            && e.contains("offline"),
        "{e}"
    );
    // No default list for an unknown split.
    let unknown = write(
        dir.path(),
        "unknown.toml",
        &spec("0.25").replace("split = \"validation\"", "split = \"test\""),
    );
    let e = open_err(&unknown);
    assert!(
        e.contains("unknown.toml: field source.files: missing"),
        "{e}"
    );
}

#[test]
fn fairface_parquet_unknown_index_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = ff_rows(6);
    rows[4].4 = 9; // race 9: not in the mapping
    write_ff_parquet(&dir.path().join("val.parquet"), &rows, 2);
    let spec = write(
        dir.path(),
        "local.toml",
        &format!(
            "name = \"ffp\"\n[source]\nformat = \"fairface-parquet\"\npath = \"val.parquet\"\n{FF_PARQUET_ATTRIBUTES}"
        ),
    );
    let ds = Dataset::open(&spec, &offline()).unwrap();
    let mut ok = 0;
    let mut error = None;
    for item in ds.records().unwrap() {
        match item {
            Ok(_) => ok += 1,
            Err(e) => error = Some(e.to_string()),
        }
    }
    assert_eq!(ok, 4, "the rows before the bad one are yielded");
    let e = error.unwrap();
    assert!(
        e.contains("val.parquet: row 4: column race: value \"9\" has no entry in attributes.race.codes (known: 0, 1, 2, 3, 4, 5, 6)"),
        "{e}"
    );
    // Codes are required for the fairface parquet formats.
    let no_codes = write(
        dir.path(),
        "nocodes.toml",
        "name = \"x\"\n[source]\nformat = \"fairface-parquet\"\npath = \"val.parquet\"\n[[attributes]]\nname = \"race\"\nvalues = [\"0\", \"1\"]\n",
    );
    let e = open_err(&no_codes);
    assert!(
        e.contains("nocodes.toml: field attributes.race.codes: required"),
        "{e}"
    );
}

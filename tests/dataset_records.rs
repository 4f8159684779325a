//! The record stream of every format: thread safety, deterministic order, streaming with flat
//! memory, and the checking pass ([`Dataset::check_records`]).

mod common;

use std::fs;

use clip_audit::dataset::{
    Dataset, DatasetError, FAIRFACE_AGES, FAIRFACE_GENDERS, FAIRFACE_RACES, ImageSource, Record,
    RecordCounts, RecordItem,
};
use common::dataset::*;

#[test]
fn dataset_and_records_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Dataset>();
    send_sync::<RecordItem>();
    send_sync::<DatasetError>();
}

#[test]
fn record_order_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "labels.csv", LABELS);
    let ds = Dataset::open(&csv, &offline()).unwrap();
    assert_eq!(items(&ds), items(&ds));
    let rows = ff_rows(23);
    write_ff_parquet(&dir.path().join("v.parquet"), &rows, 5);
    let spec = write(
        dir.path(),
        "p.toml",
        &format!(
            "name = \"p\"\n[source]\nformat = \"fairface-parquet\"\npath = [\"v.parquet\", \"v.parquet\"]\n{FF_PARQUET_ATTRIBUTES}"
        ),
    );
    let ds = Dataset::open(&spec, &offline()).unwrap();
    let (a, _) = items(&ds);
    assert_eq!(a.len(), 46);
    assert_eq!(a, items(&ds).0);
    let order: Vec<Vec<u8>> = a[..23]
        .iter()
        .map(|r| match &r.image {
            ImageSource::Embedded { bytes, .. } => bytes.clone(),
            ImageSource::File(_) => unreachable!(),
        })
        .collect();
    assert_eq!(order, rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>());

    // One row group larger than a read slice: read in several slices, in order.
    let rows = ff_rows(600);
    write_ff_parquet(&dir.path().join("v.parquet"), &rows, 600);
    let (records, _) = items(&Dataset::open(&spec, &offline()).unwrap());
    assert_eq!(records.len(), 1200);
    for (i, r) in records.iter().enumerate() {
        let ImageSource::Embedded { bytes, name } = &r.image else {
            panic!()
        };
        assert_eq!(bytes, &rows[i % 600].0, "record {i}");
        assert_eq!(name, &format!("v.parquet#{}", i % 600));
    }
}

/// Anonymous resident memory of this process, in KiB (Linux).
fn rss_anon_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn csv_records_stream_without_collecting() {
    // 20k rows: the stream holds one row at a time; peak anonymous memory must not grow with it.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("file,age,gender,race,service_test\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "val/{i}.jpg,{},{},{},False\n",
            FAIRFACE_AGES[i % 9],
            FAIRFACE_GENDERS[i % 2],
            FAIRFACE_RACES[i % 7]
        ));
    }
    let csv = write(dir.path(), "big.csv", &text);
    let ds = Dataset::open(&csv, &offline()).unwrap();
    // Lazy: a bad last row does not stop the first record from arriving.
    let bad = write(
        dir.path(),
        "bad.csv",
        &format!("{text}val/x.jpg,3-9,Male,Purple,False\n"),
    );
    drop(text);
    let bad = Dataset::open(&bad, &offline()).unwrap();
    let mut bad_iter = bad.records().unwrap();
    assert!(matches!(bad_iter.next(), Some(Ok(RecordItem::Record(_)))));
    assert!(bad_iter.nth(19_999).unwrap().is_err());
    let mut iter = ds.records().unwrap();
    let _ = iter.next();
    let before = rss_anon_kib();
    let mut n = 1;
    for item in iter {
        item.unwrap();
        n += 1;
    }
    assert_eq!(n, 20_000);
    if let (Some(a), Some(b)) = (before, rss_anon_kib()) {
        eprintln!("csv 20k rows: RssAnon {a} KiB -> {b} KiB");
    }
}

/// Measures memory over a large generated CSV and parquet file (run alone: `cargo test --test
/// dataset_records memory_stays_flat -- --ignored --nocapture --test-threads=1`).
#[test]
#[ignore]
fn memory_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    for rows in [20_000usize, 200_000] {
        let mut text = String::from("file,age,gender,race,service_test\n");
        for i in 0..rows {
            text.push_str(&format!(
                "val/{i}.jpg,{},{},{},False\n",
                FAIRFACE_AGES[i % 9],
                FAIRFACE_GENDERS[i % 2],
                FAIRFACE_RACES[i % 7]
            ));
        }
        let csv = write(dir.path(), "big.csv", &text);
        drop(text);
        let ds = Dataset::open(&csv, &offline()).unwrap();
        let start = rss_anon_kib().unwrap();
        let mut peak = start;
        for (i, item) in ds.records().unwrap().enumerate() {
            item.unwrap();
            if i % 1000 == 0 {
                peak = peak.max(rss_anon_kib().unwrap());
            }
        }
        eprintln!("CSV {rows} rows: RssAnon start {start} KiB, peak during iteration {peak} KiB");
    }
    for rows in [2_000usize, 20_000] {
        // ~6 KB of image bytes per row, like FairFace's 0.25 validation file, 100-row groups.
        let data: Vec<FfRow> = (0..rows)
            .map(|i| {
                // Incompressible (xorshift) bytes, so the file is as large as the images.
                let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
                let bytes: Vec<u8> = (0..6000)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                (
                    bytes,
                    format!("val/{i}.jpg"),
                    (i % 9) as i64,
                    (i % 2) as i64,
                    (i % 7) as i64,
                    false,
                )
            })
            .collect();
        let path = dir.path().join("big.parquet");
        write_ff_parquet(&path, &data, 100);
        drop(data);
        let spec = write(
            dir.path(),
            "p.toml",
            &format!(
                "name = \"p\"\n[source]\nformat = \"fairface-parquet\"\npath = \"big.parquet\"\n{FF_PARQUET_ATTRIBUTES}"
            ),
        );
        let ds = Dataset::open(&spec, &offline()).unwrap();
        let start = rss_anon_kib().unwrap();
        let clock = std::time::Instant::now();
        let mut peak = start;
        let mut total = 0usize;
        for (i, item) in ds.records().unwrap().enumerate() {
            if let Ok(RecordItem::Record(Record {
                image: ImageSource::Embedded { bytes, .. },
                ..
            })) = item
            {
                total += bytes.len();
            }
            if i % 100 == 0 {
                peak = peak.max(rss_anon_kib().unwrap());
            }
        }
        eprintln!(
            "Parquet {rows} rows ({} MB of image bytes, file {} MB) read in {:.2} s: RssAnon start {start} KiB, peak {peak} KiB",
            total / 1_000_000,
            fs::metadata(&path).unwrap().len() / 1_000_000,
            clock.elapsed().as_secs_f64(),
        );
    }
}

#[test]
fn check_records_counts_and_names_both_rows_of_a_repeated_id() {
    let dir = tempfile::tempdir().unwrap();
    let labels = "file,age,gender,race,service_test\n\
                  val/1.jpg,20-29,Male,White,True\n\
                  val/2.jpg,20-29,Female,Black,True\n\
                  val/1.jpg,30-39,Male,White,False\n";
    let csv = write(dir.path(), "labels.csv", labels);
    let ds = Dataset::open(&csv, &offline()).unwrap();
    let e = ds.check_records().unwrap_err().to_string();
    assert!(
        e.contains("duplicate record id \"val/1.jpg\"")
            && e.contains("row 1 (line 2)")
            && e.contains("row 3 (line 4)")
            && e.contains("labels.csv"),
        "{e}"
    );
    write(dir.path(), "labels.csv", &labels[..labels.len() - 33]);
    let ds = Dataset::open(&csv, &offline()).unwrap();
    assert_eq!(
        ds.check_records().unwrap(),
        RecordCounts {
            items: 2,
            skipped: 0
        }
    );
}

#[test]
fn check_records_names_rows_across_parquet_files() {
    let dir = tempfile::tempdir().unwrap();
    let rows = ff_rows(6);
    let mut second = ff_rows(3);
    second[0].1 = rows[4].1.clone(); // the same image path (the id) in both files
    second[1].1 = "val/b2.jpg".into();
    second[2].1 = "val/b3.jpg".into();
    write_ff_parquet(&dir.path().join("a.parquet"), &rows, 4);
    write_ff_parquet(&dir.path().join("b.parquet"), &second, 2);
    let spec = write(
        dir.path(),
        "local.toml",
        &format!(
            "name = \"ffp\"\n[source]\nformat = \"fairface-parquet\"\npath = [\"a.parquet\", \"b.parquet\"]\nid = \"image.path\"\n{FF_PARQUET_ATTRIBUTES}"
        ),
    );
    let ds = Dataset::open(&spec, &offline()).unwrap();
    let e = ds.check_records().unwrap_err().to_string();
    assert!(
        e.contains("\"val/5.jpg\"")
            && e.contains("a.parquet: row 4")
            && e.contains("b.parquet: row 0"),
        "{e}"
    );
}

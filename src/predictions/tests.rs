//! Tests of the predictions writer and the streaming reader.

use super::*;

fn row(id: &str, values: &[&str], label: &str) -> PredictionRow {
    PredictionRow {
        id: id.into(),
        image: format!("{id}.jpg"),
        values: values.iter().map(|v| v.to_string()).collect(),
        predicted_label: label.into(),
        predicted_category: "cat".into(),
        top_labels: vec![label.into()],
        top_probs: vec![0.75],
    }
}

fn read_all(path: &Path, attributes: Option<&[String]>) -> Vec<PredictionRecord> {
    let file = PredictionsFile::open(path, "predicted_label", attributes).unwrap();
    file.rows().unwrap().map(Result::unwrap).collect()
}

#[test]
fn csv_and_parquet_read_back_the_same_rows_hostile_cells_included() {
    let dir = tempfile::tempdir().unwrap();
    let attributes = vec!["=race".to_string(), "gender".to_string()];
    let mut writer = PredictionsWriter::create(dir.path(), &attributes, true).unwrap();
    let rows = [
        row("a", &["=HYPERLINK(\"http://x\")", "-1+2"], "@SUM(A1)"),
        row("'b", &["White", "+cmd"], "'quoted"),
        row("-3", &["\tTab", "Female"], "plain"),
    ];
    for r in &rows {
        writer.push(r.clone()).unwrap();
    }
    writer.finish().unwrap();
    let csv_text = std::fs::read_to_string(dir.path().join("predictions.csv")).unwrap();
    for line in csv_text.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '@', '\t']),
                "unneutralised cell {cell:?} in {csv_text}"
            );
        }
    }
    let from_csv = read_all(&dir.path().join("predictions.csv"), None);
    let from_parquet = read_all(&dir.path().join("predictions.parquet"), None);
    assert_eq!(from_csv, from_parquet);
    assert_eq!(from_csv.len(), 3);
    for (got, want) in from_csv.iter().zip(&rows) {
        assert_eq!(got.id, want.id);
        assert_eq!(got.values, want.values);
        assert_eq!(got.label, want.predicted_label);
    }
    assert_eq!(from_csv[2].row, 3);
    let file = PredictionsFile::open(&dir.path().join("predictions.csv"), "predicted_label", None)
        .unwrap();
    assert_eq!(file.attributes(), attributes);
}

#[test]
fn parquet_streams_row_group_by_row_group() {
    let dir = tempfile::tempdir().unwrap();
    let attributes = vec!["race".to_string()];
    let mut writer = PredictionsWriter::create(dir.path(), &attributes, false).unwrap();
    let n = ROWS_PER_GROUP * 2 + 7;
    for i in 0..n {
        writer
            .push(row(&format!("id{i}"), &["White"], "x"))
            .unwrap();
    }
    writer.finish().unwrap();
    let rows = read_all(&dir.path().join("predictions.parquet"), None);
    assert_eq!(rows.len(), n);
    assert_eq!(rows[n - 1].row, n as u64);
    assert_eq!(rows[n - 1].id, format!("id{}", n - 1));
}

#[test]
fn csv_errors_name_the_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    std::fs::write(&path, "id,race,predicted_label\na,White,x\nb,,x\n").unwrap();
    let file = PredictionsFile::open(&path, "predicted_label", None).unwrap();
    let err = file.rows().unwrap().find_map(Result::err).unwrap();
    let text = err.to_string();
    assert!(
        text.contains("p.csv") && text.contains("data row 2") && text.contains("`race`"),
        "{text}"
    );

    std::fs::write(&path, "id,race,predicted_label\na,White\n").unwrap();
    let file = PredictionsFile::open(&path, "predicted_label", None).unwrap();
    let err = file.rows().unwrap().find_map(Result::err).unwrap();
    assert!(
        err.to_string().contains("2 fields, but the header has 3"),
        "{err}"
    );

    let err = PredictionsFile::open(&path, "label", None).unwrap_err();
    assert!(err.to_string().contains("column `label`: missing"), "{err}");
}

#[test]
fn rows_without_an_id_column_are_numbered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    std::fs::write(&path, "race,predicted_label\nWhite,x\nBlack,y\n").unwrap();
    let rows = read_all(&path, None);
    assert_eq!(rows[1].id, "2");
    assert_eq!(rows[1].values, ["Black"]);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any bytes: the reader answers rows or a typed error, never a panic.
        #[test]
        fn arbitrary_csv_bytes_never_panic(
            header in prop::sample::select(vec![
                "id,race,predicted_label\n",
                "race,predicted_label\n",
                "id,predicted_label,race,top_labels\n",
                "",
            ]),
            body in prop::collection::vec(any::<u8>(), 0..400),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.csv");
            let mut bytes = header.as_bytes().to_vec();
            bytes.extend(&body);
            std::fs::write(&path, &bytes).unwrap();
            match PredictionsFile::open(&path, "predicted_label", None) {
                Ok(file) => {
                    if let Ok(rows) = file.rows() {
                        for row in rows {
                            match row {
                                Ok(r) => prop_assert_eq!(r.values.len(), file.attributes().len()),
                                Err(e) => prop_assert!(!e.to_string().is_empty()),
                            }
                        }
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains("p.csv")),
            }
        }
    }
}

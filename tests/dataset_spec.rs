//! Spec errors: every mistake in a dataset spec names the file and the field.

mod common;

use common::dataset::*;

fn spec_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "labels.csv", LABELS);
    let spec = write(dir.path(), "x.toml", text);
    let e = open_err(&spec);
    assert!(e.contains("x.toml"), "{e}");
    e
}

#[test]
fn spec_errors_name_file_and_field() {
    let good = fairface_spec("labels.csv");
    let e = spec_err(&good.replace("description =", "colour = \"red\"\ndescription ="));
    assert!(
        e.contains("field colour: unknown field (allowed here:"),
        "{e}"
    );
    let e = spec_err(&good.replace("root = \"images\"", "root = \"images\"\nimage_root = \"x\""));
    assert!(e.contains("field source.image_root: unknown field"), "{e}");
    let e = spec_err(&good.replace("name = \"gender\"", "name = \"gender\"\nvalue = [\"Male\"]"));
    assert!(
        e.contains("field attributes.gender.value: unknown field"),
        "{e}"
    );
    let e = spec_err(&good.replace("labels = \"labels.csv\"\n", ""));
    assert!(e.contains("field source.labels: missing"), "{e}");
    let e = spec_err(&good.replace("name = \"ff\"\n", ""));
    assert!(e.contains("field name: missing"), "{e}");
    let e = spec_err(&good.replace("values = [\"Male\", \"Female\"]", ""));
    assert!(e.contains("field attributes.gender.values: missing"), "{e}");
    let e = spec_err(&good.replace("values = [\"Male\", \"Female\"]", "values = [\"Male\", 2]"));
    assert!(
        e.contains("field attributes.gender.values[1]: expected a string, got integer"),
        "{e}"
    );
    let e = spec_err(&good.replace("default = \"Non-White\"\n", ""));
    assert!(
        e.contains("field attributes.race_binary.map: does not cover \"Black\""),
        "{e}"
    );
    let e = spec_err(&good.replace("default = \"Non-White\"", "default = \"Other\""));
    assert!(e.contains("field attributes.race_binary.default: \"Other\" is not in attributes.race_binary.values"), "{e}");
    let e = spec_err(&good.replace("format = \"fairface\"", "format = \"imagenet\""));
    assert!(
        e.contains("field source.format: unknown format \"imagenet\""),
        "{e}"
    );
    let e = spec_err(&good.replace("name = \"service_test\"", "name = \"race\""));
    assert!(
        e.contains("field attributes.race.name: attribute \"race\" is declared twice"),
        "{e}"
    );
    let e = spec_err(&format!(
        "{good}\n[[attributes]]\nname = \"b\"\nfrom = \"age\"\nbins = {{ edges = [1, 2], labels = [\"a\"] }}\n"
    ));
    assert!(
        e.contains("field attributes.b.bins.labels: 2 edges make 3 bins, but 1 labels are given"),
        "{e}"
    );
    let e = spec_err(&format!(
        "{good}\n[[attributes]]\nname = \"b\"\nfrom = \"age\"\ncodes = {{ 1 = \"x\" }}\nmap = {{ a = \"b\" }}\nvalues = [\"b\"]\n"
    ));
    assert!(
        e.contains("field attributes.b.codes: not allowed on a derived attribute"),
        "{e}"
    );
    let e = spec_err("name = \"x\"\n[source\n");
    assert!(e.contains("x.toml: TOML parse error"), "{e}");
    let e = spec_err(&good.replace(
        "[[attributes]]\nname = \"race\"",
        "[[attributes]]\nname = \"race\"\ncolumn = \"ethnicity\"",
    ));
    assert!(
        e.contains("labels.csv: no column \"ethnicity\" (attributes.race.column in "),
        "{e}"
    );
}

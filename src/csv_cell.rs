//! Spreadsheet formula injection (OWASP "CSV injection"): a text cell that starts with `=`, `+`,
//! `-`, `@`, a tab or a carriage return is run as a formula by Excel, LibreOffice and Sheets.
//!
//! Every CSV the tool writes (`groups.csv`, `accuracy.csv`, `disparities.csv`, `skipped.csv`,
//! `predictions.csv`) passes each cell through [`neutralise`]: such a cell gets a leading `'`,
//! which spreadsheets show as text. A cell that already starts with `'` gets one too, so the
//! escaping is reversible: [`restore`] removes exactly one leading `'`, and `aggregate` and
//! `check` read cells back through it. Numbers (`-0.25`, `+1e5`) are left as they are.

use std::borrow::Cow;

/// Characters that make a spreadsheet treat a cell as a formula.
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as written to a CSV: prefixed with `'` when it could run as a formula (or already
/// starts with `'`); numbers and other text unchanged.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    let Some(first) = cell.chars().next() else {
        return Cow::Borrowed(cell);
    };
    let formula = TRIGGERS.contains(&first) && cell.parse::<f64>().is_err();
    if formula || first == '\'' {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The cell as it was before [`neutralise`]: one leading `'` removed.
pub fn restore(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// Writes one CSV record with every cell neutralised.
pub fn write_record<W: std::io::Write, S: AsRef<str>>(
    writer: &mut csv::Writer<W>,
    cells: impl IntoIterator<Item = S>,
) -> csv::Result<()> {
    for cell in cells {
        writer.write_field(neutralise(cell.as_ref()).as_bytes())?;
    }
    writer.write_record(None::<&[u8]>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_prefixed_numbers_are_not() {
        for hostile in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "@SUM(A1)",
            "+cmd",
            "-1+2",
            "\tx",
            "\rx",
            "-",
        ] {
            assert_eq!(neutralise(hostile), format!("'{hostile}"));
        }
        for plain in ["White", "0.5", "-0.25", "+1e5", "", "a=b", "1"] {
            assert_eq!(neutralise(plain), plain);
        }
        assert_eq!(neutralise("'quoted"), "''quoted");
    }

    #[test]
    fn restore_undoes_neutralise() {
        for cell in ["=1", "'", "''x", "'=1", "plain", "-3", "-x", "", "@"] {
            assert_eq!(restore(&neutralise(cell)), cell);
        }
    }

    #[test]
    fn write_record_neutralises_every_cell() {
        let mut writer = csv::Writer::from_writer(Vec::new());
        write_record(&mut writer, ["=1+1", "ok", "-0.5", "a,b"]).unwrap();
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        assert_eq!(text, "'=1+1,ok,-0.5,\"a,b\"\n");
    }
}

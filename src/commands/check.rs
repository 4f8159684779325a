//! `clip-audit check`: evaluate fairness rules against a report folder for CI.

use crate::check::{ReportTables, all_pass, evaluate, load_rules, render_junit, render_table};
use std::path::PathBuf;

use crate::report_folder::write_file_atomically;

use super::OutputFormat;

/// Everything `check` needs, validated by the caller.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The report folder to judge.
    pub report: PathBuf,
    /// The rules file.
    pub rules: PathBuf,
    /// The baseline report folder for `max_increase` rules.
    pub against: Option<PathBuf>,
    /// Where to write JUnit XML as well.
    pub junit: Option<PathBuf>,
    /// The verdicts' format on standard output.
    pub format: OutputFormat,
}

/// What the binary prints and whether every rule held.
pub struct CheckOutcome {
    /// The verdict table or JSON.
    pub output: String,
    /// No rule failed.
    pub passed: bool,
}

/// Reads the rules and the report(s), evaluates, writes JUnit XML on request.
pub fn run(args: &CheckOptions) -> anyhow::Result<CheckOutcome> {
    let rules = load_rules(&args.rules)?;
    let report = ReportTables::read(&args.report)?;
    let baseline = args
        .against
        .as_deref()
        .map(ReportTables::read)
        .transpose()?;
    let verdicts = evaluate(&args.rules, &rules, &report, baseline.as_ref())?;
    let passed = all_pass(&verdicts);
    if let Some(path) = &args.junit {
        write_file_atomically(path, render_junit(&rules, &verdicts).as_bytes())?;
    }
    let output = match args.format {
        OutputFormat::Json => {
            serde_json::to_string_pretty(&serde_json::json!({
                "passed": passed,
                "report": args.report.display().to_string(),
                "baseline": args.against.as_ref().map(|p| p.display().to_string()),
                "verdicts": verdicts,
            }))? + "\n"
        }
        OutputFormat::Table => {
            let failed = rules
                .iter()
                .filter(|r| {
                    verdicts
                        .iter()
                        .any(|v| v.rule == r.name && v.verdict == crate::check::Outcome::Fail)
                })
                .count();
            let not_judged = verdicts
                .iter()
                .filter(|v| v.verdict == crate::check::Outcome::NotJudged)
                .count();
            format!(
                "{}\n{} of {} rules failed; {} group verdicts not judged (too few images)\n",
                render_table(&verdicts),
                failed,
                rules.len(),
                not_judged
            )
        }
    };
    Ok(CheckOutcome { output, passed })
}

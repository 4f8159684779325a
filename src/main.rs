//! The `clip-audit` binary: parse the command line once, run the library, print, map errors to
//! exit codes (0 success, 1 some inputs failed, 2 the command could not run).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use clip_audit::cli::{BenchFormat, Cli, Command, ProbesCommand};
use clip_audit::commands;

mod progress;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = commands::configure_threads(cli.threads) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => {
            let progress = progress::TerminalProgress::new();
            let summary = commands::run::run(&args, &progress).context("run")?;
            progress.finish();
            for warning in &summary.warnings {
                eprintln!("warning: {warning}");
            }
            eprintln!(
                "classified {} images, skipped {}; report in {}",
                summary.classified,
                summary.skipped,
                summary.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Aggregate(args) => {
            let summary = commands::aggregate::run(&args).context("aggregate")?;
            for warning in &summary.warnings {
                eprintln!("warning: {warning}");
            }
            eprintln!(
                "aggregated {} predictions; report in {}",
                summary.classified,
                summary.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => {
            let outcome = commands::check::run(&args)?;
            print!("{}", outcome.output);
            Ok(if outcome.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Probes(ProbesCommand::Validate { files }) => {
            match commands::probes::validate(&files) {
                Ok(text) => {
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("invalid: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Probes(ProbesCommand::Show { file, json }) => {
            print!("{}", commands::probes::show(&file, json)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Classify(args) => {
            let report = commands::classify::run(&args).context("classify")?;
            print!("{}", commands::classify::render(&report, args.format)?);
            for failure in &report.skipped {
                eprintln!("skipped {}: {}", failure.path, failure.reason);
            }
            if report.skipped.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "{} of {} images could not be read",
                    report.skipped.len(),
                    report.skipped.len() + report.images.len()
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::Bench(args) => {
            let results =
                commands::bench::run(&args, |line| eprintln!("{line}")).context("bench")?;
            let report = match args.format {
                BenchFormat::Markdown => commands::bench::markdown(&results)?,
                BenchFormat::Json => serde_json::to_string_pretty(&results)? + "\n",
            };
            print!("{report}");
            if let Some(path) = &args.out {
                std::fs::write(path, &report)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

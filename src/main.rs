//! The `clip-audit` binary: parse the command line once, run the library, print, map errors to
//! exit codes (0 success, 1 some inputs failed, 2 the command could not run).
//!
//! Output never panics: a closed standard output (`clip-audit check … | head -1`) ends the process
//! quietly with the exit code the command's result decided; any other write error (a full disk)
//! is exit 2 with a message. Messages to standard error are best effort.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use clip_audit::cli::{BenchFormat, Cli, Command, ProbesCommand};
use clip_audit::commands;

mod progress;

/// Prints a line to standard error, ignoring failures (there is nowhere left to report them).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!("{}\n", format_args!($($arg)*)),
        );
    }};
}
pub(crate) use say;

/// Writes `text` to standard output and returns `code`; a reader that went away (broken pipe)
/// keeps `code`, any other write failure is an error.
fn emit(text: &str, code: ExitCode) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads.filter(|&n| n > 0) {
        // SAFETY: nothing else runs yet (no thread has been spawned), so no concurrent reader
        // of the environment can observe the write; candle's kernels read it later.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    if let Err(e) = commands::configure_threads(cli.threads) {
        say!("error: {e:#}");
        return ExitCode::from(2);
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            say!("error: {e:#}");
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
                say!("warning: {warning}");
            }
            say!(
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
                say!("warning: {warning}");
            }
            say!(
                "aggregated {} predictions; report in {}",
                summary.classified,
                summary.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => {
            let outcome = commands::check::run(&args)?;
            let code = if outcome.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
            emit(&outcome.output, code)
        }
        Command::Probes(ProbesCommand::Validate { files }) => {
            match commands::probes::validate(&files) {
                Ok(text) => emit(&text, ExitCode::SUCCESS),
                Err(e) => {
                    say!("invalid: {:#}", anyhow::Error::new(e));
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Probes(ProbesCommand::Show { file, json }) => {
            emit(&commands::probes::show(&file, json)?, ExitCode::SUCCESS)
        }
        Command::Classify(args) => {
            let report = commands::classify::run(&args).context("classify")?;
            let code = if report.skipped.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
            let code = emit(&commands::classify::render(&report, args.format)?, code)?;
            for failure in &report.skipped {
                say!("skipped {}: {}", failure.path, failure.reason);
            }
            if !report.skipped.is_empty() {
                say!(
                    "{} of {} images could not be read",
                    report.skipped.len(),
                    report.skipped.len() + report.images.len()
                );
            }
            Ok(code)
        }
        Command::Bench(args) => {
            let results = commands::bench::run(&args, |line| say!("{line}")).context("bench")?;
            let report = match args.format {
                BenchFormat::Markdown => commands::bench::markdown(&results)?,
                BenchFormat::Json => serde_json::to_string_pretty(&results)? + "\n",
            };
            if let Some(path) = &args.out {
                clip_audit::report_folder::write_file_atomically(path, report.as_bytes())?;
            }
            emit(&report, ExitCode::SUCCESS)
        }
    }
}

//! The `clip-audit` binary: parse the command line once, run the library, print, map errors to
//! exit codes (0 success, 1 some inputs failed, 2 the command could not run).
//!
//! Output never panics: a closed standard output (`clip-audit check … | head -1`) ends the process
//! quietly with the exit code the command's result decided; any other write error (a full disk)
//! is exit 2 with a message. Messages to standard error are best effort.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use clip_audit::commands;
use clip_audit::commands::OutputFormat;
use clip_audit::commands::aggregate::AggregateOptions;
use clip_audit::commands::bench::BenchOptions;
use clip_audit::commands::classify::ClassifyOptions;
use clip_audit::commands::retrieval::RetrievalOptions;
use clip_audit::commands::run::RunOptions;

mod cli;
mod progress;

use cli::{BenchFormat, Cli, Command, DatasetsCommand, ProbesCommand};

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
    if let Some(n) = cli.threads {
        // SAFETY: nothing else runs yet (no thread has been spawned), so no concurrent reader
        // of the environment can observe the write; candle's kernels read it later.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            say!("error: configuring the worker threads: {e}");
            return ExitCode::from(2);
        }
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            say!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The command line of this process, as `run.json` and the report lock record it.
fn command_line() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Runs one subcommand and decides its exit code.
fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => audit(args.options(command_line())),
        Command::Aggregate(args) => aggregate(args.options(command_line())),
        Command::Retrieval(args) => retrieval(args.options(command_line())),
        Command::Check(args) => check(&args.options()),
        Command::Probes(command) => probes(command),
        Command::Datasets(command) => datasets(command),
        Command::Classify(args) => {
            let format = args.format.into();
            classify(&args.options(), format)
        }
        Command::Bench(args) => {
            let (format, out) = (args.format, args.out.clone());
            bench(&args.options(), format, out.as_deref())
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "clip-audit", &mut script);
            emit(&String::from_utf8_lossy(&script), ExitCode::SUCCESS)
        }
        Command::Man { out } => man(out.as_deref()),
        Command::Compare(args) => compare(&args.options(command_line())),
    }
}

/// `check`: the verdicts on standard output; exit 1 when a rule fails.
fn check(options: &commands::check::CheckOptions) -> anyhow::Result<ExitCode> {
    let outcome = commands::check::run(options)?;
    let code = if outcome.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    emit(&outcome.output, code)
}

/// `probes validate|show|list`: text on standard output; an invalid probe is exit 2.
fn probes(command: ProbesCommand) -> anyhow::Result<ExitCode> {
    let text = match command {
        ProbesCommand::Validate { files } => match commands::probes::validate(&files) {
            Ok(text) => text,
            Err(e) => {
                say!("invalid: {:#}", anyhow::Error::new(e));
                return Ok(ExitCode::from(2));
            }
        },
        ProbesCommand::Show {
            file, toml: true, ..
        } => commands::probes::toml_text(&file)?,
        ProbesCommand::Show { file, json, .. } => commands::probes::show(&file, json)?,
        ProbesCommand::List { json } => commands::probes::list(json)?,
    };
    emit(&text, ExitCode::SUCCESS)
}

/// `datasets list|show`: text on standard output.
fn datasets(command: DatasetsCommand) -> anyhow::Result<ExitCode> {
    let text = match command {
        DatasetsCommand::List { json } => commands::datasets::list(json)?,
        DatasetsCommand::Show { spec } => commands::datasets::show(&spec)?,
    };
    emit(&text, ExitCode::SUCCESS)
}

/// `man`: the page on standard output, or one page per subcommand written into `out`.
fn man(out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(dir) = out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .context("rendering the manual page")?;
        return emit(&String::from_utf8_lossy(&page), ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing manual pages into {}", dir.display()))?;
    say!("manual pages written to {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// `compare`: notes and a summary line on standard error.
fn compare(options: &commands::compare::CompareOptions) -> anyhow::Result<ExitCode> {
    let summary = commands::compare::run(options).context("compare")?;
    for note in &summary.notes {
        say!("note: {note}");
    }
    say!(
        "compared {} reports; report in {}",
        summary.reports,
        summary.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `run`: the audit with a progress display; warnings and a summary line on standard error.
fn audit(options: RunOptions) -> anyhow::Result<ExitCode> {
    let progress = progress::TerminalProgress::new();
    let summary = commands::run::run(&options, &progress).context("run")?;
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

/// `retrieval`: the audit with a progress display; warnings and a summary line on standard error.
fn retrieval(options: RetrievalOptions) -> anyhow::Result<ExitCode> {
    let progress = progress::TerminalProgress::new();
    let summary = commands::retrieval::run(&options, &progress).context("retrieval")?;
    progress.finish();
    for warning in &summary.warnings {
        say!("warning: {warning}");
    }
    say!(
        "ranked {} images, skipped {}; report in {}",
        summary.ranked,
        summary.skipped,
        summary.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `aggregate`: warnings and a summary line on standard error.
fn aggregate(options: AggregateOptions) -> anyhow::Result<ExitCode> {
    let summary = commands::aggregate::run(&options).context("aggregate")?;
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

/// `classify`: scores on standard output, unreadable images on standard error (exit 1).
fn classify(options: &ClassifyOptions, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let report = commands::classify::run(options).context("classify")?;
    let code = if report.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    let code = emit(&commands::classify::render(&report, format)?, code)?;
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

/// `bench`: progress on standard error, the report on standard output (and in `out`).
fn bench(
    options: &BenchOptions,
    format: BenchFormat,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let results = commands::bench::run(options, |line| say!("{line}")).context("bench")?;
    let report = match format {
        BenchFormat::Markdown => commands::bench::markdown(&results)?,
        BenchFormat::Json => serde_json::to_string_pretty(&results)? + "\n",
    };
    if let Some(path) = out {
        clip_audit::report_folder::write_file_atomically(path, report.as_bytes())?;
    }
    emit(&report, ExitCode::SUCCESS)
}

//! The jobs behind each subcommand, composed from the pipeline stages. Each job takes typed,
//! validated options (the binary builds them from the command line once) and returns a value the
//! binary renders: nothing here parses arguments or prints.

pub mod aggregate;
pub mod bench;
pub mod check;
pub mod classify;
pub mod compare;
pub mod datasets;
pub mod probes;
pub mod retrieval;
pub mod run;
mod tabulation;

/// How a command prints its result on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned text for people.
    Table,
    /// One JSON object.
    Json,
}

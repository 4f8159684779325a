//! The jobs behind each subcommand, composed from the pipeline stages. Nothing here prints: each
//! job returns a value the binary renders.

pub mod aggregate;
pub mod bench;
pub mod check;
pub mod classify;
pub mod probes;
pub mod run;

use anyhow::Context;

use crate::cli::{DtypeArg, ModelArgs};
use crate::model::{ComputeDtype, LoadOptions, LoadedModel, ModelFiles, ModelSpec, SourceOptions};

/// Sizes rayon's global pool to `threads` workers; `None` keeps one per core. candle's matrix
/// kernels read `RAYON_NUM_THREADS` themselves: the binary sets it before calling this.
pub fn configure_threads(threads: Option<usize>) -> anyhow::Result<()> {
    let Some(n) = threads else { return Ok(()) };
    anyhow::ensure!(n > 0, "--threads must be at least 1");
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("configuring the worker threads")
}

/// The number of worker threads in use.
pub fn thread_count() -> usize {
    rayon::current_num_threads()
}

/// Resolves, downloads if needed, checks and loads the model the options name.
pub fn load_model(args: &ModelArgs) -> anyhow::Result<LoadedModel> {
    let device = args.device.open()?;
    let spec = ModelSpec::parse(&args.model, args.revision.as_deref())?;
    let options = SourceOptions {
        offline: args.offline,
        cache_dir: args.hub_cache.clone(),
    };
    let files = ModelFiles::resolve(&spec, &options)?;
    let load = LoadOptions {
        dtype: match args.dtype {
            DtypeArg::F32 => ComputeDtype::F32,
            DtypeArg::Bf16 => ComputeDtype::Bf16,
        },
        ..LoadOptions::default()
    };
    Ok(LoadedModel::load_with(files, &device, &load)?)
}

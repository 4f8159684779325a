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
use crate::model::{
    ComputeDtype, DeviceChoice, LoadOptions, LoadedModel, ModelFiles, ModelSpec, SourceOptions,
};

/// Sets the worker-thread count for rayon and candle's matrix kernels (both read
/// `RAYON_NUM_THREADS`); `None` keeps the default of one per core.
pub fn configure_threads(threads: Option<usize>) -> anyhow::Result<()> {
    let Some(n) = threads else { return Ok(()) };
    anyhow::ensure!(n > 0, "--threads must be at least 1");
    // SAFETY: called from `main` before any other thread exists, so no concurrent reader of the
    // environment can observe the write.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
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
    let device = DeviceChoice::parse(&args.device)?.open()?;
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

//! What a user asks to load: a checkpoint, where its files may come from, the device and the
//! number format, parsed once (by the command line or a caller) and then loaded.

use super::{
    ComputeDtype, DeviceChoice, LoadOptions, LoadedModel, ModelError, ModelFiles, ModelSpec,
    SourceOptions,
};

/// A model as the user named it. Whether it is a local folder or a Hub id depends on the file
/// system, so it is resolved into a [`ModelSpec`] when loading, after the cheaper checks of a run
/// (probe, dataset rows) have passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName {
    /// A local checkpoint folder or a Hub id `owner/name`.
    pub name: String,
    /// The Hub revision to pin (branch, tag or commit); not allowed with a folder.
    pub revision: Option<String>,
}

impl ModelName {
    /// Resolves the name: an existing folder, else a Hub id at its revision (default `main`).
    pub fn spec(&self) -> Result<ModelSpec, ModelError> {
        ModelSpec::parse(&self.name, self.revision.as_deref())
    }
}

/// A checkpoint to load and how to compute with it.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// A local folder or a Hub repository with an optional revision.
    pub model: ModelName,
    /// Offline mode and the Hub cache folder.
    pub source: SourceOptions,
    /// Where tensors are computed.
    pub device: DeviceChoice,
    /// Number format of the image tower.
    pub dtype: ComputeDtype,
}

impl ModelRequest {
    /// A local checkpoint folder on the CPU in f32, the defaults of every option.
    pub fn local(dir: &std::path::Path) -> Self {
        ModelRequest {
            model: ModelName {
                name: dir.display().to_string(),
                revision: None,
            },
            source: SourceOptions::default(),
            device: DeviceChoice::Cpu,
            dtype: ComputeDtype::F32,
        }
    }

    /// Resolves (downloading Hub files if allowed), checks and loads the checkpoint.
    pub fn load(&self) -> Result<LoadedModel, ModelError> {
        let device = self.device.open()?;
        let files = ModelFiles::resolve(&self.model.spec()?, &self.source)?;
        let options = LoadOptions {
            dtype: self.dtype,
            ..LoadOptions::default()
        };
        LoadedModel::load_with(files, &device, &options)
    }
}

//! A tower built from its weights on first use, so that runs which never need it (every image
//! embedding cached) never pay for it.

use std::sync::{Mutex, OnceLock};

use candle_core::Result;
use candle_nn::VarBuilder;

/// A value built once from a [`VarBuilder`] kept until then; a failed build is not retried.
pub struct LazyTower<T> {
    built: OnceLock<T>,
    /// The weights the tower is built from, until it is.
    pending: Mutex<Option<VarBuilder<'static>>>,
}

impl<T> LazyTower<T> {
    /// A tower to build from `weights` on the first [`Self::get`].
    pub fn new(weights: VarBuilder<'static>) -> Self {
        Self {
            built: OnceLock::new(),
            pending: Mutex::new(Some(weights)),
        }
    }

    /// The tower, built by `build` on the first call; later calls return it (or, if the first
    /// build failed, an error saying so).
    pub fn get(&self, build: impl FnOnce(VarBuilder<'static>) -> Result<T>) -> Result<&T> {
        if let Some(tower) = self.built.get() {
            return Ok(tower);
        }
        let mut pending = self.pending.lock().map_err(|_| {
            candle_core::Error::Msg("image tower: a loading thread panicked".into())
        })?;
        if let Some(tower) = self.built.get() {
            return Ok(tower);
        }
        let weights = pending.take().ok_or_else(|| {
            candle_core::Error::Msg("image tower: loading the weights failed earlier".into())
        })?;
        let tower = build(weights)?;
        Ok(self.built.get_or_init(|| tower))
    }
}

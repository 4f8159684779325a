//! `config.json` checked against the safetensors header before anything is sized from it: layer
//! counts against the `…layers.N.` prefixes present, widths against the shapes of a few
//! tensors. An absurd config (a hundred million layers, a width of a billion) is then an error
//! naming the field, not gigabytes of tensor names or buffers.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::{ClipConfig, ModelError};

/// Checks the config's layer counts and widths against the tensors `shapes` lists. A tensor that
/// is absent is left to the full per-tensor check, which names it.
pub(super) fn check(
    config: &ClipConfig,
    config_file: &Path,
    shapes: &HashMap<String, Vec<usize>>,
    weights: &Path,
) -> Result<(), ModelError> {
    let files = Files {
        config: config_file,
        weights,
    };
    check_layer_counts(config, shapes, &files)?;
    check_widths(config, shapes, &files)?;
    check_positions(config, shapes, &files)
}

/// The two files compared, named by a [`ModelError::ConfigMismatch`].
struct Files<'a> {
    config: &'a Path,
    weights: &'a Path,
}

impl Files<'_> {
    /// Config field `field` is `value`, but the weights file has `found`.
    fn mismatch(&self, field: &'static str, value: usize, found: String) -> ModelError {
        ModelError::ConfigMismatch {
            config: self.config.to_path_buf(),
            field,
            value,
            weights: self.weights.to_path_buf(),
            found,
        }
    }
}

/// Each tower's `num_hidden_layers` against its `….encoder.layers.N.` prefixes, which must be
/// exactly `0..num_hidden_layers`.
fn check_layer_counts(
    config: &ClipConfig,
    shapes: &HashMap<String, Vec<usize>>,
    files: &Files,
) -> Result<(), ModelError> {
    let t = &config.text_config;
    let v = &config.vision_config;
    for (tower, field, layers) in [
        (
            "text_model",
            "text_config.num_hidden_layers",
            t.num_hidden_layers,
        ),
        (
            "vision_model",
            "vision_config.num_hidden_layers",
            v.num_hidden_layers,
        ),
    ] {
        let present = layer_indices(shapes, tower);
        let contiguous = present.iter().copied().eq(0..present.len());
        if present.len() != layers || !contiguous {
            let found = match (present.first(), present.last()) {
                (Some(first), Some(last)) => format!(
                    "{} layers (`{tower}.encoder.layers.{first}` to `.{last}`)",
                    present.len()
                ),
                _ => format!("no `{tower}.encoder.layers.N` tensors"),
            };
            return Err(files.mismatch(field, layers, found));
        }
    }
    Ok(())
}

/// The widths the tensors' shapes must show.
fn check_widths(
    config: &ClipConfig,
    shapes: &HashMap<String, Vec<usize>>,
    files: &Files,
) -> Result<(), ModelError> {
    for (field, value, tensor, dim) in width_rules(config) {
        if let Some(shape) = shapes.get(&tensor)
            && shape.get(dim) != Some(&value)
        {
            return Err(files.mismatch(field, value, format!("`{tensor}` of shape {shape:?}")));
        }
    }
    Ok(())
}

/// (field, value, tensor, dimension): the widths the tensors' shapes must show. The rest
/// (projection_dim, ...) is left to the per-tensor check, which names both shapes.
fn width_rules(config: &ClipConfig) -> [(&'static str, usize, String, usize); 8] {
    let t = &config.text_config;
    let v = &config.vision_config;
    let fc1 = |tower: &str| format!("{tower}.encoder.layers.0.mlp.fc1.weight");
    [
        (
            "text_config.vocab_size",
            t.vocab_size,
            "text_model.embeddings.token_embedding.weight".into(),
            0,
        ),
        (
            "text_config.hidden_size",
            t.hidden_size,
            "text_model.embeddings.token_embedding.weight".into(),
            1,
        ),
        (
            "text_config.max_position_embeddings",
            t.max_position_embeddings,
            "text_model.embeddings.position_embedding.weight".into(),
            0,
        ),
        (
            "text_config.intermediate_size",
            t.intermediate_size,
            fc1("text_model"),
            0,
        ),
        (
            "vision_config.hidden_size",
            v.hidden_size,
            "vision_model.embeddings.patch_embedding.weight".into(),
            0,
        ),
        (
            "vision_config.num_channels",
            v.num_channels,
            "vision_model.embeddings.patch_embedding.weight".into(),
            1,
        ),
        (
            "vision_config.patch_size",
            v.patch_size,
            "vision_model.embeddings.patch_embedding.weight".into(),
            2,
        ),
        (
            "vision_config.intermediate_size",
            v.intermediate_size,
            fc1("vision_model"),
            0,
        ),
    ]
}

/// `image_size`, which only shows through the number of positions:
/// `(image_size / patch_size)² + 1`.
fn check_positions(
    config: &ClipConfig,
    shapes: &HashMap<String, Vec<usize>>,
    files: &Files,
) -> Result<(), ModelError> {
    let v = &config.vision_config;
    let positions_tensor = "vision_model.embeddings.position_embedding.weight";
    if let Some(shape) = shapes.get(positions_tensor) {
        let side = v.image_size / v.patch_size.max(1);
        let positions = side.checked_mul(side).and_then(|p| p.checked_add(1));
        if positions.is_none() || shape.first() != positions.as_ref() {
            return Err(files.mismatch(
                "vision_config.image_size",
                v.image_size,
                format!(
                    "`{positions_tensor}` of shape {shape:?} (with patch_size {}, image_size {} \
                     needs {} positions)",
                    v.patch_size,
                    v.image_size,
                    positions.map_or("too many".to_string(), |p| p.to_string())
                ),
            ));
        }
    }
    Ok(())
}

/// The `N`s of the `{tower}.encoder.layers.N.` prefixes present, in order.
fn layer_indices(shapes: &HashMap<String, Vec<usize>>, tower: &str) -> Vec<usize> {
    let prefix = format!("{tower}.encoder.layers.");
    let indices: BTreeSet<usize> = shapes
        .keys()
        .filter_map(|name| name.strip_prefix(&prefix)?.split_once('.')?.0.parse().ok())
        .collect();
    indices.into_iter().collect()
}

/// Every tensor in `expected` is present in the weights `file` with its shape (`found` gives a
/// tensor's shape by name). A scalar may be stored 0-d or as `[1]`: transformers stores
/// `logit_scale` one way, some converters the other.
pub(super) fn check_expected_shapes(
    expected: Vec<(String, Vec<usize>)>,
    found: impl Fn(&str) -> Option<Vec<usize>>,
    file: &Path,
) -> Result<(), ModelError> {
    let scalar = |shape: &[usize]| shape.iter().product::<usize>() == 1 && shape.len() <= 1;
    for (name, expected) in expected {
        match found(&name) {
            None => {
                return Err(ModelError::MissingTensor {
                    file: file.to_path_buf(),
                    name,
                    expected,
                });
            }
            Some(shape) if scalar(&expected) && scalar(&shape) => {}
            Some(shape) if shape != expected => {
                return Err(ModelError::ShapeMismatch {
                    file: file.to_path_buf(),
                    name,
                    expected,
                    found: shape,
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes_of(config: &ClipConfig) -> HashMap<String, Vec<usize>> {
        config.expected_tensors().into_iter().collect()
    }

    #[test]
    fn a_matching_header_passes() {
        let config = ClipConfig::vit_base_patch32();
        let shapes = shapes_of(&config);
        check(&config, Path::new("c.json"), &shapes, Path::new("w")).unwrap();
    }

    #[test]
    fn an_absurd_layer_count_is_refused_before_any_name_is_built() {
        let real = ClipConfig::vit_base_patch32();
        let shapes = shapes_of(&real);
        let mut config = real.clone();
        config.vision_config.num_hidden_layers = 100_000_000;
        let started = std::time::Instant::now();
        let err = check(
            &config,
            Path::new("m/config.json"),
            &shapes,
            Path::new("m/w"),
        )
        .unwrap_err();
        assert!(started.elapsed().as_millis() < 500);
        assert_eq!(
            err.to_string(),
            "m/config.json: field `vision_config.num_hidden_layers` is 100000000, but m/w has 12 \
             layers (`vision_model.encoder.layers.0` to `.11`)"
        );
    }

    #[test]
    fn widths_and_image_size_are_checked_by_field() {
        let real = ClipConfig::vit_base_patch32();
        let shapes = shapes_of(&real);
        let mut config = real.clone();
        config.text_config.hidden_size = 1_000_000_000;
        let err = check(&config, Path::new("c"), &shapes, Path::new("w")).unwrap_err();
        assert!(
            err.to_string()
                .contains("`text_config.hidden_size` is 1000000000")
        );
        let mut config = real.clone();
        config.vision_config.image_size = usize::MAX / 32 * 32;
        let err = check(&config, Path::new("c"), &shapes, Path::new("w")).unwrap_err();
        assert!(
            err.to_string().contains("needs too many positions"),
            "{err}"
        );
        // a gap in the layer numbers is not the layer count either
        let mut gappy = shapes.clone();
        gappy.retain(|k, _| !k.starts_with("text_model.encoder.layers.3."));
        let err = check(&real, Path::new("c"), &gappy, Path::new("w")).unwrap_err();
        assert!(err.to_string().contains("11 layers"), "{err}");
    }
}

//! Zero-shot classification: `softmax(logit_scale · cos(image, class))` over a fixed label set.

use candle_core::Tensor;

use crate::embed::{EmbedError, cosine};

/// One image's scores against every class.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// `logit_scale · cos`, in label order.
    pub logits: Vec<f32>,
    /// Softmax of the logits, in label order.
    pub probs: Vec<f32>,
    /// The `k` most probable classes as `(label index, probability)`, most probable first.
    pub top: Vec<(usize, f32)>,
}

impl Prediction {
    /// The most probable class (first on exact ties).
    pub fn best(&self) -> usize {
        self.top.first().map_or(0, |t| t.0)
    }
}

/// A label set with its class embeddings and the model's logit scale.
pub struct ZeroShotClassifier {
    labels: Vec<String>,
    class_embeddings: Tensor,
    logit_scale: f32,
}

impl ZeroShotClassifier {
    /// `class_embeddings` is `[C, P]`, normalised, one row per label; `logit_scale` is the
    /// multiplier (already exponentiated).
    pub fn new(labels: Vec<String>, class_embeddings: Tensor, logit_scale: f32) -> Self {
        Self {
            labels,
            class_embeddings,
            logit_scale,
        }
    }

    /// The labels, in the order of every score vector.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Scores normalised image embeddings `[B, P]`, keeping the `top_k` best classes per image.
    pub fn classify(
        &self,
        image_embeddings: &Tensor,
        top_k: usize,
    ) -> Result<Vec<Prediction>, EmbedError> {
        if image_embeddings.dim(0)? == 0 {
            return Ok(Vec::new());
        }
        let logits = (cosine(image_embeddings, &self.class_embeddings)? * self.logit_scale as f64)?;
        let rows: Vec<Vec<f32>> = logits.to_vec2()?;
        Ok(rows
            .into_iter()
            .map(|logits| prediction(logits, top_k))
            .collect())
    }
}

/// Softmax (in f64, max-shifted) and top-k of one logit row.
pub fn prediction(logits: Vec<f32>, top_k: usize) -> Prediction {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let probs: Vec<f32> = exps.iter().map(|e| (e / sum) as f32).collect();
    let mut order: Vec<usize> = (0..probs.len()).collect();
    // stable sort: exact ties keep label order
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let top = order
        .into_iter()
        .take(top_k.max(1))
        .map(|i| (i, probs[i]))
        .collect();
    Prediction { logits, probs, top }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_and_top_k() {
        let p = prediction(vec![1.0, 3.0, 2.0, 3.0], 3);
        let sum: f32 = p.probs.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert_eq!(p.top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 3, 2]);
        assert_eq!(p.best(), 1);
        let e = f64::exp;
        let expected = e(2.0) / (e(1.0) + e(2.0) + 2.0 * e(3.0));
        assert!((p.probs[2] as f64 - expected).abs() < 1e-6);
    }
}

//! Zero-shot classification over a fixed label set: CLIP's `softmax(scale · cos(image, class))`,
//! or SigLIP's independent `sigmoid(scale · cos + bias)` per label (see [`Scoring`]).

use candle_core::Tensor;

use crate::embed::{EmbedError, cosine};
use crate::model::Scoring;

/// One image's scores against every class.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// `logit_scale · cos` (`+ logit_bias` for SigLIP), in label order.
    pub logits: Vec<f32>,
    /// Softmax of the logits (CLIP) or the sigmoid of each (SigLIP), in label order.
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

/// Turns one row of logits into a prediction with its `top_k` classes.
type ScoreRow = fn(Vec<f32>, usize) -> Prediction;

/// A label set with its class embeddings and the model's scoring.
pub struct ZeroShotClassifier {
    labels: Vec<String>,
    class_embeddings: Tensor,
    scoring: Scoring,
}

impl ZeroShotClassifier {
    /// `class_embeddings` is `[C, P]`, normalised, one row per label; `scoring` is the model's
    /// ([`crate::model::Towers::scoring`]).
    pub fn new(labels: Vec<String>, class_embeddings: Tensor, scoring: Scoring) -> Self {
        Self {
            labels,
            class_embeddings,
            scoring,
        }
    }

    /// The same labels and class embeddings under another scoring (unit softmax scale: the
    /// logits are the cosine similarities, as retrieval ranks by).
    pub fn rescored(&self, scoring: Scoring) -> ZeroShotClassifier {
        ZeroShotClassifier {
            labels: self.labels.clone(),
            class_embeddings: self.class_embeddings.clone(),
            scoring,
        }
    }

    /// How similarities become logits and probabilities.
    pub fn scoring(&self) -> Scoring {
        self.scoring
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
        let cos = cosine(image_embeddings, &self.class_embeddings)?;
        let (logits, scored): (Tensor, ScoreRow) = match self.scoring {
            Scoring::Softmax { scale } => ((cos * scale as f64)?, prediction),
            Scoring::Sigmoid { scale, bias } => {
                (((cos * scale as f64)? + bias as f64)?, sigmoid_prediction)
            }
        };
        let rows: Vec<Vec<f32>> = logits.to_vec2()?;
        Ok(rows
            .into_iter()
            .map(|logits| scored(logits, top_k))
            .collect())
    }
}

/// Softmax (in f64, max-shifted) and top-k of one logit row.
pub fn prediction(logits: Vec<f32>, top_k: usize) -> Prediction {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let probs: Vec<f32> = exps.iter().map(|e| (e / sum) as f32).collect();
    ranked(logits, probs, top_k)
}

/// Independent sigmoids (in f64) and top-k of one logit row (SigLIP).
pub fn sigmoid_prediction(logits: Vec<f32>, top_k: usize) -> Prediction {
    let probs = logits
        .iter()
        .map(|&l| (1.0 / (1.0 + (-(l as f64)).exp())) as f32)
        .collect();
    ranked(logits, probs, top_k)
}

/// The `top_k` classes by logit (exact ties in label order) with their probabilities.
fn ranked(logits: Vec<f32>, probs: Vec<f32>, top_k: usize) -> Prediction {
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

//! clip-audit: audit CLIP-style image-text models for social bias.
//!
//! The pipeline flows one way: images → embeddings → predictions (→ metrics → report). Each stage
//! is a module; [`pipeline`] streams records through the model, and [`commands`] composes the
//! stages for the binary, which only parses arguments into typed options and prints.

#![warn(missing_docs)]

pub mod builtin;
pub mod check;
pub mod classify;
pub mod commands;
pub mod comparison;
pub mod csv_cell;
pub mod dataset;
pub mod digest;
pub mod embed;
pub mod embed_cache;
pub mod export;
pub mod hub_error;
mod id_index;
pub mod images;
pub mod input_file;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod predictions;
pub mod probe;
pub mod provenance;
pub mod report_folder;
pub mod schema;
pub mod shard;

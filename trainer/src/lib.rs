//! # bnf-trainer
//!
//! A minimal decoder-only transformer, written out layer by layer (forward and backward), trained
//! with SFT (NLL) and aligned with BNF or any other objective of `bnf-core`: the model, data,
//! training, checkpoints, reference log-probs and evaluation, with a library entry for programs
//! ([`run::train_run`]). The command line (`bnf`: its commands, the demo, the benchmark and the
//! experiment) is the `bnf-cli` crate in `trainer/cli/`, a thin layer over this one.
//!
//! Data flow: tokens -> [`model::Model::forward`] -> logits rows -> [`objective`] (row
//! statistics, row or sequence weights, gradient written in place over the logits by `bnf-core`) ->
//! [`model::Model::backward`] -> [`optim::AdamW`].
#![warn(missing_docs)]

pub mod arithmetic;
pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod fingerprint;
pub mod generate;
pub mod metrics;
pub mod model;
pub mod names;
pub mod objective;
pub mod optim;
pub mod paths;
pub mod progress;
pub mod reference;
pub mod rng;
pub mod run;
pub mod seq;
pub mod state;
pub mod tokenizer;
pub mod train;

//! # bnf-cli
//!
//! The command line (`bnf`) over the `bnf-trainer` library: the commands ([`Cli`], [`Command`])
//! and their dispatch. The flags of each command are in [`args`], what the training and data
//! commands do in [`commands`]; [`demo`], [`bench`](mod@bench) and [`experiment`] are commands built on
//! those (the demo and the experiment call the same functions as the command line).
#![warn(missing_docs)]

pub mod args;
pub mod bench;
pub mod commands;
pub mod demo;
pub mod experiment;

pub use args::*;
pub use commands::*;

use bnf_trainer::checkpoint;
use bnf_trainer::generate::greedy;
use bnf_trainer::objective::params::describe_all;
use bnf_trainer::tokenizer::{decode, encode};
use clap::{Parser, Subcommand};

/// Train a small transformer with SFT and align it with BNF.
#[derive(Parser, Debug)]
#[command(name = "bnf", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Supervised fine-tuning (NLL) on the preferred responses of a data file.
    #[command(mut_args(hide_align_only))]
    Sft(TrainArgs),
    /// Write the reference model's per-token target log-probs beside the data.
    PrecomputeRef(RefArgs),
    /// Align a model with a preference objective (BNF by default, or any of `bnf objectives`),
    /// reading precomputed reference log-probs when the objective uses them.
    Align(TrainArgs),
    /// Preference accuracy, log-prob shifts against the reference, greedy task accuracy.
    Eval(EvalArgs),
    /// Greedy generation from a prompt.
    Generate(GenerateArgs),
    /// End to end on built-in arithmetic data: SFT, reference, BNF, before/after metrics.
    Demo(crate::demo::DemoArgs),
    /// Training throughput (tokens/s) of a fixed small configuration.
    Bench(crate::bench::BenchArgs),
    /// List the objectives, what data each needs, and their hyperparameters with defaults.
    Objectives,
    /// The paper's findings at small scale: every method on math and style preferences, with
    /// a generated report (`results.md`) and plots.
    Experiment(crate::experiment::ExperimentArgs),
}
/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Sft(args) => run_sft(&args).map(|_| ()),
        Command::Align(args) => {
            let objective = args.objective.resolve("bnf")?;
            run_training(&args, objective).map(|_| ())
        }
        Command::PrecomputeRef(args) => {
            let out = run_precompute(&args)?;
            println!("wrote {out}");
            Ok(())
        }
        Command::Eval(args) => {
            print!("{}", run_eval(&args)?);
            Ok(())
        }
        Command::Generate(args) => {
            let mut model = checkpoint::load(&args.model)?.model;
            let gen = greedy(&mut model, &[encode(&args.prompt)], args.max_new, 1)?;
            println!("{}{}", args.prompt, decode(&gen[0]));
            Ok(())
        }
        Command::Demo(args) => crate::demo::run(&args),
        Command::Bench(args) => crate::bench::run(&args),
        Command::Objectives => {
            print!("{}", describe_all(FLAGS));
            Ok(())
        }
        Command::Experiment(args) => crate::experiment::run(&args),
    }
}

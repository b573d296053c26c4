//! `bnf`: the trainer's command line (see `bnf --help`). Ctrl-C during training stops after
//! the running step, saves the checkpoint and prints how to resume (exit status 130); a second
//! Ctrl-C quits at once.

use bnf_cli::commands::STOP;
use clap::Parser;
use std::sync::atomic::Ordering;

fn main() {
    let cli = bnf_cli::Cli::parse();
    let handler = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("bnf: stopping after this step to save (Ctrl-C again to quit without saving)");
    });
    if let Err(e) = handler {
        eprintln!("bnf: Ctrl-C will not save a checkpoint ({e})");
    }
    if let Err(e) = bnf_cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(if STOP.load(Ordering::SeqCst) { 130 } else { 1 });
    }
}

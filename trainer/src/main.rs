//! `bnf`: the trainer's command line (see `bnf --help`).

use clap::Parser;

fn main() {
    let cli = bnf_trainer::cli::Cli::parse();
    if let Err(e) = bnf_trainer::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

//! `bnf`: the trainer's command line (see `bnf --help`).

use clap::Parser;

fn main() {
    let cli = bnf_cli::Cli::parse();
    if let Err(e) = bnf_cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

//! The `evalcot` binary: parses the command line and hands each subcommand to the library crate
//! that does the work. Exit codes: 0 success, 1 a gate failed, 2 an error (bad input, I/O).

mod cli;
mod commands;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

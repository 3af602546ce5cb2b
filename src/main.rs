//! The `evalcot` binary: parses the command line and hands each subcommand to the library crate
//! that does the work. Exit codes: 0 success, 1 a gate failed, 2 an error (bad input, I/O).

mod cli;
mod commands;
mod open;

/// This build: the package version and the commit (see build.rs).
pub const CODE_VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("EVALCOT_COMMIT"), ")");

use clap::Parser;

fn main() {
    harness::alloc::tune();
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", message(&e));
            std::process::exit(2);
        }
    }
}

/// The error and its causes on one line, each cause only once (a wrapped I/O error's text is
/// usually repeated by the error that wraps it), at most [`MAX_MESSAGE`] characters.
fn message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    let total = msg.chars().count();
    if total > MAX_MESSAGE {
        msg = msg.chars().take(MAX_MESSAGE).collect();
        msg.push_str(&format!("… ({} more characters)", total - MAX_MESSAGE));
    }
    msg
}

/// Long enough for any path, line and field; short enough that a list of every mismatched
/// tensor of a weights file of another architecture stays readable.
const MAX_MESSAGE: usize = 1000;

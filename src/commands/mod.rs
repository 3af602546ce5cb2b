//! One function per subcommand; each returns the process exit code.

mod bank;
mod eval;
mod gate;
mod merge;
mod report;
mod reproduce;
pub mod run;
mod score;
mod serve;
mod suite;
mod summary;
mod train;
pub mod world;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Score(a) => score::run(&a),
        Command::Summary(a) => summary::run(&a),
        Command::Suite(a) => suite::run(&a),
        Command::World(a) => world::run(&a),
        Command::Train(a) => train::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Run(a) => run::run(&a),
        Command::Bank(a) => bank::bank(&a),
        Command::Replay(a) => bank::replay(&a),
        Command::Merge(a) => merge::run(&a),
        Command::Report(a) => report::run(&a),
        Command::Gate(a) => gate::run(&a),
        Command::Serve(a) => serve::run(&a),
        Command::Reproduce(a) => reproduce::run(&a),
    }
}

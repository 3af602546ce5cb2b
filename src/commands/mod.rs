//! One function per subcommand; each returns the process exit code.

mod score;
mod suite;
mod summary;
pub mod world;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Score(a) => score::run(&a),
        Command::Summary(a) => summary::run(&a),
        Command::Suite(a) => suite::run(&a),
        Command::World(a) => world::run(&a),
    }
}

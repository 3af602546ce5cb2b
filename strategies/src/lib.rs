//! Test-time strategies, one file each, reading like the paper's pseudo-code, and their
//! registry. What a strategy works with (`Context`, `Job`, `Outcome`) and the run loop that calls
//! it live in `harness::run`.

pub mod baseline;
pub mod oracle;
pub mod orm;
pub mod parm;
pub mod parm_plus;
pub mod prm;

pub use harness::run::candidates::{At, Candidates};
pub use harness::run::{argmax, Compute, Context, Decision, Job, Outcome, Strategy, StrategyKind};

/// The strategy of `kind`, ready to run.
pub fn build(kind: StrategyKind) -> Box<dyn Strategy> {
    match kind {
        StrategyKind::Baseline => Box::new(baseline::Baseline),
        StrategyKind::Orm => Box::new(orm::Orm),
        StrategyKind::Prm => Box::new(prm::Prm),
        StrategyKind::Parm => Box::new(parm::Parm),
        StrategyKind::ParmPlus => Box::new(parm_plus::ParmPlus::default()),
        StrategyKind::Oracle => Box::new(oracle::Oracle),
    }
}

/// The strategy named `name` (`baseline`, `orm`, `prm`, `parm`, `parm++`, `oracle`).
pub fn by_name(name: &str) -> Result<Box<dyn Strategy>, String> {
    Ok(build(name.parse()?))
}

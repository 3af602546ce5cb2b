//! Prints the numbers of `docs/world.md`: near-miss failure rates per tag, training-prompt
//! statistics and render speed. Run with `cargo run -p world --example world_stats [SEED]`.

use harness::{Suite, Tag};
use std::collections::BTreeMap;
use std::time::Instant;
use world::nearmiss::near_miss;
use world::prompts::{split, tag_stats, training_prompts, DEFAULT_COUNT};
use world::{scene_for_metadata, SceneOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed: u64 = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .map_err(|e| format!("SEED must be an integer: {e}"))?,
        None => 1234,
    };
    let suite = Suite::official();
    let opts = SceneOptions::default();

    // Near misses: 4 per official prompt, each must fail the GenEval rules.
    let mut per_tag: BTreeMap<usize, (Tag, usize, usize)> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &suite.prompts {
        for i in 0..4u64 {
            let nm = near_miss(
                &p.metadata,
                harness::rng::derive_seed(seed, &[p.index as u64, i]),
                &opts,
            )?;
            let e = per_tag
                .entry(p.metadata.tag as usize)
                .or_insert((p.metadata.tag, 0, 0));
            e.1 += 1;
            e.2 += usize::from(!nm.scene.satisfies(&p.metadata));
            *kinds.entry(nm.kind.as_str()).or_default() += 1;
        }
    }
    println!("| tag | near misses | fail the rules | rate |\n|---|---|---|---|");
    for (tag, n, failed) in per_tag.values() {
        println!(
            "| {tag} | {n} | {failed} | {:.3} |",
            *failed as f64 / *n as f64
        );
    }
    println!("\nnear-miss kinds: {kinds:?}\n");

    // Training prompts.
    let train = training_prompts(DEFAULT_COUNT, seed);
    let (tr, val) = split(&train, seed);
    println!("| tag | prompts | distinct |\n|---|---|---|");
    for (tag, n, d) in tag_stats(&train) {
        println!("| {tag} | {n} | {d} |");
    }
    println!("\nsplit: train {} / val {} prompts\n", tr.len(), val.len());

    // Render speed, one thread, positive scenes of the official prompts.
    let start = Instant::now();
    let mut n = 0;
    for p in &suite.prompts {
        scene_for_metadata(&p.metadata, seed, &opts)?;
        n += 1;
    }
    let dt = start.elapsed().as_secs_f64();
    println!(
        "render: {n} scenes in {dt:.2}s = {:.0} images/s (one thread)",
        n as f64 / dt
    );
    Ok(())
}

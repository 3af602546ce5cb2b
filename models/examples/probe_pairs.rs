//! Diagnostic: how often does a DPO pair prefer the right image? Reads a DPO run's cached
//! `samples.jsonl` (K judged samples per training prompt), decodes every sample with the base
//! generator's tokenizer, labels it with the annotator and the GenEval rules, and prints the
//! ranked rule's pair accuracy per judge gap (chosen right and rejected wrong = right; the
//! reverse = wrong; equal labels = uninformative). Usage:
//! `cargo run --release -p models --example probe_pairs -- SAMPLES.jsonl PROMPT_SEED [ANNOTATOR]`.
use harness::rules::RuleConfig;
use models::maskgit::dpo::JudgedPrompt;
use std::collections::HashMap;
use std::io::BufRead;

type B = models::Cpu;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(seed)) = (args.get(1), args.get(2)) else {
        return Err("usage: probe_pairs SAMPLES.jsonl PROMPT_SEED [ANNOTATOR_DIR]".into());
    };
    let seed: u64 = seed.parse()?;
    let annotator_dir = args
        .get(3)
        .map_or("models/weights/annotator", String::as_str);
    let mut judged = Vec::new();
    for (i, line) in std::io::BufReader::new(std::fs::File::open(path)?)
        .lines()
        .enumerate()
    {
        let jp: JudgedPrompt =
            serde_json::from_str(&line?).map_err(|e| format!("{path}:{}: {e}", i + 1))?;
        judged.push(jp);
    }
    let metas: HashMap<String, harness::Metadata> =
        world::prompts::training_prompts(judged.len(), seed)
            .into_iter()
            .map(|m| (m.prompt.clone(), m))
            .collect();
    let device = Default::default();
    let tok = models::embedded::base_tokenizer::<B>(&device)?;
    let annotator = models::detector::BurnDetector::<B>::load_dir(
        std::path::Path::new(annotator_dir),
        &device,
    )?;
    let rules = RuleConfig::default();
    // (lo, hi) gap bins: [pairs, right, wrong]
    let edges = [0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 1.01];
    let mut bins = vec![[0usize; 3]; edges.len() - 1];
    let (mut samples, mut correct) = (0usize, 0usize);
    let (mut concordant, mut discordant) = (0usize, 0usize);
    for chunk in judged.chunks(32) {
        let grids: Vec<&[u32]> = chunk
            .iter()
            .flat_map(|jp| jp.tokens.iter().map(Vec::as_slice))
            .collect();
        let images = tok.decode(&grids)?;
        let meta: Vec<&harness::Metadata> = chunk
            .iter()
            .flat_map(|jp| {
                let m = &metas[&jp.prompt];
                jp.tokens.iter().map(move |_| m)
            })
            .collect();
        let verdicts = harness::scoring::judge_images(&annotator, &images, &meta, &rules)?;
        let mut at = 0;
        for jp in chunk {
            let k = jp.tokens.len();
            let right: Vec<bool> = verdicts[at..at + k]
                .iter()
                .map(|v| v.as_ref().is_ok_and(|j| j.correct))
                .collect();
            at += k;
            samples += k;
            correct += right.iter().filter(|&&r| r).count();
            for a in 0..k {
                for b in 0..k {
                    if right[a] && !right[b] {
                        if jp.p_yes[a] > jp.p_yes[b] {
                            concordant += 1;
                        } else if jp.p_yes[a] < jp.p_yes[b] {
                            discordant += 1;
                        }
                    }
                }
            }
            let hi = (0..k).fold(0, |b, s| if jp.p_yes[s] > jp.p_yes[b] { s } else { b });
            let lo = (0..k).fold(0, |b, s| if jp.p_yes[s] < jp.p_yes[b] { s } else { b });
            let gap = jp.p_yes[hi] - jp.p_yes[lo];
            if let Some(bin) = (0..bins.len()).find(|&i| gap >= edges[i] && gap < edges[i + 1]) {
                bins[bin][0] += 1;
                if right[hi] && !right[lo] {
                    bins[bin][1] += 1;
                } else if !right[hi] && right[lo] {
                    bins[bin][2] += 1;
                }
            }
        }
    }
    println!(
        "{} prompts, {samples} samples, annotator says correct: {correct} ({:.3})",
        judged.len(),
        correct as f64 / samples as f64
    );
    println!(
        "within-prompt AUROC of the judge (right vs wrong samples of a prompt, ties excluded): {:.3} over {} ordered pairs",
        concordant as f64 / (concordant + discordant).max(1) as f64,
        concordant + discordant
    );
    println!("| judge gap | pairs | informative | right | wrong | accuracy of informative |");
    println!("|---|---|---|---|---|---|");
    for (i, [n, r, w]) in bins.iter().enumerate() {
        println!(
            "| {:.3}–{:.3} | {n} | {} | {r} | {w} | {:.2} |",
            edges[i],
            edges[i + 1].min(1.0),
            r + w,
            *r as f64 / (r + w).max(1) as f64
        );
    }
    Ok(())
}

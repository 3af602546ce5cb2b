//! The head's data: every final candidate of a bank, its evidence features by the annotator,
//! and its label (the bank's verdict, which must be the annotator's).

use harness::detector::Detector;
use harness::evidence::{EvidenceJudge, Features};
use harness::generator::Generator;
use harness::run::Job;
use std::path::Path;

/// The zero-shot head's data (see [`crate::evidence::config::WorldData`]): per training prompt,
/// `per_prompt` scenes in the generator's style, matching (even) or near misses (odd), through
/// `tokenizer`, measured by `annotator`; labels by construction.
pub fn features_from_world(
    w: &crate::evidence::config::WorldData,
    tokenizer: &crate::vq::VqTokenizer<crate::Cpu>,
    annotator: Box<dyn Detector>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Labelled>, crate::ModelError> {
    let drawn = world::prompts::training_prompts(w.prompts, w.seed);
    let prompts = world::prompts::split(&drawn, w.held_out_split).0;
    let opts = world::SceneOptions::in_style(tokenizer.meta.train.style);
    let judge = EvidenceJudge::new(annotator);
    let mut out = Vec::with_capacity(prompts.len());
    progress(0, prompts.len());
    for (i, m) in prompts.iter().enumerate() {
        let mut images = Vec::with_capacity(w.per_prompt);
        let mut correct = Vec::with_capacity(w.per_prompt);
        for s in 0..w.per_prompt {
            let seed = harness::rng::derive_seed(w.seed, &[i as u64, s as u64]);
            let scene = if s % 2 == 0 {
                world::scene_for_metadata(m, seed, &opts)
            } else {
                world::nearmiss::near_miss(m, seed, &opts).map(|n| n.scene)
            }
            .map_err(|e| {
                crate::ModelError::config(
                    "evidence head world data",
                    format!("prompt {:?}: {e}", m.prompt),
                )
            })?;
            images.push(scene.image);
            correct.push(s % 2 == 0);
        }
        let grids = tokenizer.encode(&images);
        let refs: Vec<&[u32]> = grids.iter().map(|g| g.as_slice()).collect();
        let fault = |e: harness::error::ModelFault| {
            crate::ModelError::config(
                "evidence head world data",
                format!("prompt {:?}: {e}", m.prompt),
            )
        };
        let decoded = tokenizer.decode(&refs).map_err(fault)?;
        let metas = vec![m; decoded.len()];
        let features = judge.features(&decoded, &metas).map_err(fault)?;
        out.push(Labelled {
            prompt_index: i,
            prompt: m.prompt.clone(),
            tag: m.tag.as_str().to_string(),
            features,
            correct,
        });
        progress(i + 1, prompts.len());
    }
    Ok(out)
}

/// One banked image: its candidates' features and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub prompt_index: usize,
    pub prompt: String,
    pub tag: String,
    pub features: Vec<Features>,
    pub correct: Vec<bool>,
}

/// Reads bank `dir`, decodes its final candidates with `generator` (the bank's: the name is
/// checked) and measures them with `annotator`; refuses a bank whose verdicts are not the
/// annotator's (training on the evaluation detector's verdicts would grade the judge on its
/// own labels).
pub fn features_from_bank(
    dir: &Path,
    generator: &dyn Generator,
    annotator: Box<dyn Detector>,
    progress: &mut dyn FnMut(usize, usize),
) -> harness::Result<Vec<Labelled>> {
    let invalid = |m: String| {
        harness::Error::invalid(
            harness::error::Location::file(dir.join(harness::bank::MANIFEST).display().to_string()),
            m,
        )
    };
    let manifest = harness::bank::read_manifest(dir)?
        .ok_or_else(|| invalid("no bank here (evalcot bank writes bank.json)".into()))?;
    let model_name = harness::detector::model_name;
    if model_name(&manifest.detector) != model_name(annotator.name()) {
        return Err(invalid(format!(
            "detector {:?}: the head learns from the annotator's labels; make the bank with \
             --detector {} (labels by {})",
            manifest.detector,
            "the annotator's folder",
            annotator.name()
        )));
    }
    if manifest.generator != generator.name() {
        return Err(invalid(format!(
            "generator {:?}: expected {:?}",
            manifest.generator,
            generator.name()
        )));
    }
    let cfg = &manifest.config;
    let prompts = cfg.prompts()?;
    let jobs = harness::run::shard::Shard::select(
        manifest
            .shard
            .map(|[k, n]| harness::run::shard::Shard { index: k, count: n }),
        Job::all(&prompts, cfg.images_per_prompt, cfg.seed),
    );
    let judge = EvidenceJudge::new(annotator);
    let mut out = Vec::with_capacity(jobs.len());
    progress(0, jobs.len());
    for chunk in jobs.chunks(cfg.batch_prompts.max(1)) {
        for job in chunk {
            let banked = harness::bank::read_job(
                dir,
                job.prompt_index,
                job.image_index,
                &job.metadata.prompt,
                cfg.n,
            )?;
            let finals: Vec<_> = banked.candidates.iter().map(|c| c.last().clone()).collect();
            let fault = |e: harness::error::ModelFault| {
                invalid(format!(
                    "prompt {} image {}: {e}",
                    job.prompt_index, job.image_index
                ))
            };
            let images = generator.decode(&finals).map_err(fault)?;
            let metas = vec![&job.metadata; images.len()];
            let features = judge.features(&images, &metas).map_err(fault)?;
            out.push(Labelled {
                prompt_index: job.prompt_index,
                prompt: job.metadata.prompt.clone(),
                tag: job.metadata.tag.as_str().to_string(),
                features,
                correct: banked.candidates.iter().map(|c| c.correct).collect(),
            });
        }
        progress(out.len(), jobs.len());
    }
    Ok(out)
}

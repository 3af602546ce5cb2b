//! The verifier benchmark: judges ranking the candidates of a bank, measured as a strategy uses
//! them. A judge is asked to pick one of an image's N candidates, so what matters is whether it
//! orders *that image's* right candidates above its wrong ones (within-image AUROC), and how much
//! of the gap between plain sampling (candidate 0) and the oracle (any candidate right) its
//! best-of-N′ pick closes. Pooled AUROC and calibration are shown beside them because they are
//! what judges are usually reported with, and they can look good while the ranking is chance.
//!
//! Intervals: percentile bootstrap over prompts, stratified by tag (the images of one prompt
//! share its difficulty), as [`crate::stats::bootstrap`].

use crate::scaling::{Curve, Point, Scaling, N_PRIMES};
use crate::tables::f3;
use harness::metrics::{ece, pooled_auroc};
use harness::rng::Rng;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One banked image with its verdicts and judges' scores.
pub use harness::bank::judge::JudgedImage as Image;

/// What the report's header states once.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    pub bank: String,
    pub generator: String,
    pub detector: String,
    pub build: String,
    pub seed: u64,
    pub steps: usize,
    pub judges: Vec<String>,
}

/// An estimate with its interval (NaN where undefined, e.g. no image with mixed outcomes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Est {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// Sums over a set of images, from which every measure is a ratio.
#[derive(Debug, Clone, Default, PartialEq)]
struct Sums {
    images: f64,
    /// (right, wrong) pairs of candidates of one image, and the judge's wins among them (ties
    /// count one half).
    pairs: f64,
    won: f64,
    /// Per N′ of [`Bench::n_primes`]: images right by the judge's pick, by the oracle, and
    /// candidate 0 (plain sampling).
    pick: Vec<f64>,
    oracle: Vec<f64>,
    first: f64,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.images += o.images;
        self.pairs += o.pairs;
        self.won += o.won;
        self.first += o.first;
        for (a, b) in self.pick.iter_mut().zip(&o.pick) {
            *a += b;
        }
        for (a, b) in self.oracle.iter_mut().zip(&o.oracle) {
            *a += b;
        }
    }
}

/// One judge's measures, overall (mean over tags, as GenEval) and per tag.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeScores {
    pub judge: String,
    pub within_auroc: Est,
    pub pairs: usize,
    /// Images whose candidates are neither all right nor all wrong.
    pub mixed_images: usize,
    pub pooled_auroc: f64,
    /// Expected calibration error of P(yes) against the verdicts (10 equal-width bins).
    pub ece: f64,
    /// Per N′: accuracy of the judge's pick, and the share of the sampling→oracle gap it closes.
    pub pick: Vec<Est>,
    pub gap_closed: Vec<Est>,
    /// Per tag: (tag, within-image AUROC, pairs, accuracy and gap closed at the largest N′).
    pub tags: Vec<(String, Est, usize, Est, Est)>,
    /// P(yes) against the verdicts in 10 equal-width bins (the ECE's bins; empty ones left out).
    pub reliability: Vec<Bin>,
    /// The judge with the image taken away, where the bank was judged with ablations.
    pub ablations: Option<Ablations>,
}

/// One bin of a reliability table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    pub low: f64,
    pub high: f64,
    pub candidates: usize,
    pub mean_p_yes: f64,
    /// Share of the bin's candidates the evaluation detector finds right.
    pub right: f64,
}

/// A judge's measures when it cannot see the candidate's own image: with a blank image, and
/// with another candidate's image of the same job. Both must be at chance within images for a
/// judge whose ranking comes from the image; their pooled AUROC is what the prompt alone (blank)
/// or the prompt's difficulty (shuffled) carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ablations {
    pub blank_within: Est,
    pub blank_pooled: f64,
    pub shuffled_within: Est,
    pub shuffled_pooled: f64,
}

/// The benchmark over one bank.
#[derive(Debug, Clone, PartialEq)]
pub struct Bench {
    pub provenance: Provenance,
    /// Candidates per image.
    pub n: usize,
    pub images: usize,
    pub prompts: usize,
    pub n_primes: Vec<usize>,
    /// Per N′: oracle and sampling accuracy (judge-independent).
    pub oracle: Vec<Est>,
    pub sampling: Est,
    pub judges: Vec<JudgeScores>,
    pub resamples: usize,
}

/// Index of the largest `p` (the first on ties, as the ORM strategy picks).
fn pick(p: &[f64]) -> usize {
    harness::run::argmax(p)
}

fn sums(img: &Image, judge: usize, n_primes: &[usize]) -> Sums {
    let p = &img.p_yes[judge];
    let c = &img.correct;
    let mut s = Sums {
        images: 1.0,
        first: c[0] as u8 as f64,
        ..Sums::default()
    };
    (s.won, s.pairs) = harness::metrics::within_image(c, p);
    for &n in n_primes {
        s.pick.push(c[pick(&p[..n])] as u8 as f64);
        s.oracle.push(c[..n].iter().any(|&x| x) as u8 as f64);
    }
    s
}

/// Measures that are ratios of sums, over tags: overall = mean over tags of per-tag accuracy.
struct Measures {
    auroc: f64,
    tag_auroc: Vec<f64>,
    pick: Vec<f64>,
    oracle: Vec<f64>,
    sampling: f64,
    tag_pick_last: Vec<f64>,
    tag_gap_last: Vec<f64>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

fn gap(pick: f64, oracle: f64, sampling: f64) -> f64 {
    ratio(pick - sampling, oracle - sampling)
}

fn measures(tags: &[Sums]) -> Measures {
    let k = tags.len() as f64;
    let mut all = Sums {
        pick: vec![0.0; tags[0].pick.len()],
        oracle: vec![0.0; tags[0].oracle.len()],
        ..Sums::default()
    };
    tags.iter().for_each(|t| all.add(t));
    let mean_over = |f: &dyn Fn(&Sums) -> f64| tags.iter().map(f).sum::<f64>() / k;
    let last = tags[0].pick.len() - 1;
    Measures {
        auroc: ratio(all.won, all.pairs),
        tag_auroc: tags.iter().map(|t| ratio(t.won, t.pairs)).collect(),
        pick: (0..=last)
            .map(|i| mean_over(&|t| t.pick[i] / t.images))
            .collect(),
        oracle: (0..=last)
            .map(|i| mean_over(&|t| t.oracle[i] / t.images))
            .collect(),
        sampling: mean_over(&|t| t.first / t.images),
        tag_pick_last: tags.iter().map(|t| t.pick[last] / t.images).collect(),
        tag_gap_last: tags
            .iter()
            .map(|t| gap(t.pick[last], t.oracle[last], t.first))
            .collect(),
    }
}

fn interval(value: f64, mut draws: Vec<f64>, level: f64) -> Est {
    draws.retain(|d| d.is_finite());
    if draws.is_empty() || !value.is_finite() {
        return Est {
            value,
            low: f64::NAN,
            high: f64::NAN,
        };
    }
    draws.sort_by(f64::total_cmp);
    let q = |q: f64| crate::stats::quantile(&draws, q);
    let a = (1.0 - level) / 2.0;
    Est {
        value,
        low: q(a),
        high: q(1.0 - a),
    }
}

/// The reliability table over the ECE's bins.
fn reliability(points: &[(f64, bool)]) -> Vec<Bin> {
    (0..10)
        .filter_map(|b| {
            let inside: Vec<&(f64, bool)> = points
                .iter()
                .filter(|(p, _)| ((p * 10.0) as usize).min(9) == b)
                .collect();
            let k = inside.len() as f64;
            (!inside.is_empty()).then(|| Bin {
                low: b as f64 / 10.0,
                high: (b + 1) as f64 / 10.0,
                candidates: inside.len(),
                mean_p_yes: inside.iter().map(|x| x.0).sum::<f64>() / k,
                right: inside.iter().filter(|x| x.1).count() as f64 / k,
            })
        })
        .collect()
}

impl Bench {
    /// Measures every judge on `images`; `resamples` bootstrap draws at `level`, seeded.
    pub fn compute(
        provenance: Provenance,
        images: &[Image],
        resamples: usize,
        seed: u64,
        level: f64,
    ) -> Bench {
        let n = images.iter().map(|i| i.correct.len()).min().unwrap_or(0);
        let mut n_primes: Vec<usize> = N_PRIMES.iter().copied().filter(|&k| k < n).collect();
        n_primes.push(n);
        // Prompts by tag, each prompt's images together (the bootstrap's unit).
        let mut by_tag: BTreeMap<&str, BTreeMap<usize, Vec<&Image>>> = BTreeMap::new();
        for img in images {
            by_tag
                .entry(img.tag.as_str())
                .or_default()
                .entry(img.prompt_index)
                .or_default()
                .push(img);
        }
        let tag_names: Vec<String> = by_tag.keys().map(|t| t.to_string()).collect();
        let prompts = by_tag.values().map(|p| p.len()).sum();
        let judges = provenance.judges.len();
        // per judge, per tag, per prompt: sums
        let prompt_sums: Vec<Vec<Vec<Sums>>> = (0..judges)
            .map(|j| {
                by_tag
                    .values()
                    .map(|ps| {
                        ps.values()
                            .map(|imgs| {
                                let mut s = Sums {
                                    pick: vec![0.0; n_primes.len()],
                                    oracle: vec![0.0; n_primes.len()],
                                    ..Sums::default()
                                };
                                imgs.iter().for_each(|i| s.add(&sums(i, j, &n_primes)));
                                s
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let total = |per_prompt: &[Sums]| {
            let mut s = Sums {
                pick: vec![0.0; n_primes.len()],
                oracle: vec![0.0; n_primes.len()],
                ..Sums::default()
            };
            per_prompt.iter().for_each(|p| s.add(p));
            s
        };
        // The same resampled prompts for every judge (seeded per draw), so judges compare on
        // one set of resamples.
        let draws: Vec<Vec<Vec<usize>>> = {
            let mut rng = Rng::new(seed);
            (0..resamples)
                .map(|_| {
                    by_tag
                        .values()
                        .map(|ps| (0..ps.len()).map(|_| rng.index(ps.len())).collect())
                        .collect()
                })
                .collect()
        };
        let mut out = Vec::new();
        let mut oracle = Vec::new();
        let mut sampling = None;
        for (j, per_tag) in prompt_sums.iter().enumerate() {
            let point = measures(&per_tag.iter().map(|t| total(t)).collect::<Vec<_>>());
            let boot: Vec<Measures> = draws
                .iter()
                .map(|d| {
                    measures(
                        &per_tag
                            .iter()
                            .zip(d)
                            .map(|(t, idx)| {
                                total(&idx.iter().map(|&i| t[i].clone()).collect::<Vec<_>>())
                            })
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            let est = |v: f64, f: &dyn Fn(&Measures) -> f64| {
                interval(v, boot.iter().map(f).collect(), level)
            };
            if j == 0 {
                oracle = (0..n_primes.len())
                    .map(|i| est(point.oracle[i], &|m| m.oracle[i]))
                    .collect();
                sampling = Some(est(point.sampling, &|m| m.sampling));
            }
            let points: Vec<(f64, bool)> = images
                .iter()
                .flat_map(|i| i.p_yes[j].iter().copied().zip(i.correct.iter().copied()))
                .collect();
            let whole = total(&per_tag.iter().map(|t| total(t)).collect::<Vec<_>>());
            let tag_pairs: Vec<usize> = per_tag.iter().map(|t| total(t).pairs as usize).collect();
            out.push(JudgeScores {
                judge: provenance.judges[j].clone(),
                within_auroc: est(point.auroc, &|m| m.auroc),
                pairs: whole.pairs as usize,
                mixed_images: images
                    .iter()
                    .filter(|i| {
                        let r = i.correct[..n].iter().filter(|&&c| c).count();
                        r > 0 && r < n
                    })
                    .count(),
                pooled_auroc: pooled_auroc(&points),
                ece: ece(&points),
                reliability: reliability(&points),
                ablations: None,
                pick: (0..n_primes.len())
                    .map(|i| est(point.pick[i], &|m| m.pick[i]))
                    .collect(),
                gap_closed: (0..n_primes.len())
                    .map(|i| {
                        est(gap(point.pick[i], point.oracle[i], point.sampling), &|m| {
                            gap(m.pick[i], m.oracle[i], m.sampling)
                        })
                    })
                    .collect(),
                tags: tag_names
                    .iter()
                    .enumerate()
                    .map(|(t, name)| {
                        (
                            name.clone(),
                            est(point.tag_auroc[t], &|m| m.tag_auroc[t]),
                            tag_pairs[t],
                            est(point.tag_pick_last[t], &|m| m.tag_pick_last[t]),
                            est(point.tag_gap_last[t], &|m| m.tag_gap_last[t]),
                        )
                    })
                    .collect(),
            });
        }
        let nan = Est {
            value: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
        };
        // The ablations measured as the judge itself, on the same resamples.
        let ablated = |field: fn(&Image) -> &Vec<Vec<f64>>| -> Option<Vec<JudgeScores>> {
            if images.is_empty() || images.iter().any(|i| field(i).len() != judges) {
                return None;
            }
            let swapped: Vec<Image> = images
                .iter()
                .map(|i| Image {
                    p_yes: field(i).clone(),
                    p_blank: Vec::new(),
                    p_shuffled: Vec::new(),
                    p_steps: Vec::new(),
                    ..i.clone()
                })
                .collect();
            Some(Bench::compute(provenance.clone(), &swapped, resamples, seed, level).judges)
        };
        if let (Some(blank), Some(shuffled)) = (ablated(|i| &i.p_blank), ablated(|i| &i.p_shuffled))
        {
            for ((j, b), s) in out.iter_mut().zip(blank).zip(shuffled) {
                j.ablations = Some(Ablations {
                    blank_within: b.within_auroc,
                    blank_pooled: b.pooled_auroc,
                    shuffled_within: s.within_auroc,
                    shuffled_pooled: s.pooled_auroc,
                });
            }
        }
        Bench {
            provenance,
            n,
            images: images.len(),
            prompts,
            n_primes,
            oracle,
            sampling: sampling.unwrap_or(nan),
            judges: out,
            resamples,
        }
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let p = &self.provenance;
        let mut s = String::new();
        let _ = writeln!(s, "# Verifier benchmark on bank `{}`\n", p.bank);
        let _ = writeln!(
            s,
            "{} images of {} prompts, {} candidates each (generator `{}`, {} steps, run seed {}); verdicts by the evaluation detector `{}`; bank written by evalcot {}. Judges: {}. Intervals: 95% percentile bootstrap over prompts stratified by tag, {} resamples.\n",
            self.images,
            self.prompts,
            self.n,
            p.generator,
            p.steps,
            p.seed,
            p.detector,
            p.build,
            p.judges.iter().map(|j| format!("`{j}`")).collect::<Vec<_>>().join(", "),
            self.resamples
        );
        let _ = writeln!(
            s,
            "**Within-image AUROC**: over pairs of a right and a wrong candidate *of the same image*, the share the judge orders right (ties ½) — what best-of-N uses. **Gap closed**: (judge's pick − candidate 0) / (oracle − candidate 0), overall accuracies (mean over tags). Pooled AUROC and ECE pool all candidates of all prompts.\n"
        );
        let _ = writeln!(s, "## Ranking\n");
        let _ = writeln!(
            s,
            "| judge | within-image AUROC | pairs | images with mixed outcomes | pooled AUROC | ECE |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|");
        for j in &self.judges {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                j.judge,
                est(j.within_auroc),
                j.pairs,
                j.mixed_images,
                f3(j.pooled_auroc),
                f3(j.ece)
            );
        }
        if self.judges.iter().any(|j| j.ablations.is_some()) {
            let _ = writeln!(
                s,
                "\n## Ablations: the judge without the candidate's image\n"
            );
            let _ = writeln!(
                s,
                "*Blank*: every candidate shown as a uniform #999 image, the prompt and task unchanged. *Shuffled*: each candidate shown the image of a candidate of the same image job drawn by a seeded random permutation (its own as often as any other, so that no candidate is favoured). A judge whose ranking comes from the image is at 0.5 within images with both; the pooled AUROC that remains is what the prompt alone (blank) or the prompt's difficulty (shuffled) carries.\n"
            );
            let _ = writeln!(
                s,
                "| judge | within-image AUROC | blank: within-image | blank: pooled | shuffled: within-image | shuffled: pooled |"
            );
            let _ = writeln!(s, "|---|---|---|---:|---|---:|");
            for j in &self.judges {
                if let Some(a) = j.ablations {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {} |",
                        j.judge,
                        est(j.within_auroc),
                        est(a.blank_within),
                        f3(a.blank_pooled),
                        est(a.shuffled_within),
                        f3(a.shuffled_pooled)
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "\n## Calibration (reliability of P(yes), all candidates)\n"
        );
        let _ = writeln!(
            s,
            "| judge | P(yes) bin | candidates | mean P(yes) | share right |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|");
        for j in &self.judges {
            for b in &j.reliability {
                let _ = writeln!(
                    s,
                    "| {} | [{:.1}, {:.1}{} | {} | {} | {} |",
                    j.judge,
                    b.low,
                    b.high,
                    if b.high >= 1.0 { "]" } else { ")" },
                    b.candidates,
                    f3(b.mean_p_yes),
                    f3(b.right)
                );
            }
        }
        let _ = writeln!(s, "\n## Best-of-N′ accuracy (overall, mean over tags)\n");
        let heads: Vec<String> = self.n_primes.iter().map(|n| format!("N′={n}")).collect();
        let _ = writeln!(s, "| pick | {} |", heads.join(" | "));
        let _ = writeln!(s, "|---|{}", "---|".repeat(heads.len()));
        let _ = writeln!(
            s,
            "| candidate 0 (sampling) | {} |",
            vec![est(self.sampling); heads.len()].join(" | ")
        );
        for j in &self.judges {
            let cells: Vec<String> = j.pick.iter().map(|e| est(*e)).collect();
            let _ = writeln!(s, "| {} | {} |", j.judge, cells.join(" | "));
        }
        let cells: Vec<String> = self.oracle.iter().map(|e| est(*e)).collect();
        let _ = writeln!(s, "| oracle (any right) | {} |", cells.join(" | "));
        let _ = writeln!(s, "\n## Share of the sampling → oracle gap closed\n");
        let _ = writeln!(s, "| judge | {} |", heads.join(" | "));
        let _ = writeln!(s, "|---|{}", "---|".repeat(heads.len()));
        for j in &self.judges {
            let cells: Vec<String> = j.gap_closed.iter().map(|e| est(*e)).collect();
            let _ = writeln!(s, "| {} | {} |", j.judge, cells.join(" | "));
        }
        let last = self.n_primes.last().copied().unwrap_or(1);
        let _ = writeln!(s, "\n## Per tag (pick and gap at N′ = {last})\n");
        let _ = writeln!(
            s,
            "| judge | tag | within-image AUROC | pairs | accuracy of the pick | gap closed |"
        );
        let _ = writeln!(s, "|---|---|---|---:|---|---|");
        for j in &self.judges {
            for (tag, auroc, pairs, acc, gap) in &j.tags {
                let _ = writeln!(
                    s,
                    "| {} | {tag} | {} | {pairs} | {} | {} |",
                    j.judge,
                    est(*auroc),
                    est(*acc),
                    est(*gap)
                );
            }
        }
        s
    }

    /// Long CSV: judge, N′, accuracy of the pick, gap closed (with intervals), oracle, sampling.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "judge,n_prime,pick,pick_low,pick_high,gap_closed,gap_low,gap_high,oracle,sampling,within_auroc,pooled_auroc,ece,blank_within_auroc,shuffled_within_auroc\n",
        );
        for j in &self.judges {
            for (i, n) in self.n_primes.iter().enumerate() {
                let (a, g) = (j.pick[i], j.gap_closed[i]);
                let _ = writeln!(
                    s,
                    "{},{n},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    j.judge,
                    a.value,
                    a.low,
                    a.high,
                    g.value,
                    g.low,
                    g.high,
                    self.oracle[i].value,
                    self.sampling.value,
                    j.within_auroc.value,
                    j.pooled_auroc,
                    j.ece,
                    j.ablations.map_or(f64::NAN, |a| a.blank_within.value),
                    j.ablations.map_or(f64::NAN, |a| a.shuffled_within.value)
                );
            }
        }
        s
    }

    /// Curves for the best-of-N plot: sampling, each judge's pick, the oracle.
    pub fn scaling(&self) -> Scaling {
        let point = |n: usize, v: f64| Point {
            n,
            tags: Vec::new(),
            overall: v,
        };
        let curve = |run: usize, label: String, values: Vec<f64>| Curve {
            run,
            label,
            dir: self.provenance.bank.clone(),
            strategy: String::new(),
            n: self.n,
            points: self
                .n_primes
                .iter()
                .zip(values)
                .map(|(&n, v)| point(n, v))
                .collect(),
        };
        let mut curves = vec![curve(
            0,
            "candidate 0 (sampling)".into(),
            vec![self.sampling.value; self.n_primes.len()],
        )];
        for (i, j) in self.judges.iter().enumerate() {
            curves.push(curve(
                i + 1,
                j.judge.clone(),
                j.pick.iter().map(|e| e.value).collect(),
            ));
        }
        curves.push(curve(
            self.judges.len() + 1,
            "oracle (any right)".into(),
            self.oracle.iter().map(|e| e.value).collect(),
        ));
        Scaling {
            curves,
            notes: Vec::new(),
        }
    }
}

/// One judge's preview answers by step: how well the `potential` P(yes) after step t ranks the
/// candidates of an image by their final verdicts, and how often the preview's yes/no (at 0.5)
/// already equals the judge's own yes/no on the final image — the second needs no evaluation
/// detector, so it can choose where previews become judgeable (PARM's clarity).
pub fn by_step_markdown(judges: &[String], images: &[Image]) -> String {
    let mut s = String::new();
    if images.iter().all(|i| i.p_steps.is_empty()) {
        return s;
    }
    let _ = writeln!(s, "\n## Previews by step (task `potential`)\n");
    let _ = writeln!(
        s,
        "Per step t: within-image AUROC of the preview's P(yes) against the final verdicts; agreement of the preview's yes/no (at 0.5) with the same judge's yes/no on the final image; mean P(yes) of candidates that end right and wrong.\n"
    );
    let _ = writeln!(
        s,
        "| judge | step | within-image AUROC | agrees with its final answer | mean P(yes), right | mean P(yes), wrong |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for (j, name) in judges.iter().enumerate() {
        let steps = images
            .iter()
            .flat_map(|i| i.p_steps[j].iter().map(Vec::len))
            .max()
            .unwrap_or(0);
        for t in 0..steps {
            let (mut won, mut pairs) = (0.0, 0.0);
            let (mut agree, mut total) = (0usize, 0usize);
            let (mut right, mut nr, mut wrong, mut nw) = (0.0, 0usize, 0.0, 0usize);
            for img in images {
                let at = |c: usize| img.p_steps[j][c].get(t).copied();
                for (c, &ok) in img.correct.iter().enumerate() {
                    let Some(p) = at(c) else { continue };
                    total += 1;
                    agree += ((p >= 0.5) == (img.p_yes[j][c] >= 0.5)) as usize;
                    if ok {
                        right += p;
                        nr += 1;
                    } else {
                        wrong += p;
                        nw += 1;
                    }
                    for (k, &other) in img.correct.iter().enumerate() {
                        if let (true, false, Some(q)) = (ok, other, at(k)) {
                            pairs += 1.0;
                            won += if p > q {
                                1.0
                            } else if p == q {
                                0.5
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} | {} |",
                t + 1,
                f3(ratio(won, pairs)),
                f3(ratio(agree as f64, total as f64)),
                f3(ratio(right, nr as f64)),
                f3(ratio(wrong, nw as f64))
            );
        }
    }
    s
}

/// Within-image AUROC over `images` (verdicts, scores): (wins, pairs), ties one half.
fn within(images: &[(&[bool], Vec<f64>)]) -> (f64, f64) {
    images.iter().fold((0.0, 0.0), |(w, p), (c, s)| {
        let (dw, dp) = harness::metrics::within_image(c, s);
        (w + dw, p + dp)
    })
}

/// PARM's choice with a potential `score` assessed at one step and `keep` paths kept: the
/// best `keep` by score (ties to the lower index, as the strategy's relative rule), then the
/// highest final P(yes) among them (the first on ties, in index order).
fn parm_pick(score: &[f64], final_p: &[f64], keep: usize) -> usize {
    // Ranked by 1 − score, as the strategy ranks by P(no): potentials within 10⁻¹⁶ of 0 tie
    // there too and go to the lower index.
    let p_no: Vec<f64> = score.iter().map(|s| 1.0 - s).collect();
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| p_no[a].total_cmp(&p_no[b]).then(a.cmp(&b)));
    let mut kept: Vec<usize> = order.into_iter().take(keep.max(1)).collect();
    kept.sort_unstable();
    let best = kept.iter().map(|&c| final_p[c]).collect::<Vec<_>>();
    kept[pick(&best)]
}

/// What a potential judge could know at step t, against what it knows: the within-image AUROC
/// of the Monte-Carlo values of the states after each step of `at` (the ceiling of any potential
/// judge there) beside each judge's preview P(yes) on the same images; and PARM with the
/// relative rule simulated with either as its potential, at each clarity step and kept share,
/// with its generator forwards as a share of ORM's. `images` carry every judge's previews
/// (`--by-step`); `valued` the values of the images with mixed outcomes.
pub fn potential_markdown(
    judges: &[String],
    images: &[Image],
    valued: &[harness::bank::value::Valued],
    at: &[usize],
    steps: usize,
    rollouts: usize,
) -> String {
    let mut s = String::new();
    let by_key: BTreeMap<(usize, usize), &harness::bank::value::Valued> = valued
        .iter()
        .map(|v| ((v.prompt_index, v.image_index), v))
        .collect();
    let mixed: Vec<(&Image, &harness::bank::value::Valued)> = images
        .iter()
        .filter_map(|i| {
            by_key
                .get(&(i.prompt_index, i.image_index))
                .map(|v| (i, *v))
        })
        .collect();
    let n = images.iter().map(|i| i.correct.len()).min().unwrap_or(0);
    let _ = writeln!(
        s,
        "\n## Potential: what the preview tells, against what the state holds\n"
    );
    let _ = writeln!(
        s,
        "The value of a state is the share of {rollouts} fresh continuations from it (other draws for the remaining steps) that the evaluation detector finds right — the best any potential judge could know at that step (Monte-Carlo, on the {} images with mixed outcomes; an image with one outcome is decided whatever PARM keeps). Within-image AUROC against the candidates' own final verdicts.\n",
        mixed.len()
    );
    let mut head = String::from("| after step | value: within-image AUROC | mean value, ends right | mean value, ends wrong |");
    let mut rule = String::from("|---:|---:|---:|---:|");
    for j in judges {
        head.push_str(&format!(" {j}: preview AUROC |"));
        rule.push_str("---:|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for (a, &t) in at.iter().enumerate() {
        let vals: Vec<(&[bool], Vec<f64>)> = mixed
            .iter()
            .map(|(i, v)| (i.correct.as_slice(), v.value[a].clone()))
            .collect();
        let (won, pairs) = within(&vals);
        let mean = |right: bool| {
            let xs: Vec<f64> = mixed
                .iter()
                .flat_map(|(i, v)| {
                    i.correct
                        .iter()
                        .zip(&v.value[a])
                        .filter(move |(&ok, _)| ok == right)
                        .map(|(_, &x)| x)
                })
                .collect();
            ratio(xs.iter().sum(), xs.len() as f64)
        };
        let mut row = format!(
            "| {t} | {} | {} | {} |",
            f3(ratio(won, pairs)),
            f3(mean(true)),
            f3(mean(false))
        );
        for j in 0..judges.len() {
            let previews: Vec<(&[bool], Vec<f64>)> = mixed
                .iter()
                .map(|(i, _)| {
                    let p = i.p_steps.get(j).map_or(Vec::new(), |pj| {
                        pj.iter()
                            .map(|c| c.get(t - 1).copied().unwrap_or(f64::NAN))
                            .collect()
                    });
                    (i.correct.as_slice(), p)
                })
                .filter(|(_, p)| p.len() == n && p.iter().all(|x| x.is_finite()))
                .collect();
            let (w, p) = within(&previews);
            row.push_str(&format!(" {} |", f3(ratio(w, p))));
        }
        let _ = writeln!(s, "{row}");
    }
    // PARM simulated: overall accuracy (mean over tags) over every image.
    let overall = |correct_of: &dyn Fn(&Image) -> bool| {
        let mut tags: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for i in images {
            let e = tags.entry(i.tag.as_str()).or_default();
            e.0 += correct_of(i) as u8 as f64;
            e.1 += 1.0;
        }
        ratio(tags.values().map(|(c, k)| c / k).sum(), tags.len() as f64)
    };
    let shares = [0.125, 0.25, 0.5];
    let _ = writeln!(
        s,
        "\nPARM simulated over all {} images with the relative rule (`--keep-best`): every path clear after step t, the best ⌈share · N⌉ by potential kept, the final pick by the judge's P(yes) among them; generator forwards as a share of ORM's (N paths × {steps} steps). *value*: the Monte-Carlo value as the potential (the ceiling, not a strategy: its rollouts are not counted); *preview*: the judge's own potential P(yes), what `run --strategy parm --keep-best` does.\n",
        images.len()
    );
    let _ = writeln!(
        s,
        "| judge | after step | kept share | forwards vs ORM | accuracy, value as potential | accuracy, preview as potential |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for (j, name) in judges.iter().enumerate() {
        let final_p = |i: &Image| i.p_yes[j].clone();
        let orm = overall(&|i: &Image| i.correct[pick(&final_p(i))]);
        let _ = writeln!(
            s,
            "| {name} | – | 1 (ORM) | 1.000 | {} | {} |",
            f3(orm),
            f3(orm)
        );
        for (a, &t) in at.iter().enumerate() {
            for &q in &shares {
                let keep = ((q * n as f64 - 1e-9).ceil() as usize).clamp(1, n.max(1));
                let key = |i: &Image| (i.prompt_index, i.image_index);
                let with_value = overall(&|i: &Image| match by_key.get(&key(i)) {
                    Some(v) => i.correct[parm_pick(&v.value[a], &final_p(i), keep)],
                    None => i.correct[0],
                });
                let with_preview = overall(&|i: &Image| {
                    let p: Vec<f64> = i.p_steps.get(j).map_or(vec![0.0; n], |pj| {
                        pj.iter()
                            .map(|c| c.get(t - 1).copied().unwrap_or(0.0))
                            .collect()
                    });
                    i.correct[parm_pick(&p, &final_p(i), keep)]
                });
                let forwards = (n * t + keep * steps.saturating_sub(t)) as f64 / (n * steps) as f64;
                let _ = writeln!(
                    s,
                    "| {name} | {t} | {q} ({keep} of {n}) | {} | {} | {} |",
                    f3(forwards),
                    f3(with_value),
                    f3(with_preview)
                );
            }
        }
    }
    s
}

fn est(e: Est) -> String {
    if !e.value.is_finite() {
        return "—".into();
    }
    if !e.low.is_finite() {
        return f3(e.value);
    }
    format!("{} [{}, {}]", f3(e.value), f3(e.low), f3(e.high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(prompt: usize, tag: &str, correct: &[bool], p: &[f64]) -> Image {
        Image {
            p_steps: Vec::new(),
            p_blank: Vec::new(),
            p_shuffled: Vec::new(),
            prompt_index: prompt,
            image_index: 0,
            tag: tag.into(),
            correct: correct.to_vec(),
            p_yes: vec![p.to_vec()],
        }
    }

    fn prov() -> Provenance {
        Provenance {
            bank: "b".into(),
            generator: "g".into(),
            detector: "d".into(),
            build: "x".into(),
            seed: 1,
            steps: 4,
            judges: vec!["j".into()],
        }
    }

    #[test]
    fn a_judge_that_ranks_by_prompt_only_is_at_chance_within_images() {
        // P(yes) depends only on the prompt: pooled AUROC is high (prompt 1 is easy), the
        // within-image AUROC is ½ (every pair ties), and the pick closes none of the gap.
        let imgs = vec![
            image(0, "a", &[false, true, false, false], &[0.2; 4]),
            image(1, "a", &[true, true, false, true], &[0.9; 4]),
            image(2, "b", &[false, false, true, false], &[0.2; 4]),
            image(3, "b", &[true, false, true, true], &[0.9; 4]),
        ];
        let b = Bench::compute(prov(), &imgs, 200, 3, 0.95);
        let j = &b.judges[0];
        assert_eq!(j.within_auroc.value, 0.5);
        assert_eq!(j.pairs, 12); // 1×3 + 3×1 + 1×3 + 3×1
        assert!(j.pooled_auroc > 0.7, "{}", j.pooled_auroc);
        assert_eq!(b.n_primes, vec![1, 2, 4]);
        let last = j.gap_closed.len() - 1;
        assert_eq!(j.gap_closed[last].value, 0.0);
        assert_eq!(b.oracle[last].value, 1.0);
        assert_eq!(b.sampling.value, 0.5);
    }

    #[test]
    fn a_judge_that_sees_the_verdict_closes_the_whole_gap() {
        let imgs: Vec<Image> = (0..12)
            .map(|i| {
                let c = [i % 3 == 0, i % 2 == 0, i % 5 == 0];
                let p: Vec<f64> = c.iter().map(|&x| if x { 0.8 } else { 0.1 }).collect();
                image(i, ["a", "b"][i % 2], &c, &p)
            })
            .collect();
        let b = Bench::compute(prov(), &imgs, 100, 1, 0.95);
        let j = &b.judges[0];
        assert_eq!(j.within_auroc.value, 1.0);
        for (g, o) in j.gap_closed.iter().zip(&b.oracle).skip(1) {
            assert!(g.value == 1.0 || o.value == b.sampling.value, "{g:?}");
        }
        assert!(j.within_auroc.low <= 1.0 && j.within_auroc.high == 1.0);
        let md = b.markdown();
        assert!(md.contains("| j | 1.000"), "{md}");
        assert!(b.csv().lines().count() == 1 + b.n_primes.len());
    }

    #[test]
    fn ablations_are_measured_as_the_judge_and_reliability_bins_count_every_candidate() {
        // A judge that sees the verdict, blanked to its prompt-level mean and shuffled by
        // swapping each image's candidates: at chance (or worse) within images.
        let imgs: Vec<Image> = (0..16)
            .map(|i| {
                let c = [i % 2 == 0, i % 3 != 0];
                let p: Vec<f64> = c.iter().map(|&x| if x { 0.85 } else { 0.15 }).collect();
                let mut img = image(i, ["a", "b"][i % 2], &c, &p);
                img.p_blank = vec![vec![0.4; 2]];
                img.p_shuffled = vec![vec![p[1], p[0]]];
                img
            })
            .collect();
        let b = Bench::compute(prov(), &imgs, 50, 2, 0.95);
        let j = &b.judges[0];
        assert_eq!(j.within_auroc.value, 1.0);
        let a = j.ablations.expect("ablations");
        assert_eq!(a.blank_within.value, 0.5);
        assert_eq!(a.blank_pooled, 0.5);
        assert_eq!(a.shuffled_within.value, 0.0);
        let counted: usize = j.reliability.iter().map(|b| b.candidates).sum();
        assert_eq!(counted, 32);
        assert!(j
            .reliability
            .iter()
            .all(|b| b.right == 0.0 || b.right == 1.0));
        let md = b.markdown();
        assert!(
            md.contains("| j | 1.000") && md.contains("| j | [0.8, 0.9) | "),
            "{md}"
        );
        // Without ablations the section is absent.
        let plain: Vec<Image> = imgs
            .iter()
            .map(|i| Image {
                p_blank: Vec::new(),
                p_shuffled: Vec::new(),
                ..i.clone()
            })
            .collect();
        let b = Bench::compute(prov(), &plain, 50, 2, 0.95);
        assert!(b.judges[0].ablations.is_none() && !b.markdown().contains("## Ablations"));
    }

    #[test]
    fn pooled_auroc_counts_ties_as_half() {
        assert_eq!(
            pooled_auroc(&[(0.5, true), (0.5, false), (0.9, true), (0.1, false)]),
            (1.0 + 1.0 + 1.0 + 0.5) / 4.0
        );
        assert!(ece(&[(0.95, true), (0.05, false)]) < 0.06);
    }
}

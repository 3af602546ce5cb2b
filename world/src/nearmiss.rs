//! Near-miss scenes: for a prompt, a scene that breaks exactly one of its clauses (negatives for
//! judges and reward models).
//!
//! A near miss is built as a positive scene of a *mutated* prompt (one clause changed), then
//! checked twice with the GenEval rules: the mutated prompt must pass and the original must
//! fail. So the scene is right about everything except the one broken clause.

use crate::scene::{sample_scene, Scene, SceneOptions};
use crate::WorldError;
use harness::rng::Rng;
use harness::{ClassId, Color, Include, Metadata, Relation, Tag};
use std::fmt;

/// Which clause is broken, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NearMissKind {
    /// One object fewer than asked (count ≥ 2).
    CountMinus,
    /// One object more than asked, where an exclude clause forbids it.
    CountPlus,
    /// The clause's objects in another colour.
    WrongColor,
    /// The opposite relation (left ↔ right, above ↔ below).
    WrongRelation,
    /// A position prompt with the two objects' roles exchanged.
    SwappedRoles,
    /// Two coloured clauses with their colours exchanged.
    SwappedColors,
    /// The clause's objects left out.
    Missing,
    /// The clause's objects replaced by a class the prompt does not mention.
    SwappedClass,
}

impl NearMissKind {
    pub const ALL: &'static [NearMissKind] = &[
        NearMissKind::CountMinus,
        NearMissKind::CountPlus,
        NearMissKind::WrongColor,
        NearMissKind::WrongRelation,
        NearMissKind::SwappedRoles,
        NearMissKind::SwappedColors,
        NearMissKind::Missing,
        NearMissKind::SwappedClass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NearMissKind::CountMinus => "count_minus",
            NearMissKind::CountPlus => "count_plus",
            NearMissKind::WrongColor => "wrong_color",
            NearMissKind::WrongRelation => "wrong_relation",
            NearMissKind::SwappedRoles => "swapped_roles",
            NearMissKind::SwappedColors => "swapped_colors",
            NearMissKind::Missing => "missing",
            NearMissKind::SwappedClass => "swapped_class",
        }
    }
}

impl fmt::Display for NearMissKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scene that fails its prompt in one way.
#[derive(Debug, Clone)]
pub struct NearMiss {
    pub scene: Scene,
    pub kind: NearMissKind,
    /// The include clause that was broken.
    pub clause: usize,
    /// What differs from the prompt, e.g. `3 dog instead of 2`.
    pub description: String,
}

/// Every (kind, include clause) that can be broken for this prompt.
pub fn applicable(metadata: &Metadata) -> Vec<(NearMissKind, usize)> {
    let inc = &metadata.include;
    let mut out = Vec::new();
    for (k, clause) in inc.iter().enumerate() {
        if clause.count >= 2 {
            out.push((NearMissKind::CountMinus, k));
        }
        let forbidden = metadata
            .exclude
            .iter()
            .any(|e| e.class == clause.class && e.count <= clause.count + 1);
        if forbidden && clause.count < 5 {
            out.push((NearMissKind::CountPlus, k));
        }
        if clause.color.is_some() {
            out.push((NearMissKind::WrongColor, k));
        }
        if let Some(pos) = clause.position {
            out.push((NearMissKind::WrongRelation, k));
            if inc[pos.group].class != clause.class {
                out.push((NearMissKind::SwappedRoles, k));
            }
        }
        if let Some(c) = clause.color {
            if inc[k + 1..]
                .iter()
                .any(|o| o.color.is_some_and(|oc| oc != c))
            {
                out.push((NearMissKind::SwappedColors, k));
            }
        }
        out.push((NearMissKind::Missing, k));
        out.push((NearMissKind::SwappedClass, k));
    }
    out
}

fn opposite(r: Relation) -> Relation {
    match r {
        Relation::LeftOf => Relation::RightOf,
        Relation::RightOf => Relation::LeftOf,
        Relation::Above => Relation::Below,
        Relation::Below => Relation::Above,
    }
}

/// The include clauses of the mutated prompt and a description of the change.
fn mutate(
    metadata: &Metadata,
    kind: NearMissKind,
    k: usize,
    rng: &mut Rng,
) -> Option<(Vec<Include>, String)> {
    let mut inc = metadata.include.clone();
    let clause = inc.get(k)?.clone();
    let desc = match kind {
        NearMissKind::CountMinus if clause.count >= 2 => {
            inc[k].count -= 1;
            format!(
                "{} {} instead of {}",
                inc[k].count, clause.class, clause.count
            )
        }
        NearMissKind::CountPlus => {
            inc[k].count += 1;
            format!(
                "{} {} instead of {}",
                inc[k].count, clause.class, clause.count
            )
        }
        NearMissKind::WrongColor => {
            let want = clause.color?;
            let others: Vec<Color> = Color::ALL.iter().copied().filter(|c| *c != want).collect();
            let c = *rng.choose(&others)?;
            inc[k].color = Some(c);
            format!("{c} {} instead of {want}", clause.class)
        }
        NearMissKind::WrongRelation => {
            let pos = clause.position?;
            let r = opposite(pos.relation);
            inc[k].position = Some(harness::Position {
                relation: r,
                group: pos.group,
            });
            format!(
                "{} {r} {} instead of {}",
                clause.class, inc[pos.group].class, pos.relation
            )
        }
        NearMissKind::SwappedRoles => {
            let g = clause.position?.group;
            let (a, b) = (inc[k].clone(), inc[g].clone());
            inc[k].class = b.class;
            inc[k].color = b.color;
            inc[g].class = a.class;
            inc[g].color = a.color;
            format!("{} and {} swapped", a.class, b.class)
        }
        NearMissKind::SwappedColors => {
            let want = clause.color?;
            let j = (k + 1..inc.len()).find(|&j| inc[j].color.is_some_and(|c| c != want))?;
            let other = inc[j].color;
            inc[k].color = other;
            inc[j].color = Some(want);
            format!("colours of {} and {} swapped", clause.class, inc[j].class)
        }
        NearMissKind::Missing => {
            inc.remove(k);
            for c in inc.iter_mut() {
                if let Some(p) = c.position {
                    if p.group == k {
                        c.position = None;
                    } else if p.group > k {
                        c.position = Some(harness::Position {
                            group: p.group - 1,
                            ..p
                        });
                    }
                }
            }
            format!("no {}", clause.class)
        }
        NearMissKind::SwappedClass => {
            let mentioned: Vec<ClassId> = metadata
                .include
                .iter()
                .map(|c| c.class)
                .chain(metadata.exclude.iter().map(|e| e.class))
                .collect();
            let pool: Vec<ClassId> = ClassId::all().filter(|c| !mentioned.contains(c)).collect();
            let c = *rng.choose(&pool)?;
            inc[k].class = c;
            format!("{c} instead of {}", clause.class)
        }
        NearMissKind::CountMinus => return None,
    };
    Some((inc, desc))
}

/// A near miss of the given kind on include clause `clause`, or an error when that kind does
/// not apply to this prompt or no scene could be found.
pub fn near_miss_of(
    metadata: &Metadata,
    kind: NearMissKind,
    clause: usize,
    seed: u64,
    opts: &SceneOptions,
) -> Result<NearMiss, WorldError> {
    if !applicable(metadata).contains(&(kind, clause)) {
        return Err(WorldError::Unsatisfiable(format!(
            "near miss {kind} on clause {clause} does not apply to \"{}\"",
            metadata.prompt
        )));
    }
    let mut rng = Rng::derived(seed, &[u64::MAX]);
    let (include, description) = mutate(metadata, kind, clause, &mut rng)
        .ok_or_else(|| WorldError::Unsatisfiable(format!("near miss {kind} cannot be built")))?;
    let fails_original = |s: &Scene| !s.satisfies(metadata);
    let scene = if include.is_empty() {
        // The only clause is missing: an image without objects (plus any distractors).
        sample_scene(&[], &[], seed, opts, fails_original)?
    } else {
        let mutated = Metadata::new(Tag::TwoObject, include.clone(), vec![], "near miss")
            .map_err(|e| WorldError::Unsatisfiable(format!("mutated prompt is invalid: {e}")))?;
        let avoid: Vec<ClassId> = metadata
            .include
            .iter()
            .map(|c| c.class)
            .chain(metadata.exclude.iter().map(|e| e.class))
            .collect();
        sample_scene(&include, &avoid, seed, opts, |s| {
            s.satisfies(&mutated) && fails_original(s)
        })?
    };
    Ok(NearMiss {
        scene,
        kind,
        clause,
        description,
    })
}

/// A near miss of a randomly chosen applicable kind and clause (derived from `seed`); falls
/// back to the other options if the chosen one cannot be built.
pub fn near_miss(
    metadata: &Metadata,
    seed: u64,
    opts: &SceneOptions,
) -> Result<NearMiss, WorldError> {
    // Kind first, then clause: otherwise kinds that apply to every clause (missing, swapped
    // class) would crowd out the tag-specific ones (count, colour, relation).
    let all = applicable(metadata);
    let mut kinds: Vec<NearMissKind> = Vec::new();
    for (k, _) in &all {
        if !kinds.contains(k) {
            kinds.push(*k);
        }
    }
    let mut rng = Rng::derived(seed, &[u64::MAX - 1]);
    rng.shuffle(&mut kinds);
    let mut last_err = None;
    for kind in kinds {
        let mut clauses: Vec<usize> = all
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, c)| *c)
            .collect();
        rng.shuffle(&mut clauses);
        for clause in clauses {
            match near_miss_of(metadata, kind, clause, seed, opts) {
                Ok(nm) => return Ok(nm),
                Err(e) => last_err = Some(e),
            }
        }
    }
    Err(last_err.unwrap_or_else(|| WorldError::Unsatisfiable("no near miss applies".into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::Suite;

    #[test]
    fn every_applicable_near_miss_fails_the_rules_for_prompts_of_every_tag() {
        let suite = Suite::official();
        let mut per_tag = std::collections::BTreeMap::new();
        // Every 3rd prompt covers all six tags (the suite is ordered by tag).
        for p in suite.prompts.iter().step_by(3) {
            for (kind, clause) in applicable(&p.metadata) {
                let nm = near_miss_of(&p.metadata, kind, clause, 11, &SceneOptions::default())
                    .unwrap_or_else(|e| panic!("{} {kind}: {e}", p.metadata.prompt));
                assert!(
                    !nm.scene.satisfies(&p.metadata),
                    "{} {kind}: near miss passes",
                    p.metadata.prompt
                );
                *per_tag.entry(p.metadata.tag.as_str()).or_insert(0) += 1;
            }
        }
        assert_eq!(per_tag.len(), 6, "{per_tag:?}");
    }

    #[test]
    fn kinds_match_the_tags() {
        let suite = Suite::official();
        let kinds = |i: usize| -> Vec<NearMissKind> {
            applicable(&suite.prompts[i].metadata)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        for p in &suite.prompts {
            let ks: Vec<NearMissKind> = applicable(&p.metadata)
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            match p.metadata.tag {
                Tag::Counting => {
                    assert!(ks.contains(&NearMissKind::CountMinus));
                    assert!(ks.contains(&NearMissKind::CountPlus));
                }
                Tag::Colors => assert!(ks.contains(&NearMissKind::WrongColor)),
                Tag::Position => {
                    assert!(ks.contains(&NearMissKind::WrongRelation));
                    assert!(ks.contains(&NearMissKind::SwappedRoles));
                }
                Tag::ColorAttr => assert!(ks.contains(&NearMissKind::SwappedColors)),
                Tag::SingleObject | Tag::TwoObject => {
                    assert!(!ks.contains(&NearMissKind::CountPlus));
                }
            }
        }
        assert!(kinds(0).contains(&NearMissKind::Missing));
    }

    #[test]
    fn count_plus_adds_exactly_one_object() {
        let suite = Suite::official();
        let p = suite
            .prompts
            .iter()
            .find(|p| p.metadata.tag == Tag::Counting)
            .unwrap();
        let n = p.metadata.include[0].count as usize;
        let nm = near_miss_of(
            &p.metadata,
            NearMissKind::CountPlus,
            0,
            2,
            &SceneOptions::default(),
        )
        .unwrap();
        assert_eq!(nm.scene.objects.len(), n + 1);
        let err = near_miss_of(
            &p.metadata,
            NearMissKind::WrongRelation,
            0,
            2,
            &SceneOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not apply"));
    }
}

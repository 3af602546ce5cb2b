//! Training prompts over GenEval's six templates, disjoint from the 553 official prompts.
//!
//! The templates and spelling conventions are copied from `evaluation_metadata.jsonl` (a test
//! rebuilds every official prompt from its metadata): "an" before a vowel, plurals with "es"
//! after a final "s" and "s" otherwise, number words two–four, counting with an exclude of
//! N+1, no "person" in the colour tags.
//!
//! The single_object template has no training prompts: its pool is the 80 classes and all 80
//! are official prompts. The other five tags are mixed in proportion to their official counts.

use harness::rng::Rng;
use harness::{ClassId, Color, Exclude, Include, Metadata, Position, Relation, Suite, Tag};
use std::collections::{HashMap, HashSet};

/// The paper's number of training prompts.
pub const DEFAULT_COUNT: usize = 13_000;
/// Fraction of distinct prompt strings held out by [`split`].
pub const VAL_FRACTION: f64 = 0.05;

/// "an" before a vowel, "a" otherwise (as in every official prompt).
pub fn article(next_word: &str) -> &'static str {
    match next_word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// GenEval's plural: "es" after a final "s" ("buses", "wine glasses"), "s" otherwise.
pub fn plural(name: &str) -> String {
    if name.ends_with('s') {
        format!("{name}es")
    } else {
        format!("{name}s")
    }
}

/// Number words of the counting template.
pub fn number_word(n: u32) -> Option<&'static str> {
    match n {
        2 => Some("two"),
        3 => Some("three"),
        4 => Some("four"),
        _ => None,
    }
}

fn with_article(phrase: &str) -> String {
    format!("{} {phrase}", article(phrase))
}

fn inc(class: ClassId, count: u32, color: Option<Color>, position: Option<Position>) -> Include {
    Include {
        class,
        count,
        color,
        position,
    }
}

fn build(tag: Tag, include: Vec<Include>, exclude: Vec<Exclude>, prompt: String) -> Metadata {
    // Every builder below produces valid clauses (counts ≥ 1, group 0 after clause 0).
    Metadata::new(tag, include, exclude, prompt)
        .unwrap_or_else(|e| unreachable!("template metadata is valid: {e}"))
}

/// `a photo of a/an {c}`.
pub fn single_object(c: ClassId) -> Metadata {
    let text = format!("a photo of {}", with_article(c.name()));
    build(Tag::SingleObject, vec![inc(c, 1, None, None)], vec![], text)
}

/// `a photo of a/an {a} and a/an {b}`.
pub fn two_object(a: ClassId, b: ClassId) -> Metadata {
    let text = format!(
        "a photo of {} and {}",
        with_article(a.name()),
        with_article(b.name())
    );
    build(
        Tag::TwoObject,
        vec![inc(a, 1, None, None), inc(b, 1, None, None)],
        vec![],
        text,
    )
}

/// `a photo of {two|three|four} {c}s`, excluding N+1. `None` for other counts.
pub fn counting(c: ClassId, n: u32) -> Option<Metadata> {
    let word = number_word(n)?;
    let text = format!("a photo of {word} {}", plural(c.name()));
    Some(build(
        Tag::Counting,
        vec![inc(c, n, None, None)],
        vec![Exclude {
            class: c,
            count: n + 1,
        }],
        text,
    ))
}

/// `a photo of a/an {color} {c}`.
pub fn colors(color: Color, c: ClassId) -> Metadata {
    let text = format!(
        "a photo of {}",
        with_article(&format!("{color} {}", c.name()))
    );
    build(
        Tag::Colors,
        vec![inc(c, 1, Some(color), None)],
        vec![],
        text,
    )
}

/// `a photo of a/an {a} {rel} a/an {b}`: include `[{b}, {a, position: [rel, 0]}]`.
pub fn position(a: ClassId, rel: Relation, b: ClassId) -> Metadata {
    let text = format!(
        "a photo of {} {rel} {}",
        with_article(a.name()),
        with_article(b.name())
    );
    build(
        Tag::Position,
        vec![
            inc(b, 1, None, None),
            inc(
                a,
                1,
                None,
                Some(Position {
                    relation: rel,
                    group: 0,
                }),
            ),
        ],
        vec![],
        text,
    )
}

/// `a photo of a/an {ca} {a} and a/an {cb} {b}`.
pub fn color_attr(ca: Color, a: ClassId, cb: Color, b: ClassId) -> Metadata {
    let text = format!(
        "a photo of {} and {}",
        with_article(&format!("{ca} {}", a.name())),
        with_article(&format!("{cb} {}", b.name()))
    );
    build(
        Tag::ColorAttr,
        vec![inc(a, 1, Some(ca), None), inc(b, 1, Some(cb), None)],
        vec![],
        text,
    )
}

/// The template prompt for `metadata`'s tag and clauses (the official text for official
/// metadata). `None` when the clauses do not fit the tag's template.
pub fn template_for(m: &Metadata) -> Option<Metadata> {
    let i = &m.include;
    match (m.tag, i.as_slice()) {
        (Tag::SingleObject, [a]) => Some(single_object(a.class)),
        (Tag::TwoObject, [a, b]) => Some(two_object(a.class, b.class)),
        (Tag::Counting, [a]) => counting(a.class, a.count),
        (Tag::Colors, [a]) => Some(colors(a.color?, a.class)),
        (Tag::Position, [b, a]) => Some(position(a.class, a.position?.relation, b.class)),
        (Tag::ColorAttr, [a, b]) => Some(color_attr(a.color?, a.class, b.color?, b.class)),
        _ => None,
    }
}

/// The official prompt strings.
pub fn official_prompts() -> HashSet<String> {
    Suite::official()
        .prompts
        .into_iter()
        .map(|p| p.metadata.prompt)
        .collect()
}

/// Tags with training prompts and their official counts (single_object has none left).
const TAG_WEIGHTS: [(Tag, usize); 5] = [
    (Tag::TwoObject, 99),
    (Tag::Counting, 80),
    (Tag::Colors, 94),
    (Tag::Position, 100),
    (Tag::ColorAttr, 100),
];

/// How many of `n` prompts each tag gets: proportional to the official counts, rounded by
/// largest remainder so that they add up to `n`.
pub fn tag_quota(n: usize) -> Vec<(Tag, usize)> {
    let total: usize = TAG_WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut out: Vec<(Tag, usize, usize)> = TAG_WEIGHTS
        .iter()
        .map(|&(t, w)| (t, n * w / total, (n * w) % total))
        .collect();
    let mut left = n - out.iter().map(|o| o.1).sum::<usize>();
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&a, &b| out[b].2.cmp(&out[a].2).then(a.cmp(&b)));
    for &k in &order {
        if left == 0 {
            break;
        }
        out[k].1 += 1;
        left -= 1;
    }
    out.into_iter().map(|(t, q, _)| (t, q)).collect()
}

fn classes() -> Vec<ClassId> {
    ClassId::all().collect()
}

fn non_person() -> Vec<ClassId> {
    ClassId::all().filter(|c| c.name() != "person").collect()
}

/// Every non-official prompt of a tag whose pool is small enough to list (all but color_attr).
fn enumerable_pool(tag: Tag, official: &HashSet<String>) -> Option<Vec<Metadata>> {
    let mut pool = Vec::new();
    match tag {
        Tag::SingleObject => pool.extend(classes().into_iter().map(single_object)),
        Tag::TwoObject => {
            for a in classes() {
                for b in classes() {
                    if a != b {
                        pool.push(two_object(a, b));
                    }
                }
            }
        }
        Tag::Counting => {
            for c in classes() {
                for n in 2..=4 {
                    pool.extend(counting(c, n));
                }
            }
        }
        Tag::Colors => {
            for c in non_person() {
                for &col in Color::ALL {
                    pool.push(colors(col, c));
                }
            }
        }
        Tag::Position => {
            for a in classes() {
                for b in classes() {
                    if a != b {
                        for &r in Relation::ALL {
                            pool.push(position(a, r, b));
                        }
                    }
                }
            }
        }
        Tag::ColorAttr => return None,
    }
    pool.retain(|m| !official.contains(&m.prompt));
    Some(pool)
}

/// A random color_attr prompt (a ≠ b, colours differ, no person), possibly official.
fn random_color_attr(rng: &mut Rng) -> Metadata {
    let cls = non_person();
    let a = cls[rng.index(cls.len())];
    let b = loop {
        let b = cls[rng.index(cls.len())];
        if b != a {
            break b;
        }
    };
    let ca = Color::ALL[rng.index(10)];
    let cb = loop {
        let cb = Color::ALL[rng.index(10)];
        if cb != ca {
            break cb;
        }
    };
    color_attr(ca, a, cb, b)
}

/// `n` training prompts from `seed`, none official. Small pools are walked in shuffled rounds
/// (every prompt once before any repeats), so counting (160 candidates) and colors (696) repeat
/// while the large pools do not. Output is grouped by tag, then shuffled.
pub fn training_prompts(n: usize, seed: u64) -> Vec<Metadata> {
    let official = official_prompts();
    let mut out = Vec::with_capacity(n);
    for (ti, (tag, quota)) in tag_quota(n).into_iter().enumerate() {
        let mut rng = Rng::derived(seed, &[1, ti as u64]);
        match enumerable_pool(tag, &official) {
            Some(pool) if !pool.is_empty() => {
                let mut order: Vec<usize> = Vec::new();
                for _ in 0..quota {
                    if order.is_empty() {
                        order = (0..pool.len()).collect();
                        rng.shuffle(&mut order);
                    }
                    if let Some(i) = order.pop() {
                        out.push(pool[i].clone());
                    }
                }
            }
            Some(_) => {}
            None => {
                let mut seen = HashSet::new();
                while seen.len() < quota {
                    let m = random_color_attr(&mut rng);
                    if !official.contains(&m.prompt) && seen.insert(m.prompt.clone()) {
                        out.push(m);
                    }
                }
            }
        }
    }
    Rng::derived(seed, &[2]).shuffle(&mut out);
    out
}

/// FNV-1a: a string hash that never changes across Rust versions.
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Splits prompts into (train, val) by prompt string: about [`VAL_FRACTION`] of the distinct
/// strings go to val, and every copy of a string goes to the same side.
pub fn split(prompts: &[Metadata], seed: u64) -> (Vec<Metadata>, Vec<Metadata>) {
    let is_val = |m: &Metadata| {
        let u = harness::rng::derive_seed(seed, &[3, stable_hash(&m.prompt)]);
        ((u >> 11) as f64 / (1u64 << 53) as f64) < VAL_FRACTION
    };
    prompts.iter().cloned().partition(|m| !is_val(m))
}

/// Per-tag counts: (tag, prompts, distinct prompt strings), in official tag order.
pub fn tag_stats(prompts: &[Metadata]) -> Vec<(Tag, usize, usize)> {
    let mut count: HashMap<Tag, usize> = HashMap::new();
    let mut distinct: HashMap<Tag, HashSet<&str>> = HashMap::new();
    for m in prompts {
        *count.entry(m.tag).or_default() += 1;
        distinct.entry(m.tag).or_default().insert(&m.prompt);
    }
    Tag::ALL
        .iter()
        .map(|t| {
            (
                *t,
                count.get(t).copied().unwrap_or(0),
                distinct.get(t).map_or(0, HashSet::len),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_rebuild_every_official_prompt_exactly() {
        for p in Suite::official().prompts {
            let rebuilt = template_for(&p.metadata).expect("template applies");
            assert_eq!(rebuilt.prompt, p.metadata.prompt);
            assert_eq!(rebuilt.to_json_string(), p.metadata.to_json_string());
        }
    }

    #[test]
    fn training_prompts_are_disjoint_from_official_ones() {
        let official = Suite::official();
        let texts: HashSet<String> = official
            .prompts
            .iter()
            .map(|p| p.metadata.prompt.clone())
            .collect();
        let metas: HashSet<String> = official
            .prompts
            .iter()
            .map(|p| {
                // Metadata without the prompt text: the same clauses under another wording.
                let mut v = p.metadata.raw().clone();
                v.as_object_mut().map(|o| o.remove("prompt"));
                v.to_string()
            })
            .collect();
        let train = training_prompts(DEFAULT_COUNT, 0);
        assert_eq!(train.len(), DEFAULT_COUNT);
        for m in &train {
            assert!(!texts.contains(&m.prompt), "official prompt {}", m.prompt);
            let mut v = m.raw().clone();
            v.as_object_mut().map(|o| o.remove("prompt"));
            assert!(
                !metas.contains(&v.to_string()),
                "official metadata {}",
                m.prompt
            );
            assert_eq!(template_for(m).as_ref(), Some(m));
        }
    }

    #[test]
    fn tag_mix_follows_the_official_counts() {
        let q = tag_quota(13_000);
        assert_eq!(q.iter().map(|x| x.1).sum::<usize>(), 13_000);
        let train = training_prompts(13_000, 1);
        let stats = tag_stats(&train);
        for (tag, want) in q {
            let got = stats.iter().find(|s| s.0 == tag).unwrap();
            assert_eq!(got.1, want, "{tag}");
        }
        let single = stats.iter().find(|s| s.0 == Tag::SingleObject).unwrap();
        assert_eq!(single.1, 0);
        // Small pools are used in full before anything repeats.
        let counting = stats.iter().find(|s| s.0 == Tag::Counting).unwrap();
        assert_eq!(counting.2, 160);
        let colors = stats.iter().find(|s| s.0 == Tag::Colors).unwrap();
        assert_eq!(colors.2, 790 - 94);
        assert!(!train
            .iter()
            .any(|m| m.tag == Tag::Colors && m.include[0].class.name() == "person"));
    }

    #[test]
    fn generation_and_split_are_deterministic_and_disjoint() {
        let a = training_prompts(2000, 7);
        assert_eq!(a, training_prompts(2000, 7));
        assert_ne!(a, training_prompts(2000, 8));
        let (train, val) = split(&a, 7);
        assert_eq!(train.len() + val.len(), a.len());
        let tv: HashSet<&str> = train.iter().map(|m| m.prompt.as_str()).collect();
        assert!(val.iter().all(|m| !tv.contains(m.prompt.as_str())));
        let frac = val.len() as f64 / a.len() as f64;
        assert!((0.02..0.09).contains(&frac), "{frac}");
    }

    #[test]
    fn spelling_conventions() {
        assert_eq!(plural("bus"), "buses");
        assert_eq!(plural("wine glass"), "wine glasses");
        assert_eq!(plural("toothbrush"), "toothbrushs");
        assert_eq!(article("orange cow"), "an");
        assert_eq!(article("umbrella"), "an");
        assert_eq!(article("red apple"), "a");
    }
}

//! Prompt words: a word-level prompt tokenizer with a fixed vocabulary (token ids for the
//! networks' text input; the image tokenizer, which turns images into codes, is `models::vq`), and a
//! parser from prompt text to GenEval metadata.
//!
//! Every class name is one token, multi-word names included ("tv remote", "hair drier"), and
//! so are the relations "left of" and "right of"; phrases are matched longest first. A plural is
//! the class token followed by [`PLURAL`]. "orange" is both a colour and a class: it is the
//! colour when a class follows it, the fruit otherwise ("an orange orange").

use crate::prompts::plural;
use harness::{ClassId, Color, Exclude, Include, Metadata, Position, Relation, Tag};
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

pub const PAD: u32 = 0;
pub const BOS: u32 = 1;
pub const EOS: u32 = 2;
/// Follows a class token to make it plural.
pub const PLURAL: u32 = 3;
/// Length of [`encode_padded`] output: BOS + up to 14 tokens + EOS. The longest template
/// (color_attr) needs 10 tokens plus BOS and EOS.
pub const MAX_LEN: usize = 16;

/// What a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Pad,
    Bos,
    Eos,
    Plural,
    /// "a" or "an".
    Article(&'static str),
    /// "photo", "of", "and".
    Word(&'static str),
    Number(u32),
    Relation(Relation),
    Color(Color),
    Class(ClassId),
}

impl TokenKind {
    /// The token's text ("" for special tokens other than their bracketed names).
    pub fn text(self) -> &'static str {
        match self {
            TokenKind::Pad => "<pad>",
            TokenKind::Bos => "<bos>",
            TokenKind::Eos => "<eos>",
            TokenKind::Plural => "<plural>",
            TokenKind::Article(w) | TokenKind::Word(w) => w,
            TokenKind::Number(2) => "two",
            TokenKind::Number(3) => "three",
            TokenKind::Number(_) => "four",
            TokenKind::Relation(r) => r.as_str(),
            TokenKind::Color(c) => c.as_str(),
            TokenKind::Class(c) => c.name(),
        }
    }
}

struct Vocab {
    kinds: Vec<TokenKind>,
    /// Phrase (one or two words) → token ids (a plural maps to [class, PLURAL]).
    phrases: HashMap<String, Vec<u32>>,
    /// Class phrases, singular and plural, for the colour/class look-ahead.
    class_phrases: HashMap<String, Vec<u32>>,
}

fn vocab() -> &'static Vocab {
    static V: OnceLock<Vocab> = OnceLock::new();
    V.get_or_init(|| {
        let mut kinds = vec![
            TokenKind::Pad,
            TokenKind::Bos,
            TokenKind::Eos,
            TokenKind::Plural,
            TokenKind::Article("a"),
            TokenKind::Article("an"),
            TokenKind::Word("photo"),
            TokenKind::Word("of"),
            TokenKind::Word("and"),
            TokenKind::Number(2),
            TokenKind::Number(3),
            TokenKind::Number(4),
        ];
        kinds.extend(Relation::ALL.iter().map(|r| TokenKind::Relation(*r)));
        kinds.extend(Color::ALL.iter().map(|c| TokenKind::Color(*c)));
        kinds.extend(ClassId::all().map(TokenKind::Class));
        let mut phrases = HashMap::new();
        let mut class_phrases = HashMap::new();
        for (id, k) in kinds.iter().enumerate() {
            let id = id as u32;
            match k {
                TokenKind::Pad | TokenKind::Bos | TokenKind::Eos | TokenKind::Plural => {}
                TokenKind::Class(c) => {
                    class_phrases.insert(c.name().to_string(), vec![id]);
                    class_phrases.insert(plural(c.name()), vec![id, PLURAL]);
                }
                // "orange" the colour is resolved by look-ahead; the plain entry is the class.
                TokenKind::Color(Color::Orange) => {}
                other => {
                    phrases.insert(other.text().to_string(), vec![id]);
                }
            }
        }
        phrases.extend(class_phrases.iter().map(|(k, v)| (k.clone(), v.clone())));
        Vocab {
            kinds,
            phrases,
            class_phrases,
        }
    })
}

/// Number of tokens in the vocabulary.
pub fn vocab_size() -> usize {
    vocab().kinds.len()
}

/// What token `id` stands for.
pub fn kind(id: u32) -> Option<TokenKind> {
    vocab().kinds.get(id as usize).copied()
}

fn id_of(k: TokenKind) -> u32 {
    vocab()
        .kinds
        .iter()
        .position(|x| *x == k)
        .unwrap_or_else(|| unreachable!("{k:?} is in the vocabulary")) as u32
}

/// Tokenizer errors; each names the offending word or token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizeError {
    /// A word that is not in the vocabulary, with its 0-based word position.
    UnknownWord { word: String, position: usize },
    /// More tokens than [`MAX_LEN`] allows.
    TooLong { tokens: usize, max: usize },
    /// A token id outside the vocabulary.
    UnknownId { id: u32, position: usize },
    /// A plural marker not following a class token.
    StrayPlural { position: usize },
}

impl fmt::Display for TokenizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizeError::UnknownWord { word, position } => write!(
                f,
                "unknown word \"{word}\" at word {position}: expected GenEval template words, class names, colours, two/three/four or relations"
            ),
            TokenizeError::TooLong { tokens, max } => {
                write!(f, "prompt has {tokens} tokens with BOS/EOS; at most {max} fit")
            }
            TokenizeError::UnknownId { id, position } => {
                write!(f, "token id {id} at position {position} is not in the vocabulary")
            }
            TokenizeError::StrayPlural { position } => {
                write!(f, "plural marker at position {position} does not follow a class")
            }
        }
    }
}

impl std::error::Error for TokenizeError {}

/// Tokens of `text` (no BOS/EOS). Words are separated by whitespace.
pub fn encode(text: &str) -> Result<Vec<u32>, TokenizeError> {
    let v = vocab();
    let words: Vec<&str> = text.split_whitespace().collect();
    let phrase = |i: usize, len: usize| -> Option<String> {
        (i + len <= words.len()).then(|| words[i..i + len].join(" "))
    };
    let class_at = |i: usize| -> bool {
        (1..=2)
            .filter_map(|len| phrase(i, len))
            .any(|p| v.class_phrases.contains_key(&p))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i] == Color::Orange.as_str() && class_at(i + 1) {
            out.push(id_of(TokenKind::Color(Color::Orange)));
            i += 1;
            continue;
        }
        let matched = [2usize, 1]
            .iter()
            .find_map(|&len| Some((len, v.phrases.get(&phrase(i, len)?)?)));
        match matched {
            Some((len, ids)) => {
                out.extend_from_slice(ids);
                i += len;
            }
            None => {
                return Err(TokenizeError::UnknownWord {
                    word: words[i].to_string(),
                    position: i,
                })
            }
        }
    }
    Ok(out)
}

/// `[BOS, tokens…, EOS, PAD…]`, exactly [`MAX_LEN`] long.
pub fn encode_padded(text: &str) -> Result<[u32; MAX_LEN], TokenizeError> {
    let tokens = encode(text)?;
    if tokens.len() + 2 > MAX_LEN {
        return Err(TokenizeError::TooLong {
            tokens: tokens.len() + 2,
            max: MAX_LEN,
        });
    }
    let mut out = [PAD; MAX_LEN];
    out[0] = BOS;
    out[1..=tokens.len()].copy_from_slice(&tokens);
    out[tokens.len() + 1] = EOS;
    Ok(out)
}

/// Text of `ids`; BOS, EOS and PAD are skipped.
pub fn decode(ids: &[u32]) -> Result<String, TokenizeError> {
    let mut words: Vec<String> = Vec::new();
    for (position, &id) in ids.iter().enumerate() {
        match kind(id).ok_or(TokenizeError::UnknownId { id, position })? {
            TokenKind::Pad | TokenKind::Bos | TokenKind::Eos => {}
            TokenKind::Plural => {
                let prev = position.checked_sub(1).and_then(|p| kind(ids[p]));
                match (prev, words.last_mut()) {
                    (Some(TokenKind::Class(c)), Some(last)) => *last = plural(c.name()),
                    _ => return Err(TokenizeError::StrayPlural { position }),
                }
            }
            k => words.push(k.text().to_string()),
        }
    }
    Ok(words.join(" "))
}

/// A prompt that does not follow the GenEval templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub prompt: String,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot parse prompt \"{}\": {}",
            self.prompt, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// One noun phrase: `a/an [colour] class` or `two|three|four [colour] classes`.
struct Phrase {
    class: ClassId,
    count: u32,
    color: Option<Color>,
}

/// Parses prompt text into metadata, inverting the six GenEval templates:
///
/// - `a photo of P` → single_object, colors (P has a colour) or counting (P is a number phrase,
///   with the exclude N+1);
/// - `a photo of P and Q` → two_object, or color_attr when either has a colour;
/// - `a photo of P REL Q` → position (`include = [Q, P with position [REL, 0]]`).
///
/// Phrases may combine colour and number ("two red dogs"), which the templates never do, so
/// that a renderer can be asked for such scenes too.
pub fn parse_prompt(text: &str) -> Result<Metadata, crate::WorldError> {
    let tokens = encode(text)?;
    let err = |message: String| ParseError {
        prompt: text.to_string(),
        message,
    };
    let kinds: Vec<TokenKind> = tokens.iter().filter_map(|&t| kind(t)).collect();
    let mut at = 0usize;
    let found = |at: usize| {
        kinds
            .get(at)
            .map_or("the end".to_string(), |k| format!("\"{}\"", k.text()))
    };
    for want in ["a", "photo", "of"] {
        let ok =
            matches!(kinds.get(at), Some(TokenKind::Article(w) | TokenKind::Word(w)) if *w == want);
        if !ok {
            return Err(err(format!("expected \"{want}\", found {}", found(at))).into());
        }
        at += 1;
    }
    let phrase = |at: &mut usize| -> Result<Phrase, ParseError> {
        let count = match kinds.get(*at) {
            Some(TokenKind::Article(_)) => 1,
            Some(TokenKind::Number(n)) => *n,
            _ => {
                return Err(err(format!(
                    "expected \"a\", \"an\" or a number word, found {}",
                    found(*at)
                )))
            }
        };
        *at += 1;
        let color = match kinds.get(*at) {
            Some(TokenKind::Color(c)) => {
                *at += 1;
                Some(*c)
            }
            _ => None,
        };
        let Some(TokenKind::Class(class)) = kinds.get(*at).copied() else {
            return Err(err(format!("expected a class name, found {}", found(*at))));
        };
        *at += 1;
        let is_plural = kinds.get(*at) == Some(&TokenKind::Plural);
        if is_plural {
            *at += 1;
        }
        if is_plural != (count > 1) {
            return Err(err(format!(
                "\"{}\" must be {} after {}",
                class,
                if count > 1 { "plural" } else { "singular" },
                if count > 1 {
                    "a number word"
                } else {
                    "\"a\"/\"an\""
                }
            )));
        }
        Ok(Phrase {
            class,
            count,
            color,
        })
    };
    let first = phrase(&mut at)?;
    let clause = |p: &Phrase, position: Option<Position>| Include {
        class: p.class,
        count: p.count,
        color: p.color,
        position,
    };
    let (tag, include, exclude) = match kinds.get(at).copied() {
        None => {
            let exclude = if first.count > 1 {
                vec![Exclude {
                    class: first.class,
                    count: first.count + 1,
                }]
            } else {
                vec![]
            };
            let tag = if first.count > 1 {
                Tag::Counting
            } else if first.color.is_some() {
                Tag::Colors
            } else {
                Tag::SingleObject
            };
            (tag, vec![clause(&first, None)], exclude)
        }
        Some(TokenKind::Word("and")) => {
            at += 1;
            let second = phrase(&mut at)?;
            let tag = if first.color.is_some() || second.color.is_some() {
                Tag::ColorAttr
            } else {
                Tag::TwoObject
            };
            (
                tag,
                vec![clause(&first, None), clause(&second, None)],
                vec![],
            )
        }
        Some(TokenKind::Relation(relation)) => {
            at += 1;
            let second = phrase(&mut at)?;
            let pos = Position { relation, group: 0 };
            (
                Tag::Position,
                vec![clause(&second, None), clause(&first, Some(pos))],
                vec![],
            )
        }
        Some(_) => {
            return Err(err(format!(
                "expected the end, \"and\" or a relation, found {}",
                found(at)
            ))
            .into())
        }
    };
    if at != kinds.len() {
        return Err(err(format!("unexpected {} after the prompt", found(at))).into());
    }
    Metadata::new(tag, include, exclude, text)
        .map_err(|e| err(format!("invalid metadata: {e}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompts::{training_prompts, DEFAULT_COUNT};
    use harness::Suite;

    #[test]
    fn every_official_and_training_prompt_round_trips() {
        let mut texts: Vec<String> = Suite::official()
            .prompts
            .into_iter()
            .map(|p| p.metadata.prompt)
            .collect();
        texts.extend(
            training_prompts(DEFAULT_COUNT, 0)
                .into_iter()
                .map(|m| m.prompt),
        );
        for t in &texts {
            let ids = encode(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(decode(&ids).unwrap(), *t);
            let padded = encode_padded(t).unwrap();
            assert_eq!(decode(&padded).unwrap(), *t);
            assert!(ids.iter().all(|&i| (i as usize) < vocab_size()));
        }
    }

    #[test]
    fn multiword_names_plurals_and_orange() {
        let ids = encode("a photo of two tv remotes").unwrap();
        let remote = id_of(TokenKind::Class(ClassId::from_name("tv remote").unwrap()));
        assert_eq!(&ids[4..], &[remote, PLURAL]);
        let ids = encode("a photo of an orange orange").unwrap();
        assert_eq!(kind(ids[4]), Some(TokenKind::Color(Color::Orange)));
        assert_eq!(
            kind(ids[5]),
            Some(TokenKind::Class(ClassId::from_name("orange").unwrap()))
        );
        let ids = encode("a photo of a teddy bear left of a bear").unwrap();
        assert_eq!(ids.len(), 8);
        assert_eq!(kind(ids[5]), Some(TokenKind::Relation(Relation::LeftOf)));
    }

    #[test]
    fn unknown_words_are_named() {
        let e = encode("a photo of a purple unicorn").unwrap_err();
        assert_eq!(
            e,
            TokenizeError::UnknownWord {
                word: "unicorn".into(),
                position: 5
            }
        );
        assert!(e.to_string().contains("\"unicorn\""));
        assert!(matches!(
            decode(&[PLURAL]),
            Err(TokenizeError::StrayPlural { position: 0 })
        ));
        assert!(matches!(
            decode(&[999]),
            Err(TokenizeError::UnknownId { id: 999, .. })
        ));
        let long = "a photo of a red dog and a red dog and a red dog and a cat";
        assert!(matches!(
            encode_padded(long),
            Err(TokenizeError::TooLong { .. })
        ));
    }

    #[test]
    fn parse_inverts_every_official_prompt() {
        for p in Suite::official().prompts {
            let m = parse_prompt(&p.metadata.prompt)
                .unwrap_or_else(|e| panic!("{}: {e}", p.metadata.prompt));
            assert_eq!(m.to_json_string(), p.metadata.to_json_string());
            assert_eq!(m, p.metadata);
        }
    }

    #[test]
    fn parse_accepts_colour_with_position_and_rejects_bad_grammar() {
        let m = parse_prompt("a photo of a red dog left of a cake").unwrap();
        assert_eq!(m.tag, Tag::Position);
        assert_eq!(m.include[1].color, Some(Color::Red));
        assert_eq!(m.include[0].class.name(), "cake");
        for bad in [
            "photo of a dog",
            "a photo of dog",
            "a photo of two dog",
            "a photo of a dogs",
            "a photo of a dog and",
            "a photo of a dog a cat",
        ] {
            let e = parse_prompt(bad).unwrap_err().to_string();
            assert!(e.contains("cannot parse prompt"), "{bad}: {e}");
        }
        let e = parse_prompt("a photo of a zebra left of a unicorn")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unicorn"), "{e}");
    }
}

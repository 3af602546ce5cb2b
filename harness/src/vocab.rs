//! GenEval's closed vocabulary: the 80 classes, 10 colours, 4 relations and 6 tags.
//!
//! The class list is the official `object_names.txt`, embedded so that label index `i` of any
//! detector is the `i`-th line, exactly as the official evaluator assumes.

use std::fmt;

/// The official `object_names.txt` (80 lines, COCO order with three renamed classes).
pub const OBJECT_NAMES_TXT: &str = include_str!("../../data/geneval/object_names.txt");

/// Number of GenEval classes.
pub const NUM_CLASSES: usize = 80;

/// Names of the 80 classes, in label order.
pub fn class_names() -> &'static [&'static str] {
    use std::sync::OnceLock;
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let names: Vec<&'static str> = OBJECT_NAMES_TXT
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            names.len(),
            NUM_CLASSES,
            "embedded object_names.txt must have 80 lines"
        );
        names
    })
}

/// A GenEval class, by its label index (0..80).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(u8);

impl ClassId {
    /// The class with label index `index`, if it exists.
    pub fn new(index: usize) -> Option<Self> {
        (index < NUM_CLASSES).then_some(ClassId(index as u8))
    }

    /// Looks a class up by its exact official name (e.g. `"tv remote"`).
    pub fn from_name(name: &str) -> Option<Self> {
        class_names()
            .iter()
            .position(|n| *n == name)
            .map(|i| ClassId(i as u8))
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub fn name(self) -> &'static str {
        class_names()[self.index()]
    }

    /// All 80 classes in label order.
    pub fn all() -> impl Iterator<Item = ClassId> {
        (0..NUM_CLASSES as u8).map(ClassId)
    }
}

impl fmt::Display for ClassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

macro_rules! closed_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the official order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The official spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the official spelling exactly.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The official spellings, for error messages.
            pub fn expected() -> String {
                Self::ALL.iter().map(|v| format!("\"{}\"", v.as_str())).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_enum! {
    /// GenEval colours. The order is the official one: colour classification takes the first
    /// colour on an argmax tie.
    Color {
        Red => "red", Orange => "orange", Yellow => "yellow", Green => "green", Blue => "blue",
        Purple => "purple", Pink => "pink", Brown => "brown", Black => "black", White => "white",
    }
}

impl Color {
    pub fn index(self) -> usize {
        self as usize
    }

    /// Argmax over per-colour probabilities; the first colour wins a tie, as in the official
    /// evaluator (`torch.argmax`). `None` when any value is NaN.
    pub fn argmax(probs: &[f32; 10]) -> Option<Color> {
        if probs.iter().any(|p| p.is_nan()) {
            return None;
        }
        let mut best = 0;
        for (i, p) in probs.iter().enumerate() {
            if *p > probs[best] {
                best = i;
            }
        }
        Some(Color::ALL[best])
    }
}

closed_enum! {
    /// Relations of a position clause: A `relation` B.
    Relation {
        LeftOf => "left of", RightOf => "right of", Above => "above", Below => "below",
    }
}

closed_enum! {
    /// The six GenEval tasks.
    Tag {
        SingleObject => "single_object", TwoObject => "two_object", Counting => "counting",
        Colors => "colors", Position => "position", ColorAttr => "color_attr",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_trip_and_multiword_names_exist() {
        assert_eq!(class_names().len(), 80);
        for c in ClassId::all() {
            assert_eq!(ClassId::from_name(c.name()), Some(c));
        }
        assert_eq!(
            ClassId::from_name("tv remote").map(ClassId::index),
            Some(65)
        );
        assert_eq!(ClassId::from_name("person").map(ClassId::index), Some(0));
        assert_eq!(
            ClassId::from_name("toothbrush").map(ClassId::index),
            Some(79)
        );
        assert_eq!(ClassId::from_name("mouse"), None);
        assert_eq!(ClassId::new(80), None);
    }

    #[test]
    fn colour_argmax_prefers_first_on_tie() {
        let mut p = [0.0f32; 10];
        p[3] = 0.5;
        p[7] = 0.5;
        assert_eq!(Color::argmax(&p), Some(Color::Green));
        p[1] = f32::NAN;
        assert_eq!(Color::argmax(&p), None);
    }

    #[test]
    fn enums_parse_only_official_spellings() {
        assert_eq!(Relation::parse("left of"), Some(Relation::LeftOf));
        assert_eq!(Relation::parse("left"), None);
        assert_eq!(Tag::parse("color_attr"), Some(Tag::ColorAttr));
        assert_eq!(Color::parse("Red"), None);
        assert_eq!(Color::ALL.len(), 10);
    }
}

//! The unified part-coding rule: a code is a sequence of segments joined by a separator,
//! each segment with its own alphabet and length, some optional at the end.
//!
//! The default rule is `<product line>-<system>-<serial>[-<revision>]`, e.g. `PT-HYD-004211`
//! or `PT-HYD-004211-B`. A company extends it by editing the rule (a TOML file), never the
//! code: segments can be added, alphabets and lengths changed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a segment may contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SegmentKind {
    /// One of a fixed list of values (e.g. systems ELE, MEC, HYD, OTH).
    OneOf { values: Vec<String> },
    /// Capital letters A–Z, `min..=max` of them.
    Letters { min: usize, max: usize },
    /// Decimal digits, exactly `len` of them (zero-padded serials).
    Digits { len: usize },
    /// Capital letters and digits, `min..=max` of them.
    Alnum { min: usize, max: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub name: String,
    #[serde(flatten)]
    pub kind: SegmentKind,
    /// Optional segments may only be left off at the end of a code.
    #[serde(default)]
    pub optional: bool,
}

/// The coding rule every part code must follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodingRule {
    pub separator: char,
    pub segments: Vec<Segment>,
}

/// Why a code breaks the rule; the message names the segment and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("part code is empty")]
    Empty,
    #[error("part code '{code}' has {found} segments; the rule wants {min} to {max} separated by '{sep}'")]
    SegmentCount {
        code: String,
        found: usize,
        min: usize,
        max: usize,
        sep: char,
    },
    #[error("part code '{code}': segment {segment} '{value}' {why}")]
    BadSegment {
        code: String,
        segment: String,
        value: String,
        why: String,
    },
}

/// A part code that follows the coding rule in force when it was parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartCode(String);

impl PartCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a code read back from storage, where only valid codes are ever written.
    pub fn from_trusted(code: String) -> Self {
        PartCode(code)
    }
}

impl fmt::Display for PartCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Default for CodingRule {
    fn default() -> Self {
        let seg = |name: &str, kind, optional| Segment {
            name: name.to_owned(),
            kind,
            optional,
        };
        let systems = ["ELE", "MEC", "HYD", "OTH"].map(String::from).to_vec();
        CodingRule {
            separator: '-',
            segments: vec![
                seg(
                    "product line",
                    SegmentKind::Letters { min: 2, max: 4 },
                    false,
                ),
                seg("system", SegmentKind::OneOf { values: systems }, false),
                seg("serial", SegmentKind::Digits { len: 6 }, false),
                seg("revision", SegmentKind::Letters { min: 1, max: 2 }, true),
            ],
        }
    }
}

impl CodingRule {
    /// Reads a rule from TOML (see `models/coding-rule.toml`).
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks `code` against the rule and returns it as a `PartCode`.
    pub fn parse(&self, code: &str) -> Result<PartCode, CodeError> {
        if code.is_empty() {
            return Err(CodeError::Empty);
        }
        let parts: Vec<&str> = code.split(self.separator).collect();
        let required = self.segments.iter().take_while(|s| !s.optional).count();
        if parts.len() < required || parts.len() > self.segments.len() {
            return Err(CodeError::SegmentCount {
                code: code.to_owned(),
                found: parts.len(),
                min: required,
                max: self.segments.len(),
                sep: self.separator,
            });
        }
        for (value, segment) in parts.iter().zip(&self.segments) {
            if let Some(why) = segment.kind.reject(value) {
                return Err(CodeError::BadSegment {
                    code: code.to_owned(),
                    segment: segment.name.clone(),
                    value: (*value).to_owned(),
                    why,
                });
            }
        }
        Ok(PartCode(code.to_owned()))
    }
}

impl SegmentKind {
    /// `None` when `value` fits; otherwise what was expected.
    fn reject(&self, value: &str) -> Option<String> {
        let len = value.chars().count();
        match self {
            SegmentKind::OneOf { values } => (!values.iter().any(|v| v == value))
                .then(|| format!("is not one of {}", values.join(", "))),
            SegmentKind::Letters { min, max } => {
                let ok =
                    (*min..=*max).contains(&len) && value.chars().all(|c| c.is_ascii_uppercase());
                (!ok).then(|| format!("must be {min} to {max} capital letters"))
            }
            SegmentKind::Digits { len: want } => {
                let ok = len == *want && value.chars().all(|c| c.is_ascii_digit());
                (!ok).then(|| format!("must be exactly {want} digits"))
            }
            SegmentKind::Alnum { min, max } => {
                let ok = (*min..=*max).contains(&len)
                    && value
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                (!ok).then(|| format!("must be {min} to {max} capital letters or digits"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_following_the_default_rule_are_accepted() {
        let rule = CodingRule::default();
        for code in ["PT-HYD-004211", "TC-ELE-000001-B", "MILL-OTH-123456-AB"] {
            assert_eq!(rule.parse(code).map(|c| c.to_string()), Ok(code.to_owned()));
        }
    }

    #[test]
    fn codes_breaking_the_rule_say_which_segment_and_why() {
        let rule = CodingRule::default();
        let why = |code: &str| rule.parse(code).expect_err(code).to_string();
        assert!(why("PT-XYZ-004211").contains("system 'XYZ' is not one of ELE, MEC, HYD, OTH"));
        assert!(why("PT-HYD-4211").contains("serial '4211' must be exactly 6 digits"));
        assert!(why("pt-HYD-004211").contains("product line"));
        assert!(why("PT-HYD").contains("has 2 segments"));
        assert!(why("PT-HYD-004211-B-X").contains("has 5 segments"));
        assert_eq!(rule.parse(""), Err(CodeError::Empty));
    }

    #[test]
    fn the_rule_is_extended_in_toml_not_in_code() {
        let text = r#"
            separator = "."
            [[segments]]
            name = "brand"
            kind = "one_of"
            values = ["SY", "XG"]
            [[segments]]
            name = "serial"
            kind = "alnum"
            min = 3
            max = 8
        "#;
        let rule = CodingRule::from_toml(text).expect("valid rule");
        assert!(rule.parse("SY.A12B").is_ok());
        assert!(rule.parse("ZZ.A12B").is_err());
        assert!(rule.parse("SY-A12B").is_err());
    }

    #[test]
    fn the_shipped_rule_file_is_the_default_rule() {
        let text = include_str!("../../models/coding-rule.toml");
        let rule = CodingRule::from_toml(text).expect("models/coding-rule.toml parses");
        assert_eq!(rule, CodingRule::default());
    }
}

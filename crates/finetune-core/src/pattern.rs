//! Glob patterns over parameter names, the syntax of every `--freeze`, `--unfreeze` and
//! param-group pattern.
//!
//! | syntax | matches |
//! |---|---|
//! | `*` | any run of characters, dots included (`*.bias`, `bert.encoder.*`) |
//! | `?` | one character |
//! | `[0-7]`, `[abc]`, `[!0-3]` | one character from (or, with `!`/`^`, not from) the class |
//! | `{3..7}` | a decimal integer from 3 to 7 inclusive (`layer.{0..11}.*`) |
//! | `{a,b}` | either alternative (`*.{bias,weight}`) |
//! | `!pat` (leading) | every name that `pat` does **not** match |
//!
//! A pattern without any of these characters matches exactly one name.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    One,
    Star,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
    Int {
        lo: u64,
        hi: u64,
    },
}

/// A compiled name pattern.
#[derive(Debug, Clone)]
pub struct NamePattern {
    source: String,
    negated: bool,
    /// Brace alternatives are expanded: the pattern matches if any alternative does.
    alternatives: Vec<Vec<Tok>>,
}

impl NamePattern {
    /// Compiles `pattern` (syntax in the module documentation). A malformed one (empty,
    /// unclosed or unmatched bracket or brace, reversed range, empty class) is an
    /// [`Error::Pattern`] naming it.
    pub fn new(pattern: &str) -> Result<Self> {
        let err = |msg: &str| Error::Pattern {
            pattern: pattern.to_string(),
            msg: msg.to_string(),
        };
        if pattern.is_empty() {
            return Err(err("empty pattern"));
        }
        let (negated, body) = match pattern.strip_prefix('!') {
            Some(rest) if !rest.is_empty() => (true, rest),
            Some(_) => return Err(err("`!` must be followed by a pattern")),
            None => (false, pattern),
        };
        let mut alternatives = vec![Vec::new()];
        let chars: Vec<char> = body.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' => {
                    for alt in &mut alternatives {
                        if alt.last() != Some(&Tok::Star) {
                            alt.push(Tok::Star);
                        }
                    }
                    i += 1;
                }
                '?' => {
                    alternatives.iter_mut().for_each(|a| a.push(Tok::One));
                    i += 1;
                }
                '[' => {
                    let close = chars[i + 1..]
                        .iter()
                        .position(|&c| c == ']')
                        .map(|p| p + i + 1)
                        .ok_or_else(|| err("unclosed `[`"))?;
                    let mut inner = &chars[i + 1..close];
                    let negated = matches!(inner.first(), Some('!') | Some('^'));
                    if negated {
                        inner = &inner[1..];
                    }
                    if inner.is_empty() {
                        return Err(err("empty character class `[]`"));
                    }
                    let mut items = Vec::new();
                    let mut j = 0;
                    while j < inner.len() {
                        if j + 2 < inner.len() && inner[j + 1] == '-' {
                            if inner[j] > inner[j + 2] {
                                return Err(err("reversed range in character class"));
                            }
                            items.push((inner[j], inner[j + 2]));
                            j += 3;
                        } else {
                            items.push((inner[j], inner[j]));
                            j += 1;
                        }
                    }
                    let tok = Tok::Class { negated, items };
                    alternatives.iter_mut().for_each(|a| a.push(tok.clone()));
                    i = close + 1;
                }
                '{' => {
                    let close = chars[i + 1..]
                        .iter()
                        .position(|&c| c == '}')
                        .map(|p| p + i + 1)
                        .ok_or_else(|| err("unclosed `{`"))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    if let Some((lo, hi)) = inner.split_once("..") {
                        let lo: u64 = lo
                            .trim()
                            .parse()
                            .map_err(|_| err("`{a..b}` needs integer bounds"))?;
                        let hi: u64 = hi
                            .trim()
                            .parse()
                            .map_err(|_| err("`{a..b}` needs integer bounds"))?;
                        if lo > hi {
                            return Err(err("`{a..b}` needs a <= b"));
                        }
                        alternatives
                            .iter_mut()
                            .for_each(|a| a.push(Tok::Int { lo, hi }));
                    } else {
                        let options: Vec<&str> = inner.split(',').collect();
                        if options.len() < 2 {
                            return Err(err(
                                "`{...}` needs `a..b` or at least two `,`-separated alternatives",
                            ));
                        }
                        let mut next = Vec::new();
                        for alt in &alternatives {
                            for opt in &options {
                                if opt.contains(['*', '?', '[', '{', '}', ']']) {
                                    return Err(err(
                                        "alternatives inside `{...}` must be plain text",
                                    ));
                                }
                                let mut a = alt.clone();
                                a.extend(opt.chars().map(Tok::Lit));
                                next.push(a);
                            }
                        }
                        alternatives = next;
                    }
                    i = close + 1;
                }
                ']' | '}' => return Err(err(&format!("unmatched `{c}`"))),
                _ => {
                    alternatives.iter_mut().for_each(|a| a.push(Tok::Lit(c)));
                    i += 1;
                }
            }
        }
        Ok(Self {
            source: pattern.to_string(),
            negated,
            alternatives,
        })
    }

    /// The pattern as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern is a plain name (no wildcard, class, range or negation).
    pub fn is_exact(&self) -> bool {
        !self.negated
            && self.alternatives.len() == 1
            && self.alternatives[0]
                .iter()
                .all(|t| matches!(t, Tok::Lit(_)))
    }

    /// Whether the whole of `name` matches (not a substring); a leading `!` inverts the answer.
    pub fn matches(&self, name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        let hit = self
            .alternatives
            .iter()
            .any(|toks| match_toks(toks, &chars));
        hit != self.negated
    }
}

impl std::fmt::Display for NamePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    let Some((tok, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match tok {
        Tok::Lit(c) => s.first() == Some(c) && match_toks(rest, &s[1..]),
        Tok::One => !s.is_empty() && match_toks(rest, &s[1..]),
        Tok::Star => (0..=s.len()).any(|k| match_toks(rest, &s[k..])),
        Tok::Class { negated, items } => match s.first() {
            Some(&c) => {
                let inside = items.iter().any(|&(a, b)| a <= c && c <= b);
                inside != *negated && match_toks(rest, &s[1..])
            }
            None => false,
        },
        Tok::Int { lo, hi } => {
            let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            (1..=digits.min(19)).any(|k| {
                let v: u64 = s[..k]
                    .iter()
                    .collect::<String>()
                    .parse()
                    .unwrap_or(u64::MAX);
                // No leading zeros ("07" is not 7), as layer indices are written.
                let canonical = k == 1 || s[0] != '0';
                canonical && *lo <= v && v <= *hi && match_toks(rest, &s[k..])
            })
        }
    }
}

/// A list of patterns; matches a name if any of them does.
#[derive(Debug, Clone, Default)]
pub struct PatternSet(Vec<NamePattern>);

impl PatternSet {
    /// Compiles every pattern; the first malformed one is the error.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self> {
        patterns
            .iter()
            .map(|p| NamePattern::new(p.as_ref()))
            .collect::<Result<Vec<_>>>()
            .map(Self)
    }

    /// Whether the set has no pattern (it then matches nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any pattern matches `name`.
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|p| p.matches(name))
    }

    /// The compiled patterns, in the order given.
    pub fn patterns(&self) -> &[NamePattern] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, name: &str) -> bool {
        NamePattern::new(p).unwrap().matches(name)
    }

    #[test]
    fn globs_cross_dots() {
        assert!(m("*.bias", "bert.encoder.layer.3.output.dense.bias"));
        assert!(!m("*.bias", "bert.encoder.layer.3.output.dense.weight"));
        assert!(m(
            "bert.encoder.*",
            "bert.encoder.layer.0.attention.self.query.weight"
        ));
        assert!(m("*LayerNorm*", "bert.embeddings.LayerNorm.weight"));
        assert!(m("layer?.0.*", "layer4.0.conv1.weight"));
    }

    #[test]
    fn classes_ranges_and_alternatives() {
        assert!(m(
            "bert.encoder.layer.[0-7].*",
            "bert.encoder.layer.7.output.dense.bias"
        ));
        assert!(!m(
            "bert.encoder.layer.[0-7].*",
            "bert.encoder.layer.8.output.dense.bias"
        ));
        // `[0-7]` is one character: layer 10 does not match.
        assert!(!m(
            "bert.encoder.layer.[0-7].*",
            "bert.encoder.layer.10.output.dense.bias"
        ));
        assert!(m("layer[1-3].*", "layer2.1.bn2.running_var"));
        assert!(!m("layer[!1-3].*", "layer2.1.bn2.running_var"));
        assert!(m("layer[!1-3].*", "layer4.1.bn2.running_var"));
        assert!(m("encoder.layer.{3..11}.*", "encoder.layer.10.x"));
        assert!(m("encoder.layer.{3..11}.*", "encoder.layer.3.x"));
        assert!(!m("encoder.layer.{3..11}.*", "encoder.layer.2.x"));
        assert!(!m("encoder.layer.{3..11}.*", "encoder.layer.12.x"));
        assert!(!m("encoder.layer.{3..11}.*", "encoder.layer.03.x"));
        assert!(m("*.{bias,weight}", "fc.bias"));
        assert!(m("*.{bias,weight}", "fc.weight"));
        assert!(!m("*.{bias,weight}", "bn1.running_mean"));
    }

    #[test]
    fn exact_and_negated() {
        let p = NamePattern::new("classifier.weight").unwrap();
        assert!(p.is_exact());
        assert!(p.matches("classifier.weight"));
        assert!(!p.matches("classifier.weight2"));
        assert!(m("!classifier.*", "bert.pooler.dense.weight"));
        assert!(!m("!classifier.*", "classifier.bias"));
    }

    #[test]
    fn bad_patterns_are_errors_naming_the_pattern() {
        for bad in [
            "",
            "layer[0-3",
            "x{1..}",
            "x{3..1}",
            "a]",
            "!",
            "x{a}",
            "[]",
        ] {
            let e = NamePattern::new(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
    }
}

//! Glob patterns for branches, tags and paths (pure; no regex engine, so no regex in the
//! function binaries).
//!
//! The syntax and meaning are those of the `globset` crate with `literal_separator` on (what
//! shipgate used before; a property test checks the two agree on ASCII input):
//!
//! - `?` one character other than `/`; `*` any run of characters other than `/`;
//! - `**` as a whole path component: `**/x` (any leading directories, none included), `x/**`
//!   (everything below `x/`), `x/**/y` (zero or more directories between); `**` alone matches
//!   everything; `**` elsewhere is two `*`;
//! - `[abc]`, `[a-z]`, `[!a-z]` / `[^a-z]` one character of (or not of) the set — this may be
//!   `/`; `]` first in a class and `-` first or last are literal;
//! - `{a,b}` alternatives (nestable up to [`MAX_NESTING`] levels; empty alternatives are
//!   dropped; at most [`MAX_ALTERNATIVES`] combinations and [`MAX_EXPANDED_TOKENS`] tokens per
//!   pattern once expanded — globset has no such caps);
//! - `\` escapes the next character.
//!
//! Bounds (hostile pipeline files): a pattern is at most [`MAX_GLOB_LEN`] characters, checked
//! before parsing; the parser is a loop (no recursion), and the expansion of `{...}` recurses
//! at most [`MAX_NESTING`] levels deep.
//!
//! Matching is a table over (pattern position, text position), with no backtracking: time is
//! proportional to expanded pattern tokens × (text length + 1) ([`Glob::cost`] × (n + 1)),
//! memory to the text length, whatever the pattern.

use std::fmt;

/// Why a pattern is not a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobError {
    UnclosedClass,
    InvalidRange(char, char),
    UnopenedAlternates,
    UnclosedAlternates,
    DanglingEscape,
    TooManyAlternatives,
    /// Longer than [`MAX_GLOB_LEN`] characters.
    TooLong(usize),
    /// `{...}` nested deeper than [`MAX_NESTING`].
    TooDeep,
    /// More than [`MAX_EXPANDED_TOKENS`] tokens once `{...}` groups are expanded.
    TooComplex,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobError::UnclosedClass => f.write_str("unclosed character class; missing ']'"),
            GlobError::InvalidRange(a, b) => write!(f, "invalid range; '{a}' > '{b}'"),
            GlobError::UnopenedAlternates => {
                f.write_str("unopened alternate group; missing '{' (maybe escape '}' with '[}]'?)")
            }
            GlobError::UnclosedAlternates => {
                f.write_str("unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)")
            }
            GlobError::DanglingEscape => f.write_str("dangling '\\'"),
            GlobError::TooManyAlternatives => write!(
                f,
                "more than {MAX_ALTERNATIVES} combinations of {{...}} alternatives"
            ),
            GlobError::TooLong(n) => {
                write!(f, "{n} characters; at most {MAX_GLOB_LEN} are allowed")
            }
            GlobError::TooDeep => write!(
                f,
                "{{...}} groups nested more than {MAX_NESTING} levels deep"
            ),
            GlobError::TooComplex => write!(
                f,
                "expands to more than {MAX_EXPANDED_TOKENS} tokens (fewer or shorter {{...}} alternatives)"
            ),
        }
    }
}

impl std::error::Error for GlobError {}

/// Upper bound on the patterns a glob's `{...}` groups expand to.
pub const MAX_ALTERNATIVES: usize = 64;
/// Longest pattern accepted, in characters (checked before parsing).
pub const MAX_GLOB_LEN: usize = 256;
/// Deepest nesting of `{...}` groups.
pub const MAX_NESTING: usize = 4;
/// Upper bound on the tokens of all expanded alternatives of one pattern (the matching cost
/// per text character).
pub const MAX_EXPANDED_TOKENS: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    Any,
    /// `*`
    ZeroOrMore,
    /// `**/` at the start: `(?:/?|.*/)`
    RecursivePrefix,
    /// `/**` at the end: `/.*`
    RecursiveSuffix,
    /// `/**/`: `(?:/|/.*/)`
    RecursiveZeroOrMore,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Alternates(Vec<Vec<Token>>),
    /// the whole glob is `**`: `.*`
    Everything,
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// The pattern with its `{...}` groups expanded: it matches when one of them does.
    alternatives: Vec<Vec<Token>>,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let len = pattern.chars().count();
        if len > MAX_GLOB_LEN {
            return Err(GlobError::TooLong(len));
        }
        let tokens = Parser::new(pattern).parse()?;
        let alternatives = if tokens == [Token::RecursivePrefix] {
            vec![vec![Token::Everything]]
        } else {
            expand(&tokens, 0)?
        };
        if alternatives_weight(&alternatives) > MAX_EXPANDED_TOKENS {
            return Err(GlobError::TooComplex);
        }
        Ok(Glob { alternatives })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.is_match_counting(text, &mut 0)
    }

    /// Matching work per text character: the (weighted) tokens of all expanded alternatives,
    /// at most [`MAX_EXPANDED_TOKENS`]. Matching a text of n characters takes at most
    /// `cost() × (n + 1)` steps.
    pub fn cost(&self) -> usize {
        alternatives_weight(&self.alternatives)
    }

    /// [`Glob::is_match`], adding the table cells it computed to `steps` (for tests that prove
    /// the work is linear in the text).
    pub fn is_match_counting(&self, text: &str, steps: &mut usize) -> bool {
        let text: Vec<char> = text.chars().collect();
        self.alternatives.iter().any(|a| matches(a, &text, steps))
    }
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    prev: Option<char>,
    cur: Option<char>,
    /// Open `{` groups: the index in `branches` where each one's branches start.
    alternates_stack: Vec<usize>,
    branches: Vec<Vec<Token>>,
}

impl<'a> Parser<'a> {
    fn new(pattern: &'a str) -> Parser<'a> {
        Parser {
            chars: pattern.chars().peekable(),
            prev: None,
            cur: None,
            alternates_stack: Vec::new(),
            branches: vec![Vec::new()],
        }
    }

    fn parse(mut self) -> Result<Vec<Token>, GlobError> {
        while let Some(c) = self.bump() {
            match c {
                '?' => self.push(Token::Any)?,
                '*' => self.star()?,
                '[' => self.class()?,
                '{' => {
                    if self.alternates_stack.len() >= MAX_NESTING {
                        return Err(GlobError::TooDeep);
                    }
                    self.alternates_stack.push(self.branches.len());
                    self.branches.push(Vec::new());
                }
                '}' => {
                    let start = self
                        .alternates_stack
                        .pop()
                        .ok_or(GlobError::UnopenedAlternates)?;
                    let alternatives = self.branches.drain(start..).collect();
                    self.push(Token::Alternates(alternatives))?;
                }
                ',' if !self.alternates_stack.is_empty() => self.branches.push(Vec::new()),
                '\\' => {
                    let escaped = self.bump().ok_or(GlobError::DanglingEscape)?;
                    self.push(Token::Literal(escaped))?;
                }
                c => self.push(Token::Literal(c))?,
            }
        }
        if self.branches.len() != 1 {
            return Err(GlobError::UnclosedAlternates);
        }
        Ok(self.branches.pop().unwrap_or_default())
    }

    fn bump(&mut self) -> Option<char> {
        self.prev = self.cur;
        self.cur = self.chars.next();
        self.cur
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn branch(&mut self) -> Result<&mut Vec<Token>, GlobError> {
        self.branches
            .last_mut()
            .ok_or(GlobError::UnopenedAlternates)
    }

    fn push(&mut self, token: Token) -> Result<(), GlobError> {
        self.branch()?.push(token);
        Ok(())
    }

    fn star(&mut self) -> Result<(), GlobError> {
        let prev = self.prev;
        if self.peek() != Some('*') {
            return self.push(Token::ZeroOrMore);
        }
        self.bump();
        if self.branch()?.is_empty() {
            if self.peek().is_some_and(|c| c != '/') {
                self.push(Token::ZeroOrMore)?;
                return self.push(Token::ZeroOrMore);
            }
            self.push(Token::RecursivePrefix)?;
            self.bump(); // the separator (or nothing)
            return Ok(());
        }
        if prev != Some('/')
            && (self.branches.len() <= 1 || (prev != Some(',') && prev != Some('{')))
        {
            self.push(Token::ZeroOrMore)?;
            return self.push(Token::ZeroOrMore);
        }
        let is_suffix = match self.peek() {
            None => {
                self.bump();
                true
            }
            Some(',' | '}') if self.branches.len() >= 2 => true,
            Some('/') => {
                self.bump();
                false
            }
            Some(_) => {
                self.push(Token::ZeroOrMore)?;
                return self.push(Token::ZeroOrMore);
            }
        };
        let last = self.branch()?.pop();
        match last {
            Some(t @ (Token::RecursivePrefix | Token::RecursiveSuffix)) => self.push(t),
            _ if is_suffix => self.push(Token::RecursiveSuffix),
            _ => self.push(Token::RecursiveZeroOrMore),
        }
    }

    fn class(&mut self) -> Result<(), GlobError> {
        let negated = matches!(self.peek(), Some('!' | '^'));
        if negated {
            self.bump();
        }
        let mut ranges: Vec<(char, char)> = Vec::new();
        let mut first = true;
        let mut in_range = false;
        loop {
            let c = self.bump().ok_or(GlobError::UnclosedClass)?;
            match c {
                ']' if !first => break,
                '-' if !first && !in_range => in_range = true,
                c => {
                    match ranges.last_mut() {
                        Some(r) if in_range => {
                            if c < r.0 {
                                return Err(GlobError::InvalidRange(r.0, c));
                            }
                            r.1 = c;
                        }
                        _ => ranges.push((c, c)),
                    }
                    in_range = false;
                }
            }
            first = false;
        }
        if in_range {
            ranges.push(('-', '-'));
        }
        self.push(Token::Class { negated, ranges })
    }
}

/// The token sequences a pattern's `{...}` groups expand to (none of them holds `Alternates`).
/// Recursion follows the nesting of `{...}`, which the parser bounds by [`MAX_NESTING`].
fn expand(tokens: &[Token], depth: usize) -> Result<Vec<Vec<Token>>, GlobError> {
    if depth > MAX_NESTING {
        return Err(GlobError::TooDeep);
    }
    let mut out: Vec<Vec<Token>> = vec![Vec::new()];
    for token in tokens {
        match token {
            Token::Alternates(branches) => {
                let mut options: Vec<Vec<Token>> = Vec::new();
                for branch in branches {
                    options.extend(
                        expand(branch, depth + 1)?
                            .into_iter()
                            .filter(|b| !b.is_empty()),
                    );
                    if options.len() > MAX_ALTERNATIVES {
                        return Err(GlobError::TooManyAlternatives);
                    }
                }
                if options.is_empty() {
                    continue; // `{}` or `{,}`: nothing
                }
                if out.len() * options.len() > MAX_ALTERNATIVES {
                    return Err(GlobError::TooManyAlternatives);
                }
                let tokens: usize = out.iter().map(Vec::len).sum::<usize>() * options.len()
                    + options.iter().map(Vec::len).sum::<usize>() * out.len();
                if tokens > MAX_EXPANDED_TOKENS {
                    return Err(GlobError::TooComplex);
                }
                out = out
                    .iter()
                    .flat_map(|prefix| {
                        options.iter().map(move |o| {
                            let mut v = prefix.clone();
                            v.extend(o.iter().cloned());
                            v
                        })
                    })
                    .collect();
            }
            t => {
                out.iter_mut().for_each(|v| v.push(t.clone()));
                if out.iter().map(Vec::len).sum::<usize>() > MAX_EXPANDED_TOKENS {
                    return Err(GlobError::TooComplex);
                }
            }
        }
    }
    Ok(out)
}

/// Does `tokens` (no `Alternates`) match all of `text`?
///
/// Row by row from the last token: `row[j]` says tokens `i..` match `text[j..]`, from the next
/// token's row `next`. For the recursive tokens a helper row holds `.*/` (some `/` at `k ≥ j`
/// with `next[k + 1]`) or `.*` (some `k ≥ j` with `next[k]`); `.` is any character, `\n`
/// included, as in globset.
fn matches(tokens: &[Token], text: &[char], steps: &mut usize) -> bool {
    let n = text.len();
    // every loop iteration below counts one step (a class also counts the ranges it compares)
    let mut work = n + 1;
    let mut next = vec![false; n + 1];
    next[n] = true; // no tokens match the empty rest
    let mut row = vec![false; n + 1];
    let mut helper = vec![false; n + 2];
    for token in tokens.iter().rev() {
        match token {
            Token::RecursivePrefix | Token::RecursiveZeroOrMore => {
                // helper[j]: exists k >= j with text[k] == '/' and next[k+1]
                helper[n] = false;
                for j in (0..n).rev() {
                    work += 1;
                    helper[j] = (text[j] == '/' && next[j + 1]) || helper[j + 1];
                }
            }
            Token::RecursiveSuffix | Token::Everything => {
                // helper[j]: exists k >= j with next[k]
                helper[n] = next[n];
                for j in (0..n).rev() {
                    work += 1;
                    helper[j] = next[j] || helper[j + 1];
                }
            }
            _ => {}
        }
        for j in (0..=n).rev() {
            work += 1;
            let c = text.get(j).copied();
            row[j] = match token {
                Token::Literal(l) => c == Some(*l) && next[j + 1],
                Token::Any => c.is_some_and(|c| c != '/') && next[j + 1],
                Token::ZeroOrMore => next[j] || (c.is_some_and(|c| c != '/') && row[j + 1]),
                Token::Class { negated, ranges } => {
                    c.is_some_and(|c| {
                        ranges.iter().any(|&(a, b)| {
                            work += 1;
                            a <= c && c <= b
                        }) != *negated
                    }) && next[j + 1]
                }
                // (?:/?|.*/)
                Token::RecursivePrefix => next[j] || helper[j],
                // (?:/|/.*/)
                Token::RecursiveZeroOrMore => c == Some('/') && (next[j + 1] || helper[j + 1]),
                // /.*
                Token::RecursiveSuffix => c == Some('/') && helper[j + 1],
                // .*
                Token::Everything => helper[j],
                Token::Alternates(_) => false, // expanded before matching
            };
        }
        std::mem::swap(&mut next, &mut row);
    }
    *steps += work;
    next[0]
}

/// Work per text position of one token in [`matches`]: its table cell, plus the helper row of
/// the recursive tokens, plus the ranges a class compares.
fn weight(token: &Token) -> usize {
    match token {
        Token::Class { ranges, .. } => 1 + ranges.len(),
        Token::RecursivePrefix
        | Token::RecursiveZeroOrMore
        | Token::RecursiveSuffix
        | Token::Everything => 2,
        _ => 1,
    }
}

fn alternatives_weight(alternatives: &[Vec<Token>]) -> usize {
    alternatives
        .iter()
        .map(|a| 1 + a.iter().map(weight).sum::<usize>())
        .sum()
}

#[cfg(test)]
#[path = "glob_tests.rs"]
mod tests;

//! Glob patterns for `list_files`, matched against `/`-separated relative paths.
//!
//! Syntax: `*` (any run of characters within one path segment), `?` (one character, not `/`),
//! `**` (any run of characters across segments; as a whole segment, `**/` also matches no
//! directory at all), `[abc]`, `[a-z]`, `[!abc]` or `[^abc]` (one character from / not from a
//! set), `{a,b}` (alternatives, nestable), and `\` to take the next character literally.
//!
//! Small and self-contained on purpose: the file walk already has the paths as strings, and the
//! matcher is memoised, so a pattern costs at most (pattern length × path length) steps.

/// The most alternatives one pattern may expand to through `{…}`.
const MAX_ALTERNATIVES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**/`: zero or more whole directories.
    DirStar,
    /// `**` not followed by `/`: anything, across segments.
    AnyStar,
    /// `[…]`
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled glob pattern.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    alternatives: Vec<Vec<Token>>,
}

impl Glob {
    /// Compile `pattern`; the error says what is wrong with it.
    pub(crate) fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("the pattern is empty".into());
        }
        if pattern.starts_with('/') {
            return Err(
                "patterns are matched against paths relative to `path`; drop the leading `/`"
                    .into(),
            );
        }
        let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
        let mut alternatives = Vec::new();
        for alt in expand_braces(pattern)? {
            alternatives.push(tokenize(&alt)?);
        }
        Ok(Glob { alternatives })
    }

    /// Whether the relative path `path` matches.
    pub(crate) fn is_match(&self, path: &str) -> bool {
        let text: Vec<char> = path.chars().collect();
        self.alternatives.iter().any(|tokens| {
            let mut memo = vec![None; (tokens.len() + 1) * (text.len() + 1)];
            matches(tokens, &text, 0, 0, &mut memo)
        })
    }
}

/// Expand the first top-level `{a,b}` group and recurse on each result.
fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut open = None;
    let mut depth = 0usize;
    let mut commas = Vec::new();
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => {
                if depth == 0 {
                    open = Some(i);
                    commas.clear();
                }
                depth += 1;
            }
            ',' if depth == 1 => commas.push(i),
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0
                    && let Some(start) = open
                {
                    let prefix: String = chars[..start].iter().collect();
                    let suffix: String = chars[i + 1..].iter().collect();
                    let mut bounds = vec![start];
                    bounds.extend(&commas);
                    bounds.push(i);
                    let mut out = Vec::new();
                    for w in bounds.windows(2) {
                        let alt: String = chars[w[0] + 1..w[1]].iter().collect();
                        for expanded in expand_braces(&format!("{prefix}{alt}{suffix}"))? {
                            out.push(expanded);
                            if out.len() > MAX_ALTERNATIVES {
                                return Err(format!(
                                    "the pattern expands to more than {MAX_ALTERNATIVES} alternatives"
                                ));
                            }
                        }
                    }
                    return Ok(out);
                }
            }
            '}' => return Err("unbalanced `}`".into()),
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return Err("unbalanced `{`".into());
    }
    Ok(vec![pattern.to_string()])
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let c = chars.get(i + 1).ok_or("a trailing `\\` escapes nothing")?;
                tokens.push(Token::Literal(*c));
                i += 2;
            }
            '?' => {
                tokens.push(Token::One);
                i += 1;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                let mut j = i;
                while chars.get(j) == Some(&'*') {
                    j += 1;
                }
                let starts_segment = i == 0 || chars[i - 1] == '/';
                if starts_segment && chars.get(j) == Some(&'/') {
                    tokens.push(Token::DirStar);
                    i = j + 1;
                } else {
                    tokens.push(Token::AnyStar);
                    i = j;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                i += 1;
            }
            '[' => {
                let (token, next) = class(&chars, i)?;
                tokens.push(token);
                i = next;
            }
            c => {
                tokens.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

/// Parse `[…]` starting at `start`; returns the token and the index after `]`.
fn class(chars: &[char], start: usize) -> Result<(Token, usize), String> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("unterminated `[`".into());
        };
        if c == ']' && !first {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        let c = if c == '\\' {
            i += 1;
            *chars.get(i).ok_or("unterminated `[`")?
        } else {
            c
        };
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|e| *e != ']') {
            let end = chars[i + 2];
            if end < c {
                return Err(format!("the range `{c}-{end}` is backwards"));
            }
            ranges.push((c, end));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

fn matches(p: &[Token], t: &[char], pi: usize, ti: usize, memo: &mut [Option<bool>]) -> bool {
    let key = pi * (t.len() + 1) + ti;
    if let Some(known) = memo[key] {
        return known;
    }
    let result = match p.get(pi) {
        None => ti == t.len(),
        Some(Token::Literal(c)) => t.get(ti) == Some(c) && matches(p, t, pi + 1, ti + 1, memo),
        Some(Token::One) => {
            t.get(ti).is_some_and(|c| *c != '/') && matches(p, t, pi + 1, ti + 1, memo)
        }
        Some(Token::Class { negated, ranges }) => {
            t.get(ti).is_some_and(|c| {
                *c != '/' && ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&c)) != *negated
            }) && matches(p, t, pi + 1, ti + 1, memo)
        }
        Some(Token::Star) => {
            let mut found = false;
            for end in ti..=t.len() {
                if matches(p, t, pi + 1, end, memo) {
                    found = true;
                    break;
                }
                if end < t.len() && t[end] == '/' {
                    break;
                }
            }
            found
        }
        Some(Token::AnyStar) => (ti..=t.len()).any(|end| matches(p, t, pi + 1, end, memo)),
        Some(Token::DirStar) => {
            matches(p, t, pi + 1, ti, memo)
                || (ti..t.len()).any(|i| t[i] == '/' && matches(p, t, pi + 1, i + 1, memo))
        }
    };
    memo[key] = Some(result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Glob::new(pattern).expect("valid pattern").is_match(path)
    }

    #[test]
    fn stars() {
        assert!(m("*.rs", "main.rs"));
        assert!(!m("*.rs", "src/main.rs"));
        assert!(m("**/*.rs", "main.rs"));
        assert!(m("**/*.rs", "src/a/b/main.rs"));
        assert!(m("src/**", "src/a/b.txt"));
        assert!(!m("src/**", "srcx/a"));
        assert!(m("src/**/mod.rs", "src/mod.rs"));
        assert!(m("src/**/mod.rs", "src/a/b/mod.rs"));
        assert!(!m("src/**/mod.rs", "src/a/b/mod.rsx"));
        assert!(m("a**b", "a/x/b"));
        assert!(m("./*.md", "README.md"));
    }

    #[test]
    fn classes_braces_and_escapes() {
        assert!(m("file?.txt", "file1.txt"));
        assert!(!m("file?.txt", "file/.txt"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("[]]", "]"));
        assert!(m("*.{rs,toml}", "Cargo.toml"));
        assert!(m("{src,tests}/**/*.{rs,md}", "tests/x/y.md"));
        assert!(!m("{src,tests}/*.rs", "benches/a.rs"));
        assert!(m("a{b,{c,d}}e", "ade"));
        assert!(m("\\*lit", "*lit"));
        assert!(!m("\\*lit", "xlit"));
    }

    #[test]
    fn bad_patterns_say_why() {
        for (p, why) in [
            ("", "empty"),
            ("/abs/*.rs", "relative"),
            ("a{b", "unbalanced `{`"),
            ("a}b", "unbalanced `}`"),
            ("[abc", "unterminated"),
            ("[z-a]", "backwards"),
            ("x\\", "escapes nothing"),
        ] {
            let e = Glob::new(p).expect_err(p);
            assert!(e.contains(why), "{p}: {e}");
        }
        let e = Glob::new(&"{a,b}".repeat(10)).expect_err("too many");
        assert!(e.contains("alternatives"));
    }

    #[test]
    fn long_paths_stay_fast() {
        let path = "a/".repeat(200) + "b";
        assert!(!m("**/*/**/*/**/c", &path));
        assert!(m("**/*/**/*/**/b", &path));
    }
}

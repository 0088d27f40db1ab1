//! The parts of Go's standard library whose exact behaviour the daemon's file routes expose:
//! `filepath.Match` (what `/files/search` matches each name with), `filepath.Clean`/`Join` (how
//! the paths it reports are spelled), `filepath.Walk` (which entries it visits, in what order)
//! and the text of `*PathError`s (what `/files/replace` reports per file).

use std::io;
use std::path::{Path, PathBuf};

/// One element of a parsed `filepath.Match` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters (names never contain the separator).
    Star,
    /// `?`: exactly one character.
    One,
    /// A character class `[...]` or `[^...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// A literal character (after `\` escapes are removed).
    Literal(char),
}

/// Parses a pattern with Go's rules; `None` where Go returns `ErrBadPattern` (an unterminated
/// or empty class, a `-` or `]` where a class character is due, a trailing `\`).
fn parse_pattern(pattern: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                tokens.push(Token::Star);
                i += 1;
            }
            '?' => {
                tokens.push(Token::One);
                i += 1;
            }
            '\\' => {
                let c = *chars.get(i + 1)?;
                tokens.push(Token::Literal(c));
                i += 2;
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    if chars.get(i) == Some(&']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let lo = class_char(&chars, &mut i)?;
                    let hi = if chars.get(i) == Some(&'-') {
                        i += 1;
                        class_char(&chars, &mut i)?
                    } else {
                        lo
                    };
                    ranges.push((lo, hi));
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => {
                tokens.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    Some(tokens)
}

/// One character of a class (Go's `getEsc`): `-` and `]` are not allowed unescaped, and the
/// class must go on after it.
fn class_char(chars: &[char], i: &mut usize) -> Option<char> {
    let mut c = *chars.get(*i)?;
    if c == '-' || c == ']' {
        return None;
    }
    if c == '\\' {
        *i += 1;
        c = *chars.get(*i)?;
    }
    *i += 1;
    if *i >= chars.len() {
        return None;
    }
    Some(c)
}

/// Whether `token` (not a star) matches the character `c`.
fn matches_one(token: &Token, c: char) -> bool {
    match token {
        Token::Star | Token::One => true,
        Token::Literal(l) => *l == c,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
        }
    }
}

/// Glob matching in linear passes: on a mismatch, the last star takes one more character
/// (backtracking further back is never needed when every other token is one character).
fn matches_tokens(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                last_star = Some((t, n));
                t += 1;
            }
            Some(token) if matches_one(token, name[n]) => {
                t += 1;
                n += 1;
            }
            _ => match last_star {
                Some((star_t, star_n)) => {
                    t = star_t + 1;
                    n = star_n + 1;
                    last_star = Some((star_t, star_n + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t.min(tokens.len())..]
        .iter()
        .all(|token| *token == Token::Star)
}

/// Go's `filepath.Match(pattern, name)` as the daemon uses it: a malformed pattern matches
/// nothing (the daemon drops the error). `name` is one path element, so `*`, `?` and classes
/// never meet a `/`, and a pattern containing `/` matches no name.
pub(crate) fn go_match(pattern: &str, name: &str) -> bool {
    let Some(tokens) = parse_pattern(pattern) else {
        return false;
    };
    let name: Vec<char> = name.chars().collect();
    matches_tokens(&tokens, &name)
}

/// Go's `filepath.Clean`: one `/` between elements, no `.` elements, `..` applied lexically
/// (kept at the start of a relative path, dropped at the root), no trailing `/`, `.` for empty.
pub(crate) fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Join(dir, name)` for a non-empty `name`.
pub(crate) fn go_join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        go_clean(name)
    } else {
        go_clean(&format!("{dir}/{name}"))
    }
}

/// An entry visited by [`go_walk`].
pub(crate) struct WalkEntry<'a> {
    /// Where it is on this machine.
    pub(crate) host: &'a Path,
    /// The path the daemon reports: the root exactly as the client sent it, then
    /// `filepath.Join(parent, name)` below it.
    pub(crate) shown: &'a str,
    /// The entry's own name (the last element; for the root, as `os.Lstat` names it).
    pub(crate) name: &'a str,
    /// `lstat` of the entry: symlinks are not followed.
    pub(crate) meta: &'a std::fs::Metadata,
}

/// Go's `filepath.Walk(root, ...)` with the daemon's callback, which skips whatever cannot be
/// read: the root first, then each directory's entries in byte order of their names, depth
/// first, without following symlinks (the root included). A root that cannot be `lstat`ed
/// visits nothing.
pub(crate) fn go_walk(root_host: &Path, root_shown: &str, visit: &mut dyn FnMut(&WalkEntry<'_>)) {
    let Ok(meta) = std::fs::symlink_metadata(root_host) else {
        return;
    };
    let name = lstat_name(root_shown);
    visit(&WalkEntry {
        host: root_host,
        shown: root_shown,
        name: &name,
        meta: &meta,
    });
    if meta.is_dir() {
        walk_dir(root_host, root_shown, visit);
    }
}

fn walk_dir(dir_host: &Path, dir_shown: &str, visit: &mut dyn FnMut(&WalkEntry<'_>)) {
    let Ok(read) = std::fs::read_dir(dir_host) else {
        return;
    };
    let mut names: Vec<(String, PathBuf)> = read
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();
    for (name, host) in names {
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        let shown = go_join(dir_shown, &name);
        visit(&WalkEntry {
            host: &host,
            shown: &shown,
            name: &name,
            meta: &meta,
        });
        if meta.is_dir() {
            walk_dir(&host, &shown, visit);
        }
    }
}

/// The name `os.Lstat(path).Name()` gives: the last element, trailing slashes ignored; `/` for
/// the root.
pub(crate) fn lstat_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() {
            ".".into()
        } else {
            "/".into()
        };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// The text of Go's `*PathError` for `op` on `path`: `open /x: no such file or directory`.
/// Go spells errno messages in lower case; the C library capitalises the first letter.
pub(crate) fn go_path_error(op: &str, path: &str, e: &io::Error) -> String {
    let reason = match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        }
        None => e.to_string(),
    };
    format!("{op} {path}: {reason}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn match_follows_go() {
        assert!(go_match("*.go", "main.go"));
        assert!(go_match("*", ".hidden"));
        assert!(go_match("ma?n.go", "main.go"));
        assert!(go_match("[a-c]*", "beta"));
        assert!(go_match("[^a-c]*", "delta"));
        assert!(!go_match("[^a-c]*", "beta"));
        assert!(go_match("\\*", "*"));
        assert!(go_match("[\\]]", "]"));
        // doublestar and braces are not Go syntax: `**` is two stars, `{` a literal.
        assert!(go_match("**.go", "x.go"));
        assert!(!go_match("*.{go,md}", "x.go"));
        assert!(go_match("*.{go,md}", "x.{go,md}"));
        // A pattern with a separator never matches a single name.
        assert!(!go_match("src/*.go", "main.go"));
        // Malformed patterns match nothing.
        for bad in ["[", "[]", "[a", "a\\", "[-a]", "[a-]", "[]a]"] {
            assert!(parse_pattern(bad).is_none(), "{bad}");
            assert!(!go_match(bad, "a"), "{bad}");
        }
    }

    #[test]
    fn clean_and_join_follow_go() {
        assert_eq!(go_clean("/a//b/./c/"), "/a/b/c");
        assert_eq!(go_clean("/../a"), "/a");
        assert_eq!(go_clean("a/../../b"), "../b");
        assert_eq!(go_clean("./"), ".");
        assert_eq!(go_join(".", "x"), "x");
        assert_eq!(go_join("/home/u/", "x"), "/home/u/x");
    }

    #[test]
    fn walk_visits_the_root_then_sorted_entries_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("a"), "").unwrap();
        std::fs::write(dir.path().join("b/c/d"), "").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("e")).unwrap();
        let mut seen = Vec::new();
        go_walk(dir.path(), "/r/", &mut |e| {
            seen.push((e.shown.to_string(), e.name.to_string()))
        });
        let shown: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(shown, ["/r/", "/r/a", "/r/b", "/r/b/c", "/r/b/c/d", "/r/e"]);
        assert_eq!(seen[0].1, "r");
        let mut none = 0;
        go_walk(&dir.path().join("missing"), "x", &mut |_| none += 1);
        assert_eq!(none, 0);
    }

    #[test]
    fn path_errors_read_like_go() {
        let e = std::fs::read("/definitely/not/here").unwrap_err();
        assert_eq!(
            go_path_error("open", "/definitely/not/here", &e),
            "open /definitely/not/here: no such file or directory"
        );
    }
}

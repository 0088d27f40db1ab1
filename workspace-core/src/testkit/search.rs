//! `grep` and `glob`, where a provider has a file API: one tree, exact expected answers, so
//! every provider that passes gives the same results for the same files.

use super::harness::skip;
use super::probe::{expect_invalid, expect_not_found, sh_ok};
use super::random::unique_suffix;
use crate::error::SandboxError;
use crate::filesystem::SandboxFilesystem;
use crate::sandbox::WorkspaceSandbox;
use crate::search::{GlobRequest, GlobResult, GlobSort, GrepRequest, GrepResult};
use crate::shell_quote;

/// The tree every search check runs on: paths and contents.
const TREE: &[(&str, &[u8])] = &[
    (".gitignore", b"target/\n*.log\n"),
    ("src/main.rs", b"fn main() {\n    println!(\"Hello\");\n}\n"),
    (
        "src/lib.rs",
        b"pub fn hello() -> &'static str {\n    \"hello world\"\n}\n// TODO: more\n",
    ),
    ("src/gen/out.rs", b"fn generated() {}\n// hello gen\n"),
    ("docs/guide.md", b"# Guide\nSay hello.\r\nHELLO again\n"),
    ("target/debug.rs", b"hello from target\n"),
    ("app.log", b"hello log\n"),
    (".hidden/conf.txt", b"hello hidden\n"),
    ("bin.dat", b"\0\x01hello binary\n"),
    (".git/HEAD", b"hello git\n"),
    ("sub/.gitignore", b"local.txt\n"),
    ("sub/local.txt", b"hello local\n"),
    ("sub/kept.txt", b"hello kept"),
];

/// Write [`TREE`] under a fresh directory (plus `link.rs`, a symlink to `src/lib.rs`); its
/// relative path.
async fn make_tree(sandbox: &dyn WorkspaceSandbox, fs: &dyn SandboxFilesystem) -> String {
    let dir = format!("ct-search-{}", unique_suffix());
    for (path, data) in TREE {
        let p = format!("{dir}/{path}");
        fs.write_file(&p, data)
            .await
            .unwrap_or_else(|e| panic!("write_file({p:?}): {e} [{e:?}]"));
    }
    sh_ok(
        sandbox,
        &format!("cd {} && ln -s src/lib.rs link.rs", shell_quote(&dir)),
    )
    .await;
    dir
}

async fn grep(fs: &dyn SandboxFilesystem, request: GrepRequest) -> GrepResult {
    fs.grep(&request)
        .await
        .unwrap_or_else(|e| panic!("grep({request:?}): {e} [{e:?}]"))
}

async fn glob(fs: &dyn SandboxFilesystem, request: GlobRequest) -> GlobResult {
    fs.glob(&request)
        .await
        .unwrap_or_else(|e| panic!("glob({request:?}): {e} [{e:?}]"))
}

/// `path:line:text` (`-` for context) per line, for exact comparisons with readable failures.
fn lines(result: &GrepResult) -> Vec<String> {
    result
        .files
        .iter()
        .flat_map(|f| {
            f.lines.iter().map(move |l| {
                let sep = if l.is_match { ':' } else { '-' };
                format!("{}{sep}{}{sep}{}", f.path, l.number, l.text)
            })
        })
        .collect()
}

fn paths(result: &GlobResult) -> Vec<&str> {
    result.entries.iter().map(|e| e.path.as_str()).collect()
}

fn search_fs<'a>(
    sandbox: &'a dyn WorkspaceSandbox,
    check: &str,
) -> Option<&'a dyn SandboxFilesystem> {
    let fs = sandbox.filesystem();
    if fs.is_none() {
        skip(check, "the provider has no filesystem()");
    }
    fs
}

/// Content search: literal and regex, case, include/exclude, `.gitignore` (nested, on and off),
/// `.git`, hidden files, binary files and symlinks skipped, context, a single file, the line
/// cap with exact counts, and bad input as typed errors.
pub async fn search_grep(sandbox: &dyn WorkspaceSandbox) {
    let Some(fs) = search_fs(sandbox, "search_grep") else {
        return;
    };
    let dir = make_tree(sandbox, fs).await;
    let req = |p: &str| GrepRequest::new(p).path(dir.clone());

    let r = grep(fs, req("hello").fixed_strings(true)).await;
    assert_eq!(
        lines(&r),
        [
            ".hidden/conf.txt:1:hello hidden",
            "docs/guide.md:2:Say hello.",
            "src/gen/out.rs:2:// hello gen",
            "src/lib.rs:1:pub fn hello() -> &'static str {",
            "src/lib.rs:2:    \"hello world\"",
            "sub/kept.txt:1:hello kept",
        ],
        "literal search (no .git, ignored, binary or symlinked files): {r:?}"
    );
    assert_eq!(r.total_matches(), 6);
    assert_eq!(r.matches_omitted, 0);

    let r = grep(fs, req("hel+o (w|a)").case_insensitive(true)).await;
    assert_eq!(
        lines(&r),
        [
            "docs/guide.md:3:HELLO again",
            "src/lib.rs:2:    \"hello world\""
        ],
        "case-insensitive regex: {r:?}"
    );

    let r = grep(fs, req(r"fn \w+\(").include("*.rs").exclude("gen")).await;
    assert_eq!(
        lines(&r),
        [
            "src/lib.rs:1:pub fn hello() -> &'static str {",
            "src/main.rs:1:fn main() {",
        ],
        "include *.rs, exclude gen: {r:?}"
    );
    let r = grep(fs, req("Hello").include("src/*.rs")).await;
    assert_eq!(
        lines(&r),
        ["src/main.rs:2:    println!(\"Hello\");"],
        "include by path: {r:?}"
    );

    let r = grep(
        fs,
        GrepRequest::new("TODO")
            .path(format!("{dir}/src/lib.rs"))
            .context(1),
    )
    .await;
    assert_eq!(
        lines(&r),
        ["lib.rs-3-}", "lib.rs:4:// TODO: more"],
        "one file with context: {r:?}"
    );

    let r = grep(fs, req("hello").fixed_strings(true).gitignore(false)).await;
    let files: Vec<&str> = r.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        files,
        [
            ".hidden/conf.txt",
            "app.log",
            "docs/guide.md",
            "src/gen/out.rs",
            "src/lib.rs",
            "sub/kept.txt",
            "sub/local.txt",
            "target/debug.rs",
        ],
        ".gitignore off: {r:?}"
    );

    let r = grep(fs, req("hello").fixed_strings(true).max_lines(2)).await;
    assert_eq!(
        lines(&r),
        [
            ".hidden/conf.txt:1:hello hidden",
            "docs/guide.md:2:Say hello."
        ],
        "capped: {r:?}"
    );
    assert_eq!(r.matches_omitted, 4, "{r:?}");
    assert_eq!(
        r.total_matches(),
        6,
        "counts stay exact past the cap: {r:?}"
    );

    let r = grep(fs, req("no such text anywhere")).await;
    assert!(r.files.is_empty(), "no match: {r:?}");

    expect_invalid(
        "grep with an invalid regex",
        fs.grep(&req("fn (")).await,
        "pattern",
    );
    expect_invalid(
        "grep with an invalid include glob",
        fs.grep(&req("x").include("[z-")).await,
        "include[0]",
    );
    expect_not_found(
        "grep under a missing path",
        fs.grep(&GrepRequest::new("x").path(format!("{dir}/missing")))
            .await,
    );
}

/// Path search: `**` and single-segment patterns, `.gitignore` on and off, symlinks listed,
/// newest-first order with times, the result cap with the total, and bad input.
pub async fn search_glob(sandbox: &dyn WorkspaceSandbox) {
    let Some(fs) = search_fs(sandbox, "search_glob") else {
        return;
    };
    let dir = make_tree(sandbox, fs).await;
    let req = |p: &str| GlobRequest::new(p).path(dir.clone());

    let r = glob(fs, req("**/*.rs")).await;
    assert_eq!(
        paths(&r),
        ["link.rs", "src/gen/out.rs", "src/lib.rs", "src/main.rs"],
        "{r:?}"
    );
    assert_eq!(r.total, 4);
    let r = glob(fs, req("*.rs")).await;
    assert_eq!(paths(&r), ["link.rs"], "`*` stays in one segment: {r:?}");
    let r = glob(fs, req("**/*.{rs,log}").gitignore(false)).await;
    assert_eq!(
        paths(&r),
        [
            "app.log",
            "link.rs",
            "src/gen/out.rs",
            "src/lib.rs",
            "src/main.rs",
            "target/debug.rs"
        ],
        ".gitignore off: {r:?}"
    );
    let r = glob(fs, req("**/HEAD").gitignore(false)).await;
    assert!(r.entries.is_empty(), ".git is never listed: {r:?}");

    sh_ok(
        sandbox,
        &format!(
            "cd {} && touch -d '2020-06-01 12:00:00' src/lib.rs && \
             touch -d '2021-06-01 12:00:00' src/main.rs && \
             touch -d '2019-06-01 12:00:00' src/gen/out.rs",
            shell_quote(&dir)
        ),
    )
    .await;
    let r = glob(fs, req("src/**/*.rs").sort(GlobSort::Newest)).await;
    assert_eq!(
        paths(&r),
        ["src/main.rs", "src/lib.rs", "src/gen/out.rs"],
        "newest first: {r:?}"
    );
    let years: Vec<String> = r
        .entries
        .iter()
        .map(|e| {
            e.modified
                .map(|t| t.format("%Y").to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(years, ["2021", "2020", "2019"], "{r:?}");

    let r = glob(fs, req("**/*.rs").max_results(1)).await;
    assert_eq!(paths(&r), ["link.rs"]);
    assert_eq!(r.total, 4, "the total counts past the cap: {r:?}");

    expect_invalid(
        "glob with an invalid pattern",
        fs.glob(&req("[z-")).await,
        "pattern",
    );
    expect_invalid(
        "glob under a file",
        fs.glob(&GlobRequest::new("*").path(format!("{dir}/src/lib.rs")))
            .await,
        "path",
    );
    match fs
        .glob(&GlobRequest::new("*").path(format!("{dir}/missing")))
        .await
    {
        Err(SandboxError::NotFound { .. }) => {}
        other => panic!("glob under a missing path: expected NotFound, got {other:?}"),
    }
}

//! The confined filesystem against a real directory tree.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::symlink;
use std::path::Path;

use workspace_core::{FileKind, SandboxError, SandboxFilesystem};
use workspace_local::LocalFilesystem;

/// A root inside a scratch directory, with a sibling `outside/` holding a file we must never touch.
struct Fixture {
    _scratch: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
    fs: LocalFilesystem,
}

fn fixture() -> Fixture {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    let outside = scratch.path().join("outside");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "untouched").unwrap();
    let fs = LocalFilesystem::new(&root).unwrap();
    Fixture {
        _scratch: scratch,
        root,
        outside,
        fs,
    }
}

impl Fixture {
    fn assert_outside_untouched(&self) {
        assert_eq!(
            std::fs::read_to_string(self.outside.join("secret.txt")).unwrap(),
            "untouched"
        );
        let names: Vec<_> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec!["secret.txt"],
            "nothing created outside the root"
        );
    }
}

fn is_denied(r: Result<impl std::fmt::Debug, SandboxError>) -> bool {
    matches!(r, Err(SandboxError::PermissionDenied { .. }))
}

fn invalid_field(r: Result<impl std::fmt::Debug, SandboxError>) -> String {
    match r {
        Err(SandboxError::InvalidArgument { field, .. }) => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[tokio::test]
async fn write_read_relative_and_absolute() {
    let f = fixture();
    f.fs.write_file("a/b/c.txt", b"hello").await.unwrap();
    assert_eq!(std::fs::read(f.root.join("a/b/c.txt")).unwrap(), b"hello");
    let abs = f.root.join("a/b/c.txt");
    assert_eq!(
        f.fs.read_file(abs.to_str().unwrap()).await.unwrap(),
        b"hello"
    );
    assert_eq!(
        f.fs.read_file("./a/./b/../b/c.txt").await.unwrap(),
        b"hello"
    );
    f.fs.write_file("a/b/c.txt", b"replaced").await.unwrap();
    assert_eq!(f.fs.read_file("a/b/c.txt").await.unwrap(), b"replaced");
    f.fs.write_file("empty", b"").await.unwrap();
    assert_eq!(f.fs.read_file("empty").await.unwrap(), b"");
}

#[tokio::test]
async fn list_dir_is_sorted_with_kinds() {
    let f = fixture();
    f.fs.write_file("b.txt", b"12345").await.unwrap();
    f.fs.write_file("a.txt", b"1").await.unwrap();
    f.fs.create_dir("c/d").await.unwrap();
    symlink("a.txt", f.root.join("link")).unwrap();
    let entries = f.fs.list_dir(".").await.unwrap();
    let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a.txt", "b.txt", "c", "link"]);
    assert_eq!(entries[1].stat.kind, FileKind::File);
    assert_eq!(entries[1].stat.size, 5);
    assert_eq!(entries[2].stat.kind, FileKind::Directory);
    assert_eq!(entries[3].stat.kind, FileKind::Symlink);
    assert_eq!(
        entries[1].stat.path,
        format!("{}/b.txt", f.root.display()),
        "full path under the root as named"
    );
    assert!(f.fs.list_dir("c/d").await.unwrap().is_empty());
}

#[tokio::test]
async fn stat_does_not_follow_symlinks() {
    let f = fixture();
    f.fs.write_file("target.txt", b"abc").await.unwrap();
    symlink("target.txt", f.root.join("link")).unwrap();
    let s = f.fs.stat("link").await.unwrap();
    assert_eq!(s.kind, FileKind::Symlink);
    let s = f.fs.stat("target.txt").await.unwrap();
    assert_eq!((s.kind, s.size), (FileKind::File, 3));
    assert!(s.mode.is_some() && s.modified.is_some());
    assert!(f.fs.stat(".").await.unwrap().is_dir());
    // Reads go through a link that stays inside.
    assert_eq!(f.fs.read_file("link").await.unwrap(), b"abc");
}

#[tokio::test]
async fn dot_dot_cannot_climb_out() {
    let f = fixture();
    assert!(is_denied(f.fs.read_file("../outside/secret.txt").await));
    assert!(is_denied(f.fs.write_file("../outside/new.txt", b"x").await));
    assert!(is_denied(
        f.fs.write_file("a/../../outside/secret.txt", b"x").await
    ));
    assert!(is_denied(f.fs.remove("../outside/secret.txt", false).await));
    assert!(is_denied(f.fs.list_dir("..").await));
    assert!(is_denied(f.fs.create_dir("../outside/dir").await));
    f.assert_outside_untouched();
    // Climbing and coming back in is fine.
    f.fs.write_file("../root/ok.txt", b"in").await.unwrap();
    assert_eq!(std::fs::read(f.root.join("ok.txt")).unwrap(), b"in");
}

#[tokio::test]
async fn absolute_paths_outside_are_denied() {
    let f = fixture();
    let secret = f.outside.join("secret.txt");
    let err = f.fs.read_file(secret.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(err, SandboxError::PermissionDenied { .. }));
    assert!(
        err.to_string().contains("secret.txt"),
        "names the path: {err}"
    );
    assert!(is_denied(
        f.fs.write_file(secret.to_str().unwrap(), b"x").await
    ));
    assert!(is_denied(f.fs.stat("/etc/passwd").await));
    assert!(is_denied(f.fs.list_dir("/").await));
    f.assert_outside_untouched();
}

#[tokio::test]
async fn symlinked_directory_escaping_the_root_is_denied() {
    let f = fixture();
    symlink(&f.outside, f.root.join("escape")).unwrap();
    assert!(is_denied(f.fs.read_file("escape/secret.txt").await));
    assert!(is_denied(f.fs.write_file("escape/new.txt", b"x").await));
    assert!(is_denied(f.fs.write_file("escape/secret.txt", b"x").await));
    assert!(is_denied(f.fs.list_dir("escape").await));
    assert!(is_denied(f.fs.remove("escape/secret.txt", false).await));
    assert!(is_denied(f.fs.create_dir("escape/sub").await));
    f.fs.write_file("inside.txt", b"i").await.unwrap();
    assert!(is_denied(
        f.fs.rename("inside.txt", "escape/stolen.txt").await
    ));
    assert!(is_denied(
        f.fs.rename("escape/secret.txt", "mine.txt").await
    ));
    f.assert_outside_untouched();
}

#[tokio::test]
async fn final_symlink_escaping_the_root_is_denied() {
    let f = fixture();
    symlink(f.outside.join("secret.txt"), f.root.join("flink")).unwrap();
    assert!(is_denied(f.fs.read_file("flink").await));
    assert!(is_denied(f.fs.write_file("flink", b"overwritten").await));
    assert!(is_denied(f.fs.remove("flink", false).await));
    assert!(is_denied(f.fs.rename("flink", "moved").await));
    assert!(is_denied(f.fs.stat("flink").await));
    f.assert_outside_untouched();
    // A relative link that climbs out is caught the same way.
    symlink("../outside/secret.txt", f.root.join("rel")).unwrap();
    assert!(is_denied(f.fs.write_file("rel", b"x").await));
    f.assert_outside_untouched();
}

#[tokio::test]
async fn dangling_symlink_pointing_outside_is_denied() {
    let f = fixture();
    symlink(f.outside.join("created.txt"), f.root.join("dangling")).unwrap();
    assert!(is_denied(f.fs.write_file("dangling", b"x").await));
    assert!(is_denied(f.fs.write_file("dangling/below", b"x").await));
    f.assert_outside_untouched();
}

#[tokio::test]
async fn symlink_loops_are_invalid_not_a_hang() {
    let f = fixture();
    symlink("loop2", f.root.join("loop1")).unwrap();
    symlink("loop1", f.root.join("loop2")).unwrap();
    assert_eq!(invalid_field(f.fs.read_file("loop1").await), "path");
}

#[tokio::test]
async fn malformed_paths_are_invalid_arguments() {
    let f = fixture();
    assert_eq!(invalid_field(f.fs.read_file("").await), "path");
    assert_eq!(invalid_field(f.fs.write_file("a\0b", b"x").await), "path");
    assert_eq!(invalid_field(f.fs.stat("\0").await), "path");
    assert_eq!(invalid_field(f.fs.rename("", "x").await), "from");
    assert_eq!(invalid_field(f.fs.rename("x", "y\0").await), "to");
}

#[tokio::test]
async fn missing_paths_are_not_found() {
    let f = fixture();
    for r in [
        f.fs.read_file("nope").await.map(|_| ()),
        f.fs.stat("nope").await.map(|_| ()),
        f.fs.list_dir("nope").await.map(|_| ()),
        f.fs.remove("nope", true).await,
        f.fs.rename("nope", "other").await,
    ] {
        let err = r.unwrap_err();
        assert!(matches!(err, SandboxError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}

#[tokio::test]
async fn remove_files_and_directories() {
    let f = fixture();
    f.fs.write_file("d/x/y.txt", b"1").await.unwrap();
    f.fs.write_file("file.txt", b"1").await.unwrap();
    assert_eq!(invalid_field(f.fs.remove("d", false).await), "path");
    assert!(f.root.join("d/x/y.txt").exists(), "nothing removed");
    f.fs.remove("d", true).await.unwrap();
    assert!(!f.root.join("d").exists());
    f.fs.remove("file.txt", false).await.unwrap();
    f.fs.create_dir("empty").await.unwrap();
    f.fs.remove("empty", false).await.unwrap();
    // A link inside the root is removed itself, not its target.
    f.fs.write_file("t.txt", b"keep").await.unwrap();
    symlink("t.txt", f.root.join("l")).unwrap();
    f.fs.remove("l", false).await.unwrap();
    assert_eq!(f.fs.read_file("t.txt").await.unwrap(), b"keep");
}

#[tokio::test]
async fn the_root_itself_cannot_be_removed_or_moved() {
    let f = fixture();
    assert!(is_denied(f.fs.remove(".", true).await));
    assert!(is_denied(f.fs.remove(f.root.to_str().unwrap(), true).await));
    assert!(is_denied(f.fs.rename(".", "elsewhere").await));
    assert!(f.root.is_dir());
}

#[tokio::test]
async fn create_dir_is_idempotent_and_refuses_files() {
    let f = fixture();
    f.fs.create_dir("x/y/z").await.unwrap();
    f.fs.create_dir("x/y/z").await.unwrap();
    assert!(f.root.join("x/y/z").is_dir());
    f.fs.write_file("file", b"").await.unwrap();
    let err = f.fs.create_dir("file").await.unwrap_err();
    assert!(matches!(err, SandboxError::AlreadyExists { .. }), "{err:?}");
}

#[tokio::test]
async fn reading_a_directory_or_writing_over_one_is_invalid() {
    let f = fixture();
    f.fs.create_dir("dir").await.unwrap();
    assert_eq!(invalid_field(f.fs.read_file("dir").await), "path");
    assert_eq!(invalid_field(f.fs.write_file("dir", b"x").await), "path");
    assert_eq!(invalid_field(f.fs.write_file(".", b"x").await), "path");
    f.fs.write_file("plain", b"x").await.unwrap();
    assert_eq!(invalid_field(f.fs.list_dir("plain").await), "path");
}

#[tokio::test]
async fn rename_replaces_and_creates_parents() {
    let f = fixture();
    f.fs.write_file("a.txt", b"new").await.unwrap();
    f.fs.write_file("b.txt", b"old").await.unwrap();
    f.fs.rename("a.txt", "b.txt").await.unwrap();
    assert_eq!(f.fs.read_file("b.txt").await.unwrap(), b"new");
    assert!(!f.root.join("a.txt").exists());
    f.fs.rename("b.txt", "deep/er/c.txt").await.unwrap();
    assert_eq!(f.fs.read_file("deep/er/c.txt").await.unwrap(), b"new");
    f.fs.rename("deep", "moved").await.unwrap();
    assert!(f.root.join("moved/er/c.txt").is_file());
}

#[test]
fn root_must_exist_and_be_a_directory() {
    let scratch = tempfile::tempdir().unwrap();
    let err = LocalFilesystem::new(scratch.path().join("missing")).unwrap_err();
    assert!(matches!(err, SandboxError::NotFound { .. }), "{err:?}");
    let file = scratch.path().join("file");
    std::fs::write(&file, "").unwrap();
    let err = LocalFilesystem::new(&file).unwrap_err();
    assert!(matches!(err, SandboxError::InvalidArgument { ref field, .. } if field == "root"));
}

#[tokio::test]
async fn a_root_reached_through_a_symlink_works_both_ways() {
    let scratch = tempfile::tempdir().unwrap();
    let real = scratch.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let alias = scratch.path().join("alias");
    symlink(&real, &alias).unwrap();
    let fs = LocalFilesystem::new(&alias).unwrap();
    fs.write_file("f.txt", b"1").await.unwrap();
    assert!(Path::new(&real).join("f.txt").is_file());
    let via_real = real.join("f.txt");
    assert_eq!(
        fs.read_file(via_real.to_str().unwrap()).await.unwrap(),
        b"1"
    );
    let via_alias = alias.join("f.txt");
    assert_eq!(
        fs.read_file(via_alias.to_str().unwrap()).await.unwrap(),
        b"1"
    );
    assert_eq!(
        fs.stat("f.txt").await.unwrap().path,
        via_alias.to_str().unwrap()
    );
}

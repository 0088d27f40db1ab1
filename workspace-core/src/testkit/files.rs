//! The file API, where a provider has one: binary round trips that commands agree with, and
//! the directory operations with their errors.

use super::cksum::posix_cksum;
use super::harness::skip;
use super::probe::{exec_with, expect_not_found, opts, sh_ok, working_dir};
use super::random::{pseudo_random_bytes, random_seed, unique_suffix};
use crate::error::SandboxError;
use crate::filesystem::{FileKind, SandboxFilesystem};
use crate::sandbox::WorkspaceSandbox;
use crate::shell_quote;

fn filesystem<'a>(
    sandbox: &'a dyn WorkspaceSandbox,
    check: &str,
) -> Option<&'a dyn SandboxFilesystem> {
    let fs = sandbox.filesystem();
    if fs.is_none() {
        skip(check, "the provider has no filesystem()");
    }
    fs
}

async fn read(fs: &dyn SandboxFilesystem, path: &str) -> Vec<u8> {
    fs.read_file(path)
        .await
        .unwrap_or_else(|e| panic!("read_file({path:?}): {e} [{e:?}]"))
}

async fn write(fs: &dyn SandboxFilesystem, path: &str, data: &[u8]) {
    fs.write_file(path, data)
        .await
        .unwrap_or_else(|e| panic!("write_file({path:?}, {} bytes): {e} [{e:?}]", data.len()));
}

/// Compare without dumping megabytes into the failure message.
fn assert_same_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    panic!(
        "{what}: got {} bytes, wanted {}; first difference at {first:?}",
        got.len(),
        want.len()
    );
}

/// A 10 MiB random binary file survives a round trip, commands see the same bytes, and a file
/// written by a command reads back through the API.
pub async fn files_round_trip(sandbox: &dyn WorkspaceSandbox) {
    let Some(fs) = filesystem(sandbox, "files_round_trip") else {
        return;
    };
    let dir = format!("ct-files-{}", unique_suffix());
    let path = format!("{dir}/nested/blob.bin");
    let seed = random_seed();
    let data = pseudo_random_bytes(10 * 1024 * 1024, seed);
    write(fs, &path, &data).await;
    let back = read(fs, &path).await;
    assert_same_bytes(&format!("10 MiB round trip (seed {seed})"), &back, &data);

    let quoted = shell_quote(&path);
    let r = sh_ok(sandbox, &format!("wc -c < {quoted}")).await;
    assert_eq!(
        r.stdout.trim(),
        data.len().to_string(),
        "size as `wc -c` sees it"
    );
    let r = sh_ok(sandbox, &format!("cksum < {quoted}")).await;
    let fields: Vec<&str> = r.stdout.split_whitespace().collect();
    assert_eq!(
        fields,
        [posix_cksum(&data).to_string(), data.len().to_string()],
        "`cksum` inside the sandbox disagrees with the bytes written (seed {seed})"
    );

    // An absolute path names the same file.
    let wd = working_dir(sandbox).await;
    let absolute = read(fs, &format!("{wd}/{path}")).await;
    assert_same_bytes("the same file by absolute path", &absolute, &data);

    let from_shell = format!("{dir}/from shell ü.txt");
    let r = exec_with(
        sandbox,
        "printf 'from the shell\\n' >",
        &[&from_shell],
        opts(),
    )
    .await;
    assert!(r.success, "writing a file from the shell: {}", r.stderr);
    assert_eq!(read(fs, &from_shell).await, b"from the shell\n");

    // Replacing a file with a shorter one leaves nothing of the old content.
    write(fs, &path, b"short").await;
    assert_eq!(read(fs, &path).await, b"short");
    write(fs, &format!("{dir}/empty"), b"").await;
    assert_eq!(read(fs, &format!("{dir}/empty")).await, b"");
    let stat = fs
        .stat(&format!("{dir}/empty"))
        .await
        .unwrap_or_else(|e| panic!("stat of an empty file: {e}"));
    assert_eq!((stat.kind, stat.size), (FileKind::File, 0));
}

/// Directory listing, stat, create, remove and rename, and `NotFound` for missing paths.
pub async fn file_operations(sandbox: &dyn WorkspaceSandbox) {
    let Some(fs) = filesystem(sandbox, "file_operations") else {
        return;
    };
    let d = format!("ct-ops-{}", unique_suffix());
    let p = |rest: &str| format!("{d}/{rest}");

    fs.create_dir(&p("a/b/c"))
        .await
        .unwrap_or_else(|e| panic!("create_dir with missing parents: {e}"));
    fs.create_dir(&p("a/b/c"))
        .await
        .unwrap_or_else(|e| panic!("create_dir on an existing directory must be fine: {e}"));
    let r = exec_with(sandbox, "test -d", &[&p("a/b/c")], opts()).await;
    assert!(r.success, "commands should see a directory the API created");

    write(fs, &p("x.txt"), b"hello").await;
    write(fs, &p("ünï cødé.txt"), b"unicode").await;
    let entries = fs
        .list_dir(&d)
        .await
        .unwrap_or_else(|e| panic!("list_dir: {e}"));
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["a", "x.txt", "ünï cødé.txt"],
        "listing, sorted by name"
    );
    assert_eq!(entries[0].stat.kind, FileKind::Directory);
    assert_eq!(
        (entries[1].stat.kind, entries[1].stat.size),
        (FileKind::File, 5)
    );
    assert!(
        entries[1].stat.path.ends_with("x.txt"),
        "an entry's stat.path is its full path: {:?}",
        entries[1].stat.path
    );

    let stat = fs
        .stat(&p("x.txt"))
        .await
        .unwrap_or_else(|e| panic!("stat: {e}"));
    assert_eq!((stat.kind, stat.size), (FileKind::File, 5));
    assert!(!stat.is_dir());
    let stat = fs
        .stat(&p("a"))
        .await
        .unwrap_or_else(|e| panic!("stat dir: {e}"));
    assert!(stat.is_dir());

    // Writing into a missing nested directory creates it.
    write(fs, &p("deep/er/file.txt"), b"nested").await;
    assert_eq!(read(fs, &p("deep/er/file.txt")).await, b"nested");
    assert!(
        fs.stat(&p("deep/er"))
            .await
            .map(|s| s.is_dir())
            .unwrap_or(false)
    );

    // Rename a file, replacing an existing one.
    write(fs, &p("other.txt"), b"to be replaced").await;
    fs.rename(&p("x.txt"), &p("other.txt"))
        .await
        .unwrap_or_else(|e| panic!("rename over an existing file: {e}"));
    assert_eq!(read(fs, &p("other.txt")).await, b"hello");
    expect_not_found("the old name after rename", fs.read_file(&p("x.txt")).await);
    // Rename a directory with its content.
    fs.rename(&p("deep"), &p("moved"))
        .await
        .unwrap_or_else(|e| panic!("rename a directory: {e}"));
    assert_eq!(read(fs, &p("moved/er/file.txt")).await, b"nested");

    // A non-empty directory survives a non-recursive remove.
    let refused = fs.remove(&p("moved"), false).await;
    assert!(
        refused.is_err(),
        "non-recursive remove of a non-empty directory must fail"
    );
    assert_eq!(read(fs, &p("moved/er/file.txt")).await, b"nested");
    fs.remove(&p("moved"), true)
        .await
        .unwrap_or_else(|e| panic!("recursive remove: {e}"));
    expect_not_found("stat after recursive remove", fs.stat(&p("moved")).await);
    fs.remove(&p("a/b/c"), false)
        .await
        .unwrap_or_else(|e| panic!("non-recursive remove of an empty directory: {e}"));
    fs.remove(&p("other.txt"), false)
        .await
        .unwrap_or_else(|e| panic!("remove a file: {e}"));
    expect_not_found("read after remove", fs.read_file(&p("other.txt")).await);
    let r = exec_with(sandbox, "test -e", &[&p("other.txt")], opts()).await;
    assert!(!r.success, "commands should no longer see a removed file");

    let missing = p("no-such-file");
    expect_not_found("read_file of a missing file", fs.read_file(&missing).await);
    expect_not_found("stat of a missing file", fs.stat(&missing).await);
    expect_not_found(
        "list_dir of a missing directory",
        fs.list_dir(&missing).await,
    );
    expect_not_found("remove of a missing file", fs.remove(&missing, false).await);
    expect_not_found(
        "rename of a missing file",
        fs.rename(&missing, &p("elsewhere")).await,
    );
    match fs.read_file(&d).await {
        Err(SandboxError::NotFound { .. }) => {
            panic!("read_file of a directory must not claim it does not exist")
        }
        Err(_) => {}
        Ok(v) => panic!("read_file of a directory must fail, got {} bytes", v.len()),
    }
}

//! File transfer and file operations against the emulator's toolbox.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use workspace_daytona::{DaytonaError, ExecuteOptions, FilePermissions, FileUpload};

#[tokio::test]
async fn upload_and_download_bytes_and_paths() {
    let (emu, _client, sandbox) = setup().await;
    let fs = sandbox.fs();
    let home = sandbox.user_home_dir().await.unwrap();
    let a = format!("{home}/dir/sub/a.txt");
    fs.upload_bytes(&b"alpha"[..], &a).await.unwrap();
    assert_eq!(&fs.download_bytes(&a).await.unwrap()[..], b"alpha");

    // Overwrite.
    fs.upload_bytes(&b"beta"[..], &a).await.unwrap();
    assert_eq!(&fs.download_bytes(&a).await.unwrap()[..], b"beta");

    // From a local file, and to a local file.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("src.bin");
    std::fs::write(&local, b"from disk \x00\x01\xff").unwrap();
    let b = format!("{home}/weird name \"q\" ☃.bin");
    fs.upload_file(&local, &b).await.unwrap();
    let out = dir.path().join("nested/out.bin");
    fs.download_to_path(&b, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"from disk \x00\x01\xff");

    // The wire format is the SDK's.
    let up = hits(&emu, "POST", "/files/bulk-upload");
    assert!(
        up[0]
            .header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    let down = hits(&emu, "POST", "/files/bulk-download");
    assert_eq!(down[0].body.as_ref().unwrap()["paths"][0], a.as_str());
}

#[tokio::test]
async fn bulk_transfers_with_per_file_errors() {
    let (_emu, _client, sandbox) = setup().await;
    let fs = sandbox.fs();
    let home = sandbox.user_home_dir().await.unwrap();
    let p1 = format!("{home}/one");
    let p2 = format!("{home}/two");
    let missing = format!("{home}/missing");
    fs.upload_files(vec![
        FileUpload::bytes(&b"1"[..], p1.clone()),
        FileUpload::bytes(&b"22"[..], p2.clone()),
    ])
    .await
    .unwrap();
    let got = fs
        .download_files(&[p2.as_str(), missing.as_str(), p1.as_str()])
        .await
        .unwrap();
    assert_eq!(&got[0].as_ref().unwrap()[..], b"22");
    match &got[1] {
        Err(DaytonaError::FileNotFound(d)) => {
            assert_eq!(d.status, 404);
            assert_eq!(d.code.as_deref(), Some("FILE_NOT_FOUND"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(&got[2].as_ref().unwrap()[..], b"1");

    let err = fs.download_bytes(&missing).await.unwrap_err();
    assert!(matches!(err, DaytonaError::FileNotFound(_)), "{err:?}");

    // Downloading a missing file to disk creates nothing.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("never");
    assert!(fs.download_to_path(&missing, &target).await.is_err());
    assert!(!target.exists());

    assert!(fs.download_files(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn ten_megabyte_round_trip_streams_both_ways() {
    let (_emu, _client, sandbox) = setup().await;
    let fs = sandbox.fs();
    let home = sandbox.user_home_dir().await.unwrap();
    let mut data = vec![0u8; 10 * 1024 * 1024];
    rand::rngs::StdRng::seed_from_u64(9).fill(&mut data[..]);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();

    let remote = format!("{home}/big.bin");
    fs.upload_file(&src, &remote).await.unwrap();
    let info = fs.get_file_info(&remote).await.unwrap();
    assert_eq!(info.size, data.len() as u64);

    let dst = dir.path().join("back.bin");
    fs.download_to_path(&remote, &dst).await.unwrap();
    assert!(
        std::fs::read(&dst).unwrap() == data,
        "file differs after round trip"
    );

    let in_memory = fs.download_bytes(&remote).await.unwrap();
    assert_eq!(in_memory.len(), data.len());
    assert!(in_memory[..] == data[..]);

    // Uploaded from bytes too.
    fs.upload_bytes(data.clone(), &format!("{home}/big2.bin"))
        .await
        .unwrap();
    let out = sandbox
        .process()
        .execute(
            &format!("cmp {home}/big.bin {home}/big2.bin && echo same"),
            &ExecuteOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.result.trim(), "same");
}

#[tokio::test]
async fn file_operations() {
    let (_emu, _client, sandbox) = setup().await;
    let fs = sandbox.fs();
    let home = sandbox.user_home_dir().await.unwrap();
    let dir = format!("{home}/proj");
    fs.create_folder(&dir, "755").await.unwrap();
    // Idempotent.
    fs.create_folder(&dir, "755").await.unwrap();
    assert!(matches!(
        fs.create_folder(&dir, "rwx").await,
        Err(DaytonaError::InvalidArgument { .. })
    ));

    fs.upload_files(vec![
        FileUpload::bytes(&b"fn main() { hello(); }\n"[..], format!("{dir}/main.rs")),
        FileUpload::bytes(&b"hello world\nbye\n"[..], format!("{dir}/notes.txt")),
    ])
    .await
    .unwrap();

    let mut names: Vec<String> = fs
        .list_files(&dir)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    names.sort();
    assert_eq!(names, ["main.rs", "notes.txt"]);

    let info = fs.get_file_info(&dir).await.unwrap();
    assert!(info.is_dir);
    let info = fs.get_file_info(&format!("{dir}/notes.txt")).await.unwrap();
    assert_eq!(info.size, 16);
    assert!(!info.is_dir);

    let found = fs.find_files(&dir, "hello").await.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|m| m.file.ends_with("notes.txt") && m.line == 1)
    );

    let searched = fs.search_files(&dir, "*.rs").await.unwrap();
    assert_eq!(searched.len(), 1);
    assert!(searched[0].ends_with("main.rs"));

    let results = fs
        .replace_in_files(&[&format!("{dir}/notes.txt")], "hello", "goodbye")
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].success, Some(true));
    assert_eq!(
        &fs.download_bytes(&format!("{dir}/notes.txt"))
            .await
            .unwrap()[..],
        b"goodbye world\nbye\n"
    );

    fs.set_file_permissions(
        &format!("{dir}/main.rs"),
        &FilePermissions {
            mode: Some("600".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let info = fs.get_file_info(&format!("{dir}/main.rs")).await.unwrap();
    assert!(info.permissions.ends_with("600"), "{}", info.permissions);

    fs.move_files(&format!("{dir}/main.rs"), &format!("{dir}/lib.rs"))
        .await
        .unwrap();
    let err = fs
        .get_file_info(&format!("{dir}/main.rs"))
        .await
        .unwrap_err();
    assert!(matches!(err, DaytonaError::FileNotFound(_)), "{err:?}");

    fs.delete_file(&format!("{dir}/lib.rs"), false)
        .await
        .unwrap();
    fs.delete_file(&dir, true).await.unwrap();
    let err = fs.list_files(&dir).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn upload_from_a_missing_local_file_is_an_io_error() {
    let (emu, _client, sandbox) = setup().await;
    emu.clear_requests();
    let err = sandbox
        .fs()
        .upload_file("/definitely/not/here", "/tmp/x")
        .await
        .unwrap_err();
    assert!(matches!(err, DaytonaError::Io { .. }), "{err:?}");
    assert!(hits(&emu, "POST", "/files/bulk-upload").is_empty());
}

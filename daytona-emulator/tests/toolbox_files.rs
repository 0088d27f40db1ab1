//! File routes over real HTTP: bulk upload/download (multipart both ways, a 10 MB binary),
//! the file-system operations, path confinement, and commands and the file API seeing the same
//! files.

#![allow(clippy::unwrap_used)]

mod toolbox_support;

use std::os::unix::fs::PermissionsExt;

use daytona_emulator::layout::Isolation;
use rand::RngCore;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use toolbox_support::Fixture;

/// One part of a bulk-download response.
#[derive(Debug)]
struct DownloadPart {
    name: String,
    filename: String,
    content_type: String,
    content_length: Option<u64>,
    data: Vec<u8>,
}

async fn bulk_upload(fx: &Fixture, files: &[(&str, Vec<u8>)]) -> (StatusCode, Value) {
    let mut form = Form::new();
    for (i, (path, data)) in files.iter().enumerate() {
        form = form
            .text(format!("files[{i}].path"), path.to_string())
            .part(
                format!("files[{i}].file"),
                Part::bytes(data.clone())
                    .file_name(path.to_string())
                    .mime_str("application/octet-stream")
                    .unwrap(),
            );
    }
    let resp = fx
        .post("/files/bulk-upload")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn bulk_download(fx: &Fixture, paths: &[&str]) -> Vec<DownloadPart> {
    let resp = fx
        .post("/files/bulk-download")
        .json(&json!({"paths": paths}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "multipart/form-data; boundary=DAYTONA-FILE-BOUNDARY");
    let boundary = multer::parse_boundary(&ct).unwrap();
    let mut mp = multer::Multipart::new(resp.bytes_stream(), boundary);
    let mut parts = Vec::new();
    while let Some(field) = mp.next_field().await.unwrap() {
        let name = field.name().unwrap().to_string();
        let filename = field.file_name().unwrap().to_string();
        let content_type = field.content_type().unwrap().to_string();
        let content_length = field
            .headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let disposition = field.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(disposition.contains("filename*=utf-8''"), "{disposition}");
        let data = field.bytes().await.unwrap().to_vec();
        parts.push(DownloadPart {
            name,
            filename,
            content_type,
            content_length,
            data,
        });
    }
    parts
}

async fn info(fx: &Fixture, path: &str) -> (StatusCode, Value) {
    let resp = fx
        .get("/files/info")
        .query(&[("path", path)])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn bulk_upload_then_download_round_trips_binary_and_reports_per_file_errors() {
    let fx = Fixture::start().await;
    let tmp = fx.tmp();
    let home = fx.home();
    let mut big = vec![0u8; 10 * 1024 * 1024];
    rand::rng().fill_bytes(&mut big);
    let big_path = format!("{tmp}/big.bin");
    let nested = format!("{home}/new/deeper/notes.txt");
    let (status, body) = bulk_upload(
        &fx,
        &[
            (big_path.as_str(), big.clone()),
            (nested.as_str(), b"hello\n".to_vec()),
            ("relative.txt", b"rel".to_vec()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"files": [
            {"path": big_path, "bytes": big.len()},
            {"path": nested, "bytes": 6},
            {"path": "relative.txt", "bytes": 3},
        ]})
    );

    // Parents are created 0755, files 0644.
    let (_, dir) = info(&fx, &format!("{home}/new/deeper")).await;
    assert_eq!(dir["permissions"], "0755");
    assert_eq!(dir["isDir"], true);
    assert_eq!(dir["mode"], "drwxr-xr-x");
    let (_, file) = info(&fx, &nested).await;
    assert_eq!(file["permissions"], "0644");
    assert_eq!(file["mode"], "-rw-r--r--");
    assert_eq!(file["size"], 6);

    // Overwrite replaces the content.
    let (status, _) = bulk_upload(&fx, &[(nested.as_str(), b"v2".to_vec())]).await;
    assert_eq!(status, StatusCode::OK);

    let missing = format!("{home}/missing.txt");
    let dir_path = format!("{home}/new");
    let parts = bulk_download(
        &fx,
        &[&big_path, &missing, &nested, "relative.txt", &dir_path],
    )
    .await;
    assert_eq!(parts.len(), 5);
    assert_eq!(parts[0].name, "file");
    assert_eq!(parts[0].filename, big_path);
    assert_eq!(parts[0].content_type, "application/octet-stream");
    assert_eq!(parts[0].content_length, Some(big.len() as u64));
    assert!(
        parts[0].data == big,
        "10 MB binary differs after the round trip"
    );

    assert_eq!(parts[1].name, "error");
    assert_eq!(parts[1].filename, missing);
    assert_eq!(parts[1].content_type, "application/json; charset=utf-8");
    let err: Value = serde_json::from_slice(&parts[1].data).unwrap();
    assert_eq!(err["statusCode"], 404);
    assert_eq!(err["code"], "FILE_NOT_FOUND");
    assert_eq!(err["source"], "DAYTONA_DAEMON");
    assert_eq!(err["message"], format!("file not found: {missing}"));
    // `fs/download_files.go`: the error names the requested file, and its part has no length.
    assert_eq!(err["path"], missing);
    assert_eq!(err["method"], "POST");
    assert_eq!(parts[1].content_length, None);

    assert_eq!(parts[2].filename, nested);
    assert_eq!(parts[2].content_type, "text/plain");
    assert_eq!(parts[2].data, b"v2");
    assert_eq!(parts[3].filename, "relative.txt");
    assert_eq!(parts[3].data, b"rel");
    assert_eq!(parts[4].name, "error");
    assert_eq!(parts[4].filename, dir_path);
    let err: Value = serde_json::from_slice(&parts[4].data).unwrap();
    assert_eq!(err["statusCode"], 400);
    assert_eq!(err["code"], "INVALID_FILE_PATH");
    assert_eq!(
        err["message"],
        format!("invalid file path: path points to a directory: {dir_path}")
    );

    let empty = fx
        .post("/files/bulk-download")
        .json(&json!({"paths": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        empty.json::<Value>().await.unwrap(),
        json!({"error": "request body must be {\"paths\": [ ... ]} and non-empty"})
    );

    // Single download too.
    let single = fx
        .get("/files/download")
        .query(&[("path", big_path.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(single.status(), StatusCode::OK);
    assert!(single.bytes().await.unwrap() == big);
    fx.shutdown().await;
}

#[tokio::test]
async fn bulk_upload_reports_bad_parts_with_400() {
    let fx = Fixture::start().await;
    let home = fx.home();
    let good = format!("{home}/good.txt");
    let (status, body) = bulk_upload(
        &fx,
        &[
            (good.as_str(), b"ok".to_vec()),
            ("/etc/evil.txt", b"no".to_vec()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["files"], json!([{"path": good, "bytes": 2}]));
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["errors", "files"],
        "the daemon's 400 has only these: {body}"
    );
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].as_str().unwrap().contains("/etc/evil.txt"));
    assert!(!std::path::Path::new("/etc/evil.txt").exists());

    // A file part without its path field first.
    let form = Form::new().part("files[0].file", Part::bytes(b"x".to_vec()).file_name("x"));
    let resp = fx
        .post("/files/bulk-upload")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // `fs/upload_files.go`: nothing written leaves Go's nil `files`, which encodes as null.
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"errors": ["file[0]: missing .path metadata"], "files": null})
    );

    // Not a multipart body at all: only `errors`.
    let resp = fx
        .post("/files/bulk-upload")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"errors": ["invalid multipart form"]})
    );
    fx.shutdown().await;
}

#[tokio::test]
async fn file_operations_behave_like_the_daemon() {
    let fx = Fixture::start().await;
    let home = fx.home();
    let p = |rel: &str| format!("{home}/{rel}");

    // mkdir: 201, with mode.
    let resp = fx
        .post("/files/folder")
        .query(&[("path", p("proj/src").as_str()), ("mode", "0750")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, dir) = info(&fx, &p("proj/src")).await;
    assert_eq!(dir["permissions"], "0750");
    let bad_mode = fx
        .post("/files/folder")
        .query(&[("path", p("x").as_str()), ("mode", "rwx")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_mode.status(), StatusCode::BAD_REQUEST);

    bulk_upload(
        &fx,
        &[
            (
                p("proj/src/main.go").as_str(),
                b"package main\n// TODO: fix\n".to_vec(),
            ),
            (
                p("proj/src/util.go").as_str(),
                b"package main\nfunc todo() {}\n".to_vec(),
            ),
            (
                p("proj/readme.md").as_str(),
                b"TODO list\nnothing\n".to_vec(),
            ),
            (p("proj/bin.dat").as_str(), b"TODO\0binary".to_vec()),
        ],
    )
    .await;

    // list: sorted, with full FileInfo; depth 2 includes children.
    let list: Vec<Value> = fx
        .get("/files")
        .query(&[("path", p("proj").as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["bin.dat", "readme.md", "src"]);
    let readme = &list[1];
    for key in [
        "name",
        "size",
        "isDir",
        "mode",
        "permissions",
        "owner",
        "group",
        "modTime",
        "modifiedAt",
        "path",
    ] {
        assert!(readme.get(key).is_some(), "{key} missing: {readme}");
    }
    assert_eq!(readme["path"], p("proj/readme.md"));
    assert!(readme["modTime"].as_str().unwrap().ends_with(" +0000 UTC"));
    assert!(readme["modifiedAt"].as_str().unwrap().ends_with('Z'));
    let deep: Vec<Value> = fx
        .get("/files")
        .query(&[("path", p("proj").as_str()), ("depth", "2")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deep.len(), 5);
    let bad_depth = fx
        .get("/files")
        .query(&[("path", p("proj").as_str()), ("depth", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_depth.status(), StatusCode::BAD_REQUEST);
    // Default path: the work dir.
    let root: Vec<Value> = fx.get("/files").send().await.unwrap().json().await.unwrap();
    assert!(root.iter().any(|f| f["name"] == "proj"));

    // find: literal, line numbers, binaries skipped.
    let found: Vec<Value> = fx
        .get("/files/find")
        .query(&[("path", p("proj").as_str()), ("pattern", "TODO")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![
            json!({"file": p("proj/readme.md"), "line": 1, "content": "TODO list"}),
            json!({"file": p("proj/src/main.go"), "line": 2, "content": "// TODO: fix"}),
        ]
    );

    // search: Go's filepath.Match against each name at any depth (fs/search_files.go); more
    // in `search_walks_like_the_daemon`.
    let search = |pattern: &'static str| {
        let fx = &fx;
        let path = p("proj");
        async move {
            let v: Value = fx
                .get("/files/search")
                .query(&[("path", path.as_str()), ("pattern", pattern)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["files"].as_array().unwrap().clone()
        }
    };
    assert_eq!(
        search("*.go").await,
        vec![json!(p("proj/src/main.go")), json!(p("proj/src/util.go"))]
    );
    assert_eq!(search("*.md").await, vec![json!(p("proj/readme.md"))]);
    assert_eq!(search("**/*.go").await.len(), 0);
    assert_eq!(search("*.{go,md}").await.len(), 0);

    // replace: per-file results.
    let results: Vec<Value> = fx
        .post("/files/replace")
        .json(&json!({"files": [p("proj/readme.md"), p("proj/none.md")], "pattern": "TODO", "newValue": "DONE"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        results[0],
        json!({"file": p("proj/readme.md"), "success": true})
    );
    assert_eq!(results[1]["success"], false);
    assert!(results[1]["error"].as_str().is_some());
    let parts = bulk_download(&fx, &[&p("proj/readme.md")]).await;
    assert_eq!(parts[0].data, b"DONE list\nnothing\n");

    // chmod: 200.
    let resp = fx
        .post("/files/permissions")
        .query(&[("path", p("proj/readme.md").as_str()), ("mode", "0600")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, f) = info(&fx, &p("proj/readme.md")).await;
    assert_eq!(f["permissions"], "0600");
    assert_eq!(f["mode"], "-rw-------");
    let uid = nix::unistd::getuid().as_raw().to_string();
    let resp = fx
        .post("/files/permissions")
        .query(&[
            ("path", p("proj/readme.md").as_str()),
            ("owner", uid.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(info(&fx, &p("proj/readme.md")).await.1["owner"], uid);

    // move: 200, 409 onto an existing path, 404 for a missing source.
    let mv = |from: String, to: String| {
        let fx = &fx;
        async move {
            fx.post("/files/move")
                .query(&[("source", from.as_str()), ("destination", to.as_str())])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        mv(p("proj/readme.md"), p("proj/README.md")).await,
        StatusCode::OK
    );
    assert_eq!(
        info(&fx, &p("proj/readme.md")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        mv(p("proj/README.md"), p("proj/bin.dat")).await,
        StatusCode::CONFLICT
    );
    assert_eq!(mv(p("proj/gone"), p("proj/x")).await, StatusCode::NOT_FOUND);

    // delete: 204; a directory needs recursive.
    let del = |path: String, recursive: bool| {
        let fx = &fx;
        async move {
            let mut q = vec![("path", path)];
            if recursive {
                q.push(("recursive", "true".to_string()));
            }
            fx.delete("/files").query(&q).send().await.unwrap().status()
        }
    };
    assert_eq!(del(p("proj/bin.dat"), false).await, StatusCode::NO_CONTENT);
    assert_eq!(del(p("proj/src"), false).await, StatusCode::BAD_REQUEST);
    assert_eq!(del(p("proj/src"), true).await, StatusCode::NO_CONTENT);
    assert_eq!(del(p("proj/src"), true).await, StatusCode::NOT_FOUND);
    // The home dir itself is not deletable.
    assert_eq!(del(home.clone(), true).await, StatusCode::FORBIDDEN);

    let (status, err) = info(&fx, &p("nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["code"], "FILE_NOT_FOUND");
    let missing_param = fx.get("/files/info").send().await.unwrap();
    assert_eq!(missing_param.status(), StatusCode::BAD_REQUEST);
    fx.shutdown().await;
}

#[tokio::test]
async fn paths_outside_the_sandbox_are_refused_and_nothing_outside_is_touched() {
    let fx = Fixture::start().await;
    let target = fx.target();
    // Outside every sandbox path in both modes (a host /tmp path would name the sandbox's own
    // /tmp under bubblewrap; that case is checked at the end).
    // The host directory must not itself lie under /tmp: under bubblewrap the sandbox's /tmp
    // hides the host's, so a link into the host's /tmp would merely dangle (404), proving less.
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let base = if base.starts_with("/tmp") {
        std::path::Path::new("/var/tmp")
    } else {
        base
    };
    let outside = tempfile::Builder::new().tempdir_in(base).unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, b"host secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A symlink planted inside the sandbox, pointing at a host directory outside it.
    std::os::unix::fs::symlink(outside.path(), target.layout.home_host().join("escape")).unwrap();
    let home = fx.home();

    let escapes = [
        "/etc/passwd".to_string(),
        "../../../../etc/passwd".to_string(),
        format!("{home}/../../../etc/passwd"),
        format!("{home}/escape/secret.txt"),
        "escape/secret.txt".to_string(),
        outside.path().join("secret.txt").display().to_string(),
    ];
    for path in &escapes {
        let (status, body) = info(&fx, path).await;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST,
            "{path}: {status} {body}"
        );
        assert!(
            ["FILE_ACCESS_DENIED", "INVALID_FILE_PATH"].contains(&body["code"].as_str().unwrap()),
            "{body}"
        );
        let parts = bulk_download(&fx, &[path]).await;
        assert_eq!(parts[0].name, "error", "{path}");
        let del = fx
            .delete("/files")
            .query(&[("path", path.as_str()), ("recursive", "true")])
            .send()
            .await
            .unwrap();
        assert!(del.status().is_client_error(), "{path}");
        let chmod = fx
            .post("/files/permissions")
            .query(&[("path", path.as_str()), ("mode", "0777")])
            .send()
            .await
            .unwrap();
        assert!(chmod.status().is_client_error(), "{path}");
        let replace: Vec<Value> = fx
            .post("/files/replace")
            .json(&json!({"files": [path], "pattern": "host", "newValue": "pwned"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(replace[0]["success"], false);
    }
    let (status, _) = bulk_upload(
        &fx,
        &[(
            format!("{home}/escape/secret.txt").as_str(),
            b"overwritten".to_vec(),
        )],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let planted = fx
        .post("/files/folder")
        .query(&[
            ("path", format!("{home}/escape/newdir").as_str()),
            ("mode", "0755"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), StatusCode::FORBIDDEN);
    let moved = fx
        .post("/files/move")
        .query(&[
            ("source", format!("{home}/escape/secret.txt").as_str()),
            ("destination", format!("{home}/stolen.txt").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::FORBIDDEN);
    let found: Value = fx
        .get("/files/find")
        .query(&[
            ("path", format!("{home}/escape").as_str()),
            ("pattern", "secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(json!(null));
    assert!(!found.to_string().contains("host secret"));
    let nul = fx
        .get("/files/info")
        .query(&[("path", "a\0b")])
        .send()
        .await
        .unwrap();
    assert_eq!(nul.status(), StatusCode::BAD_REQUEST);

    // The listing shows the link but does not describe the outside target.
    let list: Vec<Value> = fx.get("/files").send().await.unwrap().json().await.unwrap();
    let link = list.iter().find(|f| f["name"] == "escape").unwrap();
    assert!(link["mode"].as_str().unwrap().starts_with('L'), "{link}");

    // A link to a host /tmp directory: whatever it means in the sandbox, writing through it
    // never reaches the host's file.
    let host_tmp = tempfile::tempdir().unwrap();
    let host_secret = host_tmp.path().join("secret.txt");
    std::fs::write(&host_secret, b"host tmp secret").unwrap();
    std::os::unix::fs::symlink(
        host_tmp.path(),
        target.layout.home_host().join("tmp_escape"),
    )
    .unwrap();
    let through = format!("{home}/tmp_escape/secret.txt");
    let (status, _) = bulk_upload(&fx, &[(through.as_str(), b"overwritten".to_vec())]).await;
    if fx.isolation() == Isolation::Host {
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    fx.delete("/files")
        .query(&[("path", through.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(std::fs::read(&host_secret).unwrap(), b"host tmp secret");

    // Nothing outside changed.
    assert_eq!(std::fs::read(&secret).unwrap(), b"host secret");
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
    assert!(!std::path::Path::new(&format!("{home}/stolen.txt")).exists());
    fx.shutdown().await;
}

#[tokio::test]
async fn commands_and_the_file_api_see_the_same_files() {
    let fx = Fixture::start().await;
    let tmp = fx.tmp();
    // A command writes under /tmp (the seed's `tar ... /tmp/project.tar.gz`), the API reads it.
    let made = fx
        .exec(&format!(
            "mkdir -p project && echo content > project/f.txt && tar czf {tmp}/project.tar.gz project && echo from-cmd > {tmp}/x"
        ))
        .await;
    assert_eq!(made["exitCode"], 0, "{made}");
    let parts = bulk_download(
        &fx,
        &[&format!("{tmp}/x"), &format!("{tmp}/project.tar.gz")],
    )
    .await;
    assert_eq!(
        parts[0].name,
        "file",
        "{:?}",
        String::from_utf8_lossy(&parts[0].data)
    );
    assert_eq!(parts[0].data, b"from-cmd\n");
    assert_eq!(parts[1].name, "file");
    assert!(parts[1].data.starts_with(&[0x1f, 0x8b]), "gzip magic");

    // The API writes, a command reads.
    bulk_upload(&fx, &[(format!("{tmp}/y").as_str(), b"from-api".to_vec())]).await;
    let read = fx.exec(&format!("cat {tmp}/y")).await;
    assert_eq!(read["result"], "from-api");
    let ws = fx.exec("echo w > /workspace/w.txt 2>&1; echo $?").await;

    match fx.isolation() {
        Isolation::Bubblewrap => {
            // In the namespace /tmp is the sandbox's own, not the host's.
            assert!(
                !std::path::Path::new("/tmp/y").exists()
                    || std::fs::read("/tmp/y").unwrap() != b"from-api"
            );
            assert_eq!(ws["result"], "0\n");
            let parts = bulk_download(&fx, &["/workspace/w.txt"]).await;
            assert_eq!(parts[0].data, b"w\n");
            let host = fx.target().layout.tmp_host().join("x");
            assert_eq!(std::fs::read(host).unwrap(), b"from-cmd\n");
            // The host's root is read-only inside.
            let ro = fx
                .exec("touch /etc/daytona-emulator-probe 2>/dev/null; echo $?")
                .await;
            assert_ne!(ro["result"], "0\n");
            assert!(!std::path::Path::new("/etc/daytona-emulator-probe").exists());
        }
        Isolation::Host => {
            let host = fx.target().layout.tmp_host().join("x");
            assert_eq!(std::fs::read(host).unwrap(), b"from-cmd\n");
        }
    }
    fx.shutdown().await;
}

#[tokio::test]
async fn bubblewrap_confines_commands_when_it_works_here() {
    let fx = Fixture::start().await;
    let forced = std::env::var_os(daytona_emulator::layout::ISOLATION_ENV).is_some();
    let bwrap_works = std::process::Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if bwrap_works && !forced {
        assert_eq!(fx.isolation(), Isolation::Bubblewrap);
        assert_eq!(fx.home(), "/home/daytona");
    }
    if fx.isolation() == Isolation::Host {
        // Without bwrap the home is reported as the host path it really is.
        assert_eq!(
            fx.home(),
            fx.target().layout.home_host().display().to_string()
        );
    }
    let pwd = fx.exec("pwd").await;
    assert_eq!(pwd["result"], format!("{}\n", fx.home()));
    fx.shutdown().await;
}

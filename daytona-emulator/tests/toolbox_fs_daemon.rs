//! File routes held to the v0.190.0 daemon's source (`apps/daemon/pkg/toolbox/fs/`): how search
//! and find walk and what they match, replace's per-file errors, mode parsing, what delete, move,
//! list and info do with symlinks, and the single-file download and upload.

#![allow(clippy::unwrap_used)]

mod toolbox_support;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use toolbox_support::Fixture;

/// Runs a shell command in the sandbox and asserts it succeeded.
async fn sh(fx: &Fixture, command: &str) {
    let out = fx.exec(command).await;
    assert_eq!(out["exitCode"], 0, "{command}: {out}");
}

async fn search(fx: &Fixture, path: &str, pattern: &str) -> (StatusCode, Value) {
    let resp = fx
        .get("/files/search")
        .query(&[("path", path), ("pattern", pattern)])
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn find(fx: &Fixture, path: &str, pattern: &str) -> Value {
    let resp = fx
        .get("/files/find")
        .query(&[("path", path), ("pattern", pattern)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn info(fx: &Fixture, path: &str) -> (StatusCode, Value) {
    let resp = fx
        .get("/files/info")
        .query(&[("path", path)])
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

/// `fs/search_files.go`: `filepath.Walk(path)` and `filepath.Match(pattern, info.Name())` on
/// every entry, the root and directories included; paths as `Walk` spells them; a bad pattern
/// or a missing root is an empty 200.
#[tokio::test]
async fn search_walks_like_the_daemon() {
    let fx = Fixture::start().await;
    let home = fx.home();
    let p = |rel: &str| format!("{home}/{rel}");
    sh(
        &fx,
        &format!(
            "mkdir -p {0}/proj/src/pkg.go {0}/proj/.hidden && cd {0}/proj && \
             touch a.go src/b.go src/c.txt .hidden/d.go && ln -s src link",
            home
        ),
    )
    .await;

    let (status, body) = search(&fx, &p("proj"), "*.go").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"files": [
            p("proj/.hidden/d.go"),
            p("proj/a.go"),
            p("proj/src/b.go"),
            p("proj/src/pkg.go"),
        ]})
    );
    // The root's own name is matched too, and a link is matched as itself, not walked into.
    assert_eq!(
        search(&fx, &p("proj"), "proj").await.1["files"],
        json!([p("proj")])
    );
    assert_eq!(
        search(&fx, &p("proj"), "link").await.1["files"],
        json!([p("proj/link")])
    );
    assert_eq!(
        search(&fx, &p("proj/link"), "*.go").await.1["files"],
        json!([])
    );
    // Go syntax: `[^...]` negates; `**`, `/` and braces are not globstar.
    assert_eq!(
        search(&fx, &p("proj"), "[^a.]*.go").await.1["files"],
        json!([
            p("proj/.hidden/d.go"),
            p("proj/src/b.go"),
            p("proj/src/pkg.go")
        ])
    );
    assert_eq!(
        search(&fx, &p("proj"), "src/*.go").await.1["files"],
        json!([])
    );
    assert_eq!(
        search(&fx, &p("proj"), "*.{go,txt}").await.1["files"],
        json!([])
    );
    // Paths as given: relative stays relative, a trailing slash is cleaned below the root.
    assert_eq!(
        search(&fx, "proj/src", "*.txt").await.1["files"],
        json!(["proj/src/c.txt"])
    );
    assert_eq!(
        search(&fx, &p("proj/"), "a.go").await.1["files"],
        json!([p("proj/a.go")])
    );
    // A malformed pattern and a missing root find nothing, with 200.
    let (status, body) = search(&fx, &p("proj"), "[").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"files": []})));
    let (status, body) = search(&fx, &p("nowhere"), "*").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"files": []})));
    // Both parameters are required.
    assert_eq!(search(&fx, &p("proj"), "").await.0, StatusCode::BAD_REQUEST);
    fx.shutdown().await;
}

/// `fs/find_in_files.go`: the same walk; regular files only (links skipped, a file root
/// searched); binaries and empty files skipped; literal `strings.Contains` per line; a line of
/// 64 KiB ends that file's scan.
#[tokio::test]
async fn find_walks_like_the_daemon() {
    let fx = Fixture::start().await;
    let home = fx.home();
    let p = |rel: &str| format!("{home}/{rel}");
    sh(
        &fx,
        &format!(
            "mkdir -p {0}/f/sub && cd {0}/f && printf 'x.*y\\nplain x\\n' > a.txt && \
             printf 'x.*y\\n' > sub/b.txt && ln -s a.txt link.txt && : > empty.txt && \
             {{ printf 'x.*y first\\n'; head -c 70000 /dev/zero | tr '\\0' x; \
             printf '\\nx.*y after\\n'; }} > long.txt",
            home
        ),
    )
    .await;
    assert_eq!(
        find(&fx, &p("f"), "x.*y").await,
        json!([
            {"file": p("f/a.txt"), "line": 1, "content": "x.*y"},
            {"file": p("f/long.txt"), "line": 1, "content": "x.*y first"},
            {"file": p("f/sub/b.txt"), "line": 1, "content": "x.*y"},
        ])
    );
    assert_eq!(
        find(&fx, &p("f/a.txt"), "plain").await,
        json!([{"file": p("f/a.txt"), "line": 2, "content": "plain x"}])
    );
    assert_eq!(
        find(&fx, "f/sub", "x").await,
        json!([{"file": "f/sub/b.txt", "line": 1, "content": "x.*y"}])
    );
    assert_eq!(find(&fx, &p("f/link.txt"), "x").await, json!([]));
    assert_eq!(find(&fx, &p("missing"), "x").await, json!([]));
    fx.shutdown().await;
}

/// `fs/replace_in_files.go` and the daemon's validator: per-file `*PathError` text; `pattern`
/// and `newValue` required (an empty `newValue` is fine); the file keeps its mode.
#[tokio::test]
async fn replace_reports_like_the_daemon() {
    let fx = Fixture::start().await;
    let home = fx.home();
    let p = |rel: &str| format!("{home}/{rel}");
    sh(
        &fx,
        &format!(
            "mkdir -p {0}/r/dir && printf 'aXa' > {0}/r/t && chmod 600 {0}/r/t",
            home
        ),
    )
    .await;
    let replace = |body: Value| {
        let fx = &fx;
        async move {
            let resp = fx.post("/files/replace").json(&body).send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, results) = replace(json!({
        "files": [p("r/t"), p("r/none"), p("r/dir")],
        "pattern": "a",
        "newValue": "",
    }))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        results,
        json!([
            {"file": p("r/t"), "success": true},
            {"file": p("r/none"), "success": false,
             "error": format!("open {}: no such file or directory", p("r/none"))},
            {"file": p("r/dir"), "success": false,
             "error": format!("read {}: is a directory", p("r/dir"))},
        ])
    );
    assert_eq!(fx.exec(&format!("cat {}", p("r/t"))).await["result"], "X");
    assert_eq!(info(&fx, &p("r/t")).await.1["permissions"], "0600");

    let (status, err) = replace(json!({"files": [p("r/t")], "pattern": "", "newValue": "b"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["code"], "INVALID_REQUEST_BODY");
    let (status, _) = replace(json!({"files": [p("r/t")], "pattern": "X"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    fx.shutdown().await;
}

/// `fs/create_folder.go` and `fs/set_file_permissions.go`: modes are `ParseUint(mode, 8, 32)`
/// and only their permission bits reach `chmod`/`mkdir`; the path is checked before the mode;
/// a mode is applied before the owner is looked up; `-1` leaves an id alone.
#[tokio::test]
async fn modes_and_owners_like_the_daemon() {
    let fx = Fixture::start().await;
    let home = fx.home();
    let p = |rel: &str| format!("{home}/{rel}");
    let post = |route: &'static str, query: Vec<(&'static str, String)>| {
        let fx = &fx;
        async move {
            let resp = fx.post(route).query(&query).send().await.unwrap();
            let status = resp.status();
            let body = resp.text().await.unwrap();
            (status, body)
        }
    };
    let (status, _) = post(
        "/files/folder",
        vec![("path", p("m/d")), ("mode", "1700".into())],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let dir = info(&fx, &p("m/d")).await.1;
    assert_eq!(
        (dir["permissions"].clone(), dir["mode"].clone()),
        (json!("0700"), json!("drwx------"))
    );
    for bad in ["+755", "0o755", "8", "rwx"] {
        let (status, body) = post(
            "/files/folder",
            vec![("path", p("m/x")), ("mode", bad.into())],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body.contains("invalid mode format"), "{body}");
    }
    // An existing directory is fine; a file in the way is a 400.
    assert_eq!(
        post("/files/folder", vec![("path", p("m/d"))]).await.0,
        StatusCode::CREATED
    );
    sh(&fx, &format!("touch {}", p("m/f"))).await;
    assert_eq!(
        post("/files/folder", vec![("path", p("m/f/sub"))]).await.0,
        StatusCode::BAD_REQUEST
    );

    // chmod: permission bits only.
    let (status, _) = post(
        "/files/permissions",
        vec![("path", p("m/f")), ("mode", "4755".into())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let f = info(&fx, &p("m/f")).await.1;
    assert_eq!(
        (f["permissions"].clone(), f["mode"].clone()),
        (json!("0755"), json!("-rwxr-xr-x"))
    );
    // A missing path is 404 before a bad mode is noticed.
    let (status, _) = post(
        "/files/permissions",
        vec![("path", p("m/gone")), ("mode", "zz".into())],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The mode lands even though the owner is unknown.
    let (status, body) = post(
        "/files/permissions",
        vec![
            ("path", p("m/f")),
            ("mode", "600".into()),
            ("owner", "no-such-user-here".into()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("user not found"), "{body}");
    assert_eq!(info(&fx, &p("m/f")).await.1["permissions"], "0600");
    let (status, _) = post(
        "/files/permissions",
        vec![
            ("path", p("m/f")),
            ("owner", "-1".into()),
            ("group", "-1".into()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    fx.shutdown().await;
}

/// `fs/delete_file.go`, `fs/move_file.go`, `fs/list_files.go`, `fs/get_file_info.go`: they
/// `os.Stat`, so links are judged by their targets (a dangling link is missing, and left out of
/// listings), while delete removes the link itself.
#[tokio::test]
async fn links_are_judged_by_their_targets() {
    let fx = Fixture::start().await;
    let home = fx.home();
    let p = |rel: &str| format!("{home}/{rel}");
    sh(
        &fx,
        &format!(
            "mkdir -p {0}/l/dir && cd {0}/l && printf 12345 > file && ln -s file flink && \
             ln -s dir dlink && ln -s nothing dangling",
            home
        ),
    )
    .await;
    let list: Vec<Value> = fx
        .get("/files")
        .query(&[("path", p("l"))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dir", "dlink", "file", "flink"]);
    assert_eq!(list[3]["size"], 5);
    assert_eq!(list[3]["mode"], list[2]["mode"]);
    assert!(list[3]["mode"].as_str().unwrap().starts_with('-'));
    assert_eq!(list[1]["isDir"], true);
    // Info names the entry asked for, described by its target.
    let (status, flink) = info(&fx, &p("l/flink")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (flink["name"].clone(), flink["size"].clone()),
        (json!("flink"), json!(5))
    );
    assert_eq!(info(&fx, &p("l/dangling")).await.0, StatusCode::NOT_FOUND);

    let delete = |path: String, recursive: bool| {
        let fx = &fx;
        async move {
            let mut q = vec![("path", path)];
            if recursive {
                q.push(("recursive", "true".into()));
            }
            fx.delete("/files").query(&q).send().await.unwrap().status()
        }
    };
    assert_eq!(delete(p("l/dangling"), false).await, StatusCode::NOT_FOUND);
    assert_eq!(delete(p("l/dlink"), false).await, StatusCode::BAD_REQUEST);
    assert_eq!(delete(p("l/dlink"), true).await, StatusCode::NO_CONTENT);
    assert_eq!(info(&fx, &p("l/dir")).await.0, StatusCode::OK);

    let mv = |from: String, to: String| {
        let fx = &fx;
        async move {
            let resp = fx
                .post("/files/move")
                .query(&[("source", from), ("destination", to)])
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    assert_eq!(mv(p("l/dangling"), p("l/x")).await.0, StatusCode::NOT_FOUND);
    let (status, body) = mv(p("l/file"), p("l/flink")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["message"],
        "destination already exists"
    );
    // A dangling link at the destination does not count as existing: it is replaced.
    assert_eq!(mv(p("l/file"), p("l/dangling")).await.0, StatusCode::OK);
    assert_eq!(info(&fx, &p("l/dangling")).await.1["size"], 5);
    fx.shutdown().await;
}

/// `fs/download_file.go` and `fs/upload_file.go`: a directory is 400 `path must be a file`;
/// the download carries `attachment` with Latin-1 and RFC 5987 names; `/files/upload` wants the
/// multipart field `file` and answers 200 with no body.
/// `fs/download_file.go` hands the file to Go's `http.ServeFile` (`c.File`): byte ranges,
/// `Last-Modified` and the conditional headers come from there.
#[tokio::test]
async fn single_file_download_serves_ranges_and_conditions_as_go_does() {
    let fx = Fixture::start().await;
    let path = format!("{}/r.txt", fx.home());
    sh(
        &fx,
        &format!("printf 0123456789 > {path} && touch -d @1700000000 {path}"),
    )
    .await;
    let get = |headers: &[(&str, &str)]| {
        let mut req = fx.get("/files/download").query(&[("path", path.as_str())]);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    const MODIFIED: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    let whole = get(&[]).await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["last-modified"], MODIFIED);
    assert_eq!(whole.headers()["content-length"], "10");
    assert_eq!(whole.bytes().await.unwrap(), "0123456789");

    for (range, content_range, body) in [
        ("bytes=2-4", "bytes 2-4/10", "234"),
        ("bytes=-3", "bytes 7-9/10", "789"),
        ("bytes=8-", "bytes 8-9/10", "89"),
        ("bytes=5-100", "bytes 5-9/10", "56789"),
    ] {
        let resp = get(&[("range", range)]).await.unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(resp.headers()["content-range"], content_range);
        assert_eq!(resp.headers()["content-type"], "application/octet-stream");
        assert_eq!(resp.bytes().await.unwrap(), body, "{range}");
    }

    // Several ranges: multipart/byteranges, each part with its own Content-Range.
    let resp = get(&[("range", "bytes=0-1,5-6")]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap()
        .to_string();
    assert_eq!(boundary.len(), 60);
    let declared: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = String::from_utf8(resp.bytes().await.unwrap().to_vec()).unwrap();
    assert_eq!(body.len(), declared);
    assert_eq!(
        body,
        format!(
            "--{boundary}\r\nContent-Range: bytes 0-1/10\r\nContent-Type: application/octet-stream\r\n\r\n01\r\n--{boundary}\r\nContent-Range: bytes 5-6/10\r\nContent-Type: application/octet-stream\r\n\r\n56\r\n--{boundary}--\r\n"
        )
    );

    // Ranges adding up to more than the file: the whole file.
    let resp = get(&[("range", "bytes=0-9,0-9")]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), "0123456789");

    // Past the end: 416 with Go's text; malformed: 416 without Content-Range.
    let resp = get(&[("range", "bytes=20-")]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()["content-range"], "bytes */10");
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(resp.headers().get("last-modified").is_none());
    assert_eq!(
        resp.text().await.unwrap(),
        "invalid range: failed to overlap\n"
    );
    let resp = get(&[("range", "bytes=5-3")]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert!(resp.headers().get("content-range").is_none());
    assert_eq!(resp.text().await.unwrap(), "invalid range\n");

    // Conditional requests against the modification time.
    let resp = get(&[("if-modified-since", MODIFIED)]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()["last-modified"], MODIFIED);
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = get(&[("if-modified-since", "Tue, 14 Nov 2023 22:13:19 GMT")])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = get(&[("if-unmodified-since", "Tue, 14 Nov 2023 22:13:19 GMT")])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PRECONDITION_FAILED);
    assert!(resp.bytes().await.unwrap().is_empty(), "Go sends no body");
    let resp = get(&[("if-none-match", "*")]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    // If-Range: the range holds only while the file is unchanged since that date.
    let resp = get(&[("range", "bytes=0-0"), ("if-range", MODIFIED)])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.bytes().await.unwrap(), "0");
    let resp = get(&[
        ("range", "bytes=0-0"),
        ("if-range", "Wed, 15 Nov 2023 00:00:00 GMT"),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), "0123456789");
    fx.shutdown().await;
}

#[tokio::test]
async fn single_file_download_and_upload_like_the_daemon() {
    let fx = Fixture::start().await;
    let home = fx.home();
    let p = |rel: &str| format!("{home}/{rel}");
    sh(
        &fx,
        &format!(
            "mkdir -p {0}/d && printf hi > '{0}/d/a b\u{e9}\u{20ac}.txt'",
            home
        ),
    )
    .await;

    let resp = fx
        .get("/files/download")
        .query(&[("path", p("d/a b\u{e9}\u{20ac}.txt"))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let disposition = resp.headers()["content-disposition"].as_bytes().to_vec();
    assert_eq!(
        disposition,
        b"attachment; filename=\"a b\xe9_.txt\"; filename*=utf-8''a%20b%C3%A9%E2%82%AC.txt"
            .to_vec()
    );
    assert_eq!(resp.headers()["content-description"], "File Transfer");
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(resp.bytes().await.unwrap(), "hi");
    let resp = fx
        .get("/files/download")
        .query(&[("path", p("d"))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        "path must be a file"
    );

    let form = Form::new().part("file", Part::bytes(b"up".to_vec()).file_name("x"));
    let resp = fx
        .post("/files/upload")
        .query(&[("path", p("d/new/u.txt"))])
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().len(), 0);
    assert_eq!(
        fx.exec(&format!("cat {}", p("d/new/u.txt"))).await["result"],
        "up"
    );
    let raw = fx
        .post("/files/upload")
        .query(&[("path", p("d/raw.txt"))])
        .body("raw")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let other = Form::new().text("notfile", "x");
    let resp = fx
        .post("/files/upload")
        .query(&[("path", p("d/raw.txt"))])
        .multipart(other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // The newer upload-v2 still takes a raw body and describes the file.
    let v2: Value = fx
        .post("/files/upload-v2")
        .query(&[("path", p("d/raw.txt"))])
        .body("raw")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2["name"], "raw.txt");
    fx.shutdown().await;
}

//! `/process/execute` and the info routes over real HTTP.

#![allow(clippy::unwrap_used)]

mod toolbox_support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use toolbox_support::{Fixture, wait_process_appears, wait_process_gone};

#[tokio::test]
async fn execute_reports_exit_codes_and_interleaved_output() {
    let fx = Fixture::start().await;

    let ok = fx.exec("echo hello").await;
    assert_eq!(ok, json!({"exitCode": 0, "result": "hello\n"}));

    let failed = fx.exec("echo out; echo err >&2; exit 3").await;
    assert_eq!(failed["exitCode"], 3);
    // One buffer, in the order written.
    assert_eq!(failed["result"], "out\nerr\n");

    let interleaved = fx
        .exec("for i in 1 2 3; do echo o$i; echo e$i >&2; done")
        .await;
    assert_eq!(interleaved["result"], "o1\ne1\no2\ne2\no3\ne3\n");

    let not_found = fx.exec("definitely-not-a-command-xyz").await;
    assert_eq!(not_found["exitCode"], 127);
    assert!(
        not_found["result"]
            .as_str()
            .unwrap()
            .contains("definitely-not-a-command-xyz"),
        "{not_found}"
    );

    let signalled = fx.exec("kill -9 $$").await;
    assert_eq!(signalled["exitCode"], 137);
    fx.shutdown().await;
}

#[tokio::test]
async fn execute_uses_cwd_envs_and_a_clean_environment() {
    let fx = Fixture::start().await;
    let home = fx.home();

    let pwd = fx.exec("pwd").await;
    assert_eq!(pwd["result"], format!("{home}\n"));

    fx.exec("mkdir -p sub/dir").await;
    let resp: Value = fx
        .post("/process/execute")
        .json(&json!({"command": "pwd; echo \"$X|$SANDBOX_VAR|$HOME\"", "cwd": format!("{home}/sub/dir"),
            "envs": {"X": "1 2"}, "timeout": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        resp["result"],
        format!("{home}/sub/dir\n1 2|from-sandbox|{home}\n")
    );

    // Relative cwd resolves against the home dir.
    let rel: Value = fx
        .post("/process/execute")
        .json(&json!({"command": "pwd", "cwd": "sub"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rel["result"], format!("{home}/sub\n"));

    // Nothing of the emulator's own environment reaches the command (cargo runs tests with
    // CARGO_* variables set).
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    let env = fx.exec("env").await;
    let env = env["result"].as_str().unwrap();
    assert!(!env.contains("CARGO"), "host env leaked: {env}");
    assert!(env.contains("LANG=C.UTF-8"));
    assert!(env.contains("SANDBOX_VAR=from-sandbox"));

    // A cwd that does not exist: exit -1 with the reason, as the daemon answers.
    let missing: Value = fx
        .post("/process/execute")
        .json(&json!({"command": "pwd", "cwd": format!("{home}/nope")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(missing["exitCode"], -1);
    assert!(missing["result"].as_str().unwrap().contains("nope"));

    // A cwd outside the sandbox is refused.
    let outside = fx
        .post("/process/execute")
        .json(&json!({"command": "pwd", "cwd": "/etc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 403);
    fx.shutdown().await;
}

#[tokio::test]
async fn execute_timeout_is_408_and_kills_the_whole_tree() {
    let fx = Fixture::start().await;
    let started = Instant::now();
    // A child in the background and one in the foreground, both must die.
    let resp = fx
        .post("/process/execute")
        .json(&json!({"command": "sleep 31001 & sleep 31002", "timeout": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 408);
    assert!(started.elapsed() < Duration::from_secs(10));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["statusCode"], 408);
    assert_eq!(body["code"], "PROCESS_EXECUTION_TIMEOUT");
    assert_eq!(body["source"], "DAYTONA_DAEMON");
    assert!(wait_process_gone("sleep 31001").await);
    assert!(wait_process_gone("sleep 31002").await);
    assert_eq!(fx.settle_processes().await, 0);

    // 0 means no limit.
    let resp: Value = fx
        .post("/process/execute")
        .json(&json!({"command": "sleep 1.2; echo done", "timeout": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["result"], "done\n");
    fx.shutdown().await;
}

#[tokio::test]
async fn execute_rejects_empty_and_malformed_requests() {
    let fx = Fixture::start().await;
    // process/execute.go: the validator, then the blank check, then env names
    // (common/env.go), all before anything runs.
    let message = |body: Value| {
        let fx = &fx;
        async move {
            let resp = fx
                .post("/process/execute")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "{body}");
            resp.json::<Value>().await.unwrap()["message"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert!(
        message(json!({"command": ""}))
            .await
            .ends_with("'Command' failed on the 'required' tag")
    );
    assert_eq!(
        message(json!({"command": " \n"})).await,
        "command cannot be empty or whitespace-only"
    );
    for key in ["1X", "A-B", "", "A B"] {
        assert_eq!(
            message(json!({"command": "touch ran", "envs": {key: "v"}})).await,
            format!("invalid environment variable name: '{key}'")
        );
    }
    let ok = fx.exec("test -e ran; echo $?").await;
    assert_eq!(ok["result"], "1\n", "a refused command never ran");
    let resp = fx
        .post("/process/execute")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "INVALID_REQUEST_BODY");
    fx.shutdown().await;
}

#[tokio::test]
async fn background_processes_left_by_execute_die_with_the_sandbox() {
    let fx = Fixture::start().await;
    let resp = fx
        .exec("nohup sleep 31003 > /dev/null 2>&1 & echo started")
        .await;
    assert_eq!(resp["result"], "started\n");
    assert!(wait_process_appears("sleep 31003").await);
    assert!(fx.snapshot().live_processes >= 1);
    fx.emu
        .delete_sandbox(&fx.sandbox_id)
        .await
        .expect("delete sandbox");
    assert!(wait_process_gone("sleep 31003").await);
    fx.shutdown().await;
}

#[tokio::test]
async fn large_commands_and_output_round_trip() {
    let fx = Fixture::start().await;
    // Larger than one argv string may be (128 KiB).
    let payload = "x".repeat(300 * 1024);
    let resp = fx.exec(&format!("printf %s '{payload}' | wc -c")).await;
    assert_eq!(resp["result"].as_str().unwrap().trim(), "307200");
    let big = fx.exec("head -c 3000000 /dev/zero | tr '\\0' a").await;
    assert_eq!(big["result"].as_str().unwrap().len(), 3_000_000);
    fx.shutdown().await;
}

#[tokio::test]
async fn info_routes_report_home_and_version() {
    let fx = Fixture::start().await;
    let home = fx.home();
    // `/project-dir` is the daemon's older name for the home dir (toolbox/server.go).
    for path in ["/work-dir", "/user-home-dir", "/project-dir"] {
        let v: Value = fx.get(path).send().await.unwrap().json().await.unwrap();
        assert_eq!(v, json!({"dir": home}), "{path}");
    }
    let v: Value = fx
        .get("/version")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["version"].as_str().is_some_and(|s| !s.is_empty()));

    // An unknown sandbox is a 404 before anything runs.
    let resp = fx
        .http
        .post(format!(
            "{}/nope/process/execute",
            fx.emu.toolbox_proxy_url()
        ))
        .bearer_auth(toolbox_support::API_KEY)
        .json(&json!({"command": "touch /tmp/should-not-exist"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    fx.shutdown().await;
}

/// `toolbox/port/detector.go`: `/port` lists listening ports; `/port/{port}/in-use` takes
/// 3000..=9999 and dials `localhost`. Commands share the machine's network, so a listener of
/// this test is one a sandbox server would be.
#[tokio::test]
async fn ports_are_listed_and_checked_like_the_daemon() {
    let fx = Fixture::start().await;
    let listener = (3000..=9999)
        .rev()
        .find_map(|port| std::net::TcpListener::bind(("127.0.0.1", port)).ok())
        .expect("a free port in 3000..=9999");
    let port = listener.local_addr().unwrap().port();
    let listed: Value = fx.get("/port").send().await.unwrap().json().await.unwrap();
    assert!(
        listed["ports"].as_array().unwrap().contains(&json!(port)),
        "{listed}"
    );
    let in_use = |port: String| {
        let fx = &fx;
        async move {
            let resp = fx
                .get(&format!("/port/{port}/in-use"))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(
        in_use(port.to_string()).await,
        (200, json!({"isInUse": true}))
    );
    drop(listener);
    assert_eq!(
        in_use(port.to_string()).await,
        (200, json!({"isInUse": false}))
    );
    let (status, body) = in_use("http".into()).await;
    assert_eq!(
        (status, body["message"].clone()),
        (
            400,
            json!("invalid port: must be a number between 3000 and 9999")
        )
    );
    for out_of_range in ["80", "10000", "-1"] {
        let (status, body) = in_use(out_of_range.into()).await;
        assert_eq!(
            (status, body["message"].clone()),
            (
                400,
                json!("port out of range: must be between 3000 and 9999")
            ),
            "{out_of_range}"
        );
    }
    // The file list answers with a trailing slash too, as the daemon's router does.
    let resp = fx.get("/files/").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    fx.shutdown().await;
}

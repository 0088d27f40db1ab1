//! `POST /process/code-run` with the host's real interpreters: python3 and node, argv/envs as
//! the v0.190.0 daemon passes them (`toolbox/process/coderun/`), exit codes, timeouts, and the
//! errors for unknown or missing languages.

#![allow(clippy::unwrap_used)]

mod toolbox_support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use toolbox_support::{API_KEY, Fixture};

async fn code_run(fx: &Fixture, body: Value) -> (u16, Value) {
    let resp = fx
        .post("/process/code-run")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_run_with_argv_env_and_exit_codes() {
    let fx = Fixture::start().await;
    let (status, body) = code_run(&fx, json!({"code": "print(1+1)", "language": "python"})).await;
    assert_eq!(status, 200, "{body}");
    // No charts: no `artifacts` at all, as the daemon's omitempty leaves it.
    assert_eq!(body, json!({"exitCode": 0, "result": "2\n"}));

    // The program comes on stdin (`python3 -u -`), and argv is split by the shell.
    let (status, body) = code_run(
        &fx,
        json!({
            "code": "import os, sys\nprint(sys.argv, os.environ['X'], os.environ['SANDBOX_VAR'])\nsys.exit(4)",
            "language": "python",
            "argv": ["a", "b c", "$X"],
            "envs": {"X": "from-envs"},
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["exitCode"], 4);
    assert_eq!(
        body["result"],
        "['-', 'a', 'b', 'c', 'from-envs'] from-envs from-sandbox\n"
    );
    // Unbuffered: output keeps its order around a traceback.
    let (_, body) = code_run(
        &fx,
        json!({"code": "print('before')\n1/0", "language": "python"}),
    )
    .await;
    assert_eq!(body["exitCode"], 1);
    let result = body["result"].as_str().unwrap();
    assert!(result.starts_with("before\n"), "{result}");
    assert!(
        result.contains("ZeroDivisionError"),
        "stderr is merged: {result}"
    );

    let (status, body) = code_run(
        &fx,
        json!({
            "code": "console.log(process.argv.slice(1).join(','), process.env.X); process.exit(2)",
            "language": "javascript",
            "argv": ["x", "y"],
            "envs": {"X": "js-env"},
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["exitCode"], 2);
    assert_eq!(body["result"], "x,y js-env\n");

    // Program files do not pile up in the daemon's state dir.
    let code_dir = fx.target().layout.state_host().join("code");
    assert_eq!(std::fs::read_dir(code_dir).unwrap().count(), 0);
    fx.shutdown().await;
}

/// `coderun/types.go`, `coderun/toolbox.go`: `language` is required (the SDKs send the
/// sandbox's label) and matched exactly; the label is not consulted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_is_required_and_exact() {
    let fx = Fixture::start().await;
    let created: Value = fx
        .http
        .post(format!("{}/sandbox", fx.emu.api_url()))
        .bearer_auth(API_KEY)
        .json(&json!({"labels": {"code-toolbox-language": "javascript"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let run = |body: Value| {
        let fx = &fx;
        async move {
            let resp = fx
                .http
                .post(format!(
                    "{}/{id}/process/code-run",
                    fx.emu.toolbox_proxy_url()
                ))
                .bearer_auth(API_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = run(json!({"code": "console.log(typeof require)"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "INVALID_REQUEST_BODY");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("'Language' failed on the 'required' tag")
    );
    let (status, body) = run(json!({"code": "print(1)", "language": "Python"})).await;
    assert_eq!(
        (status, body["message"].clone()),
        (400, json!("unsupported language: Python"))
    );
    let (status, body) =
        run(json!({"code": "console.log(typeof require)", "language": "javascript"})).await;
    assert_eq!((status, body["result"].clone()), (200, json!("function\n")));
    fx.shutdown().await;
}

/// Whether this machine has a TypeScript runner the emulator would use.
fn typescript_runner_available() -> bool {
    use daytona_emulator::layout::find_program;
    if find_program("tsx").is_some() || find_program("ts-node").is_some() {
        return true;
    }
    let Some(node) = find_program("node") else {
        return false;
    };
    let out = std::process::Command::new(node)
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&out.stdout);
    let mut parts = version.trim().trim_start_matches('v').split('.');
    let major: u32 = parts.next().unwrap().parse().unwrap();
    let minor: u32 = parts.next().unwrap().parse().unwrap();
    (major, minor) >= (22, 6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_runs_or_says_clearly_that_it_cannot() {
    let fx = Fixture::start().await;
    let (status, body) = code_run(
        &fx,
        json!({"code": "const n: number = 40 + 2; console.log(n)", "language": "typescript"}),
    )
    .await;
    if typescript_runner_available() {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"], "42\n");
    } else {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "BAD_REQUEST");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("TypeScript runner"), "{message}");
        assert!(
            message.contains("not available on this machine"),
            "{message}"
        );
    }
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_timeouts_are_typed_errors() {
    let fx = Fixture::start().await;
    let (status, body) = code_run(&fx, json!({"code": "x", "language": "cobol"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["source"], "DAYTONA_DAEMON");
    assert_eq!(body["message"], "unsupported language: cobol");
    let (status, body) = code_run(
        &fx,
        json!({"code": "x", "language": "python", "envs": {"1BAD": "v"}}),
    )
    .await;
    assert_eq!(
        (status, body["message"].clone()),
        (400, json!("invalid environment variable name: '1BAD'"))
    );

    let (status, body) = code_run(&fx, json!({"language": "python"})).await;
    assert_eq!(status, 400, "code is required: {body}");
    assert_eq!(body["code"], "INVALID_REQUEST_BODY");

    let t0 = Instant::now();
    let (status, body) = code_run(
        &fx,
        json!({"code": "import time\ntime.sleep(30)", "language": "python", "timeout": 1}),
    )
    .await;
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["code"], "PROCESS_EXECUTION_TIMEOUT");
    assert_eq!(body["message"], "command execution timeout");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(fx.settle_processes().await, 0);
    fx.shutdown().await;
}

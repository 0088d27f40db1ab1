//! Code run against the emulator: the language comes from the sandbox's label.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use workspace_daytona::{CodeLanguage, CodeRunOptions, CreateSandboxParams, DaytonaError};

#[tokio::test]
async fn python_with_argv_env_and_exit_code() {
    let (emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    let out = p
        .code_run(
            "import os, sys\nprint(sum(range(10)))\nprint(sys.argv[1:])\nprint(os.environ['CR_VAR'])\nsys.exit(4)\n",
            &CodeRunOptions::new()
                .arg("alpha")
                .arg("beta")
                .env("CR_VAR", "from-env")
                .timeout(Duration::from_secs(20)),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 4, "{}", out.result);
    assert!(out.result.contains("45"), "{}", out.result);
    assert!(out.result.contains("['alpha', 'beta']"), "{}", out.result);
    assert!(out.result.contains("from-env"), "{}", out.result);
    assert!(out.artifacts.charts.is_empty());

    // The language went on the wire, read from the sandbox's label as the SDKs do.
    let req = hits(&emu, "POST", "/process/code-run").pop().unwrap();
    let body = req.body.unwrap();
    assert_eq!(body["language"], "python");
    assert_eq!(body["timeout"], 20);
    assert_eq!(body["argv"], serde_json::json!(["alpha", "beta"]));

    // stderr is merged into the result.
    let out = p
        .code_run(
            "import sys\nsys.stderr.write('oops\\n')",
            &CodeRunOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
    assert!(out.result.contains("oops"), "{}", out.result);
}

#[tokio::test]
async fn an_unknown_language_label_is_a_typed_error() {
    let (_emu, _client, mut sandbox) = setup().await;
    let mut labels: BTreeMap<String, String> = sandbox.labels().clone();
    labels.insert("code-toolbox-language".into(), "cobol".into());
    sandbox.set_labels(labels).await.unwrap();
    let err = sandbox
        .process()
        .code_run("print(1)", &CodeRunOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, DaytonaError::BadRequest(_)), "{err:?}");
    assert!(err.to_string().contains("cobol"), "{err}");

    // An explicit language overrides the label.
    let out = sandbox
        .process()
        .code_run(
            "print('py ok')",
            &CodeRunOptions::new().language(CodeLanguage::Python),
        )
        .await
        .unwrap();
    assert_eq!(out.result.trim(), "py ok");
}

#[tokio::test]
async fn timeouts_and_bad_options() {
    let (_emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    let err = p
        .code_run(
            "import time\ntime.sleep(30)",
            &CodeRunOptions::new().timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    let err = p
        .code_run("print(1)", &CodeRunOptions::new().timeout(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaytonaError::InvalidArgument { ref field, .. } if field == "timeout"),
        "{err:?}"
    );
    let err = p
        .code_run("print(1)", &CodeRunOptions::new().env("A=B", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaytonaError::InvalidArgument { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn javascript_sandbox_runs_javascript_when_node_is_present() {
    let emu = emulator().await;
    let client = client(&emu);
    let sandbox = client
        .create(
            CreateSandboxParams::new().language(CodeLanguage::JavaScript),
            T,
        )
        .await
        .unwrap();
    let result = sandbox
        .process()
        .code_run("console.log(6 * 7)", &CodeRunOptions::new())
        .await;
    match result {
        Ok(out) => {
            assert_eq!(out.exit_code, 0, "{}", out.result);
            assert_eq!(out.result.trim(), "42");
        }
        // The emulator runs the host's interpreters; without node it says so.
        Err(DaytonaError::BadRequest(d)) => assert!(d.message.contains("javascript"), "{d}"),
        Err(e) => panic!("{e:?}"),
    }
    let req = hits(&emu, "POST", "/process/code-run").pop().unwrap();
    assert_eq!(req.body.unwrap()["language"], "javascript");
}

//! DaytonaSandbox lifecycle against the emulator: creation modes as sent on the wire,
//! reconnection, the 409 race, failed and stopped sandboxes, stop/destroy errors, info and
//! instructions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_support;

use std::time::Duration;

use daytona_emulator::{Emulator, FaultRule};
use provider_support::{API_KEY, builder_for, create_bodies, emulator, requests};
use workspace_core::{
    ExecuteCommandOptions, SandboxError, SandboxStatus, StartOutcome, TimeoutPhase,
    WorkspaceSandbox, WorkspaceSandboxExt,
};
use workspace_daytona::provider::{ID_LABEL, PROVIDER};

#[tokio::test]
async fn creation_modes_as_sent() {
    let emu = emulator().await;
    let url = emu.api_url();
    let snapshot = daytona_emulator::lifecycle::DEFAULT_SNAPSHOT;

    // Snapshot wins over image; resources go nowhere.
    let a = builder_for(&url)
        .snapshot(snapshot)
        .image("node:20-slim")
        .resources(2, 4, 6)
        .build()
        .unwrap();
    assert_eq!(a.start().await.unwrap(), StartOutcome::Created);
    // Image with resources: a one-line Dockerfile and the resources.
    let b = builder_for(&url)
        .image("node:20-slim")
        .resources(2, 4, 6)
        .build()
        .unwrap();
    assert_eq!(b.start().await.unwrap(), StartOutcome::Created);
    // Neither: no snapshot field (the server's default), resources dropped.
    let c = builder_for(&url)
        .resources(2, 4, 6)
        .env("SANDBOX_LEVEL", "yes")
        .label("team", "core")
        .build()
        .unwrap();
    assert_eq!(c.start().await.unwrap(), StartOutcome::Created);

    let bodies = create_bodies(&emu);
    assert_eq!(bodies.len(), 3, "{bodies:#?}");
    let [a_body, b_body, c_body] = [&bodies[0], &bodies[1], &bodies[2]];
    assert_eq!(a_body["snapshot"], snapshot);
    for key in ["buildInfo", "cpu", "memory", "disk"] {
        assert!(
            a_body.get(key).is_none(),
            "snapshot mode sent {key}: {a_body}"
        );
    }
    assert_eq!(
        b_body["buildInfo"]["dockerfileContent"],
        "FROM node:20-slim\n"
    );
    assert_eq!(
        (
            b_body["cpu"].as_i64(),
            b_body["memory"].as_i64(),
            b_body["disk"].as_i64()
        ),
        (Some(2), Some(4), Some(6))
    );
    assert!(b_body.get("snapshot").is_none(), "{b_body}");
    for key in ["snapshot", "buildInfo", "cpu", "memory", "disk"] {
        assert!(
            c_body.get(key).is_none(),
            "default mode sent {key}: {c_body}"
        );
    }
    // Common fields: the name is the id, the language label, auto-stop, env at creation.
    assert_eq!(c_body["name"], c.id());
    assert_eq!(c_body["labels"]["code-toolbox-language"], "typescript");
    assert_eq!(c_body["labels"][ID_LABEL], c.id());
    assert_eq!(c_body["labels"]["team"], "core");
    assert_eq!(c_body["autoStopInterval"], 15);
    assert_eq!(c_body["env"]["SANDBOX_LEVEL"], "yes");
    let r = c.run(r#"printf %s "$SANDBOX_LEVEL""#).await.unwrap();
    assert_eq!(r.stdout, "yes", "the sandbox env reaches commands");

    // The image build reports its resources in MiB.
    let info = b.get_info().await.unwrap();
    let res = info.resources.clone().unwrap();
    assert_eq!(
        (res.cpu_cores, res.memory_mb, res.disk_mb),
        (Some(2.0), Some(4096), Some(6144))
    );
    assert_eq!(info.metadata["image"], "node:20-slim");
    assert_eq!(info.metadata["language"], "typescript");
    assert_eq!(
        info.metadata["daytona_id"],
        b.daytona_id().unwrap().as_str()
    );
    assert_eq!(info.provider, PROVIDER);
    assert!(info.timeout_at.is_some_and(|t| t > chrono::Utc::now()));
    let info = a.get_info().await.unwrap();
    assert_eq!(info.metadata["snapshot"], snapshot);
    assert!(!info.metadata.contains_key("image"));

    for s in [&a, &b, &c] {
        s.destroy().await.unwrap();
    }
    assert!(emu.sandboxes().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn reconnects_by_id_and_by_name() {
    let emu = emulator().await;
    let url = emu.api_url();
    let first = builder_for(&url).name("shared-by-name").build().unwrap();
    assert_eq!(first.start().await.unwrap(), StartOutcome::Created);
    first.run("echo kept > marker.txt").await.unwrap();
    let daytona_id = first.daytona_id().unwrap();

    // By Daytona id.
    let by_id = builder_for(&url).id(daytona_id.clone()).build().unwrap();
    assert_eq!(by_id.start().await.unwrap(), StartOutcome::Connected);
    assert_eq!(by_id.daytona_id().as_deref(), Some(daytona_id.as_str()));
    let r = by_id.run("cat marker.txt").await.unwrap();
    assert_eq!(r.stdout, "kept\n");

    // By name, lazily from a command; after the sandbox was stopped underneath.
    emu.stop_sandbox(&daytona_id).await.unwrap();
    let by_name = builder_for(&url).name("shared-by-name").build().unwrap();
    let r = by_name.run("cat marker.txt").await.unwrap();
    assert_eq!(
        r.stdout, "kept\n",
        "a stopped sandbox is started, files intact"
    );
    assert_eq!(by_name.daytona_id().as_deref(), Some(daytona_id.as_str()));
    assert_eq!(emu.sandboxes().len(), 1, "nothing new was created");
    assert_eq!(create_bodies(&emu).len(), 1);

    by_name.destroy().await.unwrap();
    // The others' sandbox is gone: their next command makes a new one (under the same name).
    let r = first.run("test -e marker.txt").await.unwrap();
    assert_eq!(r.exit_code, 1, "a new sandbox has no marker");
    assert_ne!(first.daytona_id().unwrap(), daytona_id);
    first.destroy().await.unwrap();
    by_id.destroy().await.unwrap();
    assert!(emu.sandboxes().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn racing_creates_of_one_name_share_one_sandbox() {
    let emu = emulator().await;
    let url = emu.api_url();
    // Slow lookups so that both handles find nothing and both create.
    emu.add_fault(FaultRule::delay("/api/sandbox/*", Duration::from_millis(400)).method("GET"))
        .unwrap();
    let a = builder_for(&url).name("raced").build().unwrap();
    let b = builder_for(&url).name("raced").build().unwrap();
    let (ra, rb) = tokio::join!(a.start(), b.start());
    let mut outcomes = [ra.unwrap(), rb.unwrap()];
    outcomes.sort_by_key(|o| *o == StartOutcome::Connected);
    assert_eq!(outcomes, [StartOutcome::Created, StartOutcome::Connected]);
    let creates = requests(&emu, "POST", |p| p == "/api/sandbox");
    let statuses: Vec<_> = creates.iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&Some(409)),
        "one create must have lost: {statuses:?}"
    );
    assert_eq!(emu.sandboxes().len(), 1);
    assert_eq!(a.daytona_id(), b.daytona_id());
    emu.clear_faults();
    let (x, y) = tokio::join!(a.run("echo a"), b.run("echo b"));
    assert_eq!(
        (x.unwrap().stdout, y.unwrap().stdout),
        ("a\n".into(), "b\n".into())
    );
    a.destroy().await.unwrap();
    b.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn failed_sandboxes_are_recovered_or_replaced() {
    let emu = emulator().await;
    let url = emu.api_url();
    let sb = builder_for(&url).build().unwrap();
    sb.start().await.unwrap();
    let first = sb.daytona_id().unwrap();

    // Recoverable: recovered in place.
    emu.fail_sandbox(&first, "disk hiccup", true).await.unwrap();
    let other = builder_for(&url).id(first.clone()).build().unwrap();
    assert_eq!(other.start().await.unwrap(), StartOutcome::Connected);
    assert_eq!(other.daytona_id().as_deref(), Some(first.as_str()));

    // Not recoverable: deleted and replaced.
    emu.fail_sandbox(&first, "host lost", false).await.unwrap();
    let replacing = builder_for(&url).name(sb.name()).build().unwrap();
    assert_eq!(replacing.start().await.unwrap(), StartOutcome::Created);
    let second = replacing.daytona_id().unwrap();
    assert_ne!(second, first);
    let live: Vec<String> = emu.sandboxes().into_iter().map(|s| s.id).collect();
    assert_eq!(
        live,
        std::slice::from_ref(&second),
        "the failed sandbox was deleted"
    );
    assert!(replacing.run("true").await.unwrap().success);
    replacing.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn transitional_states_are_waited_out_within_the_creation_timeout() {
    let emu = Emulator::builder()
        .api_key(API_KEY)
        .transition_delay(Duration::from_millis(700))
        .start()
        .await
        .unwrap();
    let url = emu.api_url();
    let sb = builder_for(&url).build().unwrap();
    assert_eq!(sb.start().await.unwrap(), StartOutcome::Created);
    assert!(sb.run("true").await.unwrap().success);
    sb.stop().await.unwrap();
    assert_eq!(sb.status(), SandboxStatus::Stopped);
    // Starting takes 700 ms; a second handle connecting meanwhile waits for it.
    let again = builder_for(&url)
        .id(sb.daytona_id().unwrap())
        .build()
        .unwrap();
    let (r1, r2) = tokio::join!(sb.start(), again.start());
    assert_eq!(r1.unwrap(), StartOutcome::Connected);
    assert_eq!(r2.unwrap(), StartOutcome::Connected);

    // A creation timeout shorter than the transition fails the start with a Start timeout,
    // leaves the half-made sandbox, and destroy removes it.
    let hasty = builder_for(&url)
        .creation_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = hasty.start().await.unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::Timeout {
                phase: TimeoutPhase::Start,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(hasty.status(), SandboxStatus::Error);
    assert!(
        emu.sandbox(hasty.name()).is_some(),
        "the create went through"
    );
    hasty.destroy().await.unwrap();
    assert!(
        provider_support::eventually(Duration::from_secs(10), || emu
            .sandbox(hasty.name())
            .is_none())
        .await,
        "destroy removes what the failed start left"
    );
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn stop_and_destroy_report_errors_and_destroy_is_final() {
    let emu = emulator().await;
    let url = emu.api_url();
    let sb = builder_for(&url).build().unwrap();
    sb.start().await.unwrap();

    let fault = emu
        .add_fault(FaultRule::status("/api/sandbox/*/stop", 500).method("POST"))
        .unwrap();
    let err = sb.stop().await.unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::Provider {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(sb.status(), SandboxStatus::Error);
    emu.remove_fault(fault);

    let fault = emu
        .add_fault(FaultRule::status("/api/sandbox/*", 500).method("DELETE"))
        .unwrap();
    let err = sb.destroy().await.unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::Provider {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(emu.sandboxes().len(), 1, "nothing was deleted");
    emu.remove_fault(fault);

    sb.destroy().await.unwrap();
    sb.destroy().await.unwrap();
    assert_eq!(sb.status(), SandboxStatus::Destroyed);
    assert!(emu.sandboxes().is_empty());
    for r in [
        sb.run("true").await.map(|_| ()),
        sb.start().await.map(|_| ()),
        sb.stop().await,
        sb.get_info().await.map(|_| ()),
        sb.filesystem().unwrap().read_file("x").await.map(|_| ()),
        sb.processes().unwrap().list().await.map(|_| ()),
    ] {
        assert!(matches!(r, Err(SandboxError::NotReady { .. })), "{r:?}");
    }
    assert!(sb.daytona().is_err());
    emu.shutdown().await;
}

#[tokio::test]
async fn stopping_a_sandbox_stopped_underneath_is_fine() {
    let emu = emulator().await;
    let sb = builder_for(&emu.api_url()).build().unwrap();
    sb.start().await.unwrap();
    emu.stop_sandbox(&sb.daytona_id().unwrap()).await.unwrap();
    sb.stop().await.unwrap();
    assert_eq!(sb.status(), SandboxStatus::Stopped);
    let info = sb.get_info().await.unwrap();
    assert_eq!(info.status, SandboxStatus::Stopped);
    assert_eq!(
        info.timeout_at, None,
        "a stopped sandbox has no idle deadline"
    );
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn instructions_info_and_debug_need_no_network() {
    let sb = builder_for("http://127.0.0.1:9/api")
        .env("SECRET_TOKEN", "hunter2-value")
        .build()
        .unwrap();
    let before = sb.get_instructions();
    assert_eq!(
        before,
        "Cloud sandbox with isolated execution (typescript runtime). Default working \
         directory: /home/daytona. Command timeout: 300s. Running as user: daytona."
    );
    assert_eq!(sb.get_instructions(), before);
    let info = sb.get_info().await.unwrap();
    assert_eq!(info.status, SandboxStatus::Pending);
    assert_eq!((info.id.as_str(), info.name.as_str()), (sb.id(), sb.name()));
    assert!(sb.id().starts_with("daytona-sandbox-"));
    let shown = format!("{sb:?}");
    assert!(
        !shown.contains(API_KEY) && !shown.contains("hunter2-value"),
        "{shown}"
    );
    assert!(shown.contains("SECRET_TOKEN"));
    // Nothing listens on port 9: the first command fails with a transport error, not a panic.
    let err = sb
        .execute_command("true", &[], ExecuteCommandOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Transport { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains(API_KEY));
}

#[tokio::test]
async fn missing_credentials_are_a_typed_error() {
    let err = workspace_daytona::DaytonaSandbox::builder()
        .client(
            workspace_daytona::DaytonaClient::new(workspace_daytona::DaytonaConfig::with_api_key(
                API_KEY,
            ))
            .unwrap(),
        )
        .api_url("http://127.0.0.1:9/api")
        .build()
        .unwrap_err();
    assert!(matches!(err, SandboxError::InvalidArgument { ref field, .. } if field == "client"));
    let err = workspace_daytona::DaytonaSandbox::builder()
        .api_key(" ")
        .api_url("http://127.0.0.1:9/api")
        .build()
        .unwrap_err();
    assert!(matches!(err, SandboxError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn a_made_up_name_is_not_looked_up_before_the_first_create() {
    let emu = emulator().await;
    let url = emu.api_url();
    let sb = builder_for(&url).build().unwrap();
    assert_eq!(sb.start().await.unwrap(), StartOutcome::Created);
    let by_name = |name: &str| {
        let suffix = format!("/sandbox/{name}");
        requests(&emu, "GET", |p| p.ends_with(&suffix)).len()
    };
    assert_eq!(
        by_name(sb.name()),
        0,
        "nothing can have a fresh random name"
    );
    // A name the caller chose is looked up first: that is how a handle reconnects.
    let named = builder_for(&url)
        .name(format!("{}-named", sb.name()))
        .build()
        .unwrap();
    assert_eq!(named.start().await.unwrap(), StartOutcome::Created);
    assert_eq!(by_name(named.name()), 1);
    sb.destroy().await.unwrap();
    named.destroy().await.unwrap();
    emu.shutdown().await;
}

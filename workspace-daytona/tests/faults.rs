//! Error mapping and retries, driven by the emulator's fault injection; retry counts come from
//! the emulator's request log.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use daytona_emulator::{FaultAction, FaultRule, WsDrop};
use workspace_daytona::api::toolbox::SessionExecuteRequest;
use workspace_daytona::{
    CreateSandboxParams, DaytonaClient, DaytonaConfig, DaytonaError, ExecuteOptions, FollowEnd,
    RetryConfig,
};

fn status_with_retry_after(path: &str, status: u16, secs: u64) -> FaultRule {
    FaultRule::new(
        path,
        FaultAction::Status {
            status,
            message: None,
            retry_after: Some(secs),
        },
    )
}

#[tokio::test]
async fn not_found_sandbox_and_file() {
    let (_emu, client, sandbox) = setup().await;
    match client.get("no-such-sandbox").await.unwrap_err() {
        DaytonaError::NotFound(d) => {
            assert_eq!(d.status, 404);
            assert!(d.message.contains("no-such-sandbox"), "{}", d.message);
        }
        other => panic!("{other:?}"),
    }
    match sandbox
        .fs()
        .get_file_info("no/such/file")
        .await
        .unwrap_err()
    {
        DaytonaError::FileNotFound(d) => {
            assert_eq!(d.code.as_deref(), Some("FILE_NOT_FOUND"));
            assert_eq!(d.status, 404);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wrong_key_is_unauthorized_and_not_retried() {
    let emu = emulator().await;
    let client = DaytonaClient::new(
        DaytonaConfig::with_api_key("wrong-key")
            .api_url(&emu.api_url())
            .unwrap()
            .retry(fast_retry()),
    )
    .unwrap();
    let err = client
        .create(CreateSandboxParams::new(), T)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaytonaError::Unauthorized(ref d) if d.status == 401),
        "{err:?}"
    );
    assert!(!err.to_string().contains("wrong-key"));
    assert_eq!(hits(&emu, "POST", "/api/sandbox").len(), 1);
    let core: workspace_core::SandboxError = err.into();
    assert!(matches!(
        core,
        workspace_core::SandboxError::Unauthorized { .. }
    ));
}

#[tokio::test]
async fn server_side_validation_is_a_bad_request() {
    let emu = emulator().await;
    let client = client(&emu);
    // Resources are refused with a snapshot (server rule, not checked client-side).
    let err = client
        .create(
            CreateSandboxParams::new()
                .snapshot("snap")
                .resources(workspace_daytona::Resources {
                    cpu: Some(4),
                    ..Default::default()
                }),
            T,
        )
        .await
        .unwrap_err();
    match &err {
        DaytonaError::BadRequest(d) => {
            assert_eq!(d.status, 400);
            assert!(d.message.contains("resources"), "{}", d.message);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hits(&emu, "POST", "/api/sandbox").len(), 1);
}

#[tokio::test]
async fn duplicate_name_is_a_conflict() {
    let emu = emulator().await;
    let client = client(&emu);
    client
        .create(CreateSandboxParams::new().name("taken"), T)
        .await
        .unwrap();
    let err = client
        .create(CreateSandboxParams::new().name("taken"), T)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaytonaError::Conflict(ref d) if d.status == 409),
        "{err:?}"
    );
    // A first-attempt 409 is never "adopted".
    assert_eq!(hits(&emu, "POST", "/api/sandbox").len(), 2);
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured_then_succeeds() {
    let emu = emulator().await;
    let client = client(&emu);
    let created = client
        .create(CreateSandboxParams::new().name("rl"), T)
        .await
        .unwrap();
    emu.add_fault(
        status_with_retry_after("/api/sandbox/*", 429, 1)
            .method("GET")
            .times(1),
    )
    .unwrap();
    emu.clear_requests();
    let started = Instant::now();
    let got = client.get("rl").await.unwrap();
    assert_eq!(got.id(), created.id());
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    let gets = hits(&emu, "GET", "/api/sandbox/rl");
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[0].status, Some(429));
    assert_eq!(gets[1].status, Some(200));
}

#[tokio::test]
async fn retry_after_beyond_the_cap_surfaces_as_rate_limited() {
    let emu = emulator().await;
    let client = client(&emu);
    emu.add_fault(status_with_retry_after("/api/sandbox/*", 429, 120).method("GET"))
        .unwrap();
    let err = client.get("whatever").await.unwrap_err();
    match &err {
        DaytonaError::RateLimited {
            retry_after,
            details,
        } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(120)));
            assert_eq!(details.status, 429);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hits(&emu, "GET", "/api/sandbox/whatever").len(), 1);
    let core: workspace_core::SandboxError = err.into();
    assert!(matches!(
        core,
        workspace_core::SandboxError::RateLimited {
            retry_after: Some(_)
        }
    ));
}

#[tokio::test]
async fn service_unavailable_is_retried_up_to_the_limit() {
    let (emu, client, sandbox) = setup().await;
    // Two failures, then the real answer.
    emu.add_fault(
        FaultRule::status("/api/sandbox/*", 503)
            .method("GET")
            .times(2),
    )
    .unwrap();
    emu.clear_requests();
    client.get(sandbox.id()).await.unwrap();
    assert_eq!(hits(&emu, "GET", sandbox.id()).len(), 3);

    // Permanently failing: 1 + max_retries attempts, then the typed error.
    emu.add_fault(FaultRule::status("/api/sandbox/*", 503).method("GET"))
        .unwrap();
    emu.clear_requests();
    let err = client.get(sandbox.id()).await.unwrap_err();
    assert!(
        matches!(err, DaytonaError::ServiceUnavailable(ref d) if d.status == 503),
        "{err:?}"
    );
    assert_eq!(hits(&emu, "GET", sandbox.id()).len(), 4);
    assert!(err.is_transient());
}

#[tokio::test]
async fn gateway_errors_on_exec_are_not_replayed() {
    let (emu, _client, sandbox) = setup().await;
    emu.add_fault(FaultRule::status("/toolbox/*/process/execute", 502).times(1))
        .unwrap();
    let err = sandbox
        .process()
        .execute("echo once >> /tmp/count", &ExecuteOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, DaytonaError::BadGateway(_)), "{err:?}");
    assert_eq!(hits(&emu, "POST", "/process/execute").len(), 1);
}

#[tokio::test]
async fn connection_reset_on_get_is_retried() {
    let (emu, client, sandbox) = setup().await;
    emu.add_fault(FaultRule::reset("/api/sandbox/*").method("GET").times(2))
        .unwrap();
    emu.clear_requests();
    let got = client.get(sandbox.id()).await.unwrap();
    assert_eq!(got.id(), sandbox.id());
    let gets = hits(&emu, "GET", sandbox.id());
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert_eq!(gets[2].status, Some(200));
}

#[tokio::test]
async fn connection_reset_on_exec_is_not_replayed() {
    let (emu, _client, sandbox) = setup().await;
    emu.add_fault(FaultRule::reset("/toolbox/*/process/execute").times(1))
        .unwrap();
    let err = sandbox
        .process()
        .execute("echo once", &ExecuteOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DaytonaError::Transport {
                operation: "process.execute",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(hits(&emu, "POST", "/process/execute").len(), 1);
    let core: workspace_core::SandboxError = err.into();
    assert!(matches!(
        core,
        workspace_core::SandboxError::Transport {
            retryable: true,
            ..
        }
    ));

    // Same for a session exec.
    let p = sandbox.process();
    p.create_session("r").await.unwrap();
    emu.add_fault(FaultRule::reset("/toolbox/*/process/session/*/exec").times(1))
        .unwrap();
    let req = SessionExecuteRequest {
        command: "echo x".into(),
        ..Default::default()
    };
    let err = p
        .execute_session_command("r", &req, None)
        .await
        .unwrap_err();
    assert!(matches!(err, DaytonaError::Transport { .. }), "{err:?}");
    assert_eq!(hits(&emu, "POST", "/process/session/r/exec").len(), 1);
}

#[tokio::test]
async fn create_without_name_is_not_replayed_after_reset() {
    let emu = emulator().await;
    let client = client(&emu);
    emu.add_fault(FaultRule::reset("/api/sandbox").method("POST").times(1))
        .unwrap();
    let err = client
        .create(CreateSandboxParams::new(), T)
        .await
        .unwrap_err();
    assert!(matches!(err, DaytonaError::Transport { .. }), "{err:?}");
    assert_eq!(hits(&emu, "POST", "/api/sandbox").len(), 1);
}

#[tokio::test]
async fn create_with_name_is_replayed_after_reset() {
    let emu = emulator().await;
    let client = client(&emu);
    emu.add_fault(FaultRule::reset("/api/sandbox").method("POST").times(1))
        .unwrap();
    let s = client
        .create(CreateSandboxParams::new().name("replayed"), T)
        .await
        .unwrap();
    assert_eq!(s.name(), "replayed");
    assert_eq!(hits(&emu, "POST", "/api/sandbox").len(), 2);
    assert_eq!(emu.sandboxes().len(), 1);
}

/// The first attempt's answer is lost after the sandbox was made (simulated: the sandbox exists
/// and the first answer is a 502). The replay meets 409 and adopts the sandbox, but only when
/// its labels are the ones asked for.
#[tokio::test]
async fn create_replay_adopts_its_own_sandbox_on_conflict() {
    let emu = emulator().await;
    let client = client(&emu);
    let first = client
        .create(
            CreateSandboxParams::new().name("mine").label("run", "42"),
            T,
        )
        .await
        .unwrap();
    emu.add_fault(
        FaultRule::status("/api/sandbox", 502)
            .method("POST")
            .times(1),
    )
    .unwrap();
    emu.clear_requests();
    let adopted = client
        .create(
            CreateSandboxParams::new().name("mine").label("run", "42"),
            T,
        )
        .await
        .unwrap();
    assert_eq!(adopted.id(), first.id());
    let posts = hits(&emu, "POST", "/api/sandbox");
    assert_eq!(
        posts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(502), Some(409)]
    );

    emu.add_fault(
        FaultRule::status("/api/sandbox", 502)
            .method("POST")
            .times(1),
    )
    .unwrap();
    let err = client
        .create(
            CreateSandboxParams::new()
                .name("mine")
                .label("run", "other"),
            T,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DaytonaError::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn hang_hits_the_client_deadline() {
    let emu = emulator().await;
    let client = DaytonaClient::new(
        config(&emu)
            .request_timeout(Some(Duration::from_millis(300)))
            .retry(RetryConfig::disabled()),
    )
    .unwrap();
    emu.add_fault(FaultRule::hang("/api/sandbox/*")).unwrap();
    let started = Instant::now();
    let err = client.get("x").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(err, DaytonaError::RequestTimeout { after, .. } if after == Duration::from_millis(300)),
        "{err:?}"
    );
}

#[tokio::test]
async fn hang_during_a_wait_becomes_a_wait_timeout() {
    let (emu, _client, mut sandbox) = setup().await;
    emu.add_fault(FaultRule::hang("/api/sandbox/*/stop"))
        .unwrap();
    let err = sandbox
        .stop(Some(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DaytonaError::WaitTimeout {
                target: "stopped",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn delay_is_just_slow() {
    let (emu, client, sandbox) = setup().await;
    emu.add_fault(FaultRule::delay("/api/sandbox/*", Duration::from_millis(300)).times(1))
        .unwrap();
    let started = Instant::now();
    client.get(sandbox.id()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn connect_refused_is_retried_then_a_connect_error() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = DaytonaClient::new(
        DaytonaConfig::with_api_key("k")
            .api_url(&format!("http://127.0.0.1:{port}/api"))
            .unwrap()
            .retry(fast_retry()),
    )
    .unwrap();
    let err = client
        .create(CreateSandboxParams::new(), T)
        .await
        .unwrap_err();
    match &err {
        DaytonaError::Connect { endpoint, .. } => {
            assert_eq!(endpoint, &format!("http://127.0.0.1:{port}"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn websocket_drop_mid_stream_is_reported_as_dropped() {
    let (emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    p.create_session("w").await.unwrap();
    let req = SessionExecuteRequest {
        command: "for i in $(seq 1 50); do echo line$i; sleep 0.05; done".into(),
        run_async: Some(true),
        ..Default::default()
    };
    let r = p.execute_session_command("w", &req, None).await.unwrap();
    emu.add_fault(FaultRule::drop_websocket(
        "/toolbox/*/process/session/*/command/*/logs",
        WsDrop::AfterFrames(2),
    ))
    .unwrap();
    let mut out = String::new();
    let end = p
        .follow_session_command_logs_with("w", &r.cmd_id, |t| out.push_str(t), |_| {})
        .await
        .unwrap();
    match &end {
        FollowEnd::Dropped { .. } => {}
        other => panic!("expected a drop, got {other:?}"),
    }
    assert!(!end.is_complete());
    assert!(out.starts_with("line1"), "{out:?}");
    // The command is still running: the drop says nothing about its exit.
    let cmd = p.get_session_command("w", &r.cmd_id).await.unwrap();
    assert_eq!(cmd.exit_code, None);
}

#[tokio::test]
async fn websocket_upgrade_errors_are_typed_and_retried() {
    let (emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    p.create_session("u").await.unwrap();
    let r = p
        .execute_session_command(
            "u",
            &SessionExecuteRequest {
                command: "echo hi".into(),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    emu.add_fault(FaultRule::status("/toolbox/*/process/session/*/command/*/logs", 503).times(1))
        .unwrap();
    emu.clear_requests();
    let mut out = String::new();
    let end = p
        .follow_session_command_logs_with("u", &r.cmd_id, |t| out.push_str(t), |_| {})
        .await
        .unwrap();
    assert!(end.is_complete());
    assert_eq!(out, "hi\n");
    assert_eq!(hits(&emu, "GET", "/logs").len(), 2);

    emu.add_fault(FaultRule::status(
        "/toolbox/*/process/session/*/command/*/logs",
        403,
    ))
    .unwrap();
    let err = p
        .follow_session_command_logs("u", &r.cmd_id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaytonaError::Forbidden(ref d) if d.status == 403),
        "{err:?}"
    );
}

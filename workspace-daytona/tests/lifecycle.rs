//! Control-plane operations against the in-process emulator, over real HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use daytona_emulator::Emulator;
use futures::TryStreamExt;
use workspace_daytona::api::sandbox::SandboxState;
use workspace_daytona::{
    CodeLanguage, CreateSandboxParams, DaytonaClient, DaytonaError, ListFilter, Resources,
    SDK_COMPAT_VERSION,
};

#[tokio::test]
async fn create_sends_every_field_and_the_sdk_headers() {
    let emu = emulator().await;
    let client = DaytonaClient::new(config(&emu).target("eu")).unwrap();
    // A mounted volume must exist first, as on Daytona.
    client
        .volumes()
        .get_or_create("vol-1", Some(std::time::Duration::from_secs(10)))
        .await
        .unwrap();
    let sandbox = client
        .create(
            CreateSandboxParams::new()
                .name("full")
                .image("debian:12")
                .resources(Resources {
                    cpu: Some(2),
                    memory: Some(4),
                    disk: Some(10),
                    gpu: Some(1),
                })
                .env("NODE_ENV", "development")
                .label("project", "mvp")
                .user("daytona")
                .public(false)
                .language(CodeLanguage::TypeScript)
                .auto_stop_interval(15)
                .auto_archive_interval(10080)
                .ephemeral(true)
                .volume("vol-1", "/home/daytona/data")
                .network_block_all(false)
                .network_allow_list(["10.0.0.0/8"]),
            T,
        )
        .await
        .unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Started));
    assert_eq!(sandbox.name(), "full");
    assert_eq!(sandbox.labels()["code-toolbox-language"], "typescript");
    assert_eq!(sandbox.data().env["NODE_ENV"], "development");

    let posts = hits(&emu, "POST", "/api/sandbox");
    assert_eq!(posts.len(), 1);
    let req = &posts[0];
    assert_eq!(req.header("authorization"), Some("Bearer <redacted>"));
    assert_eq!(req.header("x-daytona-source"), Some("sdk-rust"));
    assert_eq!(
        req.header("x-daytona-sdk-version"),
        Some(SDK_COMPAT_VERSION)
    );
    assert!(req.header("user-agent").unwrap().starts_with("sdk-rust/"));
    assert!(req.header("x-daytona-organization-id").is_none());
    let body = req.body.as_ref().unwrap();
    assert_eq!(body["buildInfo"]["dockerfileContent"], "FROM debian:12\n");
    assert_eq!(body["autoDeleteInterval"], 0);
    assert_eq!(body["autoStopInterval"], 15);
    assert_eq!(body["autoArchiveInterval"], 10080);
    assert_eq!(body["cpu"], 2);
    assert_eq!(body["memory"], 4);
    assert_eq!(body["disk"], 10);
    assert_eq!(body["target"], "eu");
    assert_eq!(body["networkAllowList"], "10.0.0.0/8");
    assert_eq!(body["networkBlockAll"], false);
    assert_eq!(body["gpu"], 1);
    assert_eq!(body["volumes"][0]["volumeId"], "vol-1");
    assert_eq!(body["volumes"][0]["mountPath"], "/home/daytona/data");
    assert_eq!(body["env"]["NODE_ENV"], "development");
    assert_eq!(body["labels"]["project"], "mvp");
    assert!(body.get("language").is_none());
}

#[tokio::test]
async fn jwt_sends_the_organization_header() {
    let emu = emulator().await;
    let cfg = workspace_daytona::DaytonaConfig::with_jwt(API_KEY, "org-42")
        .api_url(&emu.api_url())
        .unwrap();
    let client = DaytonaClient::new(cfg).unwrap();
    let err = client.get("nope").await.unwrap_err();
    assert!(matches!(err, DaytonaError::NotFound(_)), "{err:?}");
    let gets = hits(&emu, "GET", "/api/sandbox/nope");
    assert_eq!(gets[0].header("x-daytona-organization-id"), Some("org-42"));
}

#[tokio::test]
async fn get_by_id_and_name_refresh_and_labels() {
    let (emu, client, mut sandbox) = setup().await;
    let by_id = client.get(sandbox.id()).await.unwrap();
    assert_eq!(by_id.id(), sandbox.id());
    let by_name = client.get(sandbox.name()).await.unwrap();
    assert_eq!(by_name.id(), sandbox.id());

    let mut labels = BTreeMap::new();
    labels.insert("team".to_string(), "backend".to_string());
    let stored = sandbox.set_labels(labels.clone()).await.unwrap();
    assert_eq!(stored, labels);
    assert_eq!(sandbox.labels(), &labels);
    let put = hits(&emu, "PUT", "/labels");
    assert_eq!(put[0].body.as_ref().unwrap()["labels"]["team"], "backend");

    sandbox.set_autostop_interval(30).await.unwrap();
    sandbox.set_autoarchive_interval(60).await.unwrap();
    sandbox.set_autodelete_interval(-1).await.unwrap();
    sandbox.refresh().await.unwrap();
    assert_eq!(sandbox.data().auto_stop_interval, Some(30));
    assert_eq!(sandbox.data().auto_archive_interval, Some(60));
    assert_eq!(sandbox.data().auto_delete_interval, Some(-1));
    assert_eq!(hits(&emu, "POST", "/autostop/30").len(), 1);
    assert_eq!(hits(&emu, "POST", "/autodelete/-1").len(), 1);

    sandbox.refresh_activity().await.unwrap();
    assert_eq!(hits(&emu, "POST", "/last-activity").len(), 1);
}

#[tokio::test]
async fn work_and_home_dirs() {
    let (_emu, _client, sandbox) = setup().await;
    let home = sandbox.user_home_dir().await.unwrap();
    let work = sandbox.work_dir().await.unwrap();
    assert!(home.starts_with('/'), "{home}");
    assert!(work.starts_with('/'), "{work}");
    let url = sandbox.toolbox_url().await.unwrap();
    assert!(
        url.as_str()
            .ends_with(&format!("/toolbox/{}", sandbox.id())),
        "{url}"
    );
}

#[tokio::test]
async fn stop_start_archive_delete() {
    let (emu, client, mut sandbox) = setup().await;
    sandbox.stop(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Stopped));
    sandbox.start(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Started));
    sandbox.stop_with(true, T).await.unwrap();
    let stop = hits(&emu, "POST", "/stop");
    assert_eq!(stop.last().unwrap().query.as_deref(), Some("force=true"));
    sandbox.archive(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Archived));
    sandbox.start(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Started));
    let id = sandbox.id().to_string();
    sandbox.delete(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Destroyed));
    let err = client.get(&id).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn ephemeral_sandbox_is_destroyed_on_stop() {
    let emu = emulator().await;
    let client = client(&emu);
    let mut sandbox = client
        .create(CreateSandboxParams::new().ephemeral(true), T)
        .await
        .unwrap();
    sandbox.stop(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Destroyed));
}

#[tokio::test]
async fn waits_poll_through_transitions() {
    let emu = Emulator::builder()
        .api_key(API_KEY)
        .transition_delay(Duration::from_millis(400))
        .start()
        .await
        .unwrap();
    let client = client(&emu);
    let mut sandbox = client.create(CreateSandboxParams::new(), T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Started));
    let polls = hits(&emu, "GET", &format!("/api/sandbox/{}", sandbox.id()));
    assert!(
        !polls.is_empty(),
        "create should have polled while creating"
    );

    sandbox.stop(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Stopped));
    sandbox.start(T).await.unwrap();
    sandbox.wait_until_started(T).await.unwrap();
    sandbox.delete(T).await.unwrap();
}

#[tokio::test]
async fn create_timeout_names_the_sandbox() {
    let emu = Emulator::builder()
        .api_key(API_KEY)
        .transition_delay(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let client = client(&emu);
    let started = std::time::Instant::now();
    let err = client
        .create(
            CreateSandboxParams::new().name("slow"),
            Some(Duration::from_millis(600)),
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    match &err {
        DaytonaError::WaitTimeout {
            sandbox_id,
            target,
            after,
            last_state,
        } => {
            assert!(!sandbox_id.is_empty());
            assert_eq!(*target, "started");
            assert_eq!(*after, Duration::from_millis(600));
            assert_eq!(last_state.as_deref(), Some("creating"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_timeout());
    let core: workspace_core::SandboxError = err.into();
    assert!(matches!(
        core,
        workspace_core::SandboxError::Timeout {
            phase: workspace_core::TimeoutPhase::Start,
            ..
        }
    ));
}

#[tokio::test]
async fn create_fails_fast_with_the_error_reason() {
    let emu = Emulator::builder()
        .api_key(API_KEY)
        .transition_delay(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let client = client(&emu);
    let create = client.create(CreateSandboxParams::new().name("doomed"), T);
    let fail = async {
        // Let the POST land, then break the sandbox while the client waits.
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if emu.sandbox("doomed").is_some() {
                break;
            }
        }
        emu.fail_sandbox("doomed", "disk on fire", true)
            .await
            .unwrap();
    };
    let started = std::time::Instant::now();
    let (result, ()) = tokio::join!(create, fail);
    let err = result.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    match err {
        DaytonaError::SandboxFailed { state, reason, .. } => {
            assert_eq!(state, "error");
            assert_eq!(reason.as_deref(), Some("disk on fire"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn recover_from_a_recoverable_error() {
    let (emu, _client, mut sandbox) = setup().await;
    emu.fail_sandbox(sandbox.id(), "oom", true).await.unwrap();
    let err = sandbox.wait_until_started(T).await.unwrap_err();
    assert!(matches!(err, DaytonaError::SandboxFailed { .. }), "{err:?}");
    sandbox.recover(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Started));
}

#[tokio::test]
async fn list_walks_every_page_and_filters_by_labels() {
    let emu = emulator().await;
    let client = client(&emu);
    for i in 0..5 {
        client
            .create(
                CreateSandboxParams::new()
                    .name(format!("listed-{i}"))
                    .label("group", "a"),
                T,
            )
            .await
            .unwrap();
    }
    client
        .create(CreateSandboxParams::new().label("group", "b"), T)
        .await
        .unwrap();

    let all_a: Vec<_> = client
        .list_with(ListFilter {
            labels: [("group".to_string(), "a".to_string())].into(),
            page_size: Some(2),
            ..ListFilter::default()
        })
        .try_collect()
        .await
        .unwrap();
    let mut names: Vec<_> = all_a.iter().map(|s| s.name().to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        ["listed-0", "listed-1", "listed-2", "listed-3", "listed-4"]
    );
    let pages = hits(&emu, "GET", "/api/sandbox");
    assert_eq!(pages.len(), 3, "5 items at 2 per page");
    assert!(pages[0].query.as_deref().unwrap().contains("labels="));
    assert!(pages[1].query.as_deref().unwrap().contains("cursor="));

    let everything: Vec<_> = client
        .list(Vec::<(String, String)>::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(everything.len(), 6);

    let b = client.find_one([("group", "b")]).await.unwrap().unwrap();
    assert_eq!(b.labels()["group"], "b");
    assert!(client.find_one([("group", "zzz")]).await.unwrap().is_none());

    // Handles from a list reach the toolbox like any other.
    let out = all_a[0]
        .process()
        .execute("echo listed", &Default::default())
        .await
        .unwrap();
    assert_eq!(out.result.trim(), "listed");
}

#[tokio::test]
async fn clones_share_one_client() {
    let (_emu, client, sandbox) = setup().await;
    let c2 = client.clone();
    let p2 = sandbox.clone().process();
    let opts = workspace_daytona::ExecuteOptions::new();
    let (a, b) = tokio::join!(c2.get(sandbox.id()), p2.execute("echo x", &opts));
    assert_eq!(a.unwrap().id(), sandbox.id());
    assert_eq!(b.unwrap().exit_code, 0);
}

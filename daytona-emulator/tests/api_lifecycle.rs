//! Control-plane lifecycle over real HTTP: create/get/list/delete, transitions, conflicts,
//! settings routes, auto-stop with a short clock, and delayed transitions.

#![allow(clippy::unwrap_used)]

mod api_support;

use std::time::Duration;

use api_support::{Api, assert_api_error, pid_alive};
use daytona_emulator::Emulator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn create_returns_a_full_started_sandbox() {
    let api = Api::start().await;
    let (status, volume) = api
        .call(Method::POST, "/volumes", Some(json!({"name": "vol-1"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{volume}");
    let sb = api
        .create(json!({
            "name": "full",
            "env": {"A": "1"},
            "labels": {"code-toolbox-language": "typescript", "team": "x"},
            "public": true,
            "autoStopInterval": 30,
            "autoArchiveInterval": 60,
            "autoDeleteInterval": 120,
            "networkBlockAll": true,
            "networkAllowList": "10.0.0.0/8",
            "volumes": [{"volumeId": "vol-1", "mountPath": "/home/daytona/data"}],
            "target": "eu",
            "kvm": true,
            "unknownField": "ignored like NestJS does"
        }))
        .await;
    for field in [
        "id",
        "organizationId",
        "name",
        "user",
        "env",
        "labels",
        "public",
        "networkBlockAll",
        "target",
        "cpu",
        "gpu",
        "memory",
        "disk",
        "toolboxProxyUrl",
        "kvm",
        "state",
        "desiredState",
        "backupState",
        "createdAt",
        "updatedAt",
        "lastActivityAt",
    ] {
        assert!(sb.get(field).is_some(), "missing {field}: {sb}");
    }
    assert_eq!(sb["state"], "started");
    assert_eq!(sb["desiredState"], "started");
    assert_eq!(sb["name"], "full");
    assert_eq!(sb["user"], "daytona");
    assert_eq!(sb["env"], json!({"A": "1"}));
    assert_eq!(sb["labels"]["code-toolbox-language"], "typescript");
    assert_eq!(sb["public"], true);
    assert_eq!(sb["autoStopInterval"], 30);
    assert_eq!(sb["autoArchiveInterval"], 60);
    assert_eq!(sb["autoDeleteInterval"], 120);
    assert_eq!(sb["networkBlockAll"], true);
    assert_eq!(sb["networkAllowList"], "10.0.0.0/8");
    assert_eq!(sb["volumes"][0]["mountPath"], "/home/daytona/data");
    // Named by its name, reported by its id.
    assert_eq!(sb["volumes"][0]["volumeId"], volume["id"]);
    assert_eq!(sb["target"], "eu");
    assert_eq!(sb["kvm"], true);
    assert_eq!(sb["backupState"], "None");
    assert!(sb["cpu"].is_i64() && sb["memory"].is_i64() && sb["disk"].is_i64());
    assert_eq!(
        sb["toolboxProxyUrl"],
        format!("{}/toolbox", api.emu.base_url())
    );
    let created = sb["createdAt"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );
    // The typed DTO reads it back.
    let typed: daytona_api::sandbox::Sandbox = serde_json::from_value(sb.clone()).unwrap();
    assert_eq!(
        typed.toolbox_base_url(),
        format!("{}/toolbox/{}", api.emu.base_url(), typed.id)
    );
}

#[tokio::test]
async fn defaults_follow_the_api() {
    let api = Api::start().await;
    let sb = api.create(json!({})).await;
    assert_eq!(sb["name"], sb["id"], "name defaults to the id");
    assert_eq!(sb["target"], "us");
    assert_eq!(sb["autoStopInterval"], 15);
    assert_eq!(sb["autoArchiveInterval"], 10080);
    assert_eq!(sb["autoDeleteInterval"], -1);
    assert_eq!(sb["cpu"], 1);
    assert_eq!(sb["memory"], 1);
    assert_eq!(sb["disk"], 3);
    assert_eq!(sb["gpu"], 0);
    assert!(sb["snapshot"].is_string());
    assert_eq!(sb["env"], json!({}));
    assert_eq!(sb["kvm"], false);
    let id = sb["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "ids are UUIDs: {id}");
}

#[tokio::test]
async fn image_builds_take_resources_and_snapshots_do_not() {
    let api = Api::start().await;
    let sb = api
        .create(json!({"buildInfo": {"dockerfileContent": "FROM debian:12\n"}, "cpu": 2, "memory": 4, "disk": 8}))
        .await;
    assert_eq!(sb["cpu"], 2);
    assert_eq!(sb["memory"], 4);
    assert_eq!(sb["disk"], 8);
    assert_eq!(sb["buildInfo"]["dockerfileContent"], "FROM debian:12\n");
    assert!(sb["buildInfo"]["snapshotRef"].is_string());
    assert!(sb.get("snapshot").is_none());

    let (status, body) = api
        .call(Method::POST, "/sandbox", Some(json!({"cpu": 2})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        assert_api_error(&body, 400, "/api/sandbox"),
        "Cannot specify Sandbox resources when using a snapshot"
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/sandbox",
            Some(json!({"snapshot": "s", "buildInfo": {"dockerfileContent": "FROM x"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn get_by_id_or_name_and_delete_then_404_forever() {
    let api = Api::start().await;
    let sb = api.create(json!({"name": "by-name"})).await;
    let id = sb["id"].as_str().unwrap();
    let (status, by_name) = api.get("by-name").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_name["id"], id);
    let dir = api.emu.state().layout(id).unwrap().root().to_path_buf();
    assert!(dir.exists());

    let (status, deleted) = api
        .call(Method::DELETE, &format!("/sandbox/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["id"], id);
    assert_eq!(deleted["desiredState"], "destroyed");
    assert!(!dir.exists(), "the sandbox directory is removed");
    for path in [format!("/sandbox/{id}"), "/sandbox/by-name".to_string()] {
        let (status, body) = api.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let message = assert_api_error(&body, 404, &format!("/api{path}"));
        assert!(message.contains("not found"), "{message}");
    }
    let (status, _) = api
        .call(Method::DELETE, &format!("/sandbox/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The name is free again.
    api.create(json!({"name": "by-name"})).await;
}

#[tokio::test]
async fn names_are_unique() {
    let api = Api::start().await;
    api.create(json!({"name": "twin"})).await;
    let (status, body) = api
        .call(Method::POST, "/sandbox", Some(json!({"name": "twin"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        assert_api_error(&body, 409, "/api/sandbox"),
        "Sandbox with name twin already exists"
    );
    assert_eq!(api.emu.sandboxes().len(), 1);
}

#[tokio::test]
async fn list_filters_by_labels_and_pages_with_a_cursor() {
    let api = Api::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let team = if i % 2 == 0 { "even" } else { "odd" };
        let sb = api
            .create(json!({"name": format!("s{i}"), "labels": {"team": team, "n": i.to_string()}}))
            .await;
        ids.push(sb["id"].as_str().unwrap().to_string());
    }
    let (status, all) = api.call(Method::GET, "/sandbox", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert_eq!(all["nextCursor"], Value::Null);
    // Newest first by default.
    assert_eq!(all["items"][0]["name"], "s4");
    assert!(
        all["items"][0].get("env").is_none(),
        "list items carry no env"
    );
    assert!(all["items"][0]["toolboxProxyUrl"].is_string());

    let (_, even) = api
        .send(
            api.req(Method::GET, "/sandbox")
                .query(&[("labels", r#"{"team":"even"}"#)]),
        )
        .await;
    let names: Vec<&str> = even["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s4", "s2", "s0"]);

    // Cursor pagination, two at a time, ascending by name.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![
            ("limit", "2".to_string()),
            ("sort", "name".into()),
            ("order", "asc".into()),
        ];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let (status, page) = api
            .send(api.req(Method::GET, "/sandbox").query(&query))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["name"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["s0", "s1", "s2", "s3", "s4"]);

    // Repeated array parameters, and the state filter.
    api.call(Method::POST, &format!("/sandbox/{}/stop", ids[1]), None)
        .await;
    let (_, stopped) = api
        .send(
            api.req(Method::GET, "/sandbox")
                .query(&[("states", "stopped"), ("states", "archived")]),
        )
        .await;
    assert_eq!(stopped["items"].as_array().unwrap().len(), 1);
    assert_eq!(stopped["items"][0]["id"], ids[1]);

    // The deprecated page-based route.
    let (status, paged) = api
        .send(api.req(Method::GET, "/sandbox/paginated").query(&[
            ("page", "2"),
            ("limit", "2"),
            ("labels", r#"{"team":"odd"}"#),
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{paged}");
    assert_eq!(paged["total"], 2);
    assert_eq!(paged["page"], 2);
    assert_eq!(paged["totalPages"], 1);
    assert_eq!(paged["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn stop_start_archive_follow_the_state_machine() {
    let api = Api::start().await;
    let id = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = |op: &str| format!("/sandbox/{id}/{op}");

    // Start on a started sandbox is a no-op.
    let (status, body) = api.call(Method::POST, &path("start"), None).await;
    assert_eq!(
        (status, body["state"].clone()),
        (StatusCode::OK, json!("started"))
    );
    // Archive needs stopped.
    let (status, body) = api.call(Method::POST, &path("archive"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        assert_api_error(&body, 400, "/api/sandbox"),
        "Sandbox is not stopped"
    );

    let (status, body) = api.call(Method::POST, &path("stop"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "stopped");
    assert_eq!(body["desiredState"], "stopped");
    assert_eq!(api.state_of(&id).await, "stopped");
    let (status, body) = api.call(Method::POST, &path("stop"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        assert_api_error(&body, 400, "/api"),
        "Sandbox is not started"
    );

    let (status, body) = api.call(Method::POST, &path("archive"), None).await;
    assert_eq!(
        (status, body["state"].clone()),
        (StatusCode::OK, json!("archived"))
    );
    let (status, body) = api.call(Method::POST, &path("start"), None).await;
    assert_eq!(
        (status, body["state"].clone()),
        (StatusCode::OK, json!("started"))
    );

    // Recover needs an error.
    let (status, _) = api.call(Method::POST, &path("recover"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    api.emu
        .fail_sandbox(&id, "disk on fire", true)
        .await
        .unwrap();
    let (_, failed) = api.get(&id).await;
    assert_eq!(failed["state"], "error");
    assert_eq!(failed["errorReason"], "disk on fire");
    assert_eq!(failed["recoverable"], true);
    let (status, body) = api.call(Method::POST, &path("stop"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api.call(Method::POST, &path("recover"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "started");
    assert!(body.get("errorReason").is_none());

    api.emu
        .fail_sandbox(&id, "gone for good", false)
        .await
        .unwrap();
    let (status, body) = api.call(Method::POST, &path("recover"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(assert_api_error(&body, 400, "/api").contains("not recoverable"));
}

#[tokio::test]
async fn stopping_kills_every_process_and_an_ephemeral_sandbox_is_deleted() {
    let api = Api::start().await;
    for ephemeral in [false, true] {
        let mut body = json!({});
        if ephemeral {
            body["autoDeleteInterval"] = json!(0);
        }
        let sb = api.create(body).await;
        let id = sb["id"].as_str().unwrap();
        let layout = api.emu.state().layout(id).unwrap();
        let pid_file = layout.tmp_host().join("pid");
        let pid_path = layout.to_sandbox(&pid_file).expect("tmp is a sandbox path");
        let toolbox = format!("{}/toolbox/{id}", api.emu.base_url());
        let (status, _) = api
            .send(
                api.http
                    .post(format!("{toolbox}/process/session"))
                    .bearer_auth(api_support::API_KEY)
                    .json(&json!({"sessionId": "s"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let cmd = format!("echo $$ > {}; exec sleep 300", shell_quote(&pid_path));
        let (status, body) = api
            .send(
                api.http
                    .post(format!("{toolbox}/process/session/s/exec"))
                    .bearer_auth(api_support::API_KEY)
                    .header("X-Daytona-SDK-Version", "0.218.0")
                    .json(&json!({"command": cmd, "runAsync": true})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let pid = wait_for_pid(&pid_file).await;
        assert!(pid_alive(pid));

        let (status, stopped) = api
            .call(Method::POST, &format!("/sandbox/{id}/stop"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{stopped}");
        assert!(!pid_alive(pid), "stop must kill the sandbox's processes");
        if ephemeral {
            assert_eq!(stopped["state"], "destroyed");
            api.wait_gone(id).await;
        } else {
            assert_eq!(stopped["state"], "stopped");
            // The toolbox of a stopped sandbox answers like the proxy does.
            let resp = api
                .http
                .get(format!("{toolbox}/version"))
                .bearer_auth(api_support::API_KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
            let body: Value = resp.json().await.unwrap();
            assert!(
                body["message"].as_str().unwrap().contains("not running"),
                "{body}"
            );
            // Started again, it works, with its files intact.
            api.call(Method::POST, &format!("/sandbox/{id}/start"), None)
                .await;
            assert!(pid_file.exists());
            let resp = api
                .http
                .get(format!("{toolbox}/version"))
                .bearer_auth(api_support::API_KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
    }
}

fn shell_quote(p: &str) -> String {
    format!("'{}'", p.replace('\'', r"'\''"))
}

async fn wait_for_pid(file: &std::path::Path) -> i32 {
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the command never wrote its pid to {}", file.display());
}

#[tokio::test]
async fn settings_routes_update_the_sandbox() {
    let api = Api::start().await;
    let id = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, labels) = api
        .call(
            Method::PUT,
            &format!("/sandbox/{id}/labels"),
            Some(json!({"labels": {"only": "this"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(labels, json!({"labels": {"only": "this"}}));
    assert_eq!(api.get(&id).await.1["labels"], json!({"only": "this"}));

    for (route, field, value) in [
        ("autostop/0", "autoStopInterval", json!(0)),
        ("autoarchive/0", "autoArchiveInterval", json!(43200)),
        ("autoarchive/100", "autoArchiveInterval", json!(100)),
        ("autodelete/-1", "autoDeleteInterval", json!(-1)),
        ("autodelete/30", "autoDeleteInterval", json!(30)),
        ("public/true", "public", json!(true)),
    ] {
        let (status, body) = api
            .call(Method::POST, &format!("/sandbox/{id}/{route}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
        assert_eq!(body[field], value, "{route}");
    }
    let (status, body) = api
        .call(Method::POST, &format!("/sandbox/{id}/autostop/-5"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        assert_api_error(&body, 400, "/api"),
        "Auto-stop interval must be non-negative"
    );

    let (status, body) = api
        .call(
            Method::GET,
            &format!("/sandbox/{id}/toolbox-proxy-url"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"url": format!("{}/toolbox", api.emu.base_url())})
    );

    let (status, body) = api
        .call(
            Method::GET,
            &format!("/sandbox/{id}/ports/3000/preview-url"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sandboxId"], id);
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .starts_with(api.emu.base_url())
    );
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 16);

    let (status, body) = api
        .call(Method::POST, &format!("/sandbox/{id}/last-activity"), None)
        .await;
    assert_eq!((status, body), (StatusCode::CREATED, Value::Null));

    let (status, body) = api
        .call(
            Method::POST,
            &format!("/sandbox/{id}/network-settings"),
            Some(json!({"networkBlockAll": true, "networkAllowList": "192.168.0.0/16"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["networkAllowList"], "192.168.0.0/16");
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/sandbox/{id}/resize"),
            Some(json!({"cpu": 4, "disk": 1})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "disk cannot shrink: {body}"
    );
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/sandbox/{id}/resize"),
            Some(json!({"cpu": 4})),
        )
        .await;
    assert_eq!((status, body["cpu"].clone()), (StatusCode::OK, json!(4)));
}

#[tokio::test]
async fn auto_stop_uses_the_emulated_clock_and_respects_activity() {
    let api = Api::start_with(
        Emulator::builder()
            .api_key(api_support::API_KEY)
            .auto_stop_unit(Duration::from_millis(100)),
    )
    .await;
    let idle = api.create(json!({"autoStopInterval": 2})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let busy = api.create(json!({"autoStopInterval": 2})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let never = api.create(json!({"autoStopInterval": 0})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ephemeral = api
        .create(json!({"autoStopInterval": 1, "autoDeleteInterval": 0}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Keep `busy` active for longer than its interval (200 ms).
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, _) = api
            .call(
                Method::POST,
                &format!("/sandbox/{busy}/last-activity"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(api.state_of(&busy).await, "started");
    api.wait_state(&idle, "stopped").await;
    api.wait_gone(&ephemeral).await;
    api.wait_state(&busy, "stopped").await;
    assert_eq!(api.state_of(&never).await, "started");
}

#[tokio::test]
async fn auto_delete_and_ttl_remove_sandboxes() {
    let api = Api::start_with(
        Emulator::builder()
            .api_key(api_support::API_KEY)
            .auto_stop_unit(Duration::from_millis(50)),
    )
    .await;
    let del = api.create(json!({"autoDeleteInterval": 2})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.call(Method::POST, &format!("/sandbox/{del}/stop"), None)
        .await;
    let ttl = api.create(json!({"ttlMinutes": 3})).await;
    assert!(ttl["autoDestroyAt"].is_string());
    let arch = api.create(json!({"autoArchiveInterval": 2})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.call(Method::POST, &format!("/sandbox/{arch}/stop"), None)
        .await;
    api.wait_gone(&del).await;
    api.wait_gone(ttl["id"].as_str().unwrap()).await;
    api.wait_state(&arch, "archived").await;
}

#[tokio::test]
async fn delayed_transitions_are_visible_to_pollers() {
    let api = Api::start_with(
        Emulator::builder()
            .api_key(api_support::API_KEY)
            .transition_delay(Duration::from_millis(300)),
    )
    .await;
    let sb = api.create(json!({})).await;
    let id = sb["id"].as_str().unwrap().to_string();
    assert_eq!(sb["state"], "creating");
    assert_eq!(sb["desiredState"], "started");
    // Other transitions wait their turn.
    let (status, body) = api
        .call(Method::POST, &format!("/sandbox/{id}/stop"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        assert_api_error(&body, 400, "/api"),
        "State change in progress"
    );
    // The toolbox is not reachable before the sandbox is started.
    let resp = api
        .http
        .get(format!("{}/toolbox/{id}/version", api.emu.base_url()))
        .bearer_auth(api_support::API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    api.wait_state(&id, "started").await;

    let (status, body) = api
        .call(Method::POST, &format!("/sandbox/{id}/stop"), None)
        .await;
    assert_eq!(
        (status, body["state"].clone()),
        (StatusCode::OK, json!("stopping"))
    );
    assert_eq!(body["desiredState"], "stopped");
    api.wait_state(&id, "stopped").await;

    let (_, body) = api
        .call(Method::DELETE, &format!("/sandbox/{id}"), None)
        .await;
    assert_eq!(body["state"], "destroying");
    api.wait_gone(&id).await;
}

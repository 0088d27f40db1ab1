//! Request bodies of the control-plane routes: reading JSON within a size limit, and checking
//! field types the way the API's `ValidationPipe` (class-validator) does, with its messages
//! (`cpu must be an integer number`, ...), all problems joined with `, ` in one 400.
//!
//! Unknown fields are ignored, as upstream (the pipe runs with `transform` but without
//! `whitelist`). `null` counts as absent (`@IsOptional`). An empty body counts as `{}`. A
//! non-empty body must be sent as `application/json`: the real API would silently ignore it
//! otherwise, which hides client bugs, so the emulator refuses it with a 400 that says so.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use daytona_api::sandbox::{
    CreateSandbox, ResizeSandbox, SandboxLabels, UpdateSandboxNetworkSettings,
};
use daytona_api::snapshot::CreateSnapshot;
use daytona_api::volume::CreateVolume;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Largest accepted JSON body (larger → 413).
pub const JSON_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// Reads a JSON object body.
pub(crate) async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > JSON_BODY_LIMIT)
    {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, JSON_BODY_LIMIT)
        .await
        .map_err(|e| {
            if is_length_limit(&e) {
                too_large()
            } else {
                ApiError::bad_request(format!("Cannot read request body: {e}"))
            }
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("application/json") || ct.contains("+json")
        });
    if !is_json {
        return Err(ApiError::bad_request(
            "Request body must be sent with Content-Type: application/json",
        ));
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("Request body must be a JSON object"));
    }
    Ok(value)
}

/// Whether reading a body failed because it exceeded the limit (not because the client left).
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn too_large() -> ApiError {
    ApiError::api(StatusCode::PAYLOAD_TOO_LARGE, "request entity too large")
}

/// Expected JSON type of a field.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    /// Integer with an optional minimum.
    Int(Option<i64>),
    StrMap,
    /// Array of strings, each one of these values (any value when empty).
    StrEnumArray(&'static [&'static str]),
    Volumes,
    BuildInfo,
    StrMapArray,
}

/// Collects class-validator style messages.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, obj: &Map<String, Value>, field: &str, kind: Kind) {
        let Some(value) = obj.get(field).filter(|v| !v.is_null()) else {
            return;
        };
        match kind {
            Kind::Str => {
                if !value.is_string() {
                    self.0.push(format!("{field} must be a string"));
                }
            }
            Kind::Bool => {
                if !value.is_boolean() {
                    self.0.push(format!("{field} must be a boolean value"));
                }
            }
            Kind::Int(min) => match value.as_i64() {
                None => self.0.push(format!("{field} must be an integer number")),
                Some(v) => {
                    if let Some(min) = min
                        && v < min
                    {
                        self.0.push(format!("{field} must not be less than {min}"));
                    }
                }
            },
            Kind::StrMap => self.str_map(field, value),
            Kind::StrEnumArray(allowed) => match value.as_array() {
                None => self.0.push(format!("{field} must be an array")),
                Some(items) => {
                    for item in items {
                        match item.as_str() {
                            None => {
                                self.0
                                    .push(format!("each value in {field} must be a string"));
                                break;
                            }
                            Some(s) if !allowed.is_empty() && !allowed.contains(&s) => {
                                self.0.push(format!(
                                    "each value in {field} must be one of the following values: {}",
                                    allowed.join(", ")
                                ));
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
            },
            Kind::Volumes => match value.as_array() {
                None => self.0.push(format!("{field} must be an array")),
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let Some(vol) = item.as_object() else {
                            self.0.push(format!("{field}.{i} must be an object"));
                            continue;
                        };
                        for key in ["volumeId", "mountPath"] {
                            match vol.get(key) {
                                Some(Value::String(_)) => {}
                                None | Some(Value::Null) => self
                                    .0
                                    .push(format!("{field}.{i}.{key} should not be empty")),
                                Some(_) => {
                                    self.0.push(format!("{field}.{i}.{key} must be a string"))
                                }
                            }
                        }
                        if vol
                            .get("subpath")
                            .is_some_and(|v| !v.is_null() && !v.is_string())
                        {
                            self.0.push(format!("{field}.{i}.subpath must be a string"));
                        }
                    }
                }
            },
            Kind::BuildInfo => match value.as_object() {
                None => self.0.push(format!("{field} must be an object")),
                Some(build) => {
                    match build.get("dockerfileContent") {
                        Some(Value::String(_)) => {}
                        None | Some(Value::Null) => self
                            .0
                            .push(format!("{field}.dockerfileContent should not be empty")),
                        Some(_) => self
                            .0
                            .push(format!("{field}.dockerfileContent must be a string")),
                    }
                    self.check(build, "contextHashes", Kind::StrEnumArray(&[]));
                }
            },
            Kind::StrMapArray => match value.as_array() {
                None => self.0.push(format!("{field} must be an array")),
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.str_map(&format!("{field}.{i}"), item);
                    }
                }
            },
        }
    }

    fn str_map(&mut self, field: &str, value: &Value) {
        match value.as_object() {
            None => self.0.push(format!("{field} must be an object")),
            Some(map) => {
                if let Some((key, _)) = map.iter().find(|(_, v)| !v.is_string()) {
                    self.0.push(format!("{field}.{key} must be a string"));
                }
            }
        }
    }

    fn finish<T: DeserializeOwned>(self, value: Value) -> Result<T, ApiError> {
        if !self.0.is_empty() {
            return Err(ApiError::bad_request(self.0.join(", ")));
        }
        let value = strip_nulls(value);
        serde_json::from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// Drops top-level `null` fields (class-validator treats them as absent).
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

fn object(value: &Value) -> Result<&Map<String, Value>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| ApiError::bad_request("Request body must be a JSON object"))
}

/// `CreateSandbox`.
pub(crate) fn create_sandbox(value: Value) -> Result<CreateSandbox, ApiError> {
    let obj = object(&value)?;
    let mut p = Problems::default();
    for field in [
        "name",
        "snapshot",
        "user",
        "networkAllowList",
        "domainAllowList",
        "outboundProxyUrl",
        "otelEndpointOverride",
        "target",
        "linkedSandbox",
    ] {
        p.check(obj, field, Kind::Str);
    }
    for field in ["public", "networkBlockAll", "spot", "kvm"] {
        p.check(obj, field, Kind::Bool);
    }
    for field in ["cpu", "gpu", "memory", "disk"] {
        p.check(obj, field, Kind::Int(Some(0)));
    }
    for field in [
        "autoStopInterval",
        "autoPauseInterval",
        "autoArchiveInterval",
        "ttlMinutes",
    ] {
        p.check(obj, field, Kind::Int(Some(0)));
    }
    p.check(obj, "autoDeleteInterval", Kind::Int(None));
    p.check(obj, "env", Kind::StrMap);
    p.check(obj, "labels", Kind::StrMap);
    p.check(
        obj,
        "gpuType",
        Kind::StrEnumArray(crate::lifecycle::GPU_TYPES),
    );
    p.check(obj, "volumes", Kind::Volumes);
    p.check(obj, "buildInfo", Kind::BuildInfo);
    p.check(obj, "secrets", Kind::StrMapArray);
    p.finish(value)
}

/// `SandboxLabels`.
pub(crate) fn sandbox_labels(value: Value) -> Result<SandboxLabels, ApiError> {
    let obj = object(&value)?;
    let mut p = Problems::default();
    if obj.get("labels").is_none_or(Value::is_null) {
        p.0.push("labels must be an object".to_string());
    }
    p.check(obj, "labels", Kind::StrMap);
    p.finish(value)
}

/// `ResizeSandbox`.
pub(crate) fn resize_sandbox(value: Value) -> Result<ResizeSandbox, ApiError> {
    let obj = object(&value)?;
    let mut p = Problems::default();
    for field in ["cpu", "memory", "disk"] {
        p.check(obj, field, Kind::Int(Some(1)));
    }
    p.finish(value)
}

/// `UpdateSandboxNetworkSettings`.
pub(crate) fn network_settings(value: Value) -> Result<UpdateSandboxNetworkSettings, ApiError> {
    let obj = object(&value)?;
    let mut p = Problems::default();
    p.check(obj, "networkBlockAll", Kind::Bool);
    p.check(obj, "networkAllowList", Kind::Str);
    p.check(obj, "domainAllowList", Kind::Str);
    p.finish(value)
}

/// `CreateSnapshot`.
pub(crate) fn create_snapshot(value: Value) -> Result<CreateSnapshot, ApiError> {
    let obj = object(&value)?;
    let mut p = Problems::default();
    if obj.get("name").is_none_or(Value::is_null) {
        p.0.push("name must be a string".to_string());
    }
    for field in ["name", "imageName", "regionId", "sandboxClass"] {
        p.check(obj, field, Kind::Str);
    }
    for field in ["cpu", "gpu", "memory", "disk"] {
        p.check(obj, field, Kind::Int(Some(0)));
    }
    p.check(obj, "entrypoint", Kind::StrEnumArray(&[]));
    p.check(
        obj,
        "gpuType",
        Kind::StrEnumArray(crate::lifecycle::GPU_TYPES),
    );
    p.check(obj, "buildInfo", Kind::BuildInfo);
    p.finish(value)
}

/// `CreateVolume`.
pub(crate) fn create_volume(value: Value) -> Result<CreateVolume, ApiError> {
    let obj = object(&value)?;
    let mut p = Problems::default();
    if obj.get("name").is_none_or(Value::is_null) {
        p.0.push("name must be a string".to_string());
    }
    p.check(obj, "name", Kind::Str);
    p.finish(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_errors_are_listed_together() {
        let err = create_sandbox(json!({"cpu": "two", "public": 1, "env": {"A": 1}, "memory": -1}))
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        for part in [
            "cpu must be an integer number",
            "public must be a boolean value",
            "env.A must be a string",
            "memory must not be less than 0",
        ] {
            assert!(err.message.contains(part), "{}", err.message);
        }
    }

    #[test]
    fn unknown_fields_and_nulls_are_ignored() {
        let req = create_sandbox(json!({"language": "python", "name": null, "labels": {"a": "b"}}))
            .unwrap();
        assert_eq!(req.name, None);
        assert_eq!(req.labels.unwrap()["a"], "b");
    }

    #[test]
    fn fractional_numbers_are_not_integers() {
        let err = create_sandbox(json!({"autoStopInterval": 1.5})).unwrap_err();
        assert_eq!(err.message, "autoStopInterval must be an integer number");
    }

    #[test]
    fn nested_shapes_are_checked() {
        let err =
            create_sandbox(json!({"volumes": [{"volumeId": "v"}], "buildInfo": {}})).unwrap_err();
        assert!(
            err.message
                .contains("volumes.0.mountPath should not be empty")
        );
        assert!(
            err.message
                .contains("buildInfo.dockerfileContent should not be empty")
        );
        let err = create_sandbox(json!({"gpuType": ["B200"]})).unwrap_err();
        assert!(err.message.contains("gpuType"));
    }

    #[test]
    fn labels_body_needs_labels() {
        assert!(sandbox_labels(json!({})).is_err());
        assert!(sandbox_labels(json!({"labels": {"a": 1}})).is_err());
        assert_eq!(
            sandbox_labels(json!({"labels": {"a": "1"}}))
                .unwrap()
                .labels["a"],
            "1"
        );
    }
}

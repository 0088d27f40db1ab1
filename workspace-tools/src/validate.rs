//! Checking a model's arguments against a tool's schema, so that a mistake is reported the way
//! the model can fix it: which argument, what was expected, what was sent.
//!
//! serde's own messages ("invalid type: string \"30\", expected u64") do not say which field;
//! checking the schema first names it. serde still parses afterwards, so anything the schema
//! check does not cover is caught there too.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::output::ToolError;
use crate::trim::floor_char_boundary;

/// Parse `args` into `T` after checking them against `schema` (the schema generated from `T`).
pub(crate) fn parse_args<T: DeserializeOwned>(schema: &Value, args: Value) -> Result<T, ToolError> {
    check_object(schema, &args, "")?;
    serde_json::from_value(args).map_err(|e| ToolError::InvalidArguments(e.to_string()))
}

fn check_object(schema: &Value, value: &Value, path: &str) -> Result<(), ToolError> {
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(obj) = value.as_object() else {
        let what = if path.is_empty() {
            "the arguments".to_string()
        } else {
            format!("argument `{path}`")
        };
        return Err(ToolError::InvalidArguments(format!(
            "{what} must be a JSON object like {}, got {}",
            example(&props, &required),
            describe(value)
        )));
    };
    // Sorted, so the message does not depend on whether serde_json keeps insertion order (its
    // `preserve_order` feature, which any crate in the build can turn on).
    let valid = || {
        let mut names: Vec<String> = props
            .keys()
            .map(|k| format!("`{}`", join(path, k)))
            .collect();
        names.sort();
        names.join(", ")
    };
    if let Some(unknown) = obj.keys().find(|k| !props.contains_key(*k)) {
        return Err(ToolError::InvalidArguments(format!(
            "unknown argument `{}`; the valid arguments are {}",
            join(path, unknown),
            valid()
        )));
    }
    for name in &required {
        if !obj.contains_key(*name) {
            let expected = props
                .get(*name)
                .map(expected_type)
                .unwrap_or_else(|| "a value".into());
            return Err(ToolError::InvalidArguments(format!(
                "missing required argument `{}` ({expected})",
                join(path, name)
            )));
        }
    }
    for (name, v) in obj {
        let Some(prop) = props.get(name) else {
            continue;
        };
        let is_required = required.contains(&name.as_str());
        check_value(prop, v, &join(path, name), is_required)?;
    }
    Ok(())
}

fn check_value(schema: &Value, value: &Value, path: &str, required: bool) -> Result<(), ToolError> {
    if value.is_null() && !required {
        return Ok(());
    }
    let types = allowed_types(schema);
    if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
        return Err(ToolError::InvalidArguments(format!(
            "argument `{path}` must be {}, got {}",
            expected_type(schema),
            describe(value)
        )));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(ToolError::InvalidArguments(format!(
                "argument `{path}` must be at least {min}, got {value}"
            )));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(ToolError::InvalidArguments(format!(
                "argument `{path}` must be at most {max}, got {value}"
            )));
        }
    }
    if value.is_object() && schema.get("properties").is_some() {
        check_object(schema, value, path)?;
    }
    Ok(())
}

fn allowed_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

/// "a string", "an integer ≥ 1", "an object like {…}".
fn expected_type(schema: &Value) -> String {
    let types = allowed_types(schema);
    let mut s = match types.as_slice() {
        ["string"] => "a string".to_string(),
        ["integer"] => "an integer".to_string(),
        ["number"] => "a number".to_string(),
        ["boolean"] => "true or false".to_string(),
        ["array"] => "an array".to_string(),
        ["object"] => {
            let props = schema
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!("an object like {}", example(&props, &required))
        }
        other => format!("of type {}", other.join(" or ")),
    };
    if let Some(min) = schema.get("minimum").and_then(Value::as_u64) {
        s.push_str(&format!(", at least {min}"));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_u64) {
        s.push_str(&format!(", at most {max}"));
    }
    s
}

/// A short example object with the required fields, e.g. `{"path": "…", "content": "…"}`.
fn example(props: &Map<String, Value>, required: &[&str]) -> String {
    let fields: Vec<String> = required
        .iter()
        .map(|name| {
            let placeholder = match props.get(*name).map(allowed_types).as_deref() {
                Some(["integer"]) | Some(["number"]) => "1",
                Some(["boolean"]) => "true",
                Some(["object"]) => "{…}",
                _ => "\"…\"",
            };
            format!("\"{name}\": {placeholder}")
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// `string "30"`, `integer 5`, `null`, `an array`, … (long values shortened).
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) if n.is_f64() => format!("number {n}"),
        Value::Number(n) => format!("integer {n}"),
        Value::String(s) => {
            let cut = floor_char_boundary(s, 40);
            if cut < s.len() {
                format!("string {:?}…", &s[..cut])
            } else {
                format!("string {s:?}")
            }
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::args::{GetProcessOutputArgs, ReadFileArgs};
    use crate::catalog::schema_of;

    fn err<T: DeserializeOwned + schemars::JsonSchema + std::fmt::Debug>(args: Value) -> String {
        let schema = schema_of::<T>();
        match parse_args::<T>(&schema, args) {
            Err(ToolError::InvalidArguments(m)) => m,
            other => panic!("expected InvalidArguments, got {other:?}"),
        }
    }

    #[test]
    fn messages_name_the_argument() {
        assert_eq!(
            err::<ReadFileArgs>(json!({})),
            "missing required argument `path` (a string)"
        );
        assert_eq!(
            err::<ReadFileArgs>(json!({"path": 7})),
            "argument `path` must be a string, got integer 7"
        );
        assert_eq!(
            err::<ReadFileArgs>(json!({"path": "a", "offset": "3"})),
            "argument `offset` must be an integer, at least 1, got string \"3\""
        );
        assert_eq!(
            err::<ReadFileArgs>(json!({"path": "a", "offset": 0})),
            "argument `offset` must be at least 1, got 0"
        );
        assert_eq!(
            err::<ReadFileArgs>(json!({"path": "a", "lines": 3})),
            "unknown argument `lines`; the valid arguments are `limit`, `offset`, `path`"
        );
        assert_eq!(
            err::<ReadFileArgs>(json!(["a"])),
            "the arguments must be a JSON object like {\"path\": \"…\"}, got an array"
        );
        let m = err::<GetProcessOutputArgs>(json!({"id": "p", "since": {"stdout": 1}}));
        assert_eq!(
            m,
            "missing required argument `since.stderr` (an integer, at least 0)"
        );
        let m = err::<GetProcessOutputArgs>(json!({"id": "p", "since": 5}));
        assert!(
            m.starts_with("argument `since` must be an object like {\"stdout\": 1, \"stderr\": 1}"),
            "{m}"
        );
    }

    #[test]
    fn null_means_absent_for_optional_fields() {
        let schema = schema_of::<ReadFileArgs>();
        let a: ReadFileArgs =
            parse_args(&schema, json!({"path": "x", "offset": null})).expect("valid");
        assert_eq!(a.offset, None);
        assert!(parse_args::<ReadFileArgs>(&schema, json!({"path": null})).is_err());
    }
}

//! `POST /process/code-run` DTOs (toolbox): run a snippet with the sandbox's language
//! interpreter and get its combined output.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Languages the SDKs accept (also the values of the `code-toolbox-language` label).
pub const CODE_RUN_LANGUAGES: &[&str] = &["python", "javascript", "typescript"];

/// `CodeRunRequest`: body of `POST /process/code-run`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeRunRequest {
    /// The program text.
    pub code: String,
    /// `python`, `javascript` or `typescript`; the SDKs send the sandbox's
    /// `code-toolbox-language` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Arguments after the program (`sys.argv[1:]`, `process.argv.slice(2)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Extra environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envs: Option<BTreeMap<String, String>>,
    /// Seconds before the run is killed (408); absent or 0 = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

impl fmt::Debug for CodeRunRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeRunRequest")
            .field("code_len", &self.code.len())
            .field("language", &self.language)
            .field("argv", &self.argv)
            .field(
                "envs",
                &self
                    .envs
                    .as_ref()
                    .map(|e| e.keys().cloned().collect::<Vec<_>>()),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `CodeRunResponse`: `{exitCode, result, artifacts:{charts}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeRunResponse {
    /// Exit code of the interpreter.
    #[serde(default)]
    pub exit_code: i32,
    /// Standard output and error, interleaved.
    #[serde(default)]
    pub result: String,
    /// Charts the program produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<CodeRunArtifacts>,
}

/// `CodeRunArtifacts`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CodeRunArtifacts {
    /// Charts (matplotlib figures on the real daemon), in the order they were shown.
    #[serde(default)]
    pub charts: Vec<Chart>,
}

/// `Chart`: one figure. Kept loose (every field optional, elements as JSON) because the shape
/// depends on the chart type.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Chart {
    /// `line`, `scatter`, `bar`, `pie`, `box_and_whisker`, `composite_chart`, `unknown`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Base64 PNG of the figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub png: Option<String>,
    /// Chart elements (points, bars, slices, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<serde_json::Value>,
    /// Axis fields (`x_label`, `y_ticks`, ...) as sent.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_matches_what_the_sdk_sends() {
        let req: CodeRunRequest = serde_json::from_value(
            json!({"code": "print(1)", "language": "python", "envs": {"K": "secret"}, "timeout": 5}),
        )
        .unwrap();
        assert_eq!(req.language.as_deref(), Some("python"));
        assert!(!format!("{req:?}").contains("secret"));
    }

    #[test]
    fn response_has_the_charts_array() {
        let res = CodeRunResponse {
            exit_code: 0,
            result: "2\n".into(),
            artifacts: Some(CodeRunArtifacts::default()),
        };
        assert_eq!(
            serde_json::to_value(&res).unwrap(),
            json!({"exitCode": 0, "result": "2\n", "artifacts": {"charts": []}})
        );
        let chart: Chart = serde_json::from_value(
            json!({"type": "line", "x_label": "t", "elements": [{"label": "a"}]}),
        )
        .unwrap();
        assert_eq!(chart.kind.as_deref(), Some("line"));
        assert_eq!(chart.extra["x_label"], "t");
    }
}

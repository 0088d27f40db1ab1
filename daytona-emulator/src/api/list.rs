//! `GET /sandbox` (cursor pagination, v0.205) and the deprecated `GET /sandbox/paginated`
//! (page numbers): query parsing, filters and sorting.
//!
//! Array parameters arrive as repeated keys (`states=started&states=stopped`), as the generated
//! clients send them; comma-separated values are accepted too. `labels` is a JSON-encoded object
//! and matches sandboxes carrying all of those labels. The cursor is opaque to clients (it
//! encodes an offset into the sorted result).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use daytona_api::sandbox::{Sandbox, SandboxState};

use crate::error::ApiError;
use crate::state::{AppState, SandboxEntry};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 200;

/// Sort keys of both list routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortField {
    Id,
    Name,
    State,
    Snapshot,
    Region,
    Cpu,
    Memory,
    Disk,
    UpdatedAt,
    CreatedAt,
    LastActivityAt,
}

/// A parsed list query.
#[derive(Debug)]
pub(crate) struct ListQuery {
    pub(crate) cursor_offset: usize,
    pub(crate) page: usize,
    pub(crate) limit: usize,
    id: Option<String>,
    name: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    states: Vec<SandboxState>,
    snapshots: Vec<String>,
    regions: Vec<String>,
    cpu: (Option<f64>, Option<f64>),
    memory: (Option<f64>, Option<f64>),
    disk: (Option<f64>, Option<f64>),
    is_public: Option<bool>,
    is_recoverable: Option<bool>,
    created: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    last_event: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    auto_destroy: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    sort: SortField,
    descending: bool,
}

/// Which list route is being parsed (they differ in paging and sort keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListRoute {
    /// `GET /sandbox`.
    Cursor,
    /// `GET /sandbox/paginated`.
    Paginated,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(format!("{key} must be a boolean value"))),
    }
}

fn parse_number(key: &str, value: &str, min: f64) -> Result<f64, ApiError> {
    let n: f64 = value
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| {
            bad(format!(
                "{key} must be a number conforming to the specified constraints"
            ))
        })?;
    if n < min {
        return Err(bad(format!("{key} must not be less than {min}")));
    }
    Ok(n)
}

fn parse_count(key: &str, value: &str, min: usize, max: Option<usize>) -> Result<usize, ApiError> {
    let n = parse_number(key, value, min as f64)?;
    if n.fract() != 0.0 {
        return Err(bad(format!("{key} must be an integer number")));
    }
    if let Some(max) = max
        && n > max as f64
    {
        return Err(bad(format!("{key} must not be greater than {max}")));
    }
    // Range-checked above (and bounded by the f64 → usize saturation for huge pages).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(n as usize)
}

fn parse_date(key: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| bad(format!("{key} must be a valid ISO 8601 date string")))
}

fn parse_sort(route: ListRoute, value: &str) -> Result<SortField, ApiError> {
    let field = match (route, value) {
        (_, "name") => SortField::Name,
        (_, "createdAt") => SortField::CreatedAt,
        (_, "lastActivityAt") => SortField::LastActivityAt,
        (ListRoute::Cursor, "cpu") => SortField::Cpu,
        (ListRoute::Cursor, "memoryGib") => SortField::Memory,
        (ListRoute::Cursor, "diskGib") => SortField::Disk,
        (ListRoute::Paginated, "id") => SortField::Id,
        (ListRoute::Paginated, "state") => SortField::State,
        (ListRoute::Paginated, "snapshot") => SortField::Snapshot,
        (ListRoute::Paginated, "region") => SortField::Region,
        (ListRoute::Paginated, "updatedAt") => SortField::UpdatedAt,
        _ => {
            let allowed = match route {
                ListRoute::Cursor => "name, cpu, memoryGib, diskGib, lastActivityAt, createdAt",
                ListRoute::Paginated => {
                    "id, name, state, snapshot, region, updatedAt, createdAt, lastActivityAt"
                }
            };
            return Err(bad(format!(
                "sort must be one of the following values: {allowed}"
            )));
        }
    };
    Ok(field)
}

/// Parses the query string of a list route.
pub(crate) fn parse(query: Option<&str>, route: ListRoute) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery {
        cursor_offset: 0,
        page: 1,
        limit: DEFAULT_LIMIT,
        id: None,
        name: None,
        labels: None,
        states: Vec::new(),
        snapshots: Vec::new(),
        regions: Vec::new(),
        cpu: (None, None),
        memory: (None, None),
        disk: (None, None),
        is_public: None,
        is_recoverable: None,
        created: (None, None),
        last_event: (None, None),
        auto_destroy: (None, None),
        sort: SortField::CreatedAt,
        descending: true,
    };
    let pairs = url::form_urlencoded::parse(query.unwrap_or("").as_bytes());
    for (key, value) in pairs {
        let key = key.trim_end_matches("[]");
        let value = value.as_ref();
        let list = || value.split(',').map(str::trim).filter(|s| !s.is_empty());
        match key {
            "cursor" if route == ListRoute::Cursor => {
                q.cursor_offset = decode_cursor(value)?;
            }
            "page" if route == ListRoute::Paginated => {
                q.page = parse_count("page", value, 1, None)?;
            }
            "limit" => q.limit = parse_count("limit", value, 1, Some(MAX_LIMIT))?,
            "id" => q.id = Some(value.to_string()).filter(|s| !s.is_empty()),
            "name" => q.name = Some(value.to_string()).filter(|s| !s.is_empty()),
            "labels" if !value.is_empty() => {
                let labels: BTreeMap<String, String> = serde_json::from_str(value).map_err(|_| {
                    bad("labels must be a JSON-encoded object of string values, e.g. {\"env\":\"dev\"}")
                })?;
                q.labels = Some(labels);
            }
            "states" => {
                for s in list() {
                    let state = SandboxState::from_wire(s);
                    if matches!(state, SandboxState::Other(_)) {
                        let known: Vec<&str> = SandboxState::KNOWN
                            .iter()
                            .map(SandboxState::as_str)
                            .collect();
                        return Err(bad(format!(
                            "each value in states must be one of the following values: {}",
                            known.join(", ")
                        )));
                    }
                    q.states.push(state);
                }
            }
            "snapshots" => q.snapshots.extend(list().map(str::to_string)),
            "regionIds" | "regions" | "targets" => q.regions.extend(list().map(str::to_string)),
            "minCpu" => q.cpu.0 = Some(parse_number(key, value, 1.0)?),
            "maxCpu" => q.cpu.1 = Some(parse_number(key, value, 1.0)?),
            "minMemoryGiB" => q.memory.0 = Some(parse_number(key, value, 1.0)?),
            "maxMemoryGiB" => q.memory.1 = Some(parse_number(key, value, 1.0)?),
            "minDiskGiB" => q.disk.0 = Some(parse_number(key, value, 1.0)?),
            "maxDiskGiB" => q.disk.1 = Some(parse_number(key, value, 1.0)?),
            "isPublic" => q.is_public = Some(parse_bool(key, value)?),
            "isRecoverable" => q.is_recoverable = Some(parse_bool(key, value)?),
            "includeErroredDeleted" | "includeWarm" | "verbose" => {
                // Deleted and warm-pool sandboxes never exist in the emulator; only validated.
                parse_bool(key, value)?;
            }
            "createdAtAfter" => q.created.0 = Some(parse_date(key, value)?),
            "createdAtBefore" => q.created.1 = Some(parse_date(key, value)?),
            "lastEventAfter" | "lastActivityAfter" => {
                q.last_event.0 = Some(parse_date(key, value)?)
            }
            "lastEventBefore" | "lastActivityBefore" => {
                q.last_event.1 = Some(parse_date(key, value)?)
            }
            "autoDestroyAtAfter" => q.auto_destroy.0 = Some(parse_date(key, value)?),
            "autoDestroyAtBefore" => q.auto_destroy.1 = Some(parse_date(key, value)?),
            "sort" => q.sort = parse_sort(route, value)?,
            "order" => {
                q.descending = match value {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(bad("order must be one of the following values: asc, desc")),
                }
            }
            // Unknown parameters are ignored, as upstream.
            _ => {}
        }
    }
    Ok(q)
}

/// The opaque cursor for the page starting at `offset`.
pub(crate) fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_cursor(cursor: &str) -> Result<usize, ApiError> {
    if cursor.is_empty() {
        return Ok(0);
    }
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| bad("Invalid cursor"))
}

fn in_range(v: f64, range: (Option<f64>, Option<f64>)) -> bool {
    range.0.is_none_or(|min| v >= min) && range.1.is_none_or(|max| v <= max)
}

fn in_time_range(
    t: Option<DateTime<Utc>>,
    range: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> bool {
    if range.0.is_none() && range.1.is_none() {
        return true;
    }
    t.is_some_and(|t| range.0.is_none_or(|a| t >= a) && range.1.is_none_or(|b| t <= b))
}

fn parse_time(s: Option<&String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn matches(q: &ListQuery, e: &SandboxEntry) -> bool {
    let d = &e.dto;
    q.id.as_ref().is_none_or(|p| d.id.starts_with(p.as_str()))
        && q.name
            .as_ref()
            .is_none_or(|p| d.name.starts_with(p.as_str()))
        && q.labels
            .as_ref()
            .is_none_or(|want| want.iter().all(|(k, v)| d.labels.get(k) == Some(v)))
        && (q.states.is_empty() || q.states.contains(&e.state()))
        && (q.snapshots.is_empty() || d.snapshot.as_ref().is_some_and(|s| q.snapshots.contains(s)))
        && (q.regions.is_empty() || q.regions.contains(&d.target))
        && in_range(d.cpu, q.cpu)
        && in_range(d.memory, q.memory)
        && in_range(d.disk, q.disk)
        && q.is_public.is_none_or(|p| d.public == p)
        && q.is_recoverable
            .is_none_or(|r| d.recoverable.unwrap_or(false) == r)
        && in_time_range(Some(e.created_at), q.created)
        && in_time_range(Some(e.last_activity_at), q.last_event)
        && in_time_range(parse_time(d.auto_destroy_at.as_ref()), q.auto_destroy)
}

/// Every sandbox matching `q`, sorted; the caller pages through it.
pub(crate) fn select(state: &AppState, q: &ListQuery) -> Vec<Sandbox> {
    let registry = state.registry();
    let mut hits: Vec<&SandboxEntry> = registry
        .entries
        .values()
        .filter(|e| matches(q, e))
        .collect();
    hits.sort_by(|a, b| {
        let (x, y) = (&a.dto, &b.dto);
        let primary = match q.sort {
            SortField::Id => x.id.cmp(&y.id),
            SortField::Name => x.name.cmp(&y.name),
            SortField::State => a.state().as_str().cmp(b.state().as_str()),
            SortField::Snapshot => x.snapshot.cmp(&y.snapshot),
            SortField::Region => x.target.cmp(&y.target),
            SortField::Cpu => x.cpu.total_cmp(&y.cpu),
            SortField::Memory => x.memory.total_cmp(&y.memory),
            SortField::Disk => x.disk.total_cmp(&y.disk),
            SortField::UpdatedAt => x.updated_at.cmp(&y.updated_at),
            SortField::CreatedAt => a.created_at.cmp(&b.created_at),
            SortField::LastActivityAt => a.last_activity_at.cmp(&b.last_activity_at),
        };
        // Creation order breaks ties, so pages never overlap or skip.
        let ordered = primary.then(a.seq.cmp(&b.seq));
        if q.descending {
            ordered.reverse()
        } else {
            ordered
        }
    });
    hits.into_iter().map(SandboxEntry::render).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_comma_separated_arrays() {
        let q = parse(
            Some("states=started&states=stopped,archived&labels=%7B%22a%22%3A%22b%22%7D"),
            ListRoute::Cursor,
        )
        .unwrap();
        assert_eq!(
            q.states,
            vec![
                SandboxState::Started,
                SandboxState::Stopped,
                SandboxState::Archived
            ]
        );
        assert_eq!(q.labels.unwrap()["a"], "b");
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(
            parse(Some("limit=0"), ListRoute::Cursor)
                .unwrap_err()
                .message
                .contains("limit")
        );
        assert!(parse(Some("limit=201"), ListRoute::Cursor).is_err());
        assert!(
            parse(Some("labels=nope"), ListRoute::Cursor)
                .unwrap_err()
                .message
                .contains("labels")
        );
        assert!(parse(Some("states=flying"), ListRoute::Cursor).is_err());
        assert!(parse(Some("cursor=%%%"), ListRoute::Cursor).is_err());
        assert!(parse(Some("sort=id"), ListRoute::Cursor).is_err());
        assert!(parse(Some("sort=id"), ListRoute::Paginated).is_ok());
        assert!(parse(Some("isPublic=maybe"), ListRoute::Cursor).is_err());
    }

    #[test]
    fn cursor_round_trips() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
    }
}

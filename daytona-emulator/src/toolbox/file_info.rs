//! [`FileInfo`] as the Go daemon renders it: Go `FileMode` strings, `%04o` permissions,
//! numeric owner and group, `time.String()` and RFC 3339 times.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use chrono::{DateTime, Utc};
use daytona_api::toolbox::FileInfo;

/// Build the daemon's description of an entry from its metadata.
pub(crate) fn file_info(name: String, sandbox_path: String, meta: &Metadata) -> FileInfo {
    let modified: DateTime<Utc> = DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec() as u32)
        .unwrap_or(DateTime::UNIX_EPOCH);
    FileInfo {
        name,
        size: meta.len(),
        is_dir: meta.is_dir(),
        mode: go_mode_string(meta),
        permissions: format!("{:04o}", meta.mode() & 0o777),
        owner: meta.uid().to_string(),
        group: meta.gid().to_string(),
        mod_time: go_time_string(modified),
        modified_at: rfc3339_nano(modified),
        path: Some(sandbox_path),
    }
}

/// Go's `FileMode.String()`: type and special letters from `dalTLDpSugct?` in that order (or `-`
/// when none apply), then `rwxrwxrwx` with `-` for clear bits.
pub(crate) fn go_mode_string(meta: &Metadata) -> String {
    let ft = meta.file_type();
    let mode = meta.mode();
    let mut out = String::with_capacity(12);
    // Letters in Go's bit order: d a l T L D p S u g c t ?
    if ft.is_dir() {
        out.push('d');
    }
    if ft.is_symlink() {
        out.push('L');
    }
    if ft.is_block_device() || ft.is_char_device() {
        out.push('D');
    }
    if ft.is_fifo() {
        out.push('p');
    }
    if ft.is_socket() {
        out.push('S');
    }
    if mode & 0o4000 != 0 {
        out.push('u');
    }
    if mode & 0o2000 != 0 {
        out.push('g');
    }
    if ft.is_char_device() {
        out.push('c');
    }
    if mode & 0o1000 != 0 {
        out.push('t');
    }
    if out.is_empty() {
        out.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        out.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    out
}

/// Nanoseconds as Go prints a fraction: a dot and the digits without trailing zeros, or nothing.
fn go_fraction(nanos: u32) -> String {
    if nanos == 0 {
        return String::new();
    }
    let digits = format!("{nanos:09}");
    format!(".{}", digits.trim_end_matches('0'))
}

/// Go's `time.Time.String()` for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub(crate) fn go_time_string(t: DateTime<Utc>) -> String {
    format!(
        "{}{} +0000 UTC",
        t.format("%Y-%m-%d %H:%M:%S"),
        go_fraction(t.timestamp_subsec_nanos())
    )
}

/// Go's JSON time (RFC 3339 with trimmed nanoseconds): `2006-01-02T15:04:05.999999999Z`.
pub(crate) fn rfc3339_nano(t: DateTime<Utc>) -> String {
    format!(
        "{}{}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        go_fraction(t.timestamp_subsec_nanos())
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn mode_strings_match_go() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"abc").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let meta = std::fs::metadata(&f).unwrap();
        assert_eq!(go_mode_string(&meta), "-rw-r--r--");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4755)).unwrap();
        assert_eq!(
            go_mode_string(&std::fs::metadata(&f).unwrap()),
            "urwxr-xr-x"
        );
        let d = dir.path().join("d");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(
            go_mode_string(&std::fs::metadata(&d).unwrap()),
            "dtrwxrwxrwx"
        );
        std::os::unix::fs::symlink("f", dir.path().join("l")).unwrap();
        let lmeta = std::fs::symlink_metadata(dir.path().join("l")).unwrap();
        assert_eq!(go_mode_string(&lmeta), "Lrwxrwxrwx");
        let info = file_info("f".into(), "/x/f".into(), &std::fs::metadata(&f).unwrap());
        assert_eq!(info.permissions, "0755");
        assert_eq!(info.size, 3);
        assert!(!info.is_dir);
    }

    #[test]
    fn times_render_like_go() {
        let t = DateTime::from_timestamp(1_700_000_000, 120_000_000).unwrap();
        assert_eq!(go_time_string(t), "2023-11-14 22:13:20.12 +0000 UTC");
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        let whole = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(rfc3339_nano(whole), "2023-11-14T22:13:20Z");
    }
}

//! The machine line of every section, and writing a section into `BENCHMARKS.md`.

use std::path::{Path, PathBuf};

/// `BENCHMARKS.md` at the workspace root, wherever the bench runs from.
pub fn benchmarks_md() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md")
}

/// Cores, CPU model and kernel.
pub fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {kernel}")
}

/// Replace (or append) the section between `<!-- name:start -->` and `<!-- name:end -->`.
pub fn write_section(path: &Path, name: &str, body: &str) -> std::io::Result<()> {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\nEvery figure below is a ratio against a reference measured in the same run, \
         interleaved, on the machine named in its section.\n"
            .to_string()
    });
    let block = format!("{start}\n{body}{end}");
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &old[..a], block, &old[b + end.len()..]),
        _ => format!("{}\n{}\n", old.trim_end(), block),
    };
    std::fs::write(path, new)
}

/// Print `body`; unless `quick`, also write it as section `name` of `BENCHMARKS.md`.
pub fn publish(name: &str, body: &str, quick: bool) -> std::io::Result<()> {
    println!("{body}");
    if quick {
        println!("(BENCH_QUICK: the {name} section was not written)");
    } else {
        let path = benchmarks_md();
        write_section(&path, name, body)?;
        println!("wrote the {name} section of {}", path.display());
    }
    Ok(())
}

//! A large file up and down through the client (`FileSystem::upload_file`,
//! `FileSystem::download_to_path`), each transfer in a child process of its own so its peak
//! memory (`VmHWM`) shows whether the client streams or buffers.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use workspace_daytona::{CreateSandboxParams, DaytonaClient, DaytonaConfig};

use super::child::{self, API_URL_VAR};
use super::usage::{hwm_kib, rss_kib};
use super::{API_KEY, Result};

const REMOTE: &str = "bench/transfer.bin";

/// One transfer, as its child measured it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferRun {
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time of the call, ms.
    pub ms: f64,
    /// Resident memory just before the call, KiB.
    pub before_kib: u64,
    /// Peak resident memory of the child's whole life, KiB.
    pub peak_kib: u64,
}

impl TransferRun {
    /// MiB per second.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / (self.ms / 1000.0)
    }
}

/// Every round of both directions.
#[derive(Debug, Clone, Default)]
pub struct Transfers {
    /// Uploads.
    pub uploads: Vec<TransferRun>,
    /// Downloads.
    pub downloads: Vec<TransferRun>,
}

/// `rounds` × (upload, download) of a `bytes`-long file through one sandbox; each download is
/// checked byte for byte against the original.
pub async fn measure(api_url: &str, bytes: u64, rounds: usize) -> Result<Transfers> {
    let dir = tempfile::tempdir()?;
    let original = dir.path().join("original.bin");
    let fetched = dir.path().join("fetched.bin");
    write_file(&original, bytes)?;
    let client = DaytonaClient::new(DaytonaConfig::with_api_key(API_KEY).api_url(api_url)?)?;
    let mut sandbox = client
        .create(
            CreateSandboxParams::new().label("bench", "transfer"),
            Some(Duration::from_secs(120)),
        )
        .await?;
    let mut out = Transfers::default();
    let result = async {
        for _ in 0..rounds {
            let env = |local: &Path| {
                vec![
                    (API_URL_VAR, api_url.to_string()),
                    ("DAYTONA_BENCH_SANDBOX", sandbox.id().to_string()),
                    ("DAYTONA_BENCH_LOCAL", local.display().to_string()),
                ]
            };
            out.uploads
                .push(child::run("upload", &env(&original)).await?);
            out.downloads
                .push(child::run("download", &env(&fetched)).await?);
            if !same_content(&original, &fetched)? {
                return Err("the downloaded file differs from the uploaded one".into());
            }
            std::fs::remove_file(&fetched)?;
        }
        Ok::<_, super::BoxError>(())
    }
    .await;
    sandbox.delete(Some(Duration::from_secs(60))).await?;
    result?;
    Ok(out)
}

/// The `upload` and `download` roles.
pub fn child_main(role: &str) -> Result<()> {
    let api_url = child::setting(API_URL_VAR)?;
    let id = child::setting("DAYTONA_BENCH_SANDBOX")?;
    let local = child::setting("DAYTONA_BENCH_LOCAL")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let run = runtime.block_on(async {
        let client = DaytonaClient::new(DaytonaConfig::with_api_key(API_KEY).api_url(&api_url)?)?;
        let sandbox = client.get(&id).await?;
        let fs = sandbox.fs();
        let before_kib = rss_kib();
        let t = Instant::now();
        if role == "upload" {
            fs.upload_file(&local, REMOTE).await?;
        } else {
            fs.download_to_path(REMOTE, &local).await?;
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let bytes = std::fs::metadata(&local)?.len();
        Ok::<_, super::BoxError>(TransferRun {
            bytes,
            ms,
            before_kib,
            peak_kib: hwm_kib(),
        })
    })?;
    child::answer(&run)
}

/// `bytes` of varied (incompressible-looking) data.
fn write_file(path: &Path, bytes: u64) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = f.read(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

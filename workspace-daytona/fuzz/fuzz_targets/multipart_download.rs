//! The bulk-download multipart reader must never panic on any body, however it is chunked,
//! and must answer exactly one outcome per requested path.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use workspace_daytona::multipart::{MemorySink, parse_content_disposition, read_bulk_download};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, body)) = data.split_first() else {
        return;
    };
    // Exercise the header parser on the raw input as well.
    let _ = parse_content_disposition(body);

    let chunk = usize::from(chunk % 64) + 1;
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let requested = vec!["/a".to_string(), "/b".to_string(), "/a".to_string()];
    let mut sink = MemorySink::new(requested.len());
    let result = futures::executor::block_on(read_bulk_download(
        futures::stream::iter(chunks),
        "DAYTONA-FILE-BOUNDARY",
        &requested,
        &mut sink,
    ));
    if let Ok(outcomes) = result {
        assert_eq!(outcomes.len(), requested.len());
    }
});

//! The demuxer must never panic, and cutting the input into frames anywhere must not change
//! what it emits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workspace_daytona::demux::{Demuxer, OutputStream, split_all};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, log)) = data.split_first() else {
        return;
    };
    let want = split_all(log);

    let mut out = String::new();
    let mut err = String::new();
    let mut sink = |s: OutputStream, t: String| match s {
        OutputStream::Stdout => out.push_str(&t),
        OutputStream::Stderr => err.push_str(&t),
    };
    let mut d = Demuxer::new();
    // Frame sizes cycle through 1..=8, offset by the seed byte.
    let mut rest = log;
    let mut i = usize::from(seed);
    while !rest.is_empty() {
        let n = (i % 8 + 1).min(rest.len());
        d.push(&rest[..n], &mut sink);
        rest = &rest[n..];
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    d.finish(&mut sink);
    assert_eq!((out, err), want);
});

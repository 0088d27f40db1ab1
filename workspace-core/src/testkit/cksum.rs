//! The POSIX `cksum` checksum, so a check can compare a file's bytes inside the sandbox with
//! the bytes it wrote without transferring them back.

/// CRC-32 (polynomial 0x04C11DB7, most significant bit first) lookup table.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn feed(crc: u32, byte: u8) -> u32 {
    (crc << 8) ^ TABLE[((crc >> 24) as u8 ^ byte) as usize]
}

/// The checksum `cksum` prints for `data` (its first output field).
///
/// ```
/// assert_eq!(workspace_core::testkit::posix_cksum(b"123456789"), 930_766_865);
/// ```
pub fn posix_cksum(data: &[u8]) -> u32 {
    let mut crc = data.iter().fold(0u32, |crc, &b| feed(crc, b));
    // POSIX appends the length, least significant byte first, without trailing zero bytes.
    let mut len = data.len() as u64;
    while len != 0 {
        crc = feed(crc, (len & 0xff) as u8);
        len >>= 8;
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_values() {
        assert_eq!(posix_cksum(b""), 4_294_967_295);
        assert_eq!(posix_cksum(b"123456789"), 930_766_865);
    }

    #[test]
    fn matches_the_system_cksum() {
        let data = super::super::pseudo_random_bytes(70_001, 3);
        let mut child = std::process::Command::new("cksum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cksum runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(&data).expect("write");
        }
        let out = child.wait_with_output().expect("cksum output");
        let text = String::from_utf8(out.stdout).expect("utf8");
        let crc: u32 = text
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .expect("crc field");
        assert_eq!(crc, posix_cksum(&data));
    }
}

//! TFRecord framing, as TensorFlow writes every event file: for each record the length
//! (u64, little-endian), the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C
//! of the data. The mask is TensorFlow's: `((crc >> 15) | (crc << 17)) + 0xa282ead8`.

use std::io::{Read, Write};

/// TensorFlow's masked CRC-32C of `bytes`.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes one framed record.
pub fn write(to: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    to.write_all(&len)?;
    to.write_all(&masked_crc(&len).to_le_bytes())?;
    to.write_all(data)?;
    to.write_all(&masked_crc(data).to_le_bytes())
}

/// Reads every framed record of `from`, checking both CRCs of each; a damaged or cut record
/// is an error naming its index.
pub fn read_all(from: &mut impl Read) -> std::io::Result<Vec<Vec<u8>>> {
    let mut bytes = Vec::new();
    from.read_to_end(&mut bytes)?;
    let mut records = Vec::new();
    let mut at = 0;
    let bad = |i: usize, what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("record {i}: {what}"),
        )
    };
    while at < bytes.len() {
        let i = records.len();
        let word = |from: usize, n: usize| bytes.get(from..from.checked_add(n)?);
        let len_bytes = word(at, 8).ok_or_else(|| bad(i, "cut in its header"))?;
        let len_crc = word(at + 8, 4).ok_or_else(|| bad(i, "cut in its header"))?;
        if masked_crc(len_bytes) != u32_le(len_crc) {
            return Err(bad(i, "length CRC mismatch"));
        }
        let len = usize::try_from(u64_le(len_bytes)).map_err(|_| bad(i, "length out of range"))?;
        let data = word(at + 12, len).ok_or_else(|| bad(i, "cut in its data"))?;
        let end = at + 12 + len;
        let crc = word(end, 4).ok_or_else(|| bad(i, "cut in its CRC"))?;
        if masked_crc(data) != u32_le(crc) {
            return Err(bad(i, "data CRC mismatch"));
        }
        records.push(data.to_vec());
        at = end + 4;
    }
    Ok(records)
}

/// A little-endian u32 of 4 bytes (the callers slice exactly 4).
fn u32_le(b: &[u8]) -> u32 {
    b.iter().rev().fold(0, |acc, &x| (acc << 8) | u32::from(x))
}

/// A little-endian u64 of 8 bytes (the callers slice exactly 8).
fn u64_le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_mask_match_the_published_values() {
        // CRC-32C check value of "123456789" (RFC 3720, iSCSI).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // TensorFlow's mask of it, ((crc >> 15) | (crc << 17)) + 0xa282ead8, worked by hand.
        assert_eq!(masked_crc(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn records_round_trip_and_damage_is_found() {
        let mut file = Vec::new();
        for r in [&b"first"[..], b"", b"third record"] {
            write(&mut file, r).unwrap();
        }
        let back = read_all(&mut &file[..]).unwrap();
        assert_eq!(
            back,
            vec![b"first".to_vec(), vec![], b"third record".to_vec()]
        );
        let mut damaged = file.clone();
        damaged[13] ^= 1; // in the first record's data
        assert!(read_all(&mut &damaged[..])
            .unwrap_err()
            .to_string()
            .contains("record 0"));
        let cut = &file[..file.len() - 2];
        assert!(read_all(&mut &cut[..])
            .unwrap_err()
            .to_string()
            .contains("record 2"));
        // A length past the end (or past usize) is a damaged record, not a panic.
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend(masked_crc(&huge).to_le_bytes());
        let err = read_all(&mut &huge[..]).unwrap_err().to_string();
        assert!(err.contains("record 0"), "{err}");
    }
}

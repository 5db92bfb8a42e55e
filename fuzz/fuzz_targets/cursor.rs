//! The SSE event id (`Last-Event-ID`, `?last_event_id=`, an ack's `cursor`): untrusted text
//! from any client. Decoding must never panic or allocate without bound, whatever the bytes;
//! a cursor it accepts re-encodes to one that decodes the same; and any positions round-trip
//! through encode and decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tumbleweed_sink::cursor::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    // The consumer's side: a fingerprint and a topic count taken from the input.
    let fp = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    let topics = usize::from(data[4] % 8);
    let rest = &data[5..];

    if let Ok(text) = std::str::from_utf8(rest) {
        if let Ok(positions) = decode(text, fp, topics) {
            let again = encode(fp, &positions);
            assert_eq!(decode(&again, fp, topics).as_ref(), Ok(&positions));
        }
    }

    // The sink's side: positions made from the bytes (offsets are never negative) round-trip.
    let mut positions = vec![Vec::new(); topics];
    for (i, chunk) in rest.chunks(8).enumerate() {
        if topics == 0 {
            break;
        }
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        positions[i % topics].push(i64::from_le_bytes(b) & i64::MAX);
    }
    let cursor = encode(fp, &positions);
    assert_eq!(decode(&cursor, fp, topics), Ok(positions));
});

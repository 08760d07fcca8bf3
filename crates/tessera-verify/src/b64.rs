//! Base64url without padding (RFC 4648 §5, as JWS and `t1.` tokens use it), decoded on the
//! token path: a table look-up per character and three bytes written per four characters,
//! about half the instructions of the `base64` crate's general-purpose engine on a token
//! (docs/benchmarks.md). It accepts exactly what `base64`'s `URL_SAFE_NO_PAD` accepts — no
//! padding, no other alphabet, a final character without unused bits set (one spelling per
//! byte string) — which a property test checks against that crate.

/// Marks a byte outside the alphabet.
const INVALID: u8 = 0xff;

/// The 6-bit value of each byte, or [`INVALID`].
const VALUES: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut values = [INVALID; 256];
    let mut i = 0;
    while i < alphabet.len() {
        values[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    values
};

fn value(byte: u8) -> Option<u32> {
    let v = VALUES[usize::from(byte)];
    (v != INVALID).then_some(u32::from(v))
}

/// Decodes `input`; `None` for anything `URL_SAFE_NO_PAD` refuses.
pub(crate) fn decode(input: &str) -> Option<Vec<u8>> {
    let input = input.as_bytes();
    let tail_len = match input.len() % 4 {
        0 => 0,
        1 => return None,
        partial => partial - 1,
    };
    let whole = input.len() / 4;
    let mut out = vec![0u8; whole * 3 + tail_len];
    let (body, tail) = out.split_at_mut(whole * 3);
    for (chars, bytes) in input.chunks_exact(4).zip(body.chunks_exact_mut(3)) {
        let [a, b, c, d] = [chars[0], chars[1], chars[2], chars[3]].map(|x| VALUES[usize::from(x)]);
        // Valid values are below 64; INVALID sets the top bits.
        if (a | b | c | d) & 0xc0 != 0 {
            return None;
        }
        let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        bytes.copy_from_slice(&n.to_be_bytes()[1..]);
    }
    let rest = &input[whole * 4..];
    match *rest {
        [] => {}
        [a, b] => {
            let n = value(a)? << 18 | value(b)? << 12;
            // The unused low bits of the last character must be zero.
            if n & 0xffff != 0 {
                return None;
            }
            tail[0] = (n >> 16) as u8;
        }
        [a, b, c] => {
            let n = value(a)? << 18 | value(b)? << 12 | value(c)? << 6;
            if n & 0xff != 0 {
                return None;
            }
            tail[0] = (n >> 16) as u8;
            tail[1] = (n >> 8) as u8;
        }
        _ => return None,
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(decode(""), Some(vec![]));
        assert_eq!(decode("Zg"), Some(b"f".to_vec()));
        assert_eq!(decode("Zm8"), Some(b"fo".to_vec()));
        assert_eq!(decode("Zm9v"), Some(b"foo".to_vec()));
        assert_eq!(decode("-_-_"), Some(vec![0xfb, 0xff, 0xbf]));
        for refused in ["Z", "Zg==", "Zm9v=", "Zh", "Zm9", "+/+/", "Zm 9", "Zm9v\n", "é"] {
            assert_eq!(decode(refused), None, "{refused:?}");
        }
    }

    proptest! {
        /// Any text: accepted and decoded exactly as the `base64` crate's `URL_SAFE_NO_PAD`.
        #[test]
        fn agrees_with_the_base64_crate(text in "[A-Za-z0-9_=+/ -]{0,24}") {
            prop_assert_eq!(decode(&text), URL_SAFE_NO_PAD.decode(&text).ok());
        }

        /// Any bytes round-trip.
        #[test]
        fn decodes_what_the_base64_crate_encodes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode(&URL_SAFE_NO_PAD.encode(&bytes)), Some(bytes));
        }
    }
}

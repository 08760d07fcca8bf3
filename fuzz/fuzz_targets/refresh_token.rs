//! Sealed refresh tokens and delegated refresh tokens (`refresh::open`).
//!
//! Properties: a blob opened with the wrong key never yields a grant; with the right key only
//! the sealed fixtures open (any other spelling differs at most in surrounding whitespace),
//! and a grant's redemption rule follows from its receivers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::refresh;
use tessera_core::seal::SealingKey;
use tessera_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let (Ok(right), Ok(wrong)) = (
        SealingKey::from_bytes(&REFRESH_KEY),
        SealingKey::from_bytes(&WRONG_REFRESH_KEY),
    ) else {
        return;
    };
    assert!(
        refresh::open(token, &wrong, now()).is_err(),
        "the wrong key opened a refresh token"
    );
    let Ok(grant) = refresh::open(token, &right, now()) else {
        return;
    };
    assert!(
        is_one_of(token.trim(), sealed_refresh_tokens()),
        "a refresh token that was never sealed opened"
    );
    assert!(grant.exp > now());
    assert_eq!(grant.is_delegated(), !grant.receivers.is_empty());
    if grant.is_delegated() {
        assert!(!grant.redeemable_by(&format!("{}-not-a-receiver", grant.receivers.join(""))));
        for receiver in &grant.receivers {
            assert!(grant.redeemable_by(receiver));
        }
    } else {
        assert!(grant.redeemable_by(&grant.client_key));
    }
});

//! The hand-written `Debug` of every secret-bearing view shows the rest of the object, never
//! the secret.

use crate::admin::{
    ApiKeyView, AuthorizedKeyView, ClientView, IdTokenView, OAuthTokenView, TotpEnrollView,
};
use crate::token::{IbmTokenResponse, YandexIamToken};
use serde::de::DeserializeOwned;

#[allow(clippy::unwrap_used)] // A test of fixed input.
fn shown<T: DeserializeOwned + std::fmt::Debug>(json: serde_json::Value) -> String {
    format!("{:?}", serde_json::from_value::<T>(json).unwrap())
}

#[test]
fn secrets_are_redacted_and_the_rest_is_shown() {
    let at = "2026-01-01T00:00:00Z";
    let cases = [
        shown::<IbmTokenResponse>(serde_json::json!({
            "access_token": "SECRET-A", "refresh_token": "SECRET-R",
            "delegated_refresh_token": "SECRET-D", "token_type": "Bearer", "expires_in": 3600,
            "expiration": 1, "scope": "ibm openid"
        })),
        shown::<YandexIamToken>(serde_json::json!({"iamToken": "SECRET-T", "expiresAt": at})),
        shown::<ApiKeyView>(serde_json::json!({
            "id": "ApiKey-1", "name": "k", "description": "", "owner_iam_id": "iam-ServiceId-1",
            "account_id": "a", "created_at": at, "apikey": "SECRET-K"
        })),
        shown::<ClientView>(serde_json::json!({
            "id": "c1", "name": "c", "account_id": null, "created_at": at, "secret": "SECRET-S"
        })),
        shown::<OAuthTokenView>(serde_json::json!({
            "id": "OAuthToken-1", "user_id": "IBMid-1", "account_id": "a", "description": "",
            "created_at": at, "token": "SECRET-O"
        })),
        shown::<AuthorizedKeyView>(serde_json::json!({
            "id": "aje1", "service_account_id": "s", "account_id": "a", "description": "",
            "key_algorithm": "RSA_2048", "public_key": "PUB", "created_at": at,
            "key_file": {"id": "aje1", "service_account_id": "s", "created_at": at,
                         "key_algorithm": "RSA_2048", "public_key": "PUB",
                         "private_key": "SECRET-P"}
        })),
        shown::<TotpEnrollView>(serde_json::json!({
            "user_id": "IBMid-1", "secret": "SECRET-TOTP",
            "otpauth_uri": "otpauth://totp/x?secret=SECRET-TOTP", "confirmed": false,
            "replacement": false, "created_at": at
        })),
        shown::<IdTokenView>(serde_json::json!({"id_token": "SECRET-I", "expires_in": 600})),
    ];
    for text in cases {
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}

"""Trusted profiles against IBM's official Python SDK core: ``IAMAssumeAuthenticator``.

The authenticator first exchanges its API key for an IAM token (the API-key grant), then calls
the ``assume`` grant with that token and the profile selector (``profile_id``, ``profile_crn``, or
``profile_name`` + ``account``). The profile and its trust are created with plain ``requests``
through the admin API, never with the SDK under test.
"""

import base64
import json

import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import IAMAssumeAuthenticator

from conftest import _create_api_key, unique


def decode_jwt_payload(token):
    parts = token.split(".")
    assert len(parts) == 3, f"not a three-part JWT: {token[:40]}..."
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


@pytest.fixture(scope="module")
def trusted_profile(admin, admin_account_id, service_account):
    """A profile in the administrator's account that trusts ``service_account``."""
    profile = admin.post(
        "/v1/trusted_profiles",
        {
            "account_id": admin_account_id,
            "name": unique("compat-profile"),
            "identities": [{"type": "serviceid", "identifier": service_account["iam_id"]}],
        },
    )
    assert profile["id"].startswith("Profile-"), profile
    return profile


def assert_profile_token(token, profile, service_account):
    claims = decode_jwt_payload(token)
    assert claims["sub_type"] == "Profile", claims
    assert claims["iam_id"] == profile["iam_id"]
    assert claims["account"]["bss"] == profile["account_id"]
    assert claims["authn"]["iam_id"] == service_account["iam_id"]
    assert claims["grant_type"] == "urn:ibm:params:oauth:grant-type:assume"


def test_assume_by_profile_id(tessera_url, api_key, trusted_profile, service_account):
    auth = IAMAssumeAuthenticator(
        api_key["apikey"], iam_profile_id=trusted_profile["id"], url=tessera_url
    )
    assert_profile_token(auth.token_manager.get_token(), trusted_profile, service_account)


def test_assume_by_profile_crn(tessera_url, api_key, trusted_profile, service_account):
    auth = IAMAssumeAuthenticator(
        api_key["apikey"], iam_profile_crn=trusted_profile["crn"], url=tessera_url
    )
    assert_profile_token(auth.token_manager.get_token(), trusted_profile, service_account)


def test_assume_by_profile_name_and_account(
    tessera_url, api_key, trusted_profile, service_account
):
    auth = IAMAssumeAuthenticator(
        api_key["apikey"],
        iam_profile_name=trusted_profile["name"],
        iam_account_id=trusted_profile["account_id"],
        url=tessera_url,
    )
    assert_profile_token(auth.token_manager.get_token(), trusted_profile, service_account)


def test_untrusted_api_key_is_refused_with_the_reason(tessera_url, admin, trusted_profile):
    stranger = admin.post("/v1/service_accounts", {"name": unique("compat-stranger")})
    key = _create_api_key(admin, stranger["iam_id"])
    auth = IAMAssumeAuthenticator(
        key["apikey"], iam_profile_id=trusted_profile["id"], url=tessera_url
    )
    with pytest.raises(ApiException) as caught:
        auth.token_manager.get_token()
    exc = caught.value
    assert exc.status_code == 400
    assert "is not a trusted identity of trusted profile" in exc.message, exc.message
    assert stranger["iam_id"] in exc.message


def test_unknown_profile_is_refused_with_the_reason(tessera_url, api_key):
    auth = IAMAssumeAuthenticator(
        api_key["apikey"], iam_profile_id="Profile-does-not-exist", url=tessera_url
    )
    with pytest.raises(ApiException) as caught:
        auth.token_manager.get_token()
    assert caught.value.status_code == 400
    assert "Trusted profile Profile-does-not-exist not found" in caught.value.message

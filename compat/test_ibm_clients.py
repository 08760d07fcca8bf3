"""OAuth clients with IBM's official Python SDK core (``ibm-cloud-sdk-core``).

``IAMAuthenticator(apikey, client_id=..., client_secret=...)`` sends Basic client credentials
with the API-key grant: the token then names that client, and its refresh token can be redeemed
by that client only. A delegated refresh token (requested with plain HTTP, as the Python SDK has
no option for it) is redeemed by a receiver client. Negative cases: a wrong secret makes the SDK
raise with Tessera's message; the public default client's refresh token is refused.
"""

import base64
import json
import uuid

import pytest
import requests
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import IAMAuthenticator

APIKEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"
DRT_GRANT = "urn:ibm:params:oauth:grant-type:delegated-refresh-token"


def claims_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture(scope="module")
def receiver(admin):
    """A second OAuth client, the receiver of delegated refresh tokens."""
    client = admin.post("/v1/clients", {"id": f"compat-receiver-{uuid.uuid4().hex[:8]}"})
    assert client.get("secret"), client
    return client


def test_sdk_token_names_the_client(tessera_url, api_key, oauth_client, service_account):
    authenticator = IAMAuthenticator(
        api_key["apikey"],
        url=tessera_url,
        client_id=oauth_client["id"],
        client_secret=oauth_client["secret"],
    )
    response = authenticator.token_manager.request_token()
    claims = claims_of(response["access_token"])
    assert claims["client_id"] == oauth_client["id"]
    assert claims["iam_id"] == service_account["iam_id"]
    # The refresh token the SDK received is redeemable by that client (with Basic) ...
    refreshed = requests.post(
        f"{tessera_url}/identity/token",
        data={"grant_type": "refresh_token", "refresh_token": response["refresh_token"]},
        auth=(oauth_client["id"], oauth_client["secret"]),
        timeout=10,
    )
    assert refreshed.status_code == 200, refreshed.text
    assert claims_of(refreshed.json()["access_token"])["client_id"] == oauth_client["id"]
    # ... and not without client authentication.
    refused = requests.post(
        f"{tessera_url}/identity/token",
        data={"grant_type": "refresh_token", "refresh_token": response["refresh_token"]},
        timeout=10,
    )
    assert refused.status_code == 400
    assert refused.json()["errorCode"] == "BXNIM0308E"


def test_sdk_wrong_secret_raises_with_our_message(tessera_url, api_key, oauth_client):
    authenticator = IAMAuthenticator(
        api_key["apikey"],
        url=tessera_url,
        client_id=oauth_client["id"],
        client_secret="wrong-" + oauth_client["secret"],
    )
    with pytest.raises(ApiException) as caught:
        authenticator.token_manager.get_token()
    exc = caught.value
    assert exc.status_code == 401, exc
    body = exc.http_response.json()
    assert body["errorCode"] == "BXNIM0301E", body
    # The SDK shows our errorMessage to its user, and the message says what is wrong.
    assert exc.message == body["errorMessage"]
    assert "client" in exc.message.lower(), exc.message
    assert oauth_client["secret"] not in exc.message


def test_default_client_refresh_token_is_refused(tessera_url, api_key, oauth_client):
    response = IAMAuthenticator(api_key["apikey"], url=tessera_url).token_manager.request_token()
    assert claims_of(response["access_token"])["client_id"] == "default"
    refused = requests.post(
        f"{tessera_url}/identity/token",
        data={"grant_type": "refresh_token", "refresh_token": response["refresh_token"]},
        auth=(oauth_client["id"], oauth_client["secret"]),
        timeout=10,
    )
    assert refused.status_code == 400
    assert "default client" in refused.json()["errorMessage"], refused.text


def test_delegated_refresh_token_for_a_receiver(tessera_url, api_key, oauth_client, receiver, service_account):
    issued = requests.post(
        f"{tessera_url}/identity/token",
        data={
            "grant_type": APIKEY_GRANT,
            "apikey": api_key["apikey"],
            "response_type": "cloud_iam delegated_refresh_token",
            "receiver_client_ids": receiver["id"],
        },
        auth=(oauth_client["id"], oauth_client["secret"]),
        timeout=10,
    )
    assert issued.status_code == 200, issued.text
    drt = issued.json()["delegated_refresh_token"]
    redeemed = requests.post(
        f"{tessera_url}/identity/token",
        data={"grant_type": DRT_GRANT, "refresh_token": drt},
        auth=(receiver["id"], receiver["secret"]),
        timeout=10,
    )
    assert redeemed.status_code == 200, redeemed.text
    claims = claims_of(redeemed.json()["access_token"])
    assert claims["client_id"] == receiver["id"]
    assert claims["iam_id"] == service_account["iam_id"]
    assert "refresh_token" not in redeemed.json()
    # The issuing client is not a receiver.
    refused = requests.post(
        f"{tessera_url}/identity/token",
        data={"grant_type": DRT_GRANT, "refresh_token": drt},
        auth=(oauth_client["id"], oauth_client["secret"]),
        timeout=10,
    )
    assert refused.status_code == 400
    assert "only its receiver clients" in refused.json()["errorMessage"], refused.text

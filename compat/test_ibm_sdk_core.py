"""Tessera against IBM's official Python SDK core (``ibm-cloud-sdk-core``).

``IAMAuthenticator`` is what every IBM Cloud Python SDK uses to turn an API key into a bearer
token, so these tests show that an unmodified IBM SDK works against Tessera: getting and decoding
tokens, sending them, client (Basic) authentication, and the errors the SDK shows its users.

How the SDK builds the token URL (ibm_cloud_sdk_core/token_managers/iam_request_based_token_manager.py):
it strips a trailing ``/identity/token`` from ``url`` and then requests ``url + "/identity/token"``
without normalising slashes, so ``http://host:port/`` becomes ``http://host:port//identity/token``.
The tests use all three spellings of the base URL.
"""

import base64
import json
import re
import uuid
import warnings

import pytest
import requests
from ibm_cloud_sdk_core import ApiException, BaseService
from ibm_cloud_sdk_core.authenticators import IAMAuthenticator

UNKNOWN_KEY_MESSAGE = "Provided API key could not be found."
TOKEN_PATH = "/identity/token"

# How the caller spells the token service URL -> the URL the SDK then posts to (given the base).
URL_SPELLINGS = {
    "base": ("{base}", "{base}/identity/token"),
    "trailing-slash": ("{base}/", "{base}//identity/token"),
    "full-token-path": ("{base}/identity/token", "{base}/identity/token"),
}


def decode_jwt_payload(token):
    """The claims of a JWT, decoded without checking the signature (as the SDK itself does)."""
    parts = token.split(".")
    assert len(parts) == 3, f"not a three-part JWT: {token[:40]}..."
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def token_of(authenticator):
    """Gets a token the way an SDK does before each call: ``authenticate`` on a request dict."""
    request = {"method": "GET", "url": "http://unused.invalid/", "headers": {}}
    authenticator.authenticate(request)
    header = request["headers"]["Authorization"]
    assert header.startswith("Bearer "), header
    return header[len("Bearer ") :]


def fetch_failure(authenticator):
    """The ApiException the SDK raises when the token request fails."""
    with pytest.raises(ApiException) as caught:
        authenticator.token_manager.get_token()
    return caught.value


def error_body(exc):
    assert exc.http_response is not None, "the SDK kept no HTTP response"
    return exc.http_response.json()


@pytest.mark.parametrize("spelling", sorted(URL_SPELLINGS))
def test_apikey_token_authenticates_requests(spelling, tessera_url, api_key, service_account, admin_account_id):
    given, posted = URL_SPELLINGS[spelling]
    authenticator = IAMAuthenticator(api_key["apikey"], url=given.format(base=tessera_url))
    manager = authenticator.token_manager
    assert manager.url + manager.OPERATION_PATH == posted.format(base=tessera_url)

    # authenticate() sets the bearer header on an SDK request dict; send that request.
    request = {"method": "GET", "url": f"{tessera_url}/v1/whoami", "headers": {}}
    authenticator.authenticate(request)
    authorization = request["headers"]["Authorization"]
    assert authorization.startswith("Bearer ")
    response = requests.request(request["method"], request["url"], headers=request["headers"], timeout=10)
    assert response.status_code == 200, response.text
    whoami = response.json()
    assert whoami["iam_id"] == service_account["iam_id"]
    assert whoami["account_id"] == admin_account_id
    assert whoami["sub_type"] == "ServiceId"
    assert whoami["global_admin"] is False

    # The token's claims have the shape of a real IBM service-ID token.
    token = authorization[len("Bearer ") :]
    claims = decode_jwt_payload(token)
    assert claims["iam_id"] == service_account["iam_id"]
    assert claims["sub_type"] == "ServiceId"
    assert claims["account"]["bss"] == admin_account_id
    assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int)
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["client_id"] == "default"
    assert claims["grant_type"] == "urn:ibm:params:oauth:grant-type:apikey"

    # What the SDK stored from the response (the Go SDK reads expires_in and expiration).
    info = manager.token_info
    assert info["token_type"] == "Bearer"
    assert info["expires_in"] == 3600
    assert info["expiration"] == claims["exp"]
    assert manager.expire_time == claims["exp"]

    # The SDK caches the token: the next call reuses it.
    assert token_of(authenticator) == token


def test_base_service_calls_the_server_with_the_token(tessera_url, api_key, service_account):
    """The full SDK path: a BaseService with an IAMAuthenticator calling an endpoint of the server."""
    service = BaseService(service_url=tessera_url, authenticator=IAMAuthenticator(api_key["apikey"], url=tessera_url))
    response = service.send(service.prepare_request("GET", "/v1/whoami"))
    assert response.get_status_code() == 200
    assert response.get_result()["iam_id"] == service_account["iam_id"]


def test_unknown_apikey_raises_api_exception(tessera_url):
    authenticator = IAMAuthenticator(f"compat-unknown-{uuid.uuid4().hex}", url=tessera_url)
    exc = fetch_failure(authenticator)
    assert exc.status_code == 400
    body = error_body(exc)
    assert body["errorCode"] == "BXNIM0415E"
    assert body["errorMessage"] == UNKNOWN_KEY_MESSAGE
    # The SDK shows the server's errorMessage to its user.
    assert exc.message == UNKNOWN_KEY_MESSAGE
    # ... and keeps the server's transaction id, which is also the error's requestId.
    assert exc.global_transaction_id, "no X-Global-Transaction-ID header"
    assert body["context"]["requestId"] == exc.global_transaction_id
    assert exc.global_transaction_id in str(exc)

    # The same failure through authenticate(), the path every SDK call takes. (A fresh
    # authenticator: after a failed fetch the SDK waits up to 60 s before it asks again.)
    with pytest.raises(ApiException) as caught:
        IAMAuthenticator(f"compat-unknown-{uuid.uuid4().hex}", url=tessera_url).authenticate({"headers": {}})
    assert caught.value.status_code == 400


def test_client_authentication(tessera_url, api_key, oauth_client, service_account):
    authenticator = IAMAuthenticator(
        api_key["apikey"],
        url=tessera_url,
        client_id=oauth_client["id"],
        client_secret=oauth_client["secret"],
    )
    claims = decode_jwt_payload(token_of(authenticator))
    assert claims["client_id"] == oauth_client["id"]
    assert claims["iam_id"] == service_account["iam_id"]


@pytest.mark.parametrize("wrong", ["secret", "client-id"])
def test_failed_client_authentication(wrong, tessera_url, api_key, oauth_client):
    client_id, secret = oauth_client["id"], oauth_client["secret"]
    if wrong == "secret":
        secret = "wrong-" + secret
    else:
        client_id = f"compat-no-such-client-{uuid.uuid4().hex[:8]}"
    authenticator = IAMAuthenticator(api_key["apikey"], url=tessera_url, client_id=client_id, client_secret=secret)
    exc = fetch_failure(authenticator)
    assert 400 <= exc.status_code < 500, exc
    if exc.status_code != 401:
        warnings.warn(f"a failed client authentication answered {exc.status_code}; IBM answers 401")
    message = str(exc.message).lower()
    assert "client" in message and re.search(r"auth|credential|secret", message), exc.message
    assert error_body(exc)["errorMessage"] == exc.message


def test_deleted_apikey_stops_working(admin, tessera_url, disposable_api_key):
    apikey = disposable_api_key["apikey"]
    assert decode_jwt_payload(token_of(IAMAuthenticator(apikey, url=tessera_url)))["iam_id"]

    admin.delete(f"/v1/api_keys/{disposable_api_key['id']}")

    exc = fetch_failure(IAMAuthenticator(apikey, url=tessera_url))
    assert exc.status_code == 400, exc
    assert error_body(exc)["errorCode"] == "BXNIM0415E"
    assert exc.message == UNKNOWN_KEY_MESSAGE

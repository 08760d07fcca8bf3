"""Tessera against Yandex Cloud's official Python SDK (``yandexcloud``).

``yandexcloud.SDK`` opens only TLS channels, calls ``ApiEndpointService/List`` on the endpoint it
is given (without credentials), and authenticates every later call with an IAM token it gets from
``IamTokenService/Create`` at the ``iam`` address from that list (calls to ``IamTokenService``
itself go without a token, so the authenticated SDK call here is ``ServiceAccountService/Get``,
which Tessera serves too). With a service-account key it
signs a PS256 JWT whose ``aud`` is ``https://iam.<endpoint>/iam/v1/tokens``; with ``token=`` it
sends the OAuth token. These tests use the SDK exactly as its users do, against a Tessera started
with ``--tls-self-signed`` (compat/run.sh), and the SDK's own generated stubs for the raw calls.

Environment (set by compat/run.sh): ``TESSERA_GRPC_ENDPOINT`` (``localhost:<port>``, the name the
self-signed certificate carries) and ``TESSERA_CA`` (the local CA certificate).
"""

import time

import grpc
import jwt
import pytest
import requests
import yandexcloud
from yandex.cloud.endpoint.api_endpoint_service_pb2 import ListApiEndpointsRequest
from yandex.cloud.endpoint.api_endpoint_service_pb2_grpc import ApiEndpointServiceStub
from yandex.cloud.iam.v1.iam_token_service_pb2 import (
    CreateIamTokenForServiceAccountRequest,
    CreateIamTokenRequest,
    RevokeIamTokenRequest,
)
from yandex.cloud.iam.v1.iam_token_service_pb2_grpc import IamTokenServiceStub
from yandex.cloud.iam.v1.service_account_service_pb2 import GetServiceAccountRequest
from yandex.cloud.iam.v1.service_account_service_pb2_grpc import ServiceAccountServiceStub

from conftest import TIMEOUT, _require_env, sign_in_as_new_user, unique


@pytest.fixture(scope="session")
def grpc_endpoint():
    return _require_env("TESSERA_GRPC_ENDPOINT")


@pytest.fixture(scope="session")
def ca_pem():
    with open(_require_env("TESSERA_CA"), "rb") as f:
        return f.read()


@pytest.fixture(scope="session")
def channel(grpc_endpoint, ca_pem):
    """A raw TLS channel for the SDK's generated stubs."""
    channel = grpc.secure_channel(grpc_endpoint, grpc.ssl_channel_credentials(root_certificates=ca_pem))
    yield channel
    channel.close()


def new_service_account(admin, admin_account_id, prefix):
    return admin.post("/v1/service_accounts", {"account_id": admin_account_id, "name": unique(prefix)})


def new_key_file(admin, service_account):
    created = admin.post("/v1/authorized_keys", {"service_account_id": service_account["id"]})
    key_file = created["key_file"]
    assert key_file["private_key"].startswith("-----BEGIN PRIVATE KEY-----"), key_file["private_key"][:40]
    return created["id"], key_file


def grant_token_creator(admin, subject_iam_id, target_service_account):
    admin.post(
        "/v1/access_bindings",
        {
            "subject_iam_id": subject_iam_id,
            "role": "iam.serviceAccounts.tokenCreator",
            "resource": f"service-account/{target_service_account['id']}",
        },
    )


def introspect(tessera_url, admin, token):
    response = admin.session.post(tessera_url + "/identity/introspect", data={"token": token}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def sdk_for(grpc_endpoint, ca_pem, **credentials):
    return yandexcloud.SDK(endpoint=grpc_endpoint, root_certificates=ca_pem, **credentials)


def test_endpoint_discovery_without_credentials(channel, grpc_endpoint):
    endpoints = ApiEndpointServiceStub(channel).List(ListApiEndpointsRequest(), timeout=TIMEOUT).endpoints
    by_id = {e.id: e.address for e in endpoints}
    assert "iam" in by_id and "endpoint" in by_id, by_id
    # The advertised address must be one the certificate names (127.0.0.1 or localhost).
    port = grpc_endpoint.rsplit(":", 1)[1]
    assert by_id["iam"].endswith(":" + port), by_id


def test_service_account_key_flow_authenticates_sdk_calls(
    admin, admin_account_id, tessera_url, grpc_endpoint, ca_pem
):
    robot = new_service_account(admin, admin_account_id, "yc-robot")
    target = new_service_account(admin, admin_account_id, "yc-target")
    grant_token_creator(admin, robot["iam_id"], target)
    _, key_file = new_key_file(admin, robot)

    sdk = sdk_for(grpc_endpoint, ca_pem, service_account_key=key_file)
    # The SDK discovers the iam endpoint, signs its JWT, calls Create and sends the t1 token.
    me = sdk.client(ServiceAccountServiceStub).Get(
        GetServiceAccountRequest(service_account_id=robot["id"]), timeout=TIMEOUT
    )
    assert me.id == robot["id"] and me.name == robot["name"], me
    assert me.folder_id == admin_account_id

    # The same token works for calls that need a role: the robot may mint for the target.
    channel = grpc.secure_channel(grpc_endpoint, grpc.ssl_channel_credentials(root_certificates=ca_pem))
    own = IamTokenServiceStub(channel).Create(
        yandexcloud._auth_fabric.get_auth_token_requester(
            service_account_key=key_file, endpoint=grpc_endpoint
        ).get_token_request(),
        timeout=TIMEOUT,
    )
    assert own.iam_token.startswith("t1.")
    assert introspect(tessera_url, admin, own.iam_token)["iam_id"] == robot["iam_id"]
    minted = IamTokenServiceStub(channel).CreateForServiceAccount(
        CreateIamTokenForServiceAccountRequest(service_account_id=target["id"]),
        metadata=(("authorization", f"Bearer {own.iam_token}"),),
        timeout=TIMEOUT,
    )
    assert minted.expires_at.seconds > time.time() + 3600
    info = introspect(tessera_url, admin, minted.iam_token)
    assert info["active"] is True and info["iam_id"] == target["iam_id"], info

    # A service account the robot may not read is refused with the robot's own identity.
    with pytest.raises(grpc.RpcError) as denied:
        sdk.client(ServiceAccountServiceStub).Get(
            GetServiceAccountRequest(service_account_id=target["id"]), timeout=TIMEOUT
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, denied.value
    assert robot["iam_id"] in denied.value.details()


def test_deleted_key_makes_the_sdk_fail(admin, admin_account_id, grpc_endpoint, ca_pem):
    robot = new_service_account(admin, admin_account_id, "yc-deleted")
    target = new_service_account(admin, admin_account_id, "yc-deleted-target")
    grant_token_creator(admin, robot["iam_id"], target)
    key_id, key_file = new_key_file(admin, robot)
    admin.delete(f"/v1/authorized_keys/{key_id}")

    sdk = sdk_for(grpc_endpoint, ca_pem, service_account_key=key_file)
    with pytest.raises(grpc.RpcError) as failure:
        sdk.client(ServiceAccountServiceStub).Get(
            GetServiceAccountRequest(service_account_id=robot["id"]), timeout=TIMEOUT
        )
    assert failure.value.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE), failure.value
    assert "does not exist" in failure.value.details() or "authorized key" in failure.value.details(), (
        failure.value.details()
    )


def test_create_for_service_account_allowed_and_denied_with_generated_stubs(
    admin, admin_account_id, api_key, service_account, channel, tessera_url
):
    target = new_service_account(admin, admin_account_id, "yc-stub-target")
    caller_token = requests.post(
        tessera_url + "/identity/token",
        data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": api_key["apikey"]},
        timeout=TIMEOUT,
    ).json()["access_token"]
    stub = IamTokenServiceStub(channel)
    request = CreateIamTokenForServiceAccountRequest(service_account_id=target["id"])
    metadata = (("authorization", f"Bearer {caller_token}"),)

    with pytest.raises(grpc.RpcError) as denied:
        stub.CreateForServiceAccount(request, metadata=metadata, timeout=TIMEOUT)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, denied.value
    assert "iam.serviceAccounts.tokenCreator" in denied.value.details()

    grant_token_creator(admin, service_account["iam_id"], target)
    allowed = stub.CreateForServiceAccount(request, metadata=metadata, timeout=TIMEOUT)
    assert allowed.iam_token.startswith("t1.")

    with pytest.raises(grpc.RpcError) as unauthenticated:
        stub.CreateForServiceAccount(request, timeout=TIMEOUT)
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_revoke_with_generated_stubs(admin, admin_account_id, channel, tessera_url):
    target = new_service_account(admin, admin_account_id, "yc-revoke")
    stub = IamTokenServiceStub(channel)
    admin_metadata = (("authorization", admin.session.headers["Authorization"]),)
    token = stub.CreateForServiceAccount(
        CreateIamTokenForServiceAccountRequest(service_account_id=target["id"]),
        metadata=admin_metadata,
        timeout=TIMEOUT,
    ).iam_token
    assert introspect(tessera_url, admin, token)["active"] is True

    revoked = stub.Revoke(RevokeIamTokenRequest(iam_token=token), metadata=admin_metadata, timeout=TIMEOUT)
    assert revoked.subject_id == target["id"]
    assert introspect(tessera_url, admin, token)["active"] is False
    # The revoked token no longer authenticates anything.
    with pytest.raises(grpc.RpcError) as failure:
        stub.Revoke(
            RevokeIamTokenRequest(iam_token=token), metadata=(("authorization", f"Bearer {token}"),), timeout=TIMEOUT
        )
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_oauth_token_flow(admin, admin_account_id, grpc_endpoint, ca_pem, tessera_url):
    # Only the user creates its own OAuth token (an administrator cannot).
    user, own = sign_in_as_new_user(admin, tessera_url, admin_account_id, "yc-user")
    target = new_service_account(admin, admin_account_id, "yc-oauth-target")
    oauth = own.post("/v1/oauth_tokens", {"user_id": user["id"]})
    assert oauth["token"].startswith("y0_")

    admin.post(
        "/v1/access_bindings",
        {"subject_iam_id": user["iam_id"], "role": "viewer", "resource": f"service-account/{target['id']}"},
    )
    sdk = sdk_for(grpc_endpoint, ca_pem, token=oauth["token"])
    # The SDK exchanges the OAuth token for a t1 token and reads the service account with it.
    read = sdk.client(ServiceAccountServiceStub).Get(
        GetServiceAccountRequest(service_account_id=target["id"]), timeout=TIMEOUT
    )
    assert read.id == target["id"]

    # A revoked OAuth token is refused by Create.
    admin.delete(f"/v1/oauth_tokens/{oauth['id']}")
    stub = IamTokenServiceStub(
        grpc.secure_channel(grpc_endpoint, grpc.ssl_channel_credentials(root_certificates=ca_pem))
    )
    with pytest.raises(grpc.RpcError) as failure:
        stub.Create(CreateIamTokenRequest(yandex_passport_oauth_token=oauth["token"]), timeout=TIMEOUT)
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_raw_create_with_a_pyjwt_token_and_a_forged_one(admin, admin_account_id, channel, grpc_endpoint):
    robot = new_service_account(admin, admin_account_id, "yc-raw")
    _, key_file = new_key_file(admin, robot)
    now = int(time.time())
    claims = {
        "iss": robot["id"],
        "aud": f"https://iam.{grpc_endpoint}/iam/v1/tokens",
        "iat": now,
        "exp": now + 3600,
    }
    good = jwt.encode(claims, key_file["private_key"], algorithm="PS256", headers={"kid": key_file["id"]})
    stub = IamTokenServiceStub(channel)
    assert stub.Create(CreateIamTokenRequest(jwt=good), timeout=TIMEOUT).iam_token.startswith("t1.")

    # RS256 with the right key, and PS256 with another key, are both refused.
    for forged in (
        jwt.encode(claims, key_file["private_key"], algorithm="RS256", headers={"kid": key_file["id"]}),
        jwt.encode(
            claims,
            new_key_file(admin, robot)[1]["private_key"],
            algorithm="PS256",
            headers={"kid": key_file["id"]},
        ),
    ):
        with pytest.raises(grpc.RpcError) as failure:
            stub.Create(CreateIamTokenRequest(jwt=forged), timeout=TIMEOUT)
        assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED, failure.value

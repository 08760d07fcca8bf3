"""The official IBM SDK core's ContainerAuthenticator (the cr-token grant) against Tessera.

A test issuer key pair is made here; its public JWK is registered as a trusted issuer through the
admin API, and compute-resource tokens it signs (PyJWT) are written to a file WITH a trailing
newline, as Kubernetes projects them. The SDK reads the file and exchanges the token for a
trusted profile's token.
"""

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import ContainerAuthenticator


def _b64(number):
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _key_pair(kid):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": _b64(numbers.n), "e": _b64(numbers.e)}
    return private, jwk


def _claims(issuer_url, namespace="prod", name="billing"):
    now = int(time.time())
    return {
        "iss": issuer_url,
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "aud": ["iam"],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": "0b5c"},
            "pod": {"name": f"{name}-7d9f", "uid": "77aa"},
        },
    }


def _payload(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="module")
def cluster(admin):
    """A trusted issuer with a fresh RSA key, and a profile linking its prod/billing account."""
    kid = f"k-{uuid.uuid4().hex[:8]}"
    private, jwk = _key_pair(kid)
    issuer_url = f"https://k8s-{uuid.uuid4().hex[:8]}.compat.example"
    issuer = admin.post(
        "/v1/trusted_issuers",
        {"name": "compat-cluster", "issuer_url": issuer_url, "jwks": {"keys": [jwk]}},
    )
    profile_name = f"billing-{uuid.uuid4().hex[:8]}"
    profile = admin.post(
        "/v1/trusted_profiles",
        {
            "name": profile_name,
            "links": [
                {"cr_type": "IKS_SA", "crn": issuer["crn"], "namespace": "prod", "name": "billing"}
            ],
        },
    )
    return {"issuer_url": issuer_url, "kid": kid, "private": private, "profile": profile}


def _token_file(tmp_path, token):
    path = tmp_path / "sa-token"
    path.write_text(token + "\n")
    return str(path)


def _sign(cluster, private=None, **claims):
    return jwt.encode(
        _claims(cluster["issuer_url"], **claims),
        private or cluster["private"],
        algorithm="RS256",
        headers={"kid": cluster["kid"]},
    )


def _check_profile_token(access_token, profile):
    claims = _payload(access_token)
    assert claims["sub_type"] == "Profile", claims
    assert claims["iam_id"] == profile["iam_id"], claims
    assert claims["authn"]["sub_type"] == "CR", claims
    assert claims["authn"]["sub"] == "system:serviceaccount:prod:billing", claims


def test_profile_name(tessera_url, cluster, tmp_path):
    authenticator = ContainerAuthenticator(
        iam_profile_name=cluster["profile"]["name"],
        url=tessera_url,
        cr_token_filename=_token_file(tmp_path, _sign(cluster)),
    )
    _check_profile_token(authenticator.token_manager.get_token(), cluster["profile"])
    # No refresh token comes back for cr-token.
    assert not authenticator.token_manager.refresh_token


def test_profile_id(tessera_url, cluster, tmp_path):
    authenticator = ContainerAuthenticator(
        iam_profile_id=cluster["profile"]["id"],
        url=tessera_url,
        cr_token_filename=_token_file(tmp_path, _sign(cluster)),
    )
    _check_profile_token(authenticator.token_manager.get_token(), cluster["profile"])


def test_token_of_another_key_is_refused_with_our_message(tessera_url, cluster, tmp_path):
    other, _ = _key_pair("other")
    authenticator = ContainerAuthenticator(
        iam_profile_id=cluster["profile"]["id"],
        url=tessera_url,
        cr_token_filename=_token_file(tmp_path, _sign(cluster, private=other)),
    )
    with pytest.raises(ApiException) as caught:
        authenticator.token_manager.get_token()
    assert caught.value.status_code == 400
    assert "signature does not verify" in str(caught.value), str(caught.value)


def test_other_namespace_is_not_admitted(tessera_url, cluster, tmp_path):
    authenticator = ContainerAuthenticator(
        iam_profile_id=cluster["profile"]["id"],
        url=tessera_url,
        cr_token_filename=_token_file(tmp_path, _sign(cluster, namespace="dev")),
    )
    with pytest.raises(ApiException) as caught:
        authenticator.token_manager.get_token()
    assert caught.value.status_code == 400
    assert "does not trust this compute resource" in str(caught.value), str(caught.value)

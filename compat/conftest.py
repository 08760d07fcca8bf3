"""Fixtures of the official-SDK compatibility suite.

The suite runs against a live Tessera server given by two environment variables (compat/run.sh
starts one and sets them):

- ``TESSERA_URL``: the server's base URL, e.g. ``http://127.0.0.1:8080`` (no trailing slash).
- ``TESSERA_ADMIN_APIKEY``: the global administrator's API key (the bootstrap key).

Everything the tests need is created through the admin API with plain ``requests``, never with
the SDK under test: a service account with an API key in the administrator's own account, and an
OAuth client with a secret. Missing variables fail the run instead of skipping it, and a run in
which no test passed is turned into a failure, so this suite can never pass by doing nothing.
"""

import os
import uuid

import pytest
import requests

APIKEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"
TIMEOUT = 10


def _require_env(name):
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(
            f"{name} is not set: run the suite through compat/run.sh, or start a server and "
            f"export TESSERA_URL and TESSERA_ADMIN_APIKEY (see compat/README.md)",
            pytrace=False,
        )
    return value


class Admin:
    """A thin client of the admin API that fails loudly on any unexpected status."""

    def __init__(self, base_url, token):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Accept"] = "application/json"

    def _check(self, response, expected):
        if response.status_code != expected:
            raise AssertionError(
                f"{response.request.method} {response.request.path_url} answered "
                f"{response.status_code} (expected {expected}): {response.text}"
            )
        return response

    def get(self, path):
        return self._check(self.session.get(self.base_url + path, timeout=TIMEOUT), 200).json()

    def post(self, path, body):
        response = self.session.post(self.base_url + path, json=body, timeout=TIMEOUT)
        return self._check(response, 201).json()

    def delete(self, path):
        self._check(self.session.delete(self.base_url + path, timeout=TIMEOUT), 204)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def tessera_url():
    url = _require_env("TESSERA_URL").rstrip("/")
    return url


@pytest.fixture(scope="session")
def admin(tessera_url):
    apikey = _require_env("TESSERA_ADMIN_APIKEY")
    response = requests.post(
        tessera_url + "/identity/token",
        data={"grant_type": APIKEY_GRANT, "apikey": apikey, "response_type": "cloud_iam"},
        headers={"Accept": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, (
        f"the administrator's API key was refused: {response.status_code} {response.text}"
    )
    return Admin(tessera_url, response.json()["access_token"])


@pytest.fixture(scope="session")
def admin_account_id(admin):
    whoami = admin.get("/v1/whoami")
    assert whoami.get("global_admin") is True, f"the bootstrap key is not a global admin: {whoami}"
    assert whoami.get("account_id"), f"whoami has no account_id: {whoami}"
    return whoami["account_id"]


@pytest.fixture(scope="session")
def service_account(admin, admin_account_id):
    """A service account in the administrator's account: ``{id, iam_id, account_id, ...}``."""
    account = admin.post(
        "/v1/service_accounts", {"account_id": admin_account_id, "name": unique("compat-sdk")}
    )
    assert account["iam_id"].startswith("iam-ServiceId-"), account
    return account


def _create_api_key(admin, owner_iam_id):
    key = admin.post("/v1/api_keys", {"owner_iam_id": owner_iam_id, "name": unique("compat-key")})
    assert key.get("apikey"), f"the create response shows no apikey: {key}"
    return key


@pytest.fixture(scope="session")
def api_key(admin, service_account):
    """An API key of ``service_account``: the create response, with ``apikey``."""
    return _create_api_key(admin, service_account["iam_id"])


@pytest.fixture
def disposable_api_key(admin, service_account):
    """A fresh API key of ``service_account`` for a test that deletes it."""
    return _create_api_key(admin, service_account["iam_id"])


@pytest.fixture(scope="session")
def oauth_client(admin):
    """An OAuth client: the create response, with ``id`` and ``secret``."""
    client = admin.post("/v1/clients", {"id": unique("compat-client")})
    assert client.get("secret"), f"the create response shows no secret: {client}"
    return client


def pytest_sessionfinish(session, exitstatus):
    """A run that collected tests but passed none (all skipped or deselected) is a failure."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    passed = len(reporter.stats.get("passed", []))
    skipped = len(reporter.stats.get("skipped", []))
    if passed == 0 or skipped > 0:
        reporter.write_line(
            f"compat: {passed} passed and {skipped} skipped: every test must run and pass",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def sign_in_as_new_user(admin, tessera_url, account_id, prefix):
    """Creates a user with a password and signs it in (password grant through a new client):
    only a user creates its own credentials. Returns ``(user, Admin session of the user)``."""
    password = "compat-" + uuid.uuid4().hex
    user = admin.post(
        "/v1/users",
        {
            "account_id": account_id,
            "name": unique(prefix),
            "email": unique(prefix) + "@example.com",
            "password": password,
        },
    )
    client = admin.post("/v1/clients", {"id": unique("compat-login")})
    response = requests.post(
        tessera_url + "/identity/token",
        data={"grant_type": "password", "username": user["id"], "password": password},
        auth=(client["id"], client["secret"]),
        headers={"Accept": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, f"sign-in failed: {response.status_code} {response.text}"
    return user, Admin(tessera_url, response.json()["access_token"])

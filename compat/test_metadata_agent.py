"""`tessera agent` (the workload metadata agent) against the official client libraries.

Each test starts real agent processes (``$TESSERA_BIN agent``) on free 127.0.0.1 ports, pointed
at the Tessera server of the run (``--server $TESSERA_URL --cacert $TESSERA_CA``), and uses an
unmodified client library the way a workload on a VM would:

- ``google-auth``: ``compute_engine._metadata.ping``/``is_on_gce``, ``compute_engine.Credentials``
  (``GET instance/service-accounts/default/?recursive=true`` then ``.../default/token``),
  ``compute_engine.IDTokenCredentials(use_metadata_identity_endpoint=True)``
  (``.../default/identity?audience=…&format=full``), ``google.auth.default()`` and
  ``google.oauth2.id_token.verify_token`` as a receiving service would use it.
  ``google-auth`` reads ``GCE_METADATA_HOST`` once, when ``google.auth.compute_engine`` is
  imported, so this module picks the GCE agent's port and sets ``GCE_METADATA_HOST`` and
  ``GCE_METADATA_IP`` in the environment before importing it (the whole pytest process sees
  them; nothing else in the suite uses ``google-auth``).
- ``yandexcloud``: ``yandexcloud.SDK()`` without credentials reads ``YC_METADATA_ADDR`` when it
  is constructed and fetches ``http://$YC_METADATA_ADDR/computeMetadata/v1/instance/
  service-accounts/default/token`` (``Metadata-Flavor: Google``) for every call (cached 20 s).
- ``ibm-cloud-sdk-core``: ``VPCInstanceAuthenticator(url=http://127.0.0.1:<port>)`` PUTs
  ``/instance_identity/v1/token`` (or ``/identity/v1/token`` with ``service_version=2025-08-26``)
  and POSTs the instance identity token to ``.../iam_token`` (``.../iam_tokens``).

Every token a library gets is shown to the server (``GET /v1/whoami``), so a test passes only if
the server accepts the token as the expected identity. The agent's own output is printed after
any failing test (pytest shows it as captured output).
"""

import json
import os
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import grpc
import jwt
import pytest
import requests
import yandexcloud
from cryptography.hazmat.primitives.asymmetric import ec
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import VPCInstanceAuthenticator
from yandex.cloud.iam.v1.service_account_service_pb2 import GetServiceAccountRequest
from yandex.cloud.iam.v1.service_account_service_pb2_grpc import ServiceAccountServiceStub

from conftest import APIKEY_GRANT, TIMEOUT, _create_api_key, _require_env, unique


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# google-auth reads GCE_METADATA_HOST at import time: choose the GCE agent's port first.
GCE_PORT = _free_port()
GCE_ADDR = f"127.0.0.1:{GCE_PORT}"
os.environ["GCE_METADATA_HOST"] = GCE_ADDR
os.environ["GCE_METADATA_IP"] = GCE_ADDR
os.environ.pop("GCE_METADATA_ROOT", None)
os.environ.pop("NO_GCE_CHECK", None)
os.environ.pop("GCE_METADATA_MTLS_MODE", None)

import google.auth  # noqa: E402
import google.auth.transport.requests  # noqa: E402
import google.oauth2.id_token  # noqa: E402
from google.auth import _helpers as google_helpers  # noqa: E402
from google.auth import compute_engine  # noqa: E402
from google.auth.compute_engine import _metadata  # noqa: E402

if _metadata._GCE_METADATA_HOST != GCE_ADDR:  # pragma: no cover - a guard, not a test
    raise RuntimeError(
        f"google.auth.compute_engine was imported before {__name__} set GCE_METADATA_HOST "
        f"(it reads {_metadata._GCE_METADATA_HOST!r}): keep google-auth out of other modules"
    )

UNIVERSE = "tessera.local"
PROJECT_ID = "proj-1"
AGENT_READY_SECONDS = 30
GCE = {"Metadata-Flavor": "Google"}


# --- the agent process ------------------------------------------------------------------------


def _tessera_bin():
    given = os.environ.get("TESSERA_BIN", "")
    root = Path(__file__).resolve().parent.parent
    if given:
        path = Path(given)
        return str(path if path.is_absolute() else (root / path))
    for candidate in ("target/release/tessera", "target/debug/tessera"):
        if (root / candidate).is_file():
            return str(root / candidate)
    pytest.fail("TESSERA_BIN is not set and no target/{release,debug}/tessera exists", pytrace=False)


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _toml(config):
    """A small TOML writer: top-level scalars, tables (one level of nesting) and arrays of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, (dict, list))]

    def table(name, body):
        lines.append("")
        lines.append(f"[{name}]")
        nested = {}
        for k, v in body.items():
            if isinstance(v, dict):
                nested[k] = v
            else:
                lines.append(f"{k} = {_toml_value(v)}")
        for k, v in nested.items():
            table(f"{name}.{k}", v)

    for key, value in config.items():
        if isinstance(value, dict):
            table(key, value)
    for key, value in config.items():
        if isinstance(value, list):
            for item in value:
                lines.append("")
                lines.append(f"[[{key}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
    return "\n".join(lines) + "\n"


AGENTS = []  # every agent started in this module, for the log dump after a failing test


class Agent:
    """One ``tessera agent`` process: started, waited for, its output kept in a file."""

    def __init__(self, name, workdir, tessera_url, ca, credentials, config=None, port=None):
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "agent.log"
        credentials_path = self.workdir / "credentials.json"
        credentials_path.write_text(json.dumps(credentials))
        os.chmod(credentials_path, 0o600)
        self.args = [
            _tessera_bin(),
            "agent",
            "--server",
            tessera_url,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--credentials",
            str(credentials_path),
        ]
        if ca:
            self.args += ["--cacert", ca]
        if config is not None:
            config_path = self.workdir / "agent.toml"
            config_path.write_text(_toml(config))
            self.args += ["--config", str(config_path)]
        self.process = None

    def start(self):
        # Only the flags configure the agent: no TESSERA_* variable of the test run leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        env["TESSERA_LOG_LEVEL"] = "info,tessera::agent=debug"  # shown only after a failing test
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.workdir, env=env,
        )
        AGENTS.append(self)
        deadline = time.monotonic() + AGENT_READY_SECONDS
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(
                    f"agent {self.name} exited with status {self.process.returncode} before it was "
                    f"ready\n$ {' '.join(self.args)}\n{self.output()}",
                    pytrace=False,
                )
            try:
                answer = requests.get(self.base + "/", headers=GCE, timeout=1)
                if answer.status_code == 200:
                    return self
                last = f"GET / answered {answer.status_code}: {answer.text[:200]}"
            except requests.RequestException as e:
                last = str(e)
            time.sleep(0.1)
        self.stop()
        pytest.fail(
            f"agent {self.name} was not ready within {AGENT_READY_SECONDS} s ({last})\n"
            f"$ {' '.join(self.args)}\n{self.output()}",
            pytrace=False,
        )

    def output(self, start=0):
        try:
            data = self.log_path.read_bytes()[start:]
        except OSError:
            return "(no output)"
        return data.decode("utf-8", "replace")

    def size(self):
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()
        if self in AGENTS:
            AGENTS.remove(self)


@pytest.fixture(autouse=True)
def _show_agent_output_on_failure():
    """Prints what each agent logged during the test; pytest shows it only for failing tests."""
    before = {id(a): a.size() for a in AGENTS}
    yield
    for agent in list(AGENTS):
        start = before.get(id(agent), 0)
        status = agent.process.poll() if agent.process else None
        state = "running" if status is None else f"EXITED with status {status}"
        print(f"----- agent {agent.name} (port {agent.port}, {state}), output during this test -----")
        print(agent.output(start) or "(nothing)")


# --- the server side --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca_path():
    return _require_env("TESSERA_CA")


@pytest.fixture(scope="module")
def ca_pem(ca_path):
    with open(ca_path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def grpc_endpoint():
    return _require_env("TESSERA_GRPC_ENDPOINT")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("metadata-agent")


def whoami(tessera_url, token):
    """``GET /v1/whoami`` with a bearer token; fails unless the server accepts the token."""
    answer = requests.get(
        tessera_url + "/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )
    assert answer.status_code == 200, f"the server refused the token: {answer.status_code} {answer.text}"
    return answer.json()


def server_token(tessera_url, apikey):
    """A token straight from the server (the API-key grant), never through the agent."""
    answer = requests.post(
        tessera_url + "/identity/token",
        data={"grant_type": APIKEY_GRANT, "apikey": apikey},
        headers={"Accept": "application/json"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def new_service_account(admin, account_id, prefix):
    return admin.post("/v1/service_accounts", {"account_id": account_id, "name": unique(prefix)})


def authorized_key_file(admin, account):
    """A Yandex authorized key file of ``account`` (what ``yc iam key create`` writes)."""
    created = admin.post("/v1/authorized_keys", {"service_account_id": account["id"]})
    key_file = created["key_file"]
    assert key_file["service_account_id"] == account["id"], key_file
    return key_file


def expected_identity(tessera_url, admin, account):
    """What whoami says of ``account`` for a token the server issued directly: id and email."""
    me = whoami(tessera_url, server_token(tessera_url, _create_api_key(admin, account["iam_id"])["apikey"]))
    assert me["id"] == account["id"], me
    assert me.get("email"), f"whoami shows no email for a service account: {me}"
    return me


# --- the GCE-format agent (single workload, Yandex authorized key) ----------------------------


@pytest.fixture(scope="module")
def agent_account(admin, admin_account_id):
    return new_service_account(admin, admin_account_id, "agent-sa")


@pytest.fixture(scope="module")
def agent_identity(tessera_url, admin, agent_account):
    return expected_identity(tessera_url, admin, agent_account)


@pytest.fixture(scope="module")
def gce_agent(tessera_url, ca_path, admin, agent_account, workdir):
    config = {
        "universe_domain": UNIVERSE,
        "instance": {
            "id": "4242",
            "name": "vm-1",
            "hostname": "vm-1.internal",
            "zone": "zone-a",
            "attributes": {"role": "web"},
        },
        "project": {"id": PROJECT_ID, "numeric_id": "1234"},
        "yandex": {"cloud_id": "cloud-1", "folder_id": "folder-1"},
    }
    agent = Agent(
        "gce", workdir / "gce", tessera_url, ca_path,
        credentials=authorized_key_file(admin, agent_account), config=config, port=GCE_PORT,
    ).start()
    yield agent
    agent.stop()


@pytest.fixture
def gauth_request():
    return google.auth.transport.requests.Request()


def test_google_auth_detects_the_agent(gce_agent, gauth_request):
    # ping: GET http://$GCE_METADATA_IP/ with Metadata-Flavor: Google; needs 200 and that header back.
    assert _metadata.ping(gauth_request, timeout=2, retry_count=1) is True
    assert _metadata.is_on_gce(gauth_request) is True
    # The header really is what google-auth keys on: the agent sends it on every answer.
    root = requests.get(gce_agent.base + "/", headers=GCE, timeout=TIMEOUT)
    assert root.headers.get("Metadata-Flavor") == "Google", dict(root.headers)


def test_google_auth_compute_engine_credentials(
    gce_agent, gauth_request, tessera_url, agent_account, agent_identity
):
    credentials = compute_engine.Credentials()
    credentials.refresh(gauth_request)

    assert credentials.token and credentials.valid, credentials.token
    # The email google-auth read from service-accounts/default/?recursive=true is the server's.
    assert credentials.service_account_email == agent_identity["email"]
    # google-auth counts the token stale 3 min 45 s early: the agent must give a real lifetime.
    remaining = (credentials.expiry - google_helpers.utcnow()).total_seconds()
    assert remaining > 300, f"the token expires in {remaining:.0f} s"
    # The server accepts the token as the agent's service account.
    me = whoami(tessera_url, credentials.token)
    assert me["id"] == agent_account["id"] and me["iam_id"] == agent_account["iam_id"], me
    assert me["sub_type"] == "ServiceId", me
    # A universe domain of our own keeps google-auth from calling Google's regional access
    # boundary API (it looks one up only in the googleapis.com universe).
    assert credentials.universe_domain == UNIVERSE
    assert credentials._is_regional_access_boundary_lookup_required() is False


def test_google_auth_authorized_session_calls_the_server(gce_agent, tessera_url, agent_account):
    # The full library path: AuthorizedSession refreshes the credentials itself before the call.
    session = google.auth.transport.requests.AuthorizedSession(compute_engine.Credentials())
    answer = session.get(tessera_url + "/v1/whoami", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == agent_account["id"], answer.json()


def test_google_auth_scoped_credentials(gce_agent, gauth_request, tessera_url, agent_account):
    # With scopes google-auth adds ?scopes=a,b to the token request; the agent must still answer.
    scoped = compute_engine.Credentials(
        scopes=["https://www.googleapis.com/auth/cloud-platform", "openid"]
    )
    scoped.refresh(gauth_request)
    assert whoami(tessera_url, scoped.token)["id"] == agent_account["id"]


def test_google_auth_reads_project_zone_and_universe(gce_agent, gauth_request):
    assert _metadata.get_project_id(gauth_request) == PROJECT_ID
    assert _metadata.get_universe_domain(gauth_request) == UNIVERSE
    assert _metadata.get(gauth_request, "project/numeric-project-id") == "1234"
    assert _metadata.get(gauth_request, "instance/id") == "4242"
    assert _metadata.get(gauth_request, "instance/zone") == "projects/1234/zones/zone-a"
    assert _metadata.get(gauth_request, "instance/attributes/role") == "web"
    assert _metadata.get(gauth_request, "instance/vendor/folder-id") == "folder-1"
    info = _metadata.get_service_account_info(gauth_request)
    assert "default" in info.get("aliases", []), info


def test_google_auth_default_picks_compute_engine(
    gce_agent, monkeypatch, tmp_path, tessera_url, agent_account
):
    # No key file, no gcloud configuration, no App Engine: default() falls through to the
    # metadata server and reads the project from project/project-id.
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GAE_ENV",
                 "SERVER_SOFTWARE", "GAE_RUNTIME", "GOOGLE_CLOUD_QUOTA_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    credentials, project = google.auth.default()
    assert isinstance(credentials, compute_engine.Credentials), type(credentials)
    assert project == PROJECT_ID
    credentials.refresh(google.auth.transport.requests.Request())
    assert whoami(tessera_url, credentials.token)["id"] == agent_account["id"]


def test_google_auth_id_token_verifies_against_the_server_jwks(
    gce_agent, gauth_request, tessera_url, ca_path, agent_account, agent_identity
):
    audience = f"https://svc-{uuid.uuid4().hex[:8]}.example/"
    credentials = compute_engine.IDTokenCredentials(
        gauth_request, audience, use_metadata_identity_endpoint=True
    )
    # The constructor reads the email from service-accounts/default/?recursive=true.
    assert credentials.service_account_email == agent_identity["email"]
    credentials.refresh(gauth_request)
    token = credentials.token
    assert isinstance(token, str) and token.count(".") == 2, f"not a compact JWT: {token!r:.80}"

    # A resource service checks it offline against the server's JWKS (PyJWT).
    issuer = requests.get(tessera_url + "/.well-known/openid-configuration", timeout=TIMEOUT).json()["issuer"]
    keys = jwt.PyJWKClient(
        tessera_url + "/identity/keys", ssl_context=ssl.create_default_context(cafile=ca_path)
    )
    signing_key = keys.get_signing_key_from_jwt(token)
    algorithm = jwt.get_unverified_header(token)["alg"]
    assert algorithm in ("RS256", "PS256", "ES256", "EdDSA"), algorithm
    claims = jwt.decode(token, signing_key.key, algorithms=[algorithm], audience=audience, issuer=issuer)
    assert claims["sub"] == agent_account["id"], claims
    # google-auth asks for format=full, which carries the email.
    assert claims.get("email") == agent_identity["email"], claims
    # google-auth takes the expiry from the unverified exp claim.
    assert credentials.expiry == google_helpers.utcfromtimestamp(claims["exp"])
    assert claims["exp"] > time.time() + 300, claims

    # ... and with google-auth's own verifier, which reads a JWKS too.
    verified = google.oauth2.id_token.verify_token(
        token, gauth_request, audience=audience, certs_url=tessera_url + "/identity/keys"
    )
    assert verified["sub"] == agent_account["id"]

    # Another audience gets another token (the agent must not hand out a cached one).
    other_audience = audience + "other"
    other = credentials.with_target_audience(other_audience)
    other.refresh(gauth_request)
    other_claims = jwt.decode(other.token, signing_key.key, algorithms=[algorithm], audience=other_audience)
    assert other_claims["sub"] == agent_account["id"], other_claims


def test_metadata_refuses_no_flavor_header_proxied_requests_and_identity_without_audience(gce_agent):
    path = gce_agent.base + "/computeMetadata/v1/instance/service-accounts/default/token"
    assert requests.get(path, timeout=TIMEOUT).status_code == 403
    proxied = requests.get(path, headers={**GCE, "X-Forwarded-For": "203.0.113.9"}, timeout=TIMEOUT)
    assert proxied.status_code == 403
    identity = requests.get(
        gce_agent.base + "/computeMetadata/v1/instance/service-accounts/default/identity", headers=GCE,
        timeout=TIMEOUT,
    )
    assert identity.status_code == 400, identity.text


# --- yandexcloud ------------------------------------------------------------------------------


@pytest.mark.parametrize("credential", ["authorized_key", "apikey"])
def test_yandex_sdk_without_credentials_uses_the_agent(
    request, credential, monkeypatch, admin, admin_account_id, grpc_endpoint, ca_pem
):
    # The GCE agent holds an authorized key (t1. tokens); the VPC one an API key (JWTs).
    if credential == "authorized_key":
        agent, agent_account = request.getfixturevalue("gce_agent"), request.getfixturevalue("agent_account")
    else:
        setup = request.getfixturevalue("vpc_setup")
        agent, agent_account = setup["agent"], setup["account"]
    monkeypatch.setenv("YC_METADATA_ADDR", f"127.0.0.1:{agent.port}")
    sdk = yandexcloud.SDK(endpoint=grpc_endpoint, root_certificates=ca_pem)
    # ServiceAccountService/Get is authenticated with the token the SDK read from the agent.
    me = sdk.client(ServiceAccountServiceStub).Get(
        GetServiceAccountRequest(service_account_id=agent_account["id"]), timeout=TIMEOUT
    )
    assert me.id == agent_account["id"] and me.name == agent_account["name"], me

    # The call really runs as the agent's service account: another account it may not read is
    # refused naming it.
    stranger = new_service_account(admin, admin_account_id, "agent-stranger")
    with pytest.raises(grpc.RpcError) as denied:
        sdk.client(ServiceAccountServiceStub).Get(
            GetServiceAccountRequest(service_account_id=stranger["id"]), timeout=TIMEOUT
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, denied.value
    assert agent_account["iam_id"] in denied.value.details(), denied.value.details()


# --- host mode: workloads told apart by source address ----------------------------------------


class _SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """Connects from a given local address (a workload at 127.0.0.2 on the same host)."""

    def __init__(self, source, **kwargs):
        self._source = source
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture(scope="module")
def host_setup(tessera_url, ca_path, admin, admin_account_id, workdir):
    host_account = new_service_account(admin, admin_account_id, "agent-host")
    workload = new_service_account(admin, admin_account_id, "agent-workload")
    admin.post(
        "/v1/access_bindings",
        {
            "subject_iam_id": host_account["iam_id"],
            "role": "iam.serviceAccounts.tokenCreator",
            "resource": f"service-account/{workload['id']}",
        },
    )
    config = {
        "universe_domain": UNIVERSE,
        "workloads": [{"source": "127.0.0.2/32", "service_account_id": workload["id"]}],
    }
    agent = Agent(
        "host", workdir / "host", tessera_url, ca_path,
        credentials=authorized_key_file(admin, host_account), config=config,
    ).start()
    yield {"agent": agent, "workload": workload, "host_account": host_account}
    agent.stop()


def test_host_mode_serves_the_mapped_workload(host_setup, tessera_url):
    agent, workload = host_setup["agent"], host_setup["workload"]
    session = requests.Session()
    session.mount("http://", _SourceAddressAdapter("127.0.0.2"))
    request = google.auth.transport.requests.Request(session=session)
    root = f"{agent.base}/computeMetadata/v1/"
    info = _metadata.get(request, "instance/service-accounts/default/", root=root, recursive=True)
    token = _metadata.get(request, "instance/service-accounts/default/token", root=root)
    me = whoami(tessera_url, token["access_token"])
    assert me["id"] == workload["id"], me
    assert info["email"] == me["email"], info


def test_yandex_sdk_fails_when_the_agent_has_no_service_account(
    host_setup, monkeypatch, grpc_endpoint, ca_pem
):
    agent = host_setup["agent"]
    # 127.0.0.1 has no mapping: no service account, 404 as on a VM without one.
    token_url = agent.base + "/computeMetadata/v1/instance/service-accounts/default/token"
    assert requests.get(token_url, headers=GCE, timeout=TIMEOUT).status_code == 404

    monkeypatch.setenv("YC_METADATA_ADDR", f"127.0.0.1:{agent.port}")
    sdk = yandexcloud.SDK(endpoint=grpc_endpoint, root_certificates=ca_pem)
    with pytest.raises(grpc.RpcError) as failure:
        sdk.client(ServiceAccountServiceStub).Get(
            GetServiceAccountRequest(service_account_id=host_setup["workload"]["id"]), timeout=TIMEOUT
        )
    # The SDK's auth plugin raised on the 404 (requests' raise_for_status), so the call never left.
    assert "404" in failure.value.details(), failure.value.details()


# --- the IBM VPC instance metadata flavour ----------------------------------------------------


@pytest.fixture(scope="module")
def vpc_setup(tessera_url, ca_path, admin, admin_account_id, workdir):
    directory = workdir / "vpc"
    directory.mkdir()
    key_path = directory / "instance-key.pem"
    keygen = subprocess.run(
        [_tessera_bin(), "agent", "keygen", "--key-out", str(key_path)],
        capture_output=True, text=True, timeout=60, cwd=directory,
    )
    assert keygen.returncode == 0, f"agent keygen: status {keygen.returncode}: {keygen.stderr}{keygen.stdout}"
    jwks = json.loads(keygen.stdout)
    assert jwks.get("keys"), jwks
    assert "PRIVATE KEY" in key_path.read_text()

    instance = uuid.uuid4().hex[:12]
    issuer_url = f"https://vpc-{instance}.tessera.test/instances/{instance}"
    instance_crn = f"crn:v1:tessera:public:is:zone-a:a/{admin_account_id}::instance:{instance}"
    admin.post(
        "/v1/trusted_issuers",
        {
            "account_id": admin_account_id,
            "name": unique("vpc"),
            "issuer_url": issuer_url,
            "jwks": jwks,
            "cr_type": "VSI",
            "crn": instance_crn,
        },
    )
    profile = admin.post(
        "/v1/trusted_profiles",
        {
            "account_id": admin_account_id,
            "name": unique("vsi-profile"),
            "links": [{"cr_type": "VSI", "crn": instance_crn}],
        },
    )
    # Trusts another instance only.
    untrusted = admin.post(
        "/v1/trusted_profiles",
        {
            "account_id": admin_account_id,
            "name": unique("vsi-other"),
            "links": [
                {
                    "cr_type": "VSI",
                    "crn": f"crn:v1:tessera:public:is:zone-a:a/{admin_account_id}::instance:other-{instance}",
                }
            ],
        },
    )
    # The agent's own credential: an API key (the VPC flavour itself needs none from it).
    agent_account = new_service_account(admin, admin_account_id, "agent-vpc")
    apikey = _create_api_key(admin, agent_account["iam_id"])["apikey"]
    config = {
        "instance": {"id": instance, "name": "vsi-1", "zone": "zone-a"},
        "ibm_vpc": {"key_file": str(key_path), "issuer": issuer_url, "instance_crn": instance_crn},
    }
    agent = Agent(
        "vpc", directory, tessera_url, ca_path, credentials={"apikey": apikey}, config=config,
    ).start()
    yield {
        "agent": agent, "profile": profile, "untrusted": untrusted, "crn": instance_crn, "issuer": issuer_url,
        "instance": instance, "account": agent_account,
    }
    agent.stop()


def _jwt_claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def _check_profile_token(tessera_url, token, profile, instance_crn):
    me = whoami(tessera_url, token)
    assert me["sub_type"] == "Profile", me
    assert me["iam_id"] == profile["iam_id"], me
    claims = _jwt_claims(token)
    assert claims["iam_id"] == profile["iam_id"], claims
    # The compute resource the server admitted is the instance the agent vouches for.
    assert claims["authn"]["sub_type"] == "CR" and claims["authn"]["sub"] == instance_crn, claims
    return claims


@pytest.mark.parametrize("version", ["2022-03-01", "2025-08-26"])
@pytest.mark.parametrize("selector", ["iam_profile_id", "iam_profile_crn", "iam_profile_name"])
def test_vpc_instance_authenticator(vpc_setup, tessera_url, selector, version):
    profile = vpc_setup["profile"]
    value = {"iam_profile_id": profile["id"], "iam_profile_crn": profile["crn"],
             "iam_profile_name": profile["name"]}[selector]
    authenticator = VPCInstanceAuthenticator(
        url=vpc_setup["agent"].base, service_version=version, **{selector: value}
    )
    token = authenticator.token_manager.get_token()
    claims = _check_profile_token(tessera_url, token, profile, vpc_setup["crn"])
    # The SDK takes the expiry from the JWT's exp claim.
    assert authenticator.token_manager.expire_time == claims["exp"]
    assert claims["exp"] > time.time() + 300, claims
    # authenticate() sets the header a service call carries; the server accepts it.
    request = {"headers": {}}
    authenticator.authenticate(request)
    assert request["headers"]["Authorization"] == f"Bearer {token}"


def test_vpc_instance_authenticator_default_profile(vpc_setup, tessera_url):
    # No profile named: the one profile that trusts this instance is used.
    authenticator = VPCInstanceAuthenticator(url=vpc_setup["agent"].base)
    token = authenticator.token_manager.get_token()
    _check_profile_token(tessera_url, token, vpc_setup["profile"], vpc_setup["crn"])


def test_vpc_untrusted_profile_is_refused_with_the_server_message(vpc_setup):
    untrusted = vpc_setup["untrusted"]
    authenticator = VPCInstanceAuthenticator(url=vpc_setup["agent"].base, iam_profile_id=untrusted["id"])
    with pytest.raises(ApiException) as caught:
        authenticator.token_manager.get_token()
    assert 400 <= caught.value.status_code < 500, caught.value
    assert "does not trust this compute resource" in caught.value.message, caught.value.message
    assert untrusted["id"] in caught.value.message, caught.value.message


def test_vpc_instance_identity_token_needs_the_ibm_flavor(vpc_setup):
    base = vpc_setup["agent"].base
    body = json.dumps({"expires_in": 300})
    json_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    missing = requests.put(
        base + "/instance_identity/v1/token", params={"version": "2022-03-01"}, data=body,
        headers=json_headers, timeout=TIMEOUT,
    )
    assert 400 <= missing.status_code < 500, missing.text
    good = requests.put(
        base + "/instance_identity/v1/token", params={"version": "2022-03-01"}, data=body,
        headers={**json_headers, "Metadata-Flavor": "ibm"}, timeout=TIMEOUT,
    )
    assert good.status_code in (200, 201), good.text
    answer = good.json()
    assert answer["access_token"] and answer["expires_in"] <= 300, answer
    assert {"created_at", "expires_at"} <= answer.keys(), answer


def test_vpc_iam_token_refuses_a_forged_instance_identity_token(vpc_setup):
    # An instance identity token with the agent's claims and kid, signed by another key: the
    # exchange must not yield a profile token.
    base = vpc_setup["agent"].base
    honest = requests.put(
        base + "/instance_identity/v1/token", params={"version": "2022-03-01"},
        data=json.dumps({"expires_in": 300}),
        headers={"Content-Type": "application/json", "Metadata-Flavor": "ibm"}, timeout=TIMEOUT,
    ).json()["access_token"]
    header, claims = jwt.get_unverified_header(honest), _jwt_claims(honest)
    assert claims["iss"] == vpc_setup["issuer"] and claims["crn"] == vpc_setup["crn"], claims
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(claims, other_key, algorithm="ES256", headers={"kid": header.get("kid")})

    def exchange(instance_token):
        return requests.post(
            base + "/instance_identity/v1/iam_token", params={"version": "2022-03-01"},
            data=json.dumps({"trusted_profile": {"id": vpc_setup["profile"]["id"]}}),
            headers={
                "Content-Type": "application/json",
                "Metadata-Flavor": "ibm",
                "Authorization": f"Bearer {instance_token}",
            },
            timeout=TIMEOUT,
        )

    refused = exchange(forged)
    assert refused.status_code == 401, f"{refused.status_code} {refused.text}"
    assert refused.json()["errors"][0]["message"], refused.text
    # The honest token is exchanged, so the refusal above is about the signature.
    accepted = exchange(honest)
    assert accepted.status_code in (200, 201), accepted.text

"""Schemathesis hooks of tests/schema/run.sh: a fresh IAM token for every few requests, the
run's own objects out of its reach, and the rules no JSON Schema can state.

The fuzzer may revoke its own tokens (POST /v1/token_cutoffs with its own iam_id is a valid
request), so the token is minted again from the API key in $TESSERA_SCHEMA_APIKEY rather than
fixed once in a header.
"""

import ast
import os
import re
import threading

import requests
import schemathesis

# CPython 3.11 keeps the AST constructor's recursion depth in state shared by threads, so two
# workers parsing at once (hypothesis describes filter lambdas by parsing their source) fail
# with "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905). One parse
# at a time.
_ast_parse = ast.parse
_ast_lock = threading.Lock()


def _parse_one_at_a_time(*args, **kwargs):
    with _ast_lock:
        return _ast_parse(*args, **kwargs)


ast.parse = _parse_one_at_a_time

URL = os.environ["TESSERA_URL"]
APIKEY = os.environ["TESSERA_SCHEMA_APIKEY"]


@schemathesis.auth(refresh_interval=2)
class TesseraToken:
    def get(self, case, ctx):
        response = requests.post(
            f"{URL}/identity/token",
            data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": APIKEY},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# The fuzzer's own objects (run.sh: the sandbox account, the service account and its iam id,
# its admin binding, its API key id). A request addressing one of them by path id goes to an id
# that does not exist instead (404), so that no generated or linked request can lock the fuzzer
# out (delete, disable or change them); every other object stays in reach.
PROTECTED = frozenset(os.environ.get("TESSERA_SCHEMA_PROTECTED", "").split())
ABSENT_ID = "schema-protected-object"


# The account of the principal the run acts as (run.sh): where objects created without an
# account_id land.
CALLER_ACCOUNT = os.environ.get("TESSERA_SCHEMA_ACCOUNT", "")
ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")
ACCOUNT_SCOPE = re.compile(r"a/[0-9a-f]{32}")


def scoped_to(crn, account):
    """The CRN with its a/<account> scope segment (the seventh) naming `account` instead."""
    segments = crn.split(":")
    if len(segments) > 6 and ACCOUNT_SCOPE.fullmatch(segments[6]):
        segments[6] = f"a/{account}"
    return ":".join(segments)


def body_account(body):
    """The account a create request names, else the caller's."""
    given = body.get("account_id")
    if isinstance(given, str) and ACCOUNT_ID.fullmatch(given):
        return given
    return CALLER_ACCOUNT


# Well-formed identifiers of each trusted-identity type (the schema's patterns, trimmed).
IDENTIFIER_SHAPES = {
    "user": re.compile(r"IBMid-[A-Za-z0-9._-]{1,58}"),
    "serviceid": re.compile(r"(iam-)?ServiceId-[A-Za-z0-9._-]{1,50}"),
    "crn": re.compile(r"crn:v1:[!-9;-~]+:[!-9;-~]+:[!-9;-~]+(:[!-9;-~]*){5}"),
}
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def identity_key(identity):
    """What the server compares to find an identity listed twice, or None if malformed."""
    kind, identifier = identity.get("type"), identity.get("identifier")
    if not isinstance(kind, str) or kind not in IDENTIFIER_SHAPES or not isinstance(identifier, str):
        return None
    identifier = identifier.strip(WHITESPACE)
    if not IDENTIFIER_SHAPES[kind].fullmatch(identifier):
        return None
    if identifier.startswith("ServiceId-"):
        identifier = "iam-" + identifier
    return kind, identifier


def distinct_identity(kind, identifier, n):
    """A well-formed identifier of `kind` that no other entry uses."""
    if kind == "user":
        return f"IBMid-dup{n}"
    if kind == "serviceid":
        return f"iam-ServiceId-dup{n}"
    segments = identifier.split(":")
    segments[-1] = f"dup{n}"
    return ":".join(segments)


def without_repeats(body):
    """A profile document in which no identity is listed twice and no two links or rules share
    an id: each repeat gets a well-formed value of its own instead."""
    n = 0
    identities = body.get("identities")
    seen = set()
    for identity in identities if isinstance(identities, list) else []:
        key = identity_key(identity) if isinstance(identity, dict) else None
        if key is None:
            continue
        while key in seen:
            n += 1
            key = (key[0], distinct_identity(key[0], key[1], n))
            identity["identifier"] = key[1]
        seen.add(key)
    for field, prefix in (("links", "Link-"), ("rules", "ClaimRule-")):
        entries = body.get(field)
        ids = set()
        for entry in entries if isinstance(entries, list) else []:
            entry_id = entry.get("id") if isinstance(entry, dict) else None
            if not isinstance(entry_id, str):
                continue
            while entry_id in ids:
                n += 1
                entry_id = f"{prefix}dup{n}"
                entry["id"] = entry_id
            ids.add(entry_id)


_server_keys = None


def server_keys():
    """A key set of usable public keys: the server's own signing keys (GET /identity/keys)."""
    global _server_keys
    if _server_keys is None:
        response = requests.get(f"{URL}/identity/keys", timeout=10)
        response.raise_for_status()
        _server_keys = response.json()
    return _server_keys


# The rules that JSON Schema cannot state (tessera_api::schema_rules::UNSTATED: the equality of
# two values, a value that depends on the caller or a stored object, real key material). The
# document states everything else; a generated request is brought into line with these rules
# here, changing only values that already have the right shape, so a schema-valid request stays
# valid and an invalid one stays invalid for the same reason.
def follow_unstated_rules(case):
    body = case.body
    if not isinstance(body, dict):
        return
    method = case.operation.method.upper()
    path = case.operation.path
    if method == "POST" and path == "/v1/authorization_policies":
        # With account_id, the target's a/<account> scope must be that account.
        given = body.get("account_id")
        target = body.get("target_crn")
        if isinstance(given, str) and ACCOUNT_ID.fullmatch(given) and isinstance(target, str):
            body["target_crn"] = scoped_to(target, given)
    elif path.startswith("/v1/trusted_profiles"):
        # A CRN identity is a resource of the profile's account (a replaced profile is one the
        # run's principal manages: of its own account).
        account = body_account(body) if method == "POST" else CALLER_ACCOUNT
        identities = body.get("identities")
        for identity in identities if isinstance(identities, list) else []:
            if isinstance(identity, dict) and identity.get("type") == "crn":
                if isinstance(identity.get("identifier"), str):
                    identity["identifier"] = scoped_to(identity["identifier"], account)
        without_repeats(body)
    elif path.startswith("/v1/trusted_issuers"):
        # An a/<account> scope of crn is the issuer's account.
        if method == "POST" and isinstance(body.get("crn"), str):
            body["crn"] = scoped_to(body["crn"], body_account(body))
        # A key set of the schema's shape holds real keys.
        jwks = body.get("jwks")
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if isinstance(keys, list) and keys and all(isinstance(k, dict) for k in keys):
            jwks["keys"] = server_keys()["keys"]


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    parameters = case.path_parameters or {}
    for name, value in list(parameters.items()):
        if str(value) in PROTECTED:
            parameters[name] = ABSENT_ID
    follow_unstated_rules(case)

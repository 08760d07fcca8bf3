"""Schemathesis hooks of tests/schema/run.sh: a fresh IAM token for every few requests.

The fuzzer may revoke its own tokens (POST /v1/token_cutoffs with its own iam_id is a valid
request), so the token is minted again from the API key in $TESSERA_SCHEMA_APIKEY rather than
fixed once in a header.
"""

import os

import requests
import schemathesis

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


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    parameters = case.path_parameters or {}
    for name, value in list(parameters.items()):
        if str(value) in PROTECTED:
            parameters[name] = ABSENT_ID

#!/usr/bin/env python3
"""Instructions per request of one grant, counted by valgrind's callgrind.

    python3 bench/instructions/per_request.py BIN ALGORITHM REQUESTS OUTDIR [GRANT]
    -> prints: <instructions in all> <requests> <instructions per request>

Starts BIN (`tessera serve`) under callgrind with instrumentation off, provisions a service
account and an API key through the admin API, warms up with 200 requests, then counts the
instructions of REQUESTS sequential requests of GRANT on one keep-alive connection
(instrumentation on only for them). GRANT: `apikey` (default, `POST /identity/token`),
`introspect` (`POST /identity/introspect` of the account's own token, bearer-authenticated),
`yandex-jwt-rest` (`POST /iam/v1/tokens` with one PS256 JWT of an authorized key; needs the
`cryptography` Python package), `yandex-jwt-grpc` (the same JWT to `IamTokenService/Create` over
one HTTP/2 connection; also needs `grpcio`), `iam-authz` (the service account's access token
exchanged for a resource identity's through an authorization policy). The count is the same from run to run within
~0.1 % and does not depend on what else the machine is doing, so two builds can be compared
on a busy machine where the load benchmark's rates are ±10 %. OUTDIR keeps callgrind.out for
`callgrind_annotate` and `diff.py`. Needs valgrind (`apt-get install valgrind`).
"""
import json, os, socket, subprocess, sys, tempfile, time, http.client, urllib.parse, secrets, glob

binary, alg, n, outdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
grant_name = sys.argv[5] if len(sys.argv) > 5 else "apikey"
os.makedirs(outdir, exist_ok=True)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
work = tempfile.mkdtemp()
open(f"{work}/t.toml", "w").close()
admin = secrets.token_hex(24)
env = dict(os.environ, TESSERA_BOOTSTRAP_ADMIN_APIKEY=admin)
out = f"{outdir}/callgrind.out"
for f in glob.glob(out + "*"): os.remove(f)
proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
    f"--callgrind-out-file={out}", binary, "serve", "--config", f"{work}/t.toml",
    "--listen", f"127.0.0.1:{port}", "--data-dir", f"{work}/data", "--jwt-algorithm", alg,
    "--log-level", "warn"], env=env, stdout=open(f"{outdir}/server.log", "w"), stderr=subprocess.STDOUT)

def conn(): return http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for _ in range(600):
    try:
        c = conn(); c.request("GET", "/readyz"); r = c.getresponse(); r.read()
        if r.status == 200: break
    except OSError: pass
    time.sleep(0.5)
else:
    sys.exit("server not ready")

def req(c, method, path, body=None, token=None, form=False):
    h = {}
    if token: h["Authorization"] = "Bearer " + token
    if form:
        h["Content-Type"] = "application/x-www-form-urlencoded"; data = urllib.parse.urlencode(body)
    elif body is not None:
        h["Content-Type"] = "application/json"; data = json.dumps(body)
    else: data = None
    c.request(method, path, body=data, headers=h); r = c.getresponse(); t = r.read()
    if r.status >= 300: sys.exit(f"{method} {path}: {r.status} {t[:300]}")
    return json.loads(t)

c = conn()
grant = lambda key: {"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": key}
at = req(c, "POST", "/identity/token", grant(admin), form=True)["access_token"]
acct = req(c, "GET", "/v1/whoami", token=at)["account_id"]
sa = req(c, "POST", "/v1/service_accounts", {"account_id": acct, "name": "cg"}, token=at)["iam_id"]
key = req(c, "POST", "/v1/api_keys", {"owner_iam_id": sa, "name": "cg"}, token=at)["apikey"]
if grant_name == "apikey":
    one = lambda: req(c, "POST", "/identity/token", grant(key), form=True)
elif grant_name == "introspect":
    bearer = req(c, "POST", "/identity/token", grant(key), form=True)["access_token"]
    subject = req(c, "POST", "/identity/token", grant(key), form=True)["access_token"]
    def one():
        answer = req(c, "POST", "/identity/introspect", {"token": subject}, token=bearer, form=True)
        if answer.get("active") is not True: sys.exit(f"introspection not active: {answer}")
elif grant_name == "iam-authz":
    crn = f"crn:v1:tessera:public:bench-service:global:a/{acct}:bench-instance::"
    req(c, "POST", "/v1/authorization_policies", {"account_id": acct, "source_iam_id": sa, "target_crn": crn}, token=at)
    presented = req(c, "POST", "/identity/token", grant(key), form=True)["access_token"]
    form = {"grant_type": "urn:ibm:params:oauth:grant-type:iam-authz", "access_token": presented,
            "desired_iam_id": f"crn-{crn}"}
    one = lambda: req(c, "POST", "/identity/token", form, form=True)
elif grant_name in ("yandex-jwt-rest", "yandex-jwt-grpc"):
    import base64
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    file = req(c, "POST", "/v1/authorized_keys", {"service_account_id": sa[len("iam-"):]}, token=at)["key_file"]
    private = serialization.load_pem_private_key(file["private_key"].encode(), password=None)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    signing_input = b64(json.dumps({"alg": "PS256", "typ": "JWT", "kid": file["id"]}).encode()) + "." + b64(json.dumps(
        {"iss": file["service_account_id"], "aud": "https://iam.api.cloud.yandex.net/iam/v1/tokens", "iat": now, "exp": now + 3600}).encode())
    signature = private.sign(signing_input.encode(), padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    jwt = signing_input + "." + b64(signature)
    if grant_name == "yandex-jwt-rest":
        one = lambda: req(c, "POST", "/iam/v1/tokens", {"jwt": jwt})
    else:
        # One unary call at a time on one HTTP/2 connection, the request encoded by hand:
        # CreateIamTokenRequest { jwt = 2 } (no generated stubs needed).
        import grpc
        def varint(n):
            out = b""
            while True:
                byte, n = n & 0x7F, n >> 7
                out += bytes([byte | (0x80 if n else 0)])
                if not n: return out
        message = b"\x12" + varint(len(jwt)) + jwt.encode()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        create = channel.unary_unary("/yandex.cloud.iam.v1.IamTokenService/Create")
        def one():
            answer = create(message, timeout=120)
            if b"t1." not in answer: sys.exit(f"no t1. token in the gRPC answer: {answer[:200]}")
else:
    sys.exit(f"unknown grant {grant_name}")
for _ in range(200): one()  # warm-up
subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
for _ in range(n): one()
subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
proc.terminate(); proc.wait(timeout=120)
total = 0
for f in glob.glob(out + "*"):
    for line in open(f):
        if line.startswith("summary:") or line.startswith("totals:"):
            total = max(total, int(line.split()[1]))
print(total, n, total // n)

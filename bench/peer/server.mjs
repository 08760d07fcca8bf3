// The benchmark peer: node-oidc-provider (npm `oidc-provider`, pinned in package.json) issuing
// client_credentials access tokens as JWTs, the closest thing it has to Tessera's API-key grant.
// Dev-only: `tessera-bench peer` starts it (or run.sh does), drives POST /token with the same
// load generator as Tessera and checks every answer. Only configuration lives here.
//
// Environment (all optional except the secret, which the bench generates per run):
//   PEER_ALG            RS256 | ES256 | EdDSA             (default RS256)
//   PEER_PORT           TCP port on 127.0.0.1             (default 8090)
//   PEER_WORKERS        worker processes (node:cluster)   (default: the machine's cores)
//   PEER_CLIENT_ID      the client_credentials client     (default bench)
//   PEER_CLIENT_SECRET  its secret (client_secret_basic)  (required)
//   PEER_RESOURCE       the resource indicator (audience) (default urn:tessera:bench)
//
// The primary makes one signing key and hands it to every worker, so all workers sign with the
// same key (a client may get its token from any of them), then only supervises; the workers share
// the listening socket (node's round-robin distribution). One line on stdout when all workers
// listen: `peer ready pid=<primary> workers=<n> alg=<alg> port=<port>`.

import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const ALGORITHMS = {
  RS256: { type: 'rsa', options: { modulusLength: 2048 } },
  ES256: { type: 'ec', options: { namedCurve: 'P-256' } },
  EdDSA: { type: 'ed25519', options: {} },
};

const alg = process.env.PEER_ALG ?? 'RS256';
const port = Number(process.env.PEER_PORT ?? 8090);
const workers = Number(process.env.PEER_WORKERS ?? availableParallelism());
const clientId = process.env.PEER_CLIENT_ID ?? 'bench';
const clientSecret = process.env.PEER_CLIENT_SECRET;
const resource = process.env.PEER_RESOURCE ?? 'urn:tessera:bench';

function fail(message) {
  console.error(`peer: ${message}`);
  process.exit(2);
}

if (!ALGORITHMS[alg]) fail(`PEER_ALG must be one of ${Object.keys(ALGORITHMS).join(', ')}`);
if (!Number.isInteger(port) || port < 1 || port > 65535) fail('PEER_PORT must be a TCP port');
if (!Number.isInteger(workers) || workers < 1 || workers > 64) fail('PEER_WORKERS must be 1..64');
if (!clientSecret || clientSecret.length < 16) fail('PEER_CLIENT_SECRET (16+ characters) is required');

if (cluster.isPrimary) {
  const { type, options } = ALGORITHMS[alg];
  const { privateKey } = generateKeyPairSync(type, options);
  const jwk = { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `bench-${alg}` };
  // The key goes to the workers in their environment: they are this process's own children.
  const env = { PEER_SIGNING_JWK: JSON.stringify(jwk) };
  let listening = 0;
  for (let i = 0; i < workers; i += 1) {
    const worker = cluster.fork(env);
    worker.on('listening', () => {
      listening += 1;
      if (listening === workers) {
        console.log(`peer ready pid=${process.pid} workers=${workers} alg=${alg} port=${port}`);
      }
    });
  }
  // A worker that dies makes the run invalid: stop everything rather than serve with fewer.
  cluster.on('exit', (worker, code, signal) => fail(`worker ${worker.process.pid} exited (${signal ?? code})`));
  const stop = () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const jwk = JSON.parse(process.env.PEER_SIGNING_JWK);
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: alg,
      },
    ],
    jwks: { keys: [jwk] },
    scopes: ['api'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
          return {
            scope: 'api',
            audience: resource,
            accessTokenTTL: 3600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          };
        },
      },
    },
  });
  provider.listen(port, '127.0.0.1');
}

// A relying party nobody here wrote: panva's openid-client (OpenID Certified) signs a buyer in with code + PKCE,
// reads the claims and userinfo, refreshes, and receives back-channel logout tokens (checked with panva's jose).
// Run by tests/test_oidc_browser.py: node openid_rp.mjs, with ISSUER, CLIENT_ID, CLIENT_SECRET, PORT, MODULES.
import http from 'node:http';
import { pathToFileURL } from 'node:url';

const { ISSUER, CLIENT_ID, CLIENT_SECRET, PORT, MODULES } = process.env;
const client = await import(pathToFileURL(`${MODULES}/openid-client/build/index.js`).href);
const jose = await import(pathToFileURL(`${MODULES}/jose/dist/webapi/index.js`).href);
const BASE = `http://127.0.0.1:${PORT}`;
const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const state = { signedIn: null, logouts: [], errors: [] };
let config, pending, latestRefresh;

async function configuration() {
  config ??= await client.discovery(new URL(ISSUER), CLIENT_ID, CLIENT_SECRET, undefined,
                                    { execute: [client.allowInsecureRequests] });
  return config;
}

async function login(req, res) {
  const cfg = await configuration();
  const verifier = client.randomPKCECodeVerifier();
  pending = { verifier, state: client.randomState(), nonce: client.randomNonce() };
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: `${BASE}/callback`, scope: 'openid profile email account', state: pending.state,
    nonce: pending.nonce, code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  res.writeHead(302, { Location: url.href }).end();
}

async function callback(req, res) {
  const cfg = await configuration();
  const tokens = await client.authorizationCodeGrant(cfg, new URL(req.url, BASE), {
    pkceCodeVerifier: pending.verifier, expectedState: pending.state, expectedNonce: pending.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(cfg, tokens.refresh_token);
  latestRefresh = refreshed.refresh_token;
  state.signedIn = {
    claims, userinfo, refreshed: refreshed.access_token !== tokens.access_token,
    rotated: refreshed.refresh_token !== tokens.refresh_token, refreshedSub: refreshed.claims()?.sub,
  };
  res.writeHead(200, { 'Content-Type': 'text/html' })
    .end(`<!doctype html><title>Signed in</title><pre id="result">${JSON.stringify(state.signedIn)}</pre>`);
}

async function backchannel(req, res) {
  let body = '';
  for await (const chunk of req) body += chunk;
  const cfg = await configuration();
  const token = new URLSearchParams(body).get('logout_token');
  const jwks = jose.createRemoteJWKSet(new URL(cfg.serverMetadata().jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
    issuer: cfg.serverMetadata().issuer, audience: CLIENT_ID, typ: 'logout+jwt', requiredClaims: ['iat', 'jti'],
  });
  if (!(LOGOUT_EVENT in (payload.events ?? {})) || 'nonce' in payload) throw new Error('not a logout token');
  let refreshAfterLogout = 'accepted';
  try {
    await client.refreshTokenGrant(cfg, latestRefresh);
  } catch (error) {
    refreshAfterLogout = error.error ?? error.code ?? String(error);
  }
  state.logouts.push({ sub: payload.sub, sid: payload.sid, kid: protectedHeader.kid, refreshAfterLogout });
  res.writeHead(200).end();
}

const routes = { '/login': login, '/callback': callback, '/backchannel': backchannel,
                 '/state': async (req, res) => res.writeHead(200, { 'Content-Type': 'application/json' })
                   .end(JSON.stringify(state)) };

http.createServer(async (req, res) => {
  const handler = routes[new URL(req.url, BASE).pathname];
  try {
    if (!handler) return res.writeHead(404).end();
    await handler(req, res);
  } catch (error) {
    state.errors.push(String(error?.stack ?? error));
    res.writeHead(400, { 'Content-Type': 'text/plain' }).end(String(error));
  }
}).listen(Number(PORT), '127.0.0.1', () => console.log(JSON.stringify({ listening: Number(PORT) })));

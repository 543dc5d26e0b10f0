// The OpenID provider seen by an independent relying party: `openid-client` (panva's certified
// RP library) against the real engine. tests/engine/relying_party.rs boots the engine with
// public_url = its real address, so the issuer is http://127.0.0.1:PORT/auth, and runs this
// script; it can also be run by hand against any engine:
//
//   ASSAY_URL=http://127.0.0.1:3000 ADMIN_KEY=$(cat data/admin-key) node tests/node/oidc_rp.mjs
//
// (ISSUER defaults to $ASSAY_URL/auth; GRACE_SECS to 5, the engine's default
// [auth.oidc_provider] refresh_grace_secs.) The script makes its own user and clients through the
// admin API. The browser part is plain fetch with a cookie jar and manual redirects: it reads
// the real login and consent pages, posts their forms back and stops at the client's
// redirect_uri without fetching it.
//
// Prints one line per check and exits 1 with the failing check, the request and the provider's
// answer on the first failure (exit 2: bad environment).

import { createHash, createPublicKey, verify as verifySignature, webcrypto, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import * as client from 'openid-client';

function env(name, fallback) {
  const v = process.env[name] || fallback;
  if (!v) {
    console.error(`oidc_rp.mjs: environment variable ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const base = env('ASSAY_URL').replace(/\/+$/, '');
const adminKey = env('ADMIN_KEY').trim();
const issuer = env('ISSUER', `${base}/auth`).replace(/\/+$/, '');
const graceSecs = Number(env('GRACE_SECS', '5'));
if (!Number.isFinite(graceSecs) || graceSecs < 1 || graceSecs > 30) {
  console.error(`oidc_rp.mjs: GRACE_SECS must be a number of seconds from 1 to 30, not ${process.env.GRACE_SECS}`);
  process.exit(2);
}

const REQUEST_TIMEOUT_MS = 15_000;
// The whole run may take this long; tests/engine/relying_party.rs allows more.
const WATCHDOG = setTimeout(() => {
  console.log(`FAIL: the run did not finish within 150 s (stuck in check ${stepNo} ${stepName})`);
  process.exit(1);
}, 150_000);
WATCHDOG.unref();

// --- checks ----------------------------------------------------------------------------------

class CheckFailure extends Error {}

function check(cond, message) {
  if (!cond) throw new CheckFailure(typeof message === 'function' ? message() : message);
}

function eq(actual, expected, what) {
  check(
    JSON.stringify(actual) === JSON.stringify(expected),
    () => `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
  );
}

const show = (v) => {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 1500 ? `${s.slice(0, 1500)}…` : s;
};

// What an error from openid-client or fetch says, with the provider's answer when there is one.
async function describe(e) {
  if (e instanceof CheckFailure) return e.message;
  const parts = [`${e?.name ?? 'Error'}: ${e?.message ?? String(e)}`];
  if (e?.code) parts.push(`code ${e.code}`);
  if (e?.status) parts.push(`HTTP ${e.status}`);
  if (e?.error) parts.push(`error=${e.error}`);
  if (e?.error_description) parts.push(`error_description=${JSON.stringify(e.error_description)}`);
  if (e instanceof client.WWWAuthenticateChallengeError) parts.push(`WWW-Authenticate: ${e.response.headers.get('www-authenticate')}`);
  const res = e?.response instanceof Response ? e.response : e?.cause instanceof Response ? e.cause : null;
  if (res && !res.bodyUsed) {
    try {
      parts.push(`body: ${show(await res.text())}`);
    } catch {
      // The body is gone; the rest says enough.
    }
  } else if (e?.cause && !(e.cause instanceof Response)) {
    parts.push(`cause: ${show(e.cause instanceof Error ? `${e.cause.name}: ${e.cause.message}` : e.cause instanceof URLSearchParams ? e.cause.toString() : e.cause)}`);
  }
  if (!(e instanceof client.ResponseBodyError || e instanceof client.AuthorizationResponseError || e instanceof client.WWWAuthenticateChallengeError) && e?.stack) {
    parts.push(e.stack.split('\n').slice(1, 4).join('\n'));
  }
  return parts.join('\n  ');
}

let stepNo = 0;
let stepName = '';

async function step(name, fn) {
  stepNo += 1;
  stepName = name;
  const tag = String(stepNo).padStart(2, '0');
  const started = Date.now();
  try {
    await fn();
  } catch (e) {
    console.log(`FAIL ${tag} ${name}`);
    console.log(`  ${(await describe(e)).replace(/\n/g, '\n  ')}`);
    process.exit(1);
  }
  console.log(`ok ${tag} ${name} (${Date.now() - started} ms)`);
}

// An OAuth error as openid-client reports it, whichever of its three shapes: a JSON error body
// (RFC 6749 §5.2), a WWW-Authenticate challenge (a 401 for HTTP Basic client authentication),
// or an error in an authorization response (§4.1.2.1).
async function oauthError(promise, what) {
  try {
    const got = await promise;
    throw new CheckFailure(`${what}: expected an OAuth error, but it succeeded: ${show(got)}`);
  } catch (e) {
    if (e instanceof CheckFailure) throw e;
    if (e instanceof client.ResponseBodyError) {
      return { error: e.error, status: e.status, description: e.error_description, body: e.cause, headers: e.response.headers };
    }
    if (e instanceof client.WWWAuthenticateChallengeError) {
      let body = {};
      try {
        body = await e.response.json();
      } catch {
        // A challenge with no JSON body; the check says what was missing.
      }
      return { error: body.error, status: e.status, description: body.error_description, body, challenges: e.cause, headers: e.response.headers };
    }
    if (e instanceof client.AuthorizationResponseError) {
      return { error: e.error, description: e.error_description, params: e.cause };
    }
    throw new CheckFailure(`${what}: expected an OAuth error response, got\n  ${(await describe(e)).replace(/\n/g, '\n  ')}`);
  }
}

async function expectOAuthError(promise, what, error, status) {
  const got = await oauthError(promise, what);
  check(
    got.error === error && (status === undefined || got.status === status),
    () => `${what}: expected error=${error}${status ? ` with HTTP ${status}` : ''}, got error=${got.error} HTTP ${got.status ?? '-'} ${show(got.body ?? got.params?.toString() ?? '')}`,
  );
  return got;
}

// --- JWTs, checked independently of openid-client -----------------------------------------

function decodeJwt(token, what) {
  const parts = String(token).split('.');
  check(parts.length === 3, `${what} is not a JWS compact serialization: ${show(token)}`);
  try {
    return {
      header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
      payload: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')),
      input: `${parts[0]}.${parts[1]}`,
      signature: Buffer.from(parts[2], 'base64url'),
    };
  } catch (e) {
    throw new CheckFailure(`${what} does not decode: ${e.message}`);
  }
}

async function fetchJwks() {
  const r = await fetch(`${base}/.well-known/jwks.json`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  check(r.status === 200, `GET /.well-known/jwks.json answered ${r.status}`);
  const body = await r.json();
  check(Array.isArray(body.keys) && body.keys.length > 0, `the JWKS has no keys: ${show(body)}`);
  return body;
}

// Verifies the signature with the JWKS key the header's kid names; returns the decoded JWT.
async function verifyJwt(token, what, expectedAlg) {
  const jwt = decodeJwt(token, what);
  const { alg, kid } = jwt.header;
  if (expectedAlg) eq(alg, expectedAlg, `${what} header alg`);
  check(kid, `${what} header has no kid: ${show(jwt.header)}`);
  const jwks = await fetchJwks();
  const jwk = jwks.keys.find((k) => k.kid === kid);
  check(jwk, `${what} kid ${kid} is not in /.well-known/jwks.json (${jwks.keys.map((k) => k.kid).join(', ')})`);
  for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) check(!(priv in jwk), `the JWKS publishes private member ${priv}`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(jwt.input);
  let ok;
  switch (alg) {
    case 'RS256':
      ok = verifySignature('sha256', data, key, jwt.signature);
      break;
    case 'ES256':
      ok = verifySignature('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, jwt.signature);
      break;
    case 'EdDSA':
      ok = verifySignature(null, data, key, jwt.signature);
      break;
    default:
      throw new CheckFailure(`${what} is signed with unexpected alg ${alg}`);
  }
  check(ok, `${what}: the signature does not verify with JWKS key ${kid}`);
  return jwt;
}

// OIDC Core §3.1.3.6: at_hash is the left half of the hash of the access token's ASCII octets.
function leftHalfHash(value, alg) {
  const hash = { RS256: 'sha256', ES256: 'sha256', EdDSA: 'sha512' }[alg];
  const digest = createHash(hash).update(value, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

const now = () => Math.floor(Date.now() / 1000);
const audList = (aud) => (Array.isArray(aud) ? aud : [aud]);
const scopes = (s) => String(s ?? '').split(' ').filter(Boolean).sort();

// Checks an ID token's claims (OIDC Core §2, §3.1.3.7) beyond what openid-client checks.
async function checkIdToken(tokens, { clientId, nonce, alg }) {
  check(tokens.id_token, `no id_token in the token response: ${show(tokens)}`);
  const jwt = await verifyJwt(tokens.id_token, 'the ID token', alg);
  const c = jwt.payload;
  eq(c.iss, issuer, 'ID token iss');
  check(audList(c.aud).includes(clientId), `ID token aud ${show(c.aud)} does not contain ${clientId}`);
  if (Array.isArray(c.aud) && c.aud.length > 1) eq(c.azp, clientId, 'ID token azp (several audiences)');
  check(typeof c.sub === 'string' && c.sub.length > 0, `ID token sub: ${show(c.sub)}`);
  if (nonce !== undefined) eq(c.nonce, nonce, 'ID token nonce');
  for (const n of ['exp', 'iat', 'auth_time']) check(Number.isInteger(c[n]), `ID token ${n} is not a NumericDate: ${show(c)}`);
  check(c.exp > now() && c.iat <= now() + 5 && c.iat > now() - 300, `ID token exp/iat out of range: ${show(c)}`);
  check(c.auth_time <= now() + 5 && c.auth_time > now() - 600, `ID token auth_time out of range: ${show(c)}`);
  check(typeof c.sid === 'string' && c.sid.length > 0, `ID token has no sid: ${show(c)}`);
  eq(c.amr, ['pwd'], 'ID token amr');
  check(typeof c.acr === 'string' && c.acr.length > 0, `ID token has no acr: ${show(c)}`);
  eq(c.at_hash, leftHalfHash(tokens.access_token, jwt.header.alg), 'ID token at_hash (left half of the hash of the access token)');
  // openid-client's own reading of the same token.
  const claims = tokens.claims();
  eq(claims?.sub, c.sub, 'tokens.claims().sub');
  return c;
}

// RFC 9068: a JWT access token with typ at+jwt and the required claims.
async function checkAccessToken(token, { clientId, sub, scope }) {
  const jwt = await verifyJwt(token, 'the access token');
  check(/^(application\/)?at\+jwt$/i.test(jwt.header.typ ?? ''), `access token header typ is ${show(jwt.header.typ)}, not at+jwt (RFC 9068 §2.1)`);
  const c = jwt.payload;
  eq(c.iss, issuer, 'access token iss');
  eq(c.client_id, clientId, 'access token client_id');
  if (sub !== undefined) eq(c.sub, sub, 'access token sub');
  check(c.aud !== undefined && audList(c.aud).length > 0, `access token has no aud: ${show(c)}`);
  for (const n of ['exp', 'iat']) check(Number.isInteger(c[n]), `access token ${n} is not a NumericDate: ${show(c)}`);
  check(c.exp > now(), `access token already expired: ${show(c)}`);
  check(typeof c.jti === 'string' && c.jti.length > 0, `access token has no jti: ${show(c)}`);
  if (scope !== undefined) eq(scopes(c.scope), scopes(scope), 'access token scope');
  return c;
}

// --- the browser: fetch, a cookie jar, manual redirects -----------------------------------

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, ent) => {
    if (ent[0] === '#') {
      const code = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[ent.toLowerCase()] ?? m;
  });
}

function attributes(tag) {
  const attrs = {};
  const re = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  // Skip the element name.
  const body = tag.replace(/^<\s*[a-zA-Z]+/, '').replace(/\/?>$/, '');
  for (const m of body.matchAll(re)) attrs[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  return attrs;
}

// Every <form> of a page: its method, action, hidden inputs, other inputs and buttons.
function forms(html) {
  const out = [];
  for (const m of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[0].match(/^<form\b[^>]*>/i)[0]);
    const form = { method: (attrs.method ?? 'get').toLowerCase(), action: attrs.action ?? '', hidden: {}, inputs: [], buttons: [] };
    for (const t of m[1].matchAll(/<input\b[^>]*>/gi)) {
      const a = attributes(t[0]);
      if ((a.type ?? 'text').toLowerCase() === 'hidden' && a.name) form.hidden[a.name] = a.value ?? '';
      else form.inputs.push(a);
    }
    for (const t of m[1].matchAll(/<button\b[^>]*>/gi)) form.buttons.push(attributes(t[0]));
    out.push(form);
  }
  return out;
}

const pageText = (html) => unescapeHtml(html.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>/gi, ' ').replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim();

class Browser {
  constructor(name) {
    this.name = name;
    this.jar = new Map();
  }

  store(url, res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eqAt = pair.indexOf('=');
      if (eqAt < 1) continue;
      const name = pair.slice(0, eqAt).trim();
      const value = pair.slice(eqAt + 1).trim();
      const a = Object.fromEntries(attrs.map((x) => {
        const i = x.indexOf('=');
        return i < 0 ? [x.trim().toLowerCase(), ''] : [x.slice(0, i).trim().toLowerCase(), x.slice(i + 1).trim()];
      }));
      const expired = ('max-age' in a && Number(a['max-age']) <= 0) || ('expires' in a && Date.parse(a.expires) < Date.now());
      if (expired || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  has(cookie) {
    return this.jar.has(cookie);
  }

  // One request, no redirect followed. A 5xx fails the check at once.
  async request(url, { method = 'GET', form } = {}) {
    const headers = { accept: 'text/html,application/xhtml+xml' };
    if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    this.store(url, res);
    const text = await res.text();
    const location = res.headers.get('location');
    const answer = { url: String(url), method, status: res.status, location: location ? new URL(location, url).href : null, text, headers: res.headers };
    check(res.status < 500, () => `${method} ${url} answered ${res.status}: ${show(pageText(text))}`);
    return answer;
  }
}

const isRedirect = (s) => [301, 302, 303, 307, 308].includes(s);
const pathOf = (u) => new URL(u).pathname;

// Drives an authorization request the way a person in a browser would: follows the provider's
// redirects, signs in on the login page, answers the consent page, and stops at the client's
// redirect_uri (never fetched). Returns { url } for a query response, or { request, params } for
// form_post, plus the pages seen on the way.
async function authorize(browser, authUrl, { redirectUri, user, decision = 'allow', remember = false }) {
  const seen = [];
  const hops = [];
  let consentText = '';
  let next = { url: String(authUrl), method: 'GET' };
  for (let i = 0; i < 25; i++) {
    const r = await browser.request(next.url, next);
    hops.push(`${r.method} ${pathOf(r.url)} -> ${r.status}${r.location ? ` ${r.location}` : ''}`);
    const trail = () => `\n  the way here:\n    ${hops.join('\n    ')}`;
    if (isRedirect(r.status)) {
      check(r.location, () => `${r.method} ${r.url} answered ${r.status} with no Location${trail()}`);
      if (r.location.startsWith(redirectUri)) return { url: new URL(r.location), seen, hops, consentText };
      next = { url: r.location, method: 'GET' };
      continue;
    }
    check(r.status === 200, () => `${r.method} ${r.url} answered ${r.status}: ${show(pageText(r.text))}${trail()}`);
    const path = pathOf(r.url);
    const fs = forms(r.text);
    // form_post (OAuth 2.0 Form Post Response Mode §2): a page whose form posts to the client.
    const post = fs.find((f) => f.method === 'post' && f.action.startsWith(redirectUri));
    if (post) {
      const params = new URLSearchParams(post.hidden);
      const request = new Request(post.action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: params.toString() });
      return { request, params, action: post.action, seen, hops, consentText };
    }
    if (path === '/auth/login') {
      check(user, () => `the provider asked for a login where none was expected${trail()}`);
      check(!seen.includes('login'), () => `the login page again after signing in: ${show(pageText(r.text))}${trail()}`);
      seen.push('login');
      const f = fs.find((x) => x.method === 'post' && x.action === '/auth/login');
      check(f, () => `the login page has no <form method="post" action="/auth/login">: ${show(pageText(r.text))}`);
      for (const name of ['csrf_token', 'login_challenge']) check(f.hidden[name], () => `the login form has no hidden ${name}: ${show(f.hidden)}`);
      for (const name of ['email', 'password']) check(f.inputs.some((a) => a.name === name), `the login form has no ${name} field`);
      check(browser.has('assay_csrf'), `GET ${r.url} set no assay_csrf cookie (cookies: ${[...browser.jar.keys()].join(', ')})`);
      next = { url: new URL(f.action, r.url).href, method: 'POST', form: { ...f.hidden, email: user.email, password: user.password } };
      continue;
    }
    if (path === '/auth/consent') {
      check(!seen.includes('consent'), () => `the consent page again after answering it: ${show(pageText(r.text))}${trail()}`);
      seen.push('consent');
      const f = fs.find((x) => x.method === 'post' && x.action === '/auth/consent');
      check(f, () => `the consent page has no <form method="post" action="/auth/consent">: ${show(pageText(r.text))}`);
      for (const name of ['csrf_token', 'consent_challenge']) check(f.hidden[name], () => `the consent form has no hidden ${name}: ${show(f.hidden)}`);
      check(f.inputs.some((a) => a.name === 'remember' && a.type === 'checkbox' && a.value === '1'), `the consent form has no remember checkbox with value 1: ${show(f.inputs)}`);
      for (const v of ['allow', 'deny']) check(f.buttons.some((b) => b.name === 'decision' && b.value === v), `the consent form has no decision=${v} button: ${show(f.buttons)}`);
      consentText = pageText(r.text);
      const form = { ...f.hidden, decision };
      if (remember) form.remember = '1';
      next = { url: new URL(f.action, r.url).href, method: 'POST', form };
      continue;
    }
    throw new CheckFailure(`unexpected page ${r.url} (200): ${show(pageText(r.text))}${trail()}`);
  }
  throw new CheckFailure(`more than 25 hops from ${authUrl} without reaching ${redirectUri}`);
}

// --- the admin API ---------------------------------------------------------------------------

async function adminCall(method, path, body) {
  const r = await fetch(`${base}/auth/admin/auth${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json', accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { raw: text };
  }
  return { status: r.status, json };
}

async function createClient(settings) {
  const { status, json } = await adminCall('POST', '/oidc-clients', settings);
  check(status === 201, () => `POST /auth/admin/auth/oidc-clients ${show(settings)} answered ${status}: ${show(json)}`);
  check(json.client_id, `no client_id in ${show(json)}`);
  return json;
}

// --- openid-client configurations ------------------------------------------------------------

// Every Configuration records the provider's last token-endpoint answer, so checks can read
// headers openid-client does not look at.
let lastTokenResponse = null;
const recordingFetch = (url, options) =>
  fetch(url, options).then((res) => {
    if (String(url).startsWith(`${base}/auth/token`)) lastTokenResponse = res;
    return res;
  });

async function configure(clientId, metadata, auth) {
  const config = await client.discovery(new URL(issuer), clientId, metadata, auth, {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    timeout: REQUEST_TIMEOUT_MS / 1000,
  });
  config[client.customFetch] = recordingFetch;
  return config;
}

// A fresh authorization request: PKCE S256, state and nonce.
async function authRequest(config, params) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  return { url, verifier, state, nonce };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- the run ---------------------------------------------------------------------------------

const PASSWORD = 'a relying party passphrase 7';
const alice = { email: 'alice.rp@example.com', password: PASSWORD, display_name: 'Alice Example', roles: ['staff', 'developers'] };
const WEB_CB = 'http://127.0.0.1:1/cb';
const WEB_LOGGED_OUT = 'http://127.0.0.1:1/logged-out';
const NATIVE_CB = 'com.example.native:/oauth-callback';
const ALL_SCOPES = 'openid profile email offline_access groups';

console.log(`oidc_rp.mjs: openid-client against ${issuer}`);

let aliceId;
let web; // client_secret_basic, consent, refresh tokens, back-channel logout
let web2; // client_secret_post, consent (denied)
let native; // public (none), skip_consent, private-use scheme redirect
let m2m; // client_credentials only
let pkjwt; // private_key_jwt, ES256 ID tokens
let pkKey;
let backchannel; // { server, port, tokens: [] }

await step('setup: a user and five clients through the admin API', async () => {
  const u = await adminCall('POST', '/users', { email: alice.email, password: alice.password, display_name: alice.display_name, email_verified: true, roles: alice.roles });
  check(u.status === 201 && u.json?.id, () => `POST /auth/admin/auth/users answered ${u.status}: ${show(u.json)}`);
  aliceId = u.json.id;

  // A receiver for back-channel logout tokens (OIDC Back-Channel Logout 1.0 §2.5).
  const tokens = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      tokens.push({ method: req.method, url: req.url, type: req.headers['content-type'] ?? '', body });
      res.writeHead(200, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  backchannel = { server, port: server.address().port, tokens };

  web = await createClient({
    name: 'RP web app',
    redirect_uris: [WEB_CB],
    post_logout_redirect_uris: [WEB_LOGGED_OUT],
    default_scopes: ALL_SCOPES.split(' '),
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    backchannel_logout_uri: `http://127.0.0.1:${backchannel.port}/backchannel`,
  });
  check(web.client_secret, `no client_secret for a confidential client: ${show(web)}`);
  web2 = await createClient({ name: 'RP second app', redirect_uris: [WEB_CB], default_scopes: ['openid', 'email'], token_endpoint_auth_method: 'client_secret_post' });
  native = await createClient({ name: 'RP native app', redirect_uris: [NATIVE_CB], default_scopes: ['openid', 'profile'], token_endpoint_auth_method: 'none', skip_consent: true });
  check(!native.client_secret, `a public client got a secret: ${show(native)}`);
  m2m = await createClient({ name: 'RP service', grant_types: ['client_credentials'], default_scopes: ['api.read'], token_endpoint_auth_method: 'client_secret_basic' });

  // private_key_jwt: the client's RSA key pair is made here; only the public JWK is registered.
  const pair = await webcrypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
  const pub = await webcrypto.subtle.exportKey('jwk', pair.publicKey);
  const kid = `rp-${randomBytes(6).toString('hex')}`;
  pkKey = { key: pair.privateKey, kid };
  pkjwt = await createClient({
    name: 'RP signed-assertion app',
    redirect_uris: [WEB_CB],
    default_scopes: ['openid', 'email', 'api.read'],
    token_endpoint_auth_method: 'private_key_jwt',
    grant_types: ['authorization_code', 'client_credentials'],
    id_token_signed_response_alg: 'ES256',
    jwks: { keys: [{ kty: pub.kty, n: pub.n, e: pub.e, kid, alg: 'RS256', use: 'sig' }] },
  });
});

// Discovery (OIDC Discovery 1.0 §4, RFC 8414 §3).
let webConfig;
await step('discovery: both metadata documents, as the contract has them', async () => {
  for (const url of [`${base}/.well-known/openid-configuration`, `${issuer}/.well-known/openid-configuration`]) {
    const r = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    check(r.status === 200, `GET ${url} answered ${r.status}`);
    check((r.headers.get('content-type') ?? '').startsWith('application/json'), `GET ${url}: content-type ${r.headers.get('content-type')}`);
    const m = await r.json();
    eq(m.issuer, issuer, `${url} issuer`);
    const endpoints = {
      authorization_endpoint: `${base}/auth/authorize`,
      token_endpoint: `${base}/auth/token`,
      userinfo_endpoint: `${base}/auth/userinfo`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      revocation_endpoint: `${base}/auth/oauth2/revoke`,
      introspection_endpoint: `${base}/auth/oauth2/introspect`,
      end_session_endpoint: `${base}/auth/oauth2/sessions/logout`,
    };
    for (const [k, v] of Object.entries(endpoints)) eq(m[k], v, `${url} ${k}`);
    const includes = {
      scopes_supported: ['openid', 'profile', 'email', 'offline_access', 'groups'],
      response_types_supported: ['code'],
      response_modes_supported: ['query', 'form_post'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt'],
      id_token_signing_alg_values_supported: ['RS256', 'ES256', 'EdDSA'],
      subject_types_supported: ['public'],
    };
    for (const [k, vs] of Object.entries(includes)) {
      check(Array.isArray(m[k]), `${url} ${k} is not an array: ${show(m[k])}`);
      for (const v of vs) check(m[k].includes(v), `${url} ${k} ${show(m[k])} lacks ${v}`);
    }
    eq(m.response_types_supported, ['code'], `${url} response_types_supported`);
    check(!m.code_challenge_methods_supported.includes('plain'), `${url} offers PKCE plain`);
    for (const k of ['claims_parameter_supported', 'backchannel_logout_supported', 'backchannel_logout_session_supported']) eq(m[k], true, `${url} ${k}`);
  }
  webConfig = await configure(web.client_id, { client_secret: web.client_secret }, client.ClientSecretBasic(web.client_secret));
  eq(webConfig.serverMetadata().issuer, issuer, 'openid-client discovery(issuer) issuer');
  check(webConfig.serverMetadata().supportsPKCE(), 'openid-client: the provider does not advertise PKCE S256');
});

// --- refusals before anyone signs in ------------------------------------------------------

await step('refusal: unknown client_id is an HTML 400, no redirect (RFC 6749 §4.1.2.1)', async () => {
  const b = new Browser('nobody');
  const { url } = await authRequest(webConfig, { redirect_uri: WEB_CB, scope: 'openid' });
  url.searchParams.set('client_id', 'no-such-client');
  const r = await b.request(url);
  eq(r.status, 400, `GET ${url} status`);
  check(!r.location, `GET ${url} redirected to ${r.location}`);
  check((r.headers.get('content-type') ?? '').startsWith('text/html'), `GET ${url}: content-type ${r.headers.get('content-type')}`);
});

await step('refusal: unregistered redirect_uri is an HTML 400, no redirect (RFC 6749 §4.1.2.1)', async () => {
  const b = new Browser('nobody');
  for (const bad of ['http://127.0.0.1:1/elsewhere', 'http://127.0.0.1:1/cb/extra', 'https://evil.example/cb']) {
    const { url } = await authRequest(webConfig, { redirect_uri: bad, scope: 'openid' });
    const r = await b.request(url);
    eq(r.status, 400, `GET ${url} status`);
    check(!r.location, `GET ${url} redirected to ${r.location}`);
    check((r.headers.get('content-type') ?? '').startsWith('text/html'), `GET ${url}: content-type ${r.headers.get('content-type')}`);
  }
});

await step('refusal: prompt=none with no session -> login_required at the redirect_uri (OIDC Core §3.1.2.6)', async () => {
  const b = new Browser('nobody');
  const req = await authRequest(webConfig, { redirect_uri: WEB_CB, scope: 'openid', prompt: 'none' });
  const r = await b.request(req.url);
  check(isRedirect(r.status) && r.location?.startsWith(WEB_CB), `GET ${req.url} answered ${r.status} ${r.location ?? show(pageText(r.text))}`);
  const got = await expectOAuthError(client.authorizationCodeGrant(webConfig, new URL(r.location), { expectedState: req.state, pkceCodeVerifier: req.verifier }), 'prompt=none', 'login_required');
  eq(got.params.get('state'), req.state, 'state on the error redirect');
});

await step('refusal: a request without PKCE -> invalid_request at the redirect_uri (RFC 7636 §4.4.1)', async () => {
  // Whether the provider refuses at once or after a login and consent, the answer must be the
  // error at the redirect_uri, never a code.
  const b = new Browser('alice-elsewhere');
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(webConfig, { redirect_uri: WEB_CB, scope: 'openid', state, nonce: client.randomNonce() });
  const r = await authorize(b, url, { redirectUri: WEB_CB, user: alice, decision: 'allow' });
  check(r.url, () => `expected a redirect to ${WEB_CB}, got a form_post page`);
  const got = await expectOAuthError(client.authorizationCodeGrant(webConfig, r.url, { expectedState: state }), 'no code_challenge', 'invalid_request');
  eq(got.params.get('state'), state, 'state on the error redirect');
});

// --- code + PKCE through the real login and consent pages ---------------------------------

const browser = new Browser('alice');
let first; // the first token response (web)
let firstClaims;
await step('code + PKCE: login page, consent page, code exchange with client_secret_basic', async () => {
  const req = await authRequest(webConfig, { redirect_uri: WEB_CB, scope: ALL_SCOPES });
  // The first hop: no session, so the login page with a challenge.
  const r0 = await browser.request(req.url);
  check(r0.status === 303 && r0.location && pathOf(r0.location) === '/auth/login' && new URL(r0.location).searchParams.get('login_challenge'),
    () => `GET ${req.url} with no session: expected 303 to /auth/login?login_challenge=..., got ${r0.status} ${r0.location ?? show(pageText(r0.text))}`);
  const res = await authorize(browser, r0.location, { redirectUri: WEB_CB, user: alice, decision: 'allow', remember: false });
  eq(res.seen, ['login', 'consent'], 'pages seen');
  check(res.hops.some((h) => h.startsWith('POST /auth/login -> 303') && h.includes('/auth/authorize/resume')), () => `the login POST did not answer 303 to /auth/authorize/resume:\n    ${res.hops.join('\n    ')}`);
  check(browser.has('assay_session'), `no assay_session cookie after signing in (cookies: ${[...browser.jar.keys()].join(', ')})`);
  check(res.consentText.includes(web.name ?? 'RP web app'), `the consent page does not name the client: ${show(res.consentText)}`);
  eq(res.url.searchParams.get('state'), req.state, 'state at the redirect_uri');
  check(res.url.searchParams.get('code'), `no code at the redirect_uri: ${res.url}`);
  const iss = res.url.searchParams.get('iss');
  if (iss !== null) eq(iss, issuer, 'iss at the redirect_uri (RFC 9207)');

  first = await client.authorizationCodeGrant(webConfig, res.url, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce, idTokenExpected: true });
  check(/no-store/i.test(lastTokenResponse?.headers.get('cache-control') ?? ''), `token response Cache-Control is ${lastTokenResponse?.headers.get('cache-control')}, not no-store (RFC 6749 §5.1)`);
  eq(String(first.token_type).toLowerCase(), 'bearer', 'token_type');
  check(Number.isInteger(first.expires_in) && first.expires_in > 0, `expires_in: ${show(first.expires_in)}`);
  check(first.refresh_token, `no refresh_token although offline_access was granted: ${show(first)}`);
  if (first.scope !== undefined) eq(scopes(first.scope), scopes(ALL_SCOPES), 'granted scope');
  firstClaims = await checkIdToken(first, { clientId: web.client_id, nonce: req.nonce, alg: 'RS256' });
  eq(firstClaims.sub, aliceId, 'ID token sub is the user id');
});

await step('access token: an RFC 9068 JWT signed by a JWKS key', async () => {
  await checkAccessToken(first.access_token, { clientId: web.client_id, sub: firstClaims.sub, scope: ALL_SCOPES });
});

await step('userinfo: fetchUserInfo (GET) and POST with the bearer token', async () => {
  const info = await client.fetchUserInfo(webConfig, first.access_token, firstClaims.sub);
  eq(info.sub, firstClaims.sub, 'userinfo sub');
  eq(info.email, alice.email, 'userinfo email');
  eq(info.email_verified, true, 'userinfo email_verified');
  eq(info.name, alice.display_name, 'userinfo name');
  check(typeof info.preferred_username === 'string' && info.preferred_username.length > 0, `userinfo preferred_username: ${show(info)}`);
  check(Array.isArray(info.groups) && alice.roles.every((g) => info.groups.includes(g)), `userinfo groups ${show(info.groups)} lack ${alice.roles}`);
  const r = await fetch(`${base}/auth/userinfo`, { method: 'POST', headers: { authorization: `Bearer ${first.access_token}` }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const postedText = await r.text();
  check(r.status === 200, () => `POST /auth/userinfo answered ${r.status}: ${show(postedText)}`);
  let posted;
  try {
    posted = JSON.parse(postedText);
  } catch {
    throw new CheckFailure(`POST /auth/userinfo answered no JSON: ${show(postedText)}`);
  }
  eq(posted.sub, firstClaims.sub, 'POST userinfo sub');
  eq(posted.email, alice.email, 'POST userinfo email');
  const none = await fetch(`${base}/auth/userinfo`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  eq(none.status, 401, 'GET /auth/userinfo with no token (RFC 6750 §3.1)');
});

await step('introspection: active access and refresh tokens, inactive garbage (RFC 7662)', async () => {
  const at = await client.tokenIntrospection(webConfig, first.access_token);
  eq(at.active, true, 'access token active');
  eq(at.client_id, web.client_id, 'introspection client_id');
  eq(at.sub, firstClaims.sub, 'introspection sub');
  eq(scopes(at.scope), scopes(ALL_SCOPES), 'introspection scope');
  check(Number.isInteger(at.exp) && Number.isInteger(at.iat), `introspection exp/iat: ${show(at)}`);
  check(at.token_type === undefined || /bearer|access_token/i.test(at.token_type), `introspection token_type: ${show(at.token_type)}`);
  const rt = await client.tokenIntrospection(webConfig, first.refresh_token, { token_type_hint: 'refresh_token' });
  eq(rt.active, true, 'refresh token active');
  eq(rt.client_id, web.client_id, 'refresh token client_id');
  const junk = await client.tokenIntrospection(webConfig, 'not-a-token-at-all');
  eq(junk.active, false, 'introspection of an unknown token');
  check(junk.sub === undefined && junk.client_id === undefined, `introspection of an unknown token says more than active:false: ${show(junk)}`);
});

await step(`refresh rotation: a new refresh token each time; the spent one works within ${graceSecs} s`, async () => {
  const rt1 = first.refresh_token;
  const second = await client.refreshTokenGrant(webConfig, rt1);
  check(second.access_token && second.refresh_token, `refresh answered no access or refresh token: ${show(second)}`);
  check(second.refresh_token !== rt1, 'the refresh token was not rotated');
  check(second.access_token !== first.access_token, 'the refresh returned the same access token');
  await checkAccessToken(second.access_token, { clientId: web.client_id, sub: firstClaims.sub });
  if (second.id_token) {
    const c = (await verifyJwt(second.id_token, 'the refreshed ID token', 'RS256')).payload;
    eq(c.sub, firstClaims.sub, 'refreshed ID token sub (OIDC Core §12.2)');
    eq(c.iss, issuer, 'refreshed ID token iss');
  }
  // Two tabs refreshing at once: the spent token, again, inside the grace window.
  const again = await client.refreshTokenGrant(webConfig, rt1);
  check(again.access_token, `the spent refresh token inside the grace window gave no access token: ${show(again)}`);
  first.rotated = [...new Set([second.refresh_token, again.refresh_token].filter(Boolean))];
  first.spentAt = Date.now();
});

await step('reuse detection: the spent refresh token after the grace window -> invalid_grant, the family revoked', async () => {
  await sleep(Math.max(0, first.spentAt + graceSecs * 1000 + 1500 - Date.now()));
  await expectOAuthError(client.refreshTokenGrant(webConfig, first.refresh_token), 'reuse after the grace window', 'invalid_grant', 400);
  for (const [i, rt] of first.rotated.entries()) {
    await expectOAuthError(client.refreshTokenGrant(webConfig, rt), `a newer refresh token (#${i + 1}) of the revoked family`, 'invalid_grant', 400);
    eq((await client.tokenIntrospection(webConfig, rt)).active, false, `introspection of a newer refresh token (#${i + 1}) of the revoked family`);
  }
});

// --- consent remembered, and the token endpoint's refusals ---------------------------------

await step('consent again without remember; allow with remember=1; a wrong PKCE verifier -> invalid_grant', async () => {
  const req = await authRequest(webConfig, { redirect_uri: WEB_CB, scope: 'openid email' });
  const res = await authorize(browser, req.url, { redirectUri: WEB_CB, decision: 'allow', remember: true });
  eq(res.seen, ['consent'], 'pages seen with a session and no remembered consent');
  await expectOAuthError(
    client.authorizationCodeGrant(webConfig, res.url, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: req.state, expectedNonce: req.nonce }),
    'code exchange with a wrong code_verifier', 'invalid_grant', 400,
  );
});

let third;
await step('remembered consent: straight to the redirect_uri; a reused code -> invalid_grant', async () => {
  const req = await authRequest(webConfig, { redirect_uri: WEB_CB, scope: 'openid email' });
  const res = await authorize(browser, req.url, { redirectUri: WEB_CB });
  eq(res.seen, [], 'pages seen after remember=1');
  third = await client.authorizationCodeGrant(webConfig, res.url, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce, idTokenExpected: true });
  const c = await checkIdToken(third, { clientId: web.client_id, nonce: req.nonce, alg: 'RS256' });
  eq(c.sid, firstClaims.sid, 'sid of the same browser session');
  await expectOAuthError(
    client.authorizationCodeGrant(webConfig, res.url, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce }),
    'the same code a second time', 'invalid_grant', 400,
  );
  // RFC 6749 §4.1.2: the tokens the code gave SHOULD be revoked when it comes back.
  eq((await client.tokenIntrospection(webConfig, third.access_token)).active, false, 'the access token of a code used twice');
});

await step('token endpoint refusals: unsupported_grant_type, invalid_request, unauthorized_client (RFC 6749 §5.2)', async () => {
  await expectOAuthError(client.genericGrantRequest(webConfig, 'urn:example:params:oauth:grant-type:bogus', { x: '1' }), 'an unknown grant_type', 'unsupported_grant_type', 400);
  await expectOAuthError(client.genericGrantRequest(webConfig, 'authorization_code', { redirect_uri: WEB_CB, code_verifier: client.randomPKCECodeVerifier() }), 'authorization_code with no code', 'invalid_request', 400);
  await expectOAuthError(client.clientCredentialsGrant(webConfig, {}), 'client_credentials by a client without that grant', 'unauthorized_client', 400);
});

await step('revocation: a refresh token (and its family) and an access token (RFC 7009)', async () => {
  const req = await authRequest(webConfig, { redirect_uri: WEB_CB, scope: 'openid offline_access' });
  const res = await authorize(browser, req.url, { redirectUri: WEB_CB, decision: 'allow', remember: true });
  // offline_access was not among the remembered scopes, so consent may be asked again.
  check(res.seen.every((p) => p === 'consent'), `pages seen: ${res.seen}`);
  const t = await client.authorizationCodeGrant(webConfig, res.url, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce });
  check(t.refresh_token, `no refresh token with offline_access: ${show(t)}`);
  const rotated = await client.refreshTokenGrant(webConfig, t.refresh_token);
  check(rotated.refresh_token && rotated.refresh_token !== t.refresh_token, `not rotated: ${show(rotated)}`);

  await client.tokenRevocation(webConfig, rotated.refresh_token, { token_type_hint: 'refresh_token' });
  eq((await client.tokenIntrospection(webConfig, rotated.refresh_token)).active, false, 'introspection of the revoked refresh token');
  await expectOAuthError(client.refreshTokenGrant(webConfig, rotated.refresh_token), 'refresh with the revoked refresh token', 'invalid_grant', 400);
  // Its predecessor is inside the grace window, but the family is revoked.
  await expectOAuthError(client.refreshTokenGrant(webConfig, t.refresh_token), 'refresh with the spent predecessor of a revoked refresh token', 'invalid_grant', 400);

  // RFC 7009 §2.1: revoking a refresh token SHOULD also invalidate the grant's access tokens.
  eq((await client.tokenIntrospection(webConfig, rotated.access_token)).active, false, 'an access token of the revoked refresh token family');

  // An access token of another grant, revoked by itself.
  const other = await authRequest(webConfig, { redirect_uri: WEB_CB, scope: 'openid email' });
  const otherRes = await authorize(browser, other.url, { redirectUri: WEB_CB });
  const t2 = await client.authorizationCodeGrant(webConfig, otherRes.url, { pkceCodeVerifier: other.verifier, expectedState: other.state, expectedNonce: other.nonce });
  eq((await client.tokenIntrospection(webConfig, t2.access_token)).active, true, 'the access token before its revocation');
  await client.tokenRevocation(webConfig, t2.access_token, { token_type_hint: 'access_token' });
  eq((await client.tokenIntrospection(webConfig, t2.access_token)).active, false, 'introspection of the revoked access token');
  // RFC 7009 §2.2: an invalid token is not an error.
  await client.tokenRevocation(webConfig, 'no-such-token-anywhere');
});

let formPost;
await step('response_mode=form_post: an auto-submitting form to the redirect_uri', async () => {
  const req = await authRequest(webConfig, { redirect_uri: WEB_CB, scope: 'openid email', response_mode: 'form_post' });
  const res = await authorize(browser, req.url, { redirectUri: WEB_CB });
  check(res.request, () => `expected an HTML form posting to ${WEB_CB}, got a redirect to ${res.url}`);
  eq(res.params.get('state'), req.state, 'state in the form');
  check(res.params.get('code'), `no code in the form: ${res.params}`);
  formPost = await client.authorizationCodeGrant(webConfig, res.request, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce, idTokenExpected: true });
  await checkIdToken(formPost, { clientId: web.client_id, nonce: req.nonce, alg: 'RS256' });
});

await step('deny at consent -> access_denied at the redirect_uri; a wrong client_secret_post -> invalid_client', async () => {
  const cfg = await configure(web2.client_id, { client_secret: web2.client_secret }, client.ClientSecretPost(web2.client_secret));
  const req = await authRequest(cfg, { redirect_uri: WEB_CB, scope: 'openid email' });
  const res = await authorize(browser, req.url, { redirectUri: WEB_CB, decision: 'deny' });
  eq(res.seen, ['consent'], 'pages seen');
  const got = await expectOAuthError(client.authorizationCodeGrant(cfg, res.url, { pkceCodeVerifier: req.verifier, expectedState: req.state }), 'denied consent', 'access_denied');
  eq(got.params.get('state'), req.state, 'state on the error redirect');

  // Allowed this time, then exchanged with a wrong client_secret_post: invalid_client, with
  // 401 (or 400: RFC 6749 §5.2 asks for 401 only when the client used the Authorization header).
  const req2 = await authRequest(cfg, { redirect_uri: WEB_CB, scope: 'openid email' });
  const res2 = await authorize(browser, req2.url, { redirectUri: WEB_CB, decision: 'allow' });
  const wrong = await configure(web2.client_id, {}, client.ClientSecretPost('wrong-secret-wrong-secret'));
  const bad = await expectOAuthError(client.authorizationCodeGrant(wrong, res2.url, { pkceCodeVerifier: req2.verifier, expectedState: req2.state }), 'client_secret_post with a wrong secret', 'invalid_client');
  check(bad.status === 401 || bad.status === 400, `invalid_client with HTTP ${bad.status}`);
});

// --- client credentials, private_key_jwt ------------------------------------------------

await step('client_credentials with client_secret_basic: an access token only; wrong secret -> 401 invalid_client', async () => {
  const cfg = await configure(m2m.client_id, { client_secret: m2m.client_secret }, client.ClientSecretBasic(m2m.client_secret));
  const t = await client.clientCredentialsGrant(cfg, { scope: 'api.read' });
  check(t.access_token, `no access token: ${show(t)}`);
  check(!t.id_token && !t.refresh_token, `client_credentials answered an id_token or refresh_token: ${show(t)}`);
  eq(String(t.token_type).toLowerCase(), 'bearer', 'token_type');
  await checkAccessToken(t.access_token, { clientId: m2m.client_id, scope: 'api.read' });
  const intro = await client.tokenIntrospection(cfg, t.access_token);
  eq(intro.active, true, 'introspection of the client_credentials token');
  eq(intro.client_id, m2m.client_id, 'its client_id');

  await expectOAuthError(client.clientCredentialsGrant(cfg, { scope: 'api.write' }), 'client_credentials with a scope the client may not ask', 'invalid_scope', 400);

  const wrong = await configure(m2m.client_id, {}, client.ClientSecretBasic('not-the-secret-at-all'));
  const got = await expectOAuthError(client.clientCredentialsGrant(wrong, { scope: 'api.read' }), 'client_secret_basic with a wrong secret', 'invalid_client', 401);
  check(got.challenges?.some((c) => c.scheme === 'basic'), `no WWW-Authenticate: Basic challenge with the 401 (RFC 6749 §5.2): ${got.headers?.get('www-authenticate')}`);
  const unknown = await configure('no-such-client', {}, client.ClientSecretBasic('whatever'));
  await expectOAuthError(client.clientCredentialsGrant(unknown, {}), 'client_secret_basic for an unknown client', 'invalid_client', 401);
});

await step('private_key_jwt: code exchange and client_credentials with a signed assertion; ES256 ID token', async () => {
  const cfg = await configure(pkjwt.client_id, { id_token_signed_response_alg: 'ES256' }, client.PrivateKeyJwt(pkKey));
  const req = await authRequest(cfg, { redirect_uri: WEB_CB, scope: 'openid email' });
  const res = await authorize(browser, req.url, { redirectUri: WEB_CB, decision: 'allow' });
  eq(res.seen, ['consent'], 'pages seen for a new client');
  const t = await client.authorizationCodeGrant(cfg, res.url, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce, idTokenExpected: true });
  await checkIdToken(t, { clientId: pkjwt.client_id, nonce: req.nonce, alg: 'ES256' });
  const cc = await client.clientCredentialsGrant(cfg, { scope: 'api.read' });
  check(cc.access_token && !cc.refresh_token && !cc.id_token, `client_credentials: ${show(cc)}`);

  // The same kid, another key: the assertion does not verify.
  const other = await webcrypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['sign', 'verify']);
  const forged = await configure(pkjwt.client_id, {}, client.PrivateKeyJwt({ key: other.privateKey, kid: pkKey.kid }));
  await expectOAuthError(client.clientCredentialsGrant(forged, { scope: 'api.read' }), 'private_key_jwt signed by another key', 'invalid_client');
});

// --- a public client that skips consent ----------------------------------------------------

await step('public client (none) with skip_consent: login, never consent; private-use scheme redirect', async () => {
  const cfg = await configure(native.client_id, {}, client.None());
  const b = new Browser('alice-on-the-phone');
  const req = await authRequest(cfg, { redirect_uri: NATIVE_CB, scope: 'openid profile' });
  const res = await authorize(b, req.url, { redirectUri: NATIVE_CB, user: alice });
  eq(res.seen, ['login'], 'pages seen');
  const t = await client.authorizationCodeGrant(cfg, res.url, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce, idTokenExpected: true });
  await checkIdToken(t, { clientId: native.client_id, nonce: req.nonce, alg: 'RS256' });
  const info = await client.fetchUserInfo(cfg, t.access_token, client.skipSubjectCheck);
  eq(info.name, alice.display_name, 'userinfo name (scope profile)');
  check(info.email === undefined && info.groups === undefined, `userinfo gave claims of scopes not granted: ${show(info)}`);

  const again = await authRequest(cfg, { redirect_uri: NATIVE_CB, scope: 'openid profile' });
  eq((await authorize(b, again.url, { redirectUri: NATIVE_CB })).seen, [], 'pages seen the second time');

  const bad = await authRequest(cfg, { redirect_uri: NATIVE_CB, scope: 'openid email' });
  const r = await authorize(b, bad.url, { redirectUri: NATIVE_CB });
  const got = await expectOAuthError(client.authorizationCodeGrant(cfg, r.url, { pkceCodeVerifier: bad.verifier, expectedState: bad.state }), 'a scope the client may not ask', 'invalid_scope');
  eq(got.params.get('state'), bad.state, 'state on the error redirect');
});

// --- RP-initiated logout ------------------------------------------------------------------

await step('RP-initiated logout: buildEndSessionUrl -> post_logout_redirect_uri with state; the session is gone', async () => {
  const state = client.randomState();
  const url = client.buildEndSessionUrl(webConfig, { id_token_hint: formPost.id_token, post_logout_redirect_uri: WEB_LOGGED_OUT, state });
  let r = await browser.request(url);
  for (let i = 0; i < 5 && isRedirect(r.status) && r.location && !r.location.startsWith(WEB_LOGGED_OUT); i++) r = await browser.request(r.location);
  check(isRedirect(r.status) && r.location?.startsWith(WEB_LOGGED_OUT), () => `GET ${url} answered ${r.status} ${r.location ?? show(pageText(r.text))}`);
  const back = new URL(r.location);
  eq(back.searchParams.get('state'), state, 'state at the post_logout_redirect_uri');
  eq(`${back.origin}${back.pathname}`, WEB_LOGGED_OUT, 'post_logout_redirect_uri');

  const req = await authRequest(webConfig, { redirect_uri: WEB_CB, scope: 'openid email' });
  const r0 = await browser.request(req.url);
  check(r0.status === 303 && r0.location && pathOf(r0.location) === '/auth/login', () => `after logout, GET ${req.url} answered ${r0.status} ${r0.location ?? ''} instead of the login page`);
  const none = await authRequest(webConfig, { redirect_uri: WEB_CB, scope: 'openid', prompt: 'none' });
  const r1 = await browser.request(none.url);
  check(isRedirect(r1.status) && r1.location?.startsWith(WEB_CB), `prompt=none after logout answered ${r1.status} ${r1.location}`);
  eq(new URL(r1.location).searchParams.get('error'), 'login_required', 'prompt=none after logout');
});

await step('logout refusal: an unregistered post_logout_redirect_uri is never redirected to', async () => {
  const evil = 'https://evil.example/after-logout';
  const url = client.buildEndSessionUrl(webConfig, { id_token_hint: formPost.id_token, post_logout_redirect_uri: evil, state: 's' });
  let r = await browser.request(url);
  for (let i = 0; i < 5 && isRedirect(r.status) && r.location?.startsWith(base); i++) r = await browser.request(r.location);
  check(!(r.location ?? '').startsWith('https://evil.example'), `GET ${url} redirected to ${r.location}`);
});

await step('back-channel logout: the client got a logout token (OIDC Back-Channel Logout 1.0 §2.4)', async () => {
  const deadline = Date.now() + 10_000;
  while (backchannel.tokens.length === 0 && Date.now() < deadline) await sleep(100);
  check(backchannel.tokens.length > 0, `nothing was POSTed to http://127.0.0.1:${backchannel.port}/backchannel within 10 s of the logout`);
  const got = backchannel.tokens[0];
  eq(got.method, 'POST', 'back-channel request method');
  check(got.type.startsWith('application/x-www-form-urlencoded'), `back-channel content-type ${got.type}`);
  const token = new URLSearchParams(got.body).get('logout_token');
  check(token, `no logout_token in ${show(got.body)}`);
  const jwt = await verifyJwt(token, 'the logout token');
  const c = jwt.payload;
  eq(c.iss, issuer, 'logout token iss');
  check(audList(c.aud).includes(web.client_id), `logout token aud ${show(c.aud)}`);
  check(c.events && typeof c.events['http://schemas.openid.net/event/backchannel-logout'] === 'object', `logout token events: ${show(c.events)}`);
  check(c.sid === firstClaims.sid || c.sub === firstClaims.sub, `logout token has neither the session's sid nor the user's sub: ${show(c)}`);
  check(c.nonce === undefined, 'a logout token must not carry a nonce');
  check(typeof c.jti === 'string' && Number.isInteger(c.iat), `logout token jti/iat: ${show(c)}`);
  if (jwt.header.typ !== undefined) eq(jwt.header.typ.toLowerCase(), 'logout+jwt', 'logout token typ');
});

backchannel.server.close();
console.log(`oidc_rp.mjs: all ${stepNo} checks passed`);
process.exit(0);

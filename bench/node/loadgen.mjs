// Token-endpoint load generator for bench/oidc.sh, the same for assay-engine and oidc-provider.
//
//   node loadgen.mjs setup   URL TOKENS_FILE CHAINS   (env: KIND=engine|op, CLIENT_ID, CLIENT_SECRET,
//                                                     TOKEN_PATH, AUTHORIZE_PATH, EMAIL, PASSWORD)
//       (FLOW_PROMPT: a prompt parameter for the authorization request)
//       CHAINS authorization-code flows (PKCE S256, scope openid offline_access), each exchanged
//       at the token endpoint; writes the CHAINS refresh tokens to TOKENS_FILE.
//   node loadgen.mjs refresh URL TOKENS_FILE SECONDS  (env: CLIENT_ID, CLIENT_SECRET, TOKEN_PATH)
//       One keep-alive connection per chain. Each chain POSTs grant_type=refresh_token with its
//       latest refresh token and takes the one in the answer for its next request, so no token
//       is ever sent twice (rotation: a reused token would revoke the family). After SECONDS,
//       no new request starts; the ones in flight finish (not counted), and the chains' latest
//       tokens go back to TOKENS_FILE for the next run.
//   node loadgen.mjs cc      URL CONNECTIONS SECONDS  (env: CLIENT_ID, CLIENT_SECRET, TOKEN_PATH, SCOPE)
//       client_credentials on CONNECTIONS keep-alive connections (a cross-check of wrk).
//   node loadgen.mjs get     URL CONNECTIONS SECONDS  (env: GET_PATH)
//       GET GET_PATH: the generator's own ceiling against a trivial endpoint.
//
// Prints one JSON line: {"ok":N,"errors":N,"seconds":S,"rps":R,"p50_ms":..,"p99_ms":..,
// "cpu_ms":.., "cpu_pct":..} where cpu is this process's user+system CPU over the timed window
// (100 % = one core). Requests are hand-written HTTP/1.1 on raw sockets: the least client CPU
// node allows, so that the generator takes as little as it can of the two cores it shares
// with the server.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const [mode, baseUrl, arg1, arg2] = process.argv.slice(2);
if (!mode || !baseUrl) {
  console.error('usage: loadgen.mjs setup|refresh|cc|get URL ...');
  process.exit(2);
}
const base = new URL(baseUrl);
const env = process.env;
const CLIENT_ID = env.CLIENT_ID || '';
const CLIENT_SECRET = env.CLIENT_SECRET || '';
const TOKEN_PATH = env.TOKEN_PATH || '/auth/token';
const REDIRECT_URI = 'http://127.0.0.1:1/cb';
const BASIC = `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64')}`;

// ---------------------------------------------------------------- raw keep-alive HTTP/1.1

class Conn {
  constructor() {
    this.sock = null;
    this.buf = Buffer.alloc(0);
    this.pending = null;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: base.hostname, port: Number(base.port), noDelay: true });
      s.once('connect', () => resolve());
      s.once('error', (e) => {
        if (this.pending) {
          const p = this.pending;
          this.pending = null;
          p.reject(e);
        } else reject(e);
      });
      s.on('data', (d) => this.onData(d));
      s.on('close', () => {
        this.sock = null;
        if (this.pending) {
          const p = this.pending;
          this.pending = null;
          p.reject(new Error('connection closed'));
        }
      });
      this.sock = s;
      this.buf = Buffer.alloc(0);
    });
  }

  onData(d) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    if (!this.pending) return;
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.subarray(0, end).toString('latin1');
    const status = Number(head.slice(9, 12));
    const lower = head.toLowerCase();
    let body;
    let rest;
    const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
    if (cl) {
      const len = Number(cl[1]);
      if (this.buf.length < end + 4 + len) return;
      body = this.buf.subarray(end + 4, end + 4 + len);
      rest = this.buf.subarray(end + 4 + len);
    } else if (/\r\ntransfer-encoding:\s*chunked/.test(lower)) {
      const parts = [];
      let i = end + 4;
      for (;;) {
        const le = this.buf.indexOf('\r\n', i);
        if (le < 0) return;
        const size = parseInt(this.buf.subarray(i, le).toString('latin1'), 16);
        if (this.buf.length < le + 2 + size + 2) return;
        if (size === 0) {
          rest = this.buf.subarray(le + 4);
          break;
        }
        parts.push(this.buf.subarray(le + 2, le + 2 + size));
        i = le + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      body = Buffer.alloc(0); // no body (e.g. 204); good enough here
      rest = this.buf.subarray(end + 4);
    }
    this.buf = rest.length ? Buffer.from(rest) : Buffer.alloc(0);
    const p = this.pending;
    this.pending = null;
    p.resolve({ status, body, close: /\r\nconnection:\s*close/.test(lower) });
  }

  async request(raw) {
    if (!this.sock) await this.connect();
    const res = await new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.sock.write(raw);
    });
    if (res.close && this.sock) {
      this.sock.destroy();
      this.sock = null;
    }
    return res;
  }

  close() {
    if (this.sock) this.sock.destroy();
    this.sock = null;
  }
}

const hostHeader = `${base.hostname}:${base.port}`;

function postForm(path, body, extra = '') {
  return `POST ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nAuthorization: ${BASIC}\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function pct(sorted, q) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// Runs `workers` loops of `step(i)` (each returns true for a good answer) for `seconds`.
async function timed(workers, seconds, step) {
  const lat = [];
  let ok = 0;
  let errors = 0;
  let stop = false;
  const t0 = performance.now();
  const c0 = cpuMs();
  const deadline = t0 + seconds * 1000;
  let tEnd = 0;
  let cEnd = 0;
  const timer = setTimeout(() => {
    stop = true;
    tEnd = performance.now();
    cEnd = cpuMs();
  }, seconds * 1000);
  await Promise.all(
    Array.from({ length: workers }, async (_, i) => {
      while (!stop) {
        const s = performance.now();
        let good;
        try {
          good = await step(i);
        } catch (e) {
          good = false;
          if (errors < 3) console.error(`request failed: ${e.message}`);
        }
        const e = performance.now();
        if (e <= deadline) {
          if (good) {
            ok += 1;
            lat.push(e - s);
          } else errors += 1;
        }
        if (good === false && step.fatal) return;
      }
    }),
  );
  clearTimeout(timer);
  if (!tEnd) {
    tEnd = performance.now();
    cEnd = cpuMs();
  }
  const secs = (tEnd - t0) / 1000;
  lat.sort((a, b) => a - b);
  return {
    ok,
    errors,
    seconds: Number(secs.toFixed(3)),
    rps: Number((ok / secs).toFixed(1)),
    p50_ms: Number(pct(lat, 0.5).toFixed(2)),
    p99_ms: Number(pct(lat, 0.99).toFixed(2)),
    cpu_ms: Math.round(cEnd - c0),
    cpu_pct: Number(((100 * (cEnd - c0)) / (tEnd - t0)).toFixed(1)),
  };
}

// ---------------------------------------------------------------- modes

async function refresh(tokensFile, seconds) {
  const tokens = JSON.parse(readFileSync(tokensFile, 'utf8'));
  const conns = tokens.map(() => new Conn());
  let shown = 0;
  const step = async (i) => {
    const body = `grant_type=refresh_token&refresh_token=${encodeURIComponent(tokens[i])}`;
    const res = await conns[i].request(postForm(TOKEN_PATH, body));
    if (res.status !== 200) {
      if (shown++ < 3) console.error(`refresh answered ${res.status}: ${res.body.toString().slice(0, 300)}`);
      return false;
    }
    const j = JSON.parse(res.body);
    if (!j.refresh_token || !j.access_token || !j.id_token) {
      if (shown++ < 3) console.error(`refresh answer lacks a token: ${res.body.toString().slice(0, 300)}`);
      return false;
    }
    tokens[i] = j.refresh_token;
    return true;
  };
  step.fatal = true; // a chain whose token is unknown cannot go on
  const r = await timed(tokens.length, seconds, step);
  conns.forEach((c) => c.close());
  writeFileSync(tokensFile, JSON.stringify(tokens));
  return r;
}

async function cc(connections, seconds) {
  const scope = env.SCOPE === undefined ? 'profile' : env.SCOPE;
  const raw = postForm(TOKEN_PATH, `grant_type=client_credentials${scope ? `&scope=${encodeURIComponent(scope)}` : ''}`);
  const conns = Array.from({ length: connections }, () => new Conn());
  let shown = 0;
  const r = await timed(connections, seconds, async (i) => {
    const res = await conns[i].request(raw);
    if (res.status !== 200 && shown++ < 3) console.error(`client_credentials answered ${res.status}: ${res.body.toString().slice(0, 300)}`);
    return res.status === 200;
  });
  conns.forEach((c) => c.close());
  return r;
}

async function get(connections, seconds) {
  const raw = `GET ${env.GET_PATH || '/healthz'} HTTP/1.1\r\nHost: ${hostHeader}\r\n\r\n`;
  const conns = Array.from({ length: connections }, () => new Conn());
  const r = await timed(connections, seconds, async (i) => (await conns[i].request(raw)).status === 200);
  conns.forEach((c) => c.close());
  return r;
}

// ---------------------------------------------------------------- setup: the code flow

// A tiny browser: node's http module, a cookie jar, manual redirects.
function browse(jar, method, url, form) {
  const u = new URL(url, base);
  const body = form ? new URLSearchParams(form).toString() : undefined;
  const headers = { accept: 'text/html,application/json' };
  const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  if (cookie) headers.cookie = cookie;
  if (body) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = Buffer.byteLength(body);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(u, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        for (const sc of res.headers['set-cookie'] || []) {
          const [pair] = sc.split(';');
          const eq = pair.indexOf('=');
          const k = pair.slice(0, eq).trim();
          const v = pair.slice(eq + 1).trim();
          if (v === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(sc)) jar.delete(k);
          else jar.set(k, v);
        }
        resolve({ status: res.statusCode, location: res.headers.location, body: Buffer.concat(chunks).toString(), url: u });
      });
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

function unescapeHtml(s) {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

// The form of a page to submit (the one with a password field, else the one with a decision,
// else the first POST form): its action and the fields a browser would send without typing.
function parseForm(html) {
  const forms = (html.match(/<form\b[^>]*>[\s\S]*?<\/form>/gi) || []).filter((f) => /^<form\b[^>]*method="post"/i.test(f));
  const form = forms.find((f) => /name="password"/i.test(f)) || forms.find((f) => /name="decision"/i.test(f)) || forms[0];
  if (!form) return null;
  const action = /^<form\b[^>]*\baction="([^"]*)"/i.exec(form);
  const fields = {};
  for (const input of form.match(/<input\b[^>]*>/gi) || []) {
    // hidden inputs, and checkboxes that are checked (a browser sends those)
    if (!/type="hidden"/i.test(input) && !(/type="checkbox"/i.test(input) && /\bchecked\b/i.test(input))) continue;
    const name = /\bname="([^"]*)"/i.exec(input);
    const value = /\bvalue="([^"]*)"/i.exec(input);
    if (name) fields[unescapeHtml(name[1])] = value ? unescapeHtml(value[1]) : '';
  }
  return { action: action ? unescapeHtml(action[1]) : null, password: /name="password"/i.test(form), fields };
}

async function codeFlow(jar) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    scope: env.FLOW_SCOPE || 'openid offline_access',
    state: 's',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  // oidc-provider follows OpenID Connect Core 11: offline_access only with prompt=consent.
  if (env.FLOW_PROMPT) q.set('prompt', env.FLOW_PROMPT);
  let res = await browse(jar, 'GET', `${env.AUTHORIZE_PATH || '/auth/authorize'}?${q}`);
  for (let hop = 0; hop < 20; hop += 1) {
    if (res.status >= 300 && res.status < 400 && res.location) {
      const next = new URL(res.location, res.url);
      if (next.href.startsWith(REDIRECT_URI)) {
        const code = next.searchParams.get('code');
        if (!code) throw new Error(`redirect without a code: ${next.href}`);
        const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
        const c = new Conn();
        const t = await c.request(postForm(TOKEN_PATH, body.toString()));
        c.close();
        if (t.status !== 200) throw new Error(`code exchange answered ${t.status}: ${t.body}`);
        const j = JSON.parse(t.body);
        if (!j.refresh_token) throw new Error(`no refresh_token in ${t.body}`);
        return j.refresh_token;
      }
      res = await browse(jar, 'GET', next.href);
      continue;
    }
    const form = res.status === 200 ? parseForm(res.body) : null;
    if (form) {
      const fields = { ...form.fields };
      if (form.password) {
        fields.email = env.EMAIL;
        fields.password = env.PASSWORD;
      } else {
        fields.decision = 'allow';
      }
      res = await browse(jar, 'POST', new URL(form.action || res.url.pathname, res.url).href, fields);
      continue;
    }
    throw new Error(`code flow stuck at ${res.url.href}: ${res.status} ${res.body.slice(0, 500)}`);
  }
  throw new Error('code flow: too many hops');
}

async function setup(tokensFile, chains) {
  const jar = new Map(); // one browser: it logs in once, and its session serves the other flows
  const tokens = [];
  for (let i = 0; i < chains; i += 1) tokens.push(await codeFlow(jar));
  writeFileSync(tokensFile, JSON.stringify(tokens));
  return { chains: tokens.length };
}

// ----------------------------------------------------------------

let out;
if (mode === 'setup') out = await setup(arg1, Number(arg2));
else if (mode === 'refresh') out = await refresh(arg1, Number(arg2));
else if (mode === 'cc') out = await cc(Number(arg1), Number(arg2));
else if (mode === 'get') out = await get(Number(arg1), Number(arg2));
else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
console.log(JSON.stringify(out));

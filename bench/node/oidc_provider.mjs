// oidc-provider (npm, OpenID Certified) configured as closely to assay-engine's token endpoint
// as it allows, for bench/oidc.sh:
//   - one RSA-2048 key, RS256 for ID tokens and for access tokens;
//   - JWT access tokens (a resource server, `urn:assay:bench`, with accessTokenFormat 'jwt', made
//     the default resource of every request and of every refresh, since oidc-provider issues
//     JWT access tokens only for resource servers);
//   - refresh token rotation (rotateRefreshToken: true), refresh tokens issued for
//     offline_access, an ID token in the refresh answer when the grant has openid;
//   - the clientCredentials feature on;
//   - its default in-memory adapter (no database: an LRU of 1000 entries per model family);
//   - findAccount returning one fixed account; login and consent accepted without a page (the
//     interaction URL answers with the interaction's result at once, and a grant covering
//     everything asked is made on first use), so that a client gets its refresh token through
//     the real authorization-code flow.
// One process, so one thread of JavaScript.
//
//   PORT=NNNN CLIENT_ID=... CLIENT_SECRET=... NODE_ENV=production node bench/node/oidc_provider.mjs

import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0) || 3000;
const issuer = `http://127.0.0.1:${port}`;
const clientId = process.env.CLIENT_ID || 'bench';
const clientSecret = process.env.CLIENT_SECRET || 'bench-secret-0123456789abcdef0123456789abcdef';
const RESOURCE = 'urn:assay:bench';
const ACCOUNT = '0192f5e4-7c1a-7b3e-9d2f-4a6b8c0d1e2f';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', use: 'sig', alg: 'RS256' };

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials', 'refresh_token', 'authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:1/cb'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: ['assay-bench-cookie-key-0123456789abcdef'] },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, email: 'bench@example.com', email_verified: true, name: 'Bench', preferred_username: 'bench' };
      },
    };
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: 'openid profile email offline_access',
        audience: RESOURCE,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 3600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  rotateRefreshToken: true,
  pkce: { required: () => false },
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    IdToken: 3600,
    AuthorizationCode: 60,
    RefreshToken: 30 * 24 * 3600,
    Grant: 30 * 24 * 3600,
    Session: 24 * 3600,
    Interaction: 3600,
  },
  // Consent without a page: a grant with every scope asked for, for the OIDC scopes and the
  // resource server.
  async loadExistingGrant(ctx) {
    const { provider, client, session } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (grantId) {
      const found = await provider.Grant.find(grantId);
      if (found) return found;
    }
    const grant = new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    const scope = ctx.oidc.params.scope || 'openid';
    grant.addOIDCScope(scope);
    grant.addResourceScope(RESOURCE, scope);
    await grant.save();
    return grant;
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
};

const provider = new Provider(issuer, configuration);

// Login without a page: GET /interaction/:uid answers with the interaction's result (the fixed
// account), redirecting back to the authorization endpoint.
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    let result;
    if (details.prompt.name === 'login') {
      result = { login: { accountId: ACCOUNT } };
    } else {
      const grant = new provider.Grant({ clientId: details.params.client_id, accountId: details.session.accountId });
      grant.addOIDCScope(details.params.scope || 'openid');
      grant.addResourceScope(RESOURCE, details.params.scope || 'openid');
      result = { consent: { grantId: await grant.save() } };
    }
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(to);
    return;
  }
  await next();
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
}

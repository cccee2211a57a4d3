// Development OpenID Provider for dsgo-node: the certified `oidc-provider` package, configured
// from one JSON file that dsgo writes (`dsgo init --dev-login`, examples/demo.py, the tests).
//
//   node tools/dev-op/start.mjs CONFIG.json
//
// CONFIG: { "issuer": "http://127.0.0.1:PORT", "port": PORT,
//           "clients": [{ "client_id", "jwks": {"keys": [...]}, "redirect_uris": [...] }],
//           "users":   [{ "username", "password", "name", "email", "party_id", "party_name", "roles" }] }
//
// Each node is a client that authenticates with private_key_jwt (its party key; the public
// JWKS is in the config) and must use PKCE S256. The login page checks the configured password;
// consent is granted automatically (the nodes are the only clients). Signing keys are made at
// start-up and never written: a restarted provider has a new key, found by the nodes via JWKS.
// Only for development: it keeps everything in memory and listens on 127.0.0.1 only.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { URLSearchParams } from 'node:url';

import Provider from 'oidc-provider';

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node start.mjs CONFIG.json');
  process.exit(2);
}
let config;
try {
  config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
} catch (err) {
  console.error(`dev-op: cannot read ${configPath}: ${err.message}`);
  process.exit(2);
}
const issuer = String(config.issuer || '').replace(/\/$/, '');
const port = Number(config.port || new URL(issuer).port);
const users = new Map((config.users || []).map((u) => [u.username, u]));

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };
signingKey.kid = crypto.createHash('sha256').update(signingKey.n).digest('base64url').slice(0, 16);

function claimsOf(user) {
  return {
    sub: user.username,
    name: user.name,
    email: user.email,
    email_verified: Boolean(user.email),
    party_id: user.party_id,
    party_name: user.party_name,
    roles: user.roles || [],
  };
}

const provider = new Provider(issuer, {
  clients: (config.clients || []).map((c) => ({
    client_id: c.client_id,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'RS256',
    id_token_signed_response_alg: 'RS256',
    request_object_signing_alg: 'RS256',
    jwks: c.jwks,
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris || [],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  })),
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email', 'email_verified'],
    dsgo: ['party_id', 'party_name', 'roles'],
    iSHARE: ['party_id', 'party_name', 'roles'], // iSHARE's scope for a human login
  },
  scopes: ['openid', 'profile', 'email', 'dsgo', 'iSHARE'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    requestObjects: { request: true, requestUri: false, requireSignedRequestObject: false },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const user = users.get(id);
    if (!user) return undefined;
    return { accountId: id, claims: async () => claimsOf(user) };
  },
  ttl: { Session: 3600, Interaction: 600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600, Grant: 3600 },
});
provider.on('server_error', (ctx, err) => console.error('dev-op server_error:', err));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, title, body) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    // no form-action: browsers apply it to the redirect back to the node after the login form
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
  });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;max-width:28em;margin:4em auto}input,button{display:block;margin:.5em 0;padding:.4em;width:100%}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`);
}

function loginForm(uid, clientId, error) {
  const names = [...users.values()]
    .map((u) => `<li><code>${escape(u.username)}</code>: ${escape(u.name)} (${escape(u.party_name || u.party_id)}${u.roles && u.roles.length ? ', ' + escape(u.roles.join(', ')) : ''})</li>`)
    .join('');
  return `<p>Log in to <strong>${escape(clientId)}</strong> (development provider).</p>
${error ? `<p role="alert" style="color:#a00">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>User <input name="login" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button></form><h2>Demo users</h2><ul>${names}</ul>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

async function interaction(req, res) {
  const parts = new URL(req.url, issuer).pathname.split('/').filter(Boolean); // interaction, uid, [login]
  const details = await provider.interactionDetails(req, res);
  if (parts[1] !== details.uid) return page(res, 400, 'Bad request', '<p>Unknown interaction.</p>');
  const clientId = details.params.client_id;
  if (req.method === 'POST' && parts[2] === 'login') {
    const form = await readForm(req);
    const user = users.get(form.get('login') || '');
    const given = Buffer.from(form.get('password') || '');
    const wanted = Buffer.from(user ? String(user.password) : '');
    if (!user || given.length !== wanted.length || !crypto.timingSafeEqual(given, wanted)) {
      return page(res, 401, 'Log in', loginForm(details.uid, clientId, 'Unknown user or wrong password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: user.username } }, { mergeWithLastSubmission: false });
  }
  if (details.prompt.name === 'login') return page(res, 200, 'Log in', loginForm(details.uid, clientId, null));
  if (details.prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return page(res, 400, 'Bad request', `<p>Unsupported prompt ${escape(details.prompt.name)}.</p>`);
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      if (!res.headersSent) page(res, 400, 'Login failed', `<p>${escape(err.message)}</p>`);
    });
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`dev-op listening on ${issuer} (${users.size} users, ${(config.clients || []).length} clients)`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));

// A real OpenID provider (npm oidc-provider 9) for the end-to-end tests.
//   node provider.mjs PORT REDIRECT_URI [--conform]
// --conform keeps `groups` out of the ID token (userinfo only), as strict
// providers do. Prints "ready" on stdout once listening.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, redirect, ...flags] = process.argv.slice(2);
const conform = flags.includes('--conform');

// Users: the dev login form accepts any password; the name picks the account.
const users = {
  alice: { email: 'alice@example.com', groups: ['idp-dba', 'oncall'] },
  dave: { email: 'dave@example.com', groups: ['developers'] },
  nobody: { email: 'nobody@example.com', groups: [] },
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', alg: 'RS256', use: 'sig' };

const configuration = {
  clients: [{
    client_id: 'gateway',
    client_secret: 'gateway-client-secret-0123456789',
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    redirect_uris: [redirect],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  conformIdTokenClaims: conform,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  jwks: { keys: [jwk] },
  async findAccount(ctx, id) {
    const u = users[id];
    if (!u) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: u.email, email_verified: true, name: id, groups: u.groups };
      },
    };
  },
};

const provider = new Provider(`http://127.0.0.1:${port}`, configuration);
provider.listen(Number(port), '127.0.0.1', () => console.log('ready'));

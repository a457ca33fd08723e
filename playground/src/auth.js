// Tokens: kept in this tab's sessionStorage (never localStorage), decoded here only to
// show who is signed in. The hub verifies every request and is the authority.

const TOKEN_KEY = 'c360.playground.token';

function base64UrlDecode(part) {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The claims of a JWT, unverified. Throws with a readable message when it is none. */
export function decodeJwt(token) {
  const parts = token.trim().split('.');
  if (parts.length !== 3 || !parts[1]) {
    throw new Error('This is not a JWT: a token has three parts separated by dots.');
  }
  let claims;
  try {
    claims = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    throw new Error('This is not a JWT: its payload is not base64url-encoded JSON.');
  }
  if (!claims || typeof claims !== 'object') throw new Error('This JWT has no claims.');
  return claims;
}

/** Who a token says it is, for display. */
export function viewerFromToken(token) {
  const claims = decodeJwt(token);
  const scopes = typeof claims.scope === 'string' ? claims.scope.split(/\s+/).filter(Boolean) : [];
  return {
    token: token.trim(),
    subject: claims.sub ?? null,
    role: claims.role ?? 'unknown',
    scopes,
    partner: claims.partner ?? claims.partner_id ?? null,
    purpose: claims.purpose ?? null,
    exp: typeof claims.exp === 'number' ? claims.exp : null,
    iat: typeof claims.iat === 'number' ? claims.iat : null,
    jti: claims.jti ?? null,
  };
}

export function isExpired(viewer, now = Date.now()) {
  return viewer.exp != null && viewer.exp * 1000 <= now;
}

export function loadToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function saveToken(token) {
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage disabled: the token then lives in memory only.
  }
}

export function clearToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing stored
  }
}

/** The development roles and partners, or null when the hub offers none (production). */
export async function fetchDevViewers() {
  try {
    const res = await fetch('/dev/viewers', { headers: { accept: 'application/json' } });
    if (!res.ok) return null;
    const body = await res.json();
    if (!body || !Array.isArray(body.roles)) return null;
    return { roles: body.roles, partners: Array.isArray(body.partners) ? body.partners : [] };
  } catch {
    return null;
  }
}

/** Asks the hub (development only) for a short-lived token. */
export async function fetchDevToken({ role, partner, ttlSeconds }) {
  const request = { role };
  if (role === 'partner') request.partner = partner;
  if (ttlSeconds) request.ttlSeconds = ttlSeconds;
  const res = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(request),
  });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON
  }
  if (!res.ok || !body || typeof body.token !== 'string') {
    const message = body?.errors?.[0]?.message ?? `the hub answered HTTP ${res.status}`;
    throw new Error(`No development token: ${message}`);
  }
  return body.token;
}

const JWT_PATTERN = /eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/**
 * The storage GraphiQL keeps tabs, history and settings in: localStorage, but anything
 * that looks like a JWT is blanked before it is written, so a token pasted into an
 * editor never lands in persistent storage.
 */
export const scrubbedLocalStorage = {
  getItem(key) {
    return localStorage.getItem(key);
  },
  setItem(key, value) {
    localStorage.setItem(key, String(value).replace(JWT_PATTERN, '<token removed>'));
  },
  removeItem(key) {
    localStorage.removeItem(key);
  },
  clear() {
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith('graphiql:')) localStorage.removeItem(key);
    }
  },
  get length() {
    return Object.keys(localStorage).filter((key) => key.startsWith('graphiql:')).length;
  },
};

export function scrubTokens(text) {
  return String(text).replace(JWT_PATTERN, '<token removed>');
}

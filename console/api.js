// The console's only way to the gateway: the public admin and tenant APIs, with the credential
// the user typed in. The credential lives in this module's memory only: never in storage, a
// cookie or a URL, so closing or reloading the tab signs out.

let credential = null; // { kind: 'admin', token, username } | { kind: 'tenant', key }

/** An answer in the gateway's error shape, or a failure to reach it, in plain words. */
export class ApiError extends Error {
  constructor(status, error, message) {
    super(message);
    this.status = status;
    this.error = error;
  }
}

export function signedIn() {
  return credential;
}

export function signOut() {
  credential = null;
}

function authHeaders() {
  if (!credential) return {};
  if (credential.kind === 'admin') return { Authorization: `Bearer ${credential.token}` };
  return { 'X-Api-Key': credential.key };
}

/** Sends a request with the credential; answers the raw `Response` (errors not thrown). */
export async function send(method, path, { body, headers = {}, signal } = {}) {
  const init = { method, headers: { ...authHeaders(), ...headers }, signal, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'Network error', `the gateway could not be reached (${e.message})`);
  }
}

/** The error a non-2xx answer carries, in the `{statusCode, error, message}` shape. */
export async function problem(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && typeof body.message === 'string') {
      return new ApiError(response.status, body.error ?? String(response.status), body.message);
    }
  } catch {
    // not JSON: fall through to the status line
  }
  const reason = response.statusText || 'error';
  return new ApiError(response.status, reason, `the gateway answered ${response.status} ${reason}`);
}

/** A JSON call: the parsed answer (null for 204), or an `ApiError`. */
export async function call(method, path, body, options = {}) {
  const response = await send(method, path, { ...options, body });
  if (!response.ok) throw await problem(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export async function signInAdmin(username, password) {
  credential = null;
  const token = await call('POST', '/admin/v1/login', { username, password });
  credential = { kind: 'admin', token: token.access_token, username };
  return credential;
}

export async function signInTenant(key) {
  credential = { kind: 'tenant', key };
  try {
    const me = await call('GET', '/v1/me');
    credential.me = me;
    return credential;
  } catch (e) {
    credential = null;
    throw e;
  }
}

/** Encodes one path segment. */
export function seg(value) {
  return encodeURIComponent(value);
}

/** A query string of the given parameters, leaving out empty ones. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') q.set(name, value);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

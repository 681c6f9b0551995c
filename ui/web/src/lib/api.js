// Small helpers for the dashboard API: JSON in and out, the login cookie
// sent automatically, the anti-forgery token on every state-changing call.

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || '';

/** An API error with the server's code and message. */
export class APIError extends Error {
  constructor(status, code, message, field = '') {
    super(message);
    this.status = status;
    this.code = code;
    // field names the input that was wrong, where the server says
    // (recording rules: "sample_rate", "start_after.url").
    this.field = field;
  }
}

/** api(method, path, body?) → parsed JSON (or null for 204). */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (res.status === 401 && !path.startsWith('/s/')) {
    location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
    throw new APIError(401, 'unauthorized', 'Your login has ended. Log in again.');
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const e = data?.error || {};
    throw new APIError(res.status, e.code || 'error', e.message || res.statusText, e.field || '');
  }
  return data;
}

export const get = (path) => api('GET', path);

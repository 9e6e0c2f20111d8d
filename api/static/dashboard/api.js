// The REST API with the key from sessionStorage; errors carry the server's body.
const KEY = "voxline.apiKey";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail !== undefined ? body.detail : body;
    super(`HTTP ${status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    this.status = status;
    this.body = body;
  }
  // [{path: "body.name", msg}] from a 422's detail list (or one entry for anything else)
  get fieldErrors() {
    const detail = this.body && this.body.detail;
    if (Array.isArray(detail)) {
      return detail.map((e) => ({ path: (e.loc || []).join("."), msg: e.msg }));
    }
    return [{ path: "", msg: typeof detail === "string" ? detail : JSON.stringify(detail) }];
  }
}

export async function request(method, path, body) {
  const headers = { Authorization: `Bearer ${session.key}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { data = await response.text().catch(() => null); }
    throw new ApiError(response.status, data);
  }
  if (response.status === 204) return null;
  return response.json();
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body) => request("POST", path, body),
  put: (path, body) => request("PUT", path, body),
  // A binary resource (a recording) as a blob URL: <audio> cannot send the header itself.
  async blobUrl(path) {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${session.key}` } });
    if (!response.ok) throw new ApiError(response.status, await response.text());
    return URL.createObjectURL(await response.blob());
  },
};

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function fmtTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { hour12: false });
}

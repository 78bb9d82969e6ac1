// The typed API client: generated paths (schema.d.ts), the session cookie, and the CSRF header.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

type Schemas = components["schemas"];
export type User = Schemas["UserOut"];
export type Provider = Schemas["ProviderOut"];
export type Connection = Schemas["ConnectionOut"];
export type TreeNode = Schemas["NodeOut"];
export type BrowsePage = Schemas["BrowseOut"];
export type Source = Schemas["SourceOut"];
export type SourceStatus = Schemas["SourceStatusOut"];
export type Video = Schemas["VideoOut"];
export type AuditEvent = Schemas["AuditOut"];
export type Sink = Schemas["SinkOut"];
export type SinkKind = Schemas["SinkKindOut"];
export type Delivery = Schemas["DeliveryOut"];
export type VpackImport = Schemas["VpackImportOut"];

export const CSRF_COOKIE = "vpack_csrf";
export const CSRF_HEADER = "X-CSRF-Token";
/** Fired on window when the server says the session is gone, so the app shows sign-in. */
export const SIGNED_OUT_EVENT = "vpack:signed-out";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function readCookie(name: string, cookies: string = document.cookie): string | null {
  for (const part of cookies.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** An API answer that was not a success, with the server's own words for it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(detail);
    this.name = "ApiError";
  }
}

/** FastAPI says {"detail": "..."}, or for malformed input a list of {loc, msg}. */
export function detailOf(body: unknown, status: number): string {
  const detail = (body as { detail?: unknown } | null | undefined)?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d: { loc?: unknown[]; msg?: string }) => {
        const where = (d.loc ?? []).filter((p) => p !== "body" && p !== "query").join(".");
        return where ? `${where}: ${d.msg ?? ""}` : (d.msg ?? "");
      })
      .join("; ");
  }
  return `HTTP ${status}`;
}

// Double-submit CSRF: echo the readable cookie on every request that changes something.
const csrf: Middleware = {
  onRequest({ request }) {
    if (!SAFE_METHODS.has(request.method)) {
      const token = readCookie(CSRF_COOKIE);
      if (token) request.headers.set(CSRF_HEADER, token);
    }
    return request;
  },
};

const signedOut: Middleware = {
  onResponse({ request, response }) {
    const path = new URL(request.url).pathname;
    if (response.status === 401 && path !== "/api/auth/login") {
      window.dispatchEvent(new Event(SIGNED_OUT_EVENT));
    }
    return response;
  },
};

export function makeClient(baseUrl: string, fetchImpl?: typeof fetch) {
  const client = createClient<paths>({
    baseUrl,
    credentials: "same-origin",
    // Looked up per request, not once: tests swap the global fetch after this module loads.
    fetch: fetchImpl ?? ((request: Request) => globalThis.fetch(request)),
  });
  client.use(csrf, signedOut);
  return client;
}

export const api = makeClient(window.location.origin);

/** The data of a successful answer; anything else becomes an ApiError with the server's words. */
export async function ok<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await pending;
  if (!response.ok || error !== undefined)
    throw new ApiError(response.status, detailOf(error, response.status));
  return data as T;
}

/** Where a video's verified copy streams from (the browser sends Range requests itself). */
export function videoContentUrl(id: number): string {
  return `/api/videos/${id}/content`;
}

// A tiny stand-in for the service in component tests: answers by method and path, records calls.
import { vi } from "vitest";

type Handler = (request: Request, url: URL) => unknown | Promise<unknown>;

export interface FakeApi {
  calls: Array<{ method: string; path: string; body: unknown }>;
  on: (method: string, path: string, handler: Handler | unknown) => void;
}

export function fakeApi(): FakeApi {
  const routes = new Map<string, Handler>();
  const calls: FakeApi["calls"] = [];
  vi.stubGlobal("fetch", async (request: Request) => {
    const url = new URL(request.url);
    const text = request.method === "GET" ? "" : await request.clone().text(); // handlers may read it too
    calls.push({
      method: request.method,
      path: url.pathname + url.search,
      body: text ? JSON.parse(text) : null,
    });
    const handler = routes.get(`${request.method} ${url.pathname}`);
    if (!handler) return new Response(JSON.stringify({ detail: "Not Found" }), { status: 404 });
    const body = await handler(request, url);
    if (body instanceof Response) return body;
    return new Response(JSON.stringify(body), {
      status: 200,
      headers: { "Content-Type": "application/json" },
    });
  });
  return {
    calls,
    on: (method, path, handler) =>
      routes.set(`${method} ${path}`, typeof handler === "function" ? (handler as Handler) : () => handler),
  };
}

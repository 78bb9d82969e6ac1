import { describe, expect, it } from "vitest";
import { ApiError, SIGNED_OUT_EVENT, detailOf, makeClient, ok, readCookie } from "./client";

function recorder(status = 200, body: unknown = {}) {
  const seen: Request[] = [];
  const fetchImpl = async (request: Request) => {
    seen.push(request);
    return new Response(status === 204 ? null : JSON.stringify(body), {
      status,
      headers: { "Content-Type": "application/json" },
    });
  };
  return { seen, fetchImpl: fetchImpl as unknown as typeof fetch };
}

describe("API client", () => {
  it("echoes the CSRF cookie on writes only", async () => {
    document.cookie = "vpack_csrf=tok%2Fen-1";
    const { seen, fetchImpl } = recorder();
    const api = makeClient("http://vpack.test", fetchImpl);
    await api.GET("/api/sources");
    await api.POST("/api/sources/{source_id}/sync", { params: { path: { source_id: 3 } } });
    expect(seen[0]!.headers.get("X-CSRF-Token")).toBeNull();
    expect(seen[1]!.headers.get("X-CSRF-Token")).toBe("tok/en-1");
    expect(seen[1]!.url).toBe("http://vpack.test/api/sources/3/sync");
  });

  it("tells the app when the session is gone, but not for a failed sign-in", async () => {
    let signals = 0;
    const count = () => signals++;
    window.addEventListener(SIGNED_OUT_EVENT, count);
    const { fetchImpl } = recorder(401, { detail: "not signed in" });
    const api = makeClient("http://vpack.test", fetchImpl);
    await api.GET("/api/sources");
    await api.POST("/api/auth/login", { body: { email: "a@b.vn", password: "x" } });
    window.removeEventListener(SIGNED_OUT_EVENT, count);
    expect(signals).toBe(1);
  });

  it("turns failures into errors in the server's words", async () => {
    const { fetchImpl } = recorder(400, { detail: "invalid Amazon S3 settings: bucket: Field required" });
    const api = makeClient("http://vpack.test", fetchImpl);
    const failure = await ok(api.GET("/api/providers")).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).status).toBe(400);
    expect((failure as ApiError).detail).toBe("invalid Amazon S3 settings: bucket: Field required");
    expect(
      detailOf(
        { detail: [{ loc: ["body", "interval_s"], msg: "Input should be greater than or equal to 10" }] },
        422,
      ),
    ).toBe("interval_s: Input should be greater than or equal to 10");
    expect(detailOf("<html>", 502)).toBe("HTTP 502");
  });

  it("reads one cookie among many", () => {
    expect(readCookie("vpack_csrf", "a=1; vpack_csrf=x%3Dy; b=2")).toBe("x=y");
    expect(readCookie("vpack_csrf", "a=1")).toBeNull();
  });
});

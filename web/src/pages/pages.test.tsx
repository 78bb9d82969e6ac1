import { render, screen, waitFor, within, fireEvent } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Connection, Provider, Source, Video } from "../api/client";
import { I18nProvider } from "../i18n";
import { fakeApi, type FakeApi } from "../test/fakeApi";
import { Dashboard } from "./Dashboard";
import { SourceSettings } from "./SourceSettings";
import { Videos } from "./Videos";

const NOW = "2026-11-24T10:00:00+00:00";

const source = (over: Partial<Source> = {}): Source => ({
  id: 4,
  connection_id: 9,
  provider: "s3",
  name: "Kho Thủ Đức",
  selections: ["cams/"],
  selection_names: { "cams/": "cams" },
  cameras: {},
  interval_s: 300,
  filters: {},
  options: {},
  keep_days: null,
  status: "idle",
  last_error: null,
  last_scan_at: NOW,
  next_scan_at: NOW,
  counts: { pending: 2, downloading: 0, done: 5, failed: 1, skipped: 0 },
  ...over,
});

const connection = (over: Partial<Connection> = {}): Connection => ({
  id: 9,
  provider: "s3",
  name: "Bucket",
  account: "s3://cams",
  status: "ok",
  status_detail: null,
  config: {},
  created_at: NOW,
  ...over,
});

const S3: Provider = {
  name: "s3",
  label: "Amazon S3",
  description: "A bucket",
  auth: "keys",
  config_schema: {},
  source_options_schema: {},
  // The service's own filters schema (vpack.sync.filters.SourceFilters).
  filters_schema: {
    additionalProperties: false,
    properties: {
      include: {
        description:
          "Take only videos whose name matches one of these patterns, one per line (order-*, *.mp4; * is any text). Empty: every video.",
        items: { type: "string" },
        maxItems: 50,
        title: "Only names like",
        type: "array",
      },
      exclude: {
        description: "Skip videos whose name matches any of these patterns (*-preview.mp4).",
        items: { type: "string" },
        maxItems: 50,
        title: "Skip names like",
        type: "array",
      },
      min_size_mb: {
        anyOf: [{ minimum: 0, type: "number" }, { type: "null" }],
        default: null,
        description: "Skip videos smaller than this: test clips, empty recordings.",
        title: "Smallest size (MB)",
      },
      since: {
        anyOf: [{ format: "date", type: "string" }, { type: "null" }],
        default: null,
        description:
          "Skip videos recorded (or last changed) before this day, YYYY-MM-DD: a new source then does not fetch years of history.",
        title: "From day",
      },
    },
    title: "Filters",
    type: "object",
  },
  features: {},
};

const video = (over: Partial<Video>): Video => ({
  id: 1,
  source_id: 4,
  camera: "Cam1",
  name: "a.mp4",
  remote_path: "cams/Cam1/a.mp4",
  size: 2048,
  sha256: null,
  state: "done",
  error: null,
  probe_error: null,
  recorded_start: NOW,
  recorded_end: null,
  duration_s: 12,
  codecs: "h264",
  local_path: "4/Cam1/a.mp4",
  removed_at: null,
  removed_local_at: null,
  downloaded_at: NOW,
  created_at: NOW,
  ...over,
});

let api: FakeApi;
beforeEach(() => {
  api = fakeApi();
  window.history.replaceState(null, "", "/");
});
afterEach(() => vi.unstubAllGlobals());

describe("Dashboard", () => {
  it("shows each source's counts and its last problem in words, and syncs on request", async () => {
    api.on("GET", "/api/sources", [source({ last_error: "AccessDenied: the key may not list cams/" })]);
    api.on("GET", "/api/connections", [connection()]);
    api.on("GET", "/api/providers", [S3]);
    api.on("POST", "/api/sources/4/sync", { source_id: 4, status: "queued" });
    render(
      <I18nProvider initial="en">
        <Dashboard />
      </I18nProvider>,
    );
    const card = (await screen.findByRole("heading", { name: "Kho Thủ Đức" })).closest("li")!;
    expect(within(card).getByTestId("count-new").textContent).toBe("2");
    expect(within(card).getByTestId("count-done").textContent).toBe("5");
    expect(within(card).getByTestId("count-failed").textContent).toBe("1");
    expect(within(card).getByTestId("last-error").textContent).toBe(
      "Last problem: AccessDenied: the key may not list cams/",
    );
    expect(within(card).queryByRole("button", { name: "Reconnect" })).toBeNull();
    fireEvent.click(within(card).getByRole("button", { name: "Sync now" }));
    await waitFor(() =>
      expect(api.calls.some((c) => c.method === "POST" && c.path === "/api/sources/4/sync")).toBe(true),
    );
  });

  it("says when a source's own settings stop it, and what to do", async () => {
    api.on("GET", "/api/sources", [
      source({ status: "attention", last_error: "folder does not exist: /srv/cams" }),
    ]);
    api.on("GET", "/api/connections", [connection()]);
    api.on("GET", "/api/providers", [S3]);
    render(
      <I18nProvider initial="vi">
        <Dashboard />
      </I18nProvider>,
    );
    const card = (await screen.findByRole("heading", { name: "Kho Thủ Đức" })).closest("li")!;
    expect(within(card).getByTestId("source-state").textContent).toBe("Cần xem lại");
    expect(within(card).getByTestId("needs-attention").textContent).toContain("Cài đặt");
    expect(within(card).getByTestId("last-error").textContent).toContain("folder does not exist");
    expect((within(card).getByRole("button", { name: "Đồng bộ ngay" }) as HTMLButtonElement).disabled).toBe(
      false,
    );
  });

  it("asks for a reconnect when the account needs signing in again", async () => {
    api.on("GET", "/api/sources", [source()]);
    api.on("GET", "/api/connections", [
      connection({ status: "reauth_required", status_detail: "invalid_grant" }),
    ]);
    api.on("GET", "/api/providers", [S3]);
    api.on("POST", "/api/connections/9/check", connection());
    render(
      <I18nProvider initial="vi">
        <Dashboard />
      </I18nProvider>,
    );
    const card = (await screen.findByRole("heading", { name: "Kho Thủ Đức" })).closest("li")!;
    expect(within(card).getByRole("status").textContent).toContain("cần bạn đăng nhập lại");
    expect((within(card).getByRole("button", { name: "Đồng bộ ngay" }) as HTMLButtonElement).disabled).toBe(
      true,
    );
    fireEvent.click(within(card).getByRole("button", { name: "Kết nối lại" }));
    await waitFor(() => expect(api.calls.some((c) => c.path === "/api/connections/9/check")).toBe(true));
  });

  it("invites to connect when there is nothing yet", async () => {
    api.on("GET", "/api/sources", []);
    api.on("GET", "/api/connections", []);
    api.on("GET", "/api/providers", [S3]);
    render(
      <I18nProvider initial="en">
        <Dashboard />
      </I18nProvider>,
    );
    expect(await screen.findByRole("heading", { name: "No sources yet" })).toBeTruthy();
  });
});

describe("SourceSettings", () => {
  it("shows chosen cloud folders by the names saved with the source, not their ids", async () => {
    const folder = "1qZ7wHsXk0_Drive_folder_id";
    api.on("GET", "/api/sources/4", source({ selections: [folder], selection_names: { [folder]: "Cam1" } }));
    api.on("GET", "/api/connections/9", connection());
    api.on("GET", "/api/providers", [S3]);
    api.on("GET", "/api/connections/9/browse", { nodes: [], next_page: null });
    render(
      <I18nProvider initial="en">
        <SourceSettings sourceId={4} />
      </I18nProvider>,
    );
    const chosen = await screen.findByRole("list", { name: "Chosen" });
    expect(within(chosen).getByText("Cam1")).toBeTruthy();
    expect(within(chosen).queryByText(folder)).toBeNull();
  });

  it("shows the stored filters and saves only what changed", async () => {
    api.on("GET", "/api/sources/4", source({ filters: { since: "2026-11-01" } }));
    api.on("GET", "/api/connections/9", connection());
    api.on("GET", "/api/providers", [S3]);
    api.on("GET", "/api/connections/9/browse", { nodes: [], next_page: null });
    api.on("PATCH", "/api/sources/4", (request: Request) => request.json().then((b) => source(b)));
    render(
      <I18nProvider initial="en">
        <SourceSettings sourceId={4} />
      </I18nProvider>,
    );
    const since = (await screen.findByLabelText("From day")) as HTMLInputElement;
    expect(since.value).toBe("2026-11-01");
    fireEvent.change(screen.getByLabelText("Only names like"), { target: { value: "order-*\n*.mkv" } });
    fireEvent.click(screen.getByRole("button", { name: "Save changes" }));
    await waitFor(() => expect(api.calls.some((c) => c.method === "PATCH")).toBe(true));
    const patch = api.calls.find((c) => c.method === "PATCH")!;
    expect(patch.body).toEqual({ filters: { include: ["order-*", "*.mkv"], since: "2026-11-01" } });
  });

  it("keeps copies for as long as chosen, and for ever again", async () => {
    api.on("GET", "/api/sources/4", source({ keep_days: 30 }));
    api.on("GET", "/api/connections/9", connection());
    api.on("GET", "/api/providers", [S3]);
    api.on("GET", "/api/connections/9/browse", { nodes: [], next_page: null });
    api.on("PATCH", "/api/sources/4", (request: Request) => request.json().then((b) => source(b)));
    render(
      <I18nProvider initial="vi">
        <SourceSettings sourceId={4} />
      </I18nProvider>,
    );
    const keep = (await screen.findByLabelText("Giữ bản sao trên máy")) as HTMLSelectElement;
    expect(keep.value).toBe("30");
    expect(keep.selectedOptions[0]?.textContent).toBe("30 ngày sau khi tải");
    fireEvent.change(keep, { target: { value: "" } });
    fireEvent.click(screen.getByRole("button", { name: /Lưu/ }));
    await waitFor(() => expect(api.calls.some((c) => c.method === "PATCH")).toBe(true));
    expect(api.calls.find((c) => c.method === "PATCH")!.body).toEqual({ keep_days: null });
  });
});

describe("Videos", () => {
  it("filters through the address, lists failures with their reason, and retries them", async () => {
    window.history.replaceState(null, "", "/videos?source=4&state=failed&from=2026-11-01");
    api.on("GET", "/api/sources", [source()]);
    api.on("GET", "/api/videos", {
      items: [
        video({
          id: 2,
          name: "b.mp4",
          state: "failed",
          error: "checksum mismatch after 6 tries",
          local_path: null,
        }),
      ],
      next_cursor: null,
    });
    api.on("POST", "/api/sources/4/sync", { source_id: 4, status: "queued" });
    render(
      <I18nProvider initial="en">
        <Videos />
      </I18nProvider>,
    );
    const row = (await screen.findByText("b.mp4")).closest("tr")!;
    expect(within(row).getByTestId("video-error").textContent).toBe("checksum mismatch after 6 tries");
    expect(within(row).queryByRole("button", { name: "Play" })).toBeNull();
    const listed = api.calls.find((c) => c.path.startsWith("/api/videos"))!;
    const query = new URL(listed.path, "http://x").searchParams;
    expect(query.get("source_id")).toBe("4");
    expect(query.get("state")).toBe("failed");
    expect(new Date(query.get("recorded_from")!).getTime()).toBe(new Date(2026, 10, 1).getTime());
    fireEvent.click(within(row).getByRole("button", { name: "Retry" }));
    expect((await screen.findByRole("status")).textContent).toContain("“b.mp4” will be tried again");
  });

  it("plays a downloaded video from its content address and pages on", async () => {
    window.history.replaceState(null, "", "/videos");
    api.on("GET", "/api/sources", [source()]);
    api.on("GET", "/api/videos", (_: Request, url: URL) =>
      url.searchParams.get("cursor")
        ? { items: [video({ id: 1, name: "older.mp4" })], next_cursor: null }
        : { items: [video({ id: 3, name: "newer.mp4" })], next_cursor: "3" },
    );
    render(
      <I18nProvider initial="en">
        <Videos />
      </I18nProvider>,
    );
    const row = (await screen.findByText("newer.mp4")).closest("tr")!;
    expect(within(row).getByRole("link", { name: "Download" }).getAttribute("href")).toBe(
      "/api/videos/3/content",
    );
    fireEvent.click(within(row).getByRole("button", { name: "Play" }));
    expect(screen.getByTestId("player").getAttribute("src")).toBe("/api/videos/3/content");
    fireEvent.click(screen.getByRole("button", { name: "Show more" }));
    expect(await screen.findByText("older.mp4")).toBeTruthy();
  });
});

// The hand-off (sinks) section, the dashboard's warning about it, and the VPACK import screen.
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Sink, SinkKind, Source, VpackImport as Report } from "../api/client";
import { App } from "../App";
import { SinkSection } from "../components/Sinks";
import { I18nProvider } from "../i18n";
import { fakeApi, type FakeApi } from "../test/fakeApi";
import { Dashboard } from "./Dashboard";
import { VpackImport } from "./VpackImport";

const NOW = "2026-11-24T10:00:00+00:00";

// The service's own kinds (GET /api/sinks/kinds: vpack.handoff.kinds), schemas as pydantic writes them.
const KINDS: SinkKind[] = [
  {
    name: "vpack_folder",
    label: "VPACK input folder",
    config_schema: {
      additionalProperties: false,
      properties: {
        path: {
          description: "VPACK's input folder; each video goes into a folder named after its camera",
          maxLength: 4096,
          minLength: 1,
          title: "Path",
          type: "string",
        },
      },
      required: ["path"],
      title: "FolderConfig",
      type: "object",
    },
  },
  {
    name: "webhook",
    label: "Webhook",
    config_schema: {
      additionalProperties: false,
      properties: {
        url: { description: "https:// (or http://) address", title: "Url", type: "string", minLength: 1 },
        secret: {
          description: "signs each event (HMAC-SHA256)",
          format: "password",
          minLength: 16,
          title: "Secret",
          type: "string",
          writeOnly: true,
        },
      },
      required: ["url", "secret"],
      title: "WebhookConfig",
      type: "object",
    },
  },
];

const sink = (over: Partial<Sink> = {}): Sink => ({
  id: 1,
  source_id: 4,
  kind: "vpack_folder",
  name: "VPACK kho",
  config: { path: "/srv/vpack/input" },
  status: "ok",
  status_detail: null,
  failures: 0,
  delivered: 12,
  after_seq: 12,
  next_attempt_at: null,
  created_at: NOW,
  ...over,
});

const source = (over: Partial<Source> = {}): Source => ({
  id: 4,
  connection_id: 9,
  provider: "local",
  name: "Kho Thủ Đức",
  selections: ["/srv/cams"],
  selection_names: {},
  cameras: {},
  interval_s: 300,
  filters: {},
  options: {},
  keep_days: null,
  status: "idle",
  last_error: null,
  last_scan_at: NOW,
  next_scan_at: NOW,
  counts: { pending: 0, downloading: 0, done: 5, failed: 0, skipped: 0 },
  ...over,
});

let api: FakeApi;
beforeEach(() => {
  api = fakeApi();
  window.history.replaceState(null, "", "/");
});
afterEach(() => vi.unstubAllGlobals());

const called = (method: string, path: string) =>
  api.calls.filter((c) => c.method === method && c.path.startsWith(path));

function renderSection(lang: "en" | "vi" = "en") {
  api.on("GET", "/api/sinks/kinds", KINDS);
  return render(
    <I18nProvider initial={lang}>
      <SinkSection sourceId={4} />
    </I18nProvider>,
  );
}

describe("Hand-off section", () => {
  it("lists each sink with its kind, status in words, counts, and why it fails", async () => {
    api.on("GET", "/api/sources/4/sinks", [
      sink(),
      sink({
        id: 2,
        kind: "webhook",
        name: "Shop hook",
        config: { url: "https://hooks.shop.vn/vpack" },
        status: "failing",
        status_detail: "https://hooks.shop.vn/vpack answered 503",
        failures: 3,
        delivered: 7,
        next_attempt_at: NOW,
      }),
      sink({
        id: 3,
        name: "Old queue",
        status: "disabled",
        status_detail: "stopped after 12 failures in a row: no VPACK database at /x/events.db",
        failures: 12,
        delivered: 0,
      }),
    ]);
    renderSection();
    const ok = (await screen.findByText("VPACK kho")).closest("li")!;
    expect(within(ok).getByText(/VPACK input folder · \/srv\/vpack\/input/)).toBeTruthy();
    expect(within(ok).getByTestId("sink-status").textContent).toBe("Working");
    expect(within(ok).getByTestId("sink-delivered").textContent).toBe("12");
    expect(within(ok).queryByTestId("sink-detail")).toBeNull();
    expect(within(ok).getByRole("button", { name: "Stop" })).toBeTruthy();

    const failing = screen.getByText("Shop hook").closest("li")!;
    expect(within(failing).getByTestId("sink-status").textContent).toBe("Failing");
    expect(within(failing).getByTestId("sink-failures").textContent).toBe("3");
    expect(within(failing).getByTestId("sink-detail").textContent).toBe(
      "The last hand-off failed; it is tried again by itself: https://hooks.shop.vn/vpack answered 503",
    );
    expect(within(failing).getByText("Next try")).toBeTruthy();

    const stopped = screen.getByText("Old queue").closest("li")!;
    expect(within(stopped).getByTestId("sink-status").textContent).toBe("Stopped");
    expect(within(stopped).getByTestId("sink-detail").textContent).toContain(
      "stopped after 12 failures in a row: no VPACK database",
    );
    expect(within(stopped).getByRole("button", { name: "Start again" })).toBeTruthy();
  });

  it("says it in Vietnamese too", async () => {
    api.on("GET", "/api/sources/4/sinks", [sink({ status: "failing", status_detail: "disk full" })]);
    renderSection("vi");
    const row = (await screen.findByText("VPACK kho")).closest("li")!;
    expect(within(row).getByTestId("sink-status").textContent).toBe("Đang lỗi");
    expect(within(row).getByText(/Thư mục đầu vào của VPACK/)).toBeTruthy();
    expect(screen.getByRole("heading", { name: "Chuyển tiếp" })).toBeTruthy();
  });

  it("stops, starts again and removes (after asking) a sink", async () => {
    let current = sink();
    api.on("GET", "/api/sources/4/sinks", () => [current]);
    api.on("PATCH", "/api/sinks/1", async (request: Request) => {
      const body = (await request.json()) as { enabled: boolean };
      current = sink({
        status: body.enabled ? "ok" : "disabled",
        status_detail: body.enabled ? null : "stopped by its owner",
      });
      return current;
    });
    api.on("DELETE", "/api/sinks/1", () => new Response(null, { status: 204 }));
    renderSection();
    const row = () => screen.getByText("VPACK kho").closest("li")!;
    fireEvent.click(await screen.findByRole("button", { name: "Stop" }));
    expect(await within(row()).findByText("stopped by its owner")).toBeTruthy();
    expect(called("PATCH", "/api/sinks/1")[0]!.body).toEqual({ enabled: false });
    fireEvent.click(within(row()).getByRole("button", { name: "Start again" }));
    await waitFor(() => expect(within(row()).getByTestId("sink-status").textContent).toBe("Working"));
    expect(called("PATCH", "/api/sinks/1")[1]!.body).toEqual({ enabled: true });

    const confirm = vi.fn(() => false);
    vi.stubGlobal("confirm", confirm);
    fireEvent.click(within(row()).getByRole("button", { name: "Remove" }));
    expect(confirm).toHaveBeenCalledWith(
      "Remove the hand-off “VPACK kho”? Videos already handed on stay where they are.",
    );
    expect(called("DELETE", "/api/sinks/1")).toHaveLength(0);
    confirm.mockReturnValue(true);
    current = null as unknown as Sink;
    api.on("GET", "/api/sources/4/sinks", []);
    fireEvent.click(within(row()).getByRole("button", { name: "Remove" }));
    expect(await screen.findByText("Nothing is handed on yet.")).toBeTruthy();
    expect(called("DELETE", "/api/sinks/1")).toHaveLength(1);
  });

  it("shows the delivery log: each attempt, delivered or why not", async () => {
    api.on("GET", "/api/sources/4/sinks", [sink()]);
    api.on("GET", "/api/sinks/1/deliveries", {
      items: [
        {
          id: 9,
          video_id: 31,
          seq: 13,
          ok: false,
          detail: "the folder /srv/vpack/input does not exist",
          at: NOW,
        },
        { id: 8, video_id: 30, seq: 12, ok: true, detail: "linked /srv/vpack/input/Cam1/a.mp4", at: NOW },
      ],
      next_cursor: null,
    });
    renderSection();
    fireEvent.click(await screen.findByRole("button", { name: "Delivery log" }));
    const log = await screen.findByRole("table", { name: "Delivery log of VPACK kho" });
    const rows = within(log).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(2);
    expect(rows[0]!.textContent).toContain("Failed");
    expect(rows[0]!.textContent).toContain("the folder /srv/vpack/input does not exist");
    expect(rows[1]!.textContent).toContain("Delivered");
    expect(rows[1]!.textContent).toContain("linked /srv/vpack/input/Cam1/a.mp4");
    expect(called("GET", "/api/sinks/1/deliveries")[0]!.path).toContain("limit=20");
    fireEvent.click(screen.getByRole("button", { name: "Hide the log" }));
    expect(screen.queryByTestId("delivery-log")).toBeNull();
  });

  it("adds a sink from its kind's schema: a secret is a password field, errors in the server's words", async () => {
    let list: Sink[] = [];
    api.on("GET", "/api/sources/4/sinks", () => list);
    let refuse = true;
    api.on("POST", "/api/sources/4/sinks", async (request: Request) => {
      const body = (await request.json()) as { name: string; kind: string; config: Record<string, string> };
      if (refuse)
        return new Response(
          JSON.stringify({ detail: "the address 127.0.0.1 is in VPACK_BLOCKED_NETWORKS" }),
          {
            status: 400,
          },
        );
      list = [sink({ id: 5, kind: body.kind, name: body.name, config: { url: body.config.url! } })];
      return list[0];
    });
    renderSection();
    fireEvent.click(await screen.findByRole("button", { name: "Add a hand-off" }));
    // The first kind's form: the folder.
    expect(screen.getByLabelText(/VPACK input folder \*/)).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Hand on to"), { target: { value: "webhook" } });
    const secret = screen.getByLabelText(/Signing secret/) as HTMLInputElement;
    expect(secret.type).toBe("password");
    fireEvent.change(screen.getByLabelText(/Address/), { target: { value: "http://127.0.0.1:9/hook" } });
    fireEvent.change(secret, { target: { value: "a-long-enough-secret" } });
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "Shop hook" } });
    const fromStart = screen.getByLabelText("Also hand on videos already published") as HTMLInputElement;
    expect(fromStart.checked).toBe(true);
    fireEvent.click(fromStart);
    fireEvent.click(screen.getByRole("button", { name: "Add hand-off" }));
    expect((await screen.findByRole("alert")).textContent).toBe(
      "Not accepted: the address 127.0.0.1 is in VPACK_BLOCKED_NETWORKS",
    );
    expect(called("POST", "/api/sources/4/sinks")[0]!.body).toEqual({
      kind: "webhook",
      name: "Shop hook",
      config: { url: "http://127.0.0.1:9/hook", secret: "a-long-enough-secret" },
      from_start: false,
    });

    refuse = false;
    fireEvent.click(screen.getByRole("button", { name: "Add hand-off" }));
    const row = (await screen.findByText("Shop hook")).closest("li")!;
    expect(within(row).getByText(/Webhook · http:\/\/127.0.0.1:9\/hook/)).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Add hand-off" })).toBeNull(); // the form closed
  });

  it("names a new sink after its kind when no name is given", async () => {
    api.on("GET", "/api/sources/4/sinks", []);
    api.on("POST", "/api/sources/4/sinks", sink());
    renderSection();
    fireEvent.click(await screen.findByRole("button", { name: "Add a hand-off" }));
    fireEvent.change(screen.getByLabelText(/VPACK input folder \*/), {
      target: { value: "/srv/vpack/input" },
    });
    fireEvent.click(screen.getByRole("button", { name: "Add hand-off" }));
    await waitFor(() => expect(called("POST", "/api/sources/4/sinks")).toHaveLength(1));
    expect(called("POST", "/api/sources/4/sinks")[0]!.body).toEqual({
      kind: "vpack_folder",
      name: "VPACK input folder",
      config: { path: "/srv/vpack/input" },
      from_start: true,
    });
  });
});

describe("Dashboard hand-off warning", () => {
  it("warns on a source's card when a sink is failing or stopped, and not otherwise", async () => {
    api.on("GET", "/api/sources", [source(), source({ id: 5, name: "Kho Bình Dương" })]);
    api.on("GET", "/api/connections", []);
    api.on("GET", "/api/providers", []);
    api.on("GET", "/api/sources/4/sinks", [
      sink({ name: "VPACK kho", status: "failing", status_detail: "disk full" }),
      sink({ id: 2, name: "Hook", status: "disabled" }),
      sink({ id: 3, name: "Fine" }),
    ]);
    api.on("GET", "/api/sources/5/sinks", [sink({ id: 6, source_id: 5 })]);
    render(
      <I18nProvider initial="en">
        <Dashboard />
      </I18nProvider>,
    );
    const card = (await screen.findByRole("heading", { name: "Kho Thủ Đức" })).closest("li")!;
    const warning = await within(card).findByTestId("sink-warning");
    expect(warning.textContent).toBe("1 hand-off is failing · 1 hand-off is stopped: VPACK kho, Hook");
    const other = screen.getByRole("heading", { name: "Kho Bình Dương" }).closest("li")!;
    await waitFor(() => expect(called("GET", "/api/sources/5/sinks")).toHaveLength(1));
    expect(within(other).queryByTestId("sink-warning")).toBeNull();
  });
});

const REPORT: Report = {
  database: "/srv/VPACK/backend/database/events.db",
  dry_run: true,
  sources: [
    {
      vpack_id: 1,
      vpack_name: "Kho chính",
      kind: "local",
      outcome: "imported",
      reason: null,
      source_id: 7,
      connection_id: 3,
      sign_in_again: false,
      interval_s: 600,
      selections: ["/srv/cams"],
    },
    {
      vpack_id: 2,
      vpack_name: "Drive cửa hàng",
      kind: "google_drive",
      outcome: "already imported",
      reason: null,
      source_id: 8,
      connection_id: 4,
      sign_in_again: true,
      interval_s: 900,
      selections: [],
    },
  ],
  videos: { imported: 998, missing: 1, "already imported": 1 },
  not_imported: [
    { vpack_id: 17, path: "/srv/cams/Cam1/gone.mp4", outcome: "missing", reason: "VPACK's copy is gone" },
    { vpack_id: 18, path: "/srv/cams/Cam1/old.mp4", outcome: "already imported", reason: null },
  ],
};

describe("Import from VPACK", () => {
  it("runs a dry run, then the import, and shows the report per source and file", async () => {
    api.on("POST", "/api/admin/import/vpack", async (request: Request) => {
      const body = (await request.json()) as { dry_run: boolean };
      return { ...REPORT, dry_run: body.dry_run };
    });
    render(
      <I18nProvider initial="en">
        <VpackImport />
      </I18nProvider>,
    );
    fireEvent.change(screen.getByLabelText("VPACK's database (events.db)"), {
      target: { value: " /srv/VPACK/backend/database/events.db " },
    });
    fireEvent.click(screen.getByRole("button", { name: "Dry run" }));
    const report = await screen.findByTestId("import-report");
    expect(within(report).getByRole("heading", { name: "Dry run: what the import would do" })).toBeTruthy();
    expect(within(report).getByRole("status").textContent).toContain("Nothing was changed");
    expect(called("POST", "/api/admin/import/vpack")[0]!.body).toEqual({
      path: "/srv/VPACK/backend/database/events.db",
      dry_run: true,
      redownload_missing: false,
    });
    const sources = within(within(report).getByTestId("import-sources")).getAllByRole("row").slice(1);
    expect(sources.map((r) => r.textContent)).toEqual([
      "Kho chính/srv/camsLocal folderImported",
      "Drive cửa hàngGoogle DriveAlready importedSign in to Google Drive again before it syncs (VPACK's sign-in cannot be reused).",
    ]);
    // A dry run's sources do not exist yet: no links to them.
    expect(within(report).queryByRole("link", { name: "Kho chính" })).toBeNull();
    const counts = within(report).getByTestId("import-counts");
    expect(within(counts).getByText("Imported").nextSibling!.textContent).toBe("998");
    expect(within(counts).getByText("Copy gone").nextSibling!.textContent).toBe("1");
    const files = within(within(report).getByTestId("import-files")).getAllByRole("row").slice(1);
    expect(files[0]!.textContent).toBe("/srv/cams/Cam1/gone.mp4Copy goneVPACK's copy is gone");
    expect(files[1]!.textContent).toBe("/srv/cams/Cam1/old.mp4Already imported");

    fireEvent.click(screen.getByLabelText("Download again the videos whose copy is gone"));
    fireEvent.click(screen.getByRole("button", { name: "Import" }));
    expect(await screen.findByRole("heading", { name: "Imported" })).toBeTruthy();
    expect(called("POST", "/api/admin/import/vpack")[1]!.body).toEqual({
      path: "/srv/VPACK/backend/database/events.db",
      dry_run: false,
      redownload_missing: true,
    });
    expect(screen.getByRole("link", { name: "Kho chính" }).getAttribute("href")).toBe("/sources/7");
  });

  it("shows the server's refusal and no report", async () => {
    api.on(
      "POST",
      "/api/admin/import/vpack",
      () =>
        new Response(
          JSON.stringify({
            detail: "/root/events.db is outside the folders this server allows (VPACK_LOCAL_ROOTS)",
          }),
          { status: 403 },
        ),
    );
    render(
      <I18nProvider initial="vi">
        <VpackImport />
      </I18nProvider>,
    );
    fireEvent.change(screen.getByLabelText("Cơ sở dữ liệu của VPACK (events.db)"), {
      target: { value: "/root/events.db" },
    });
    fireEvent.click(screen.getByRole("button", { name: "Nhập" }));
    expect((await screen.findByRole("alert")).textContent).toBe(
      "Không có quyền: /root/events.db is outside the folders this server allows (VPACK_LOCAL_ROOTS)",
    );
    expect(screen.queryByTestId("import-report")).toBeNull();
  });

  it("is in the navigation for administrators only", async () => {
    const me = {
      id: 1,
      email: "owner@shop.vn",
      role: "admin",
      disabled: false,
      created_at: NOW,
      last_login_at: NOW,
    };
    api.on("GET", "/api/auth/me", me);
    api.on("GET", "/api/sources", []);
    api.on("GET", "/api/connections", []);
    api.on("GET", "/api/providers", []);
    const { unmount } = render(<App />);
    const nav = await screen.findByRole("navigation");
    expect(within(nav).getByRole("link", { name: "Import from VPACK" }).getAttribute("href")).toBe(
      "/admin/import",
    );
    unmount();

    api.on("GET", "/api/auth/me", { ...me, role: "user" });
    window.history.replaceState(null, "", "/admin/import");
    render(<App />);
    expect(await screen.findByRole("heading", { name: "Page not found" })).toBeTruthy();
    expect(
      within(screen.getByRole("navigation")).queryByRole("link", { name: "Import from VPACK" }),
    ).toBeNull();
  });
});

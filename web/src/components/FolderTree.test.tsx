import { act, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import type { BrowsePage, TreeNode } from "../api/client";
import { I18nProvider } from "../i18n";
import { FolderTree, cameraKey } from "./FolderTree";

// An in-memory provider: parent id -> children, served a page at a time like the API does.
function provider(children: Record<string, TreeNode[]>, pageSize = 100) {
  const calls: Array<[string | null, string | null]> = [];
  const load = async (node: string | null, page: string | null): Promise<BrowsePage> => {
    calls.push([node, page]);
    const all = children[node ?? ""];
    if (!all) throw new Error(`cannot read folder ${node}: permission denied`);
    const start = Number(page ?? 0);
    const next = start + pageSize < all.length ? String(start + pageSize) : null;
    return { nodes: all.slice(start, start + pageSize), next_page: next };
  };
  return { load, calls };
}

const folder = (id: string, has_children = true): TreeNode => ({
  id,
  name: id.split("/").pop()!,
  kind: "folder",
  has_children,
  selectable: true,
});

const TREE: Record<string, TreeNode[]> = {
  "": [{ ...folder("/srv/cams"), name: "/srv/cams" }],
  "/srv/cams": [folder("/srv/cams/archive"), folder("/srv/cams/warehouse")],
  "/srv/cams/warehouse": [
    folder("/srv/cams/warehouse/Cam1", false),
    folder("/srv/cams/warehouse/Cam2", false),
  ],
  "/srv/cams/archive": Array.from({ length: 7 }, (_, i) => folder(`/srv/cams/archive/day-${i}`, false)),
};

function Harness({ load, initial = [] }: { load: ReturnType<typeof provider>["load"]; initial?: string[] }) {
  const [selected, setSelected] = useState<string[]>(initial);
  const [cameras, setCameras] = useState<Record<string, string>>({});
  return (
    <I18nProvider initial="en">
      <FolderTree
        load={load}
        label="Folders"
        selected={selected}
        onSelectedChange={setSelected}
        cameras={cameras}
        onCamerasChange={setCameras}
      />
      <output data-testid="selected">{JSON.stringify(selected)}</output>
      <output data-testid="cameras">{JSON.stringify(cameras)}</output>
    </I18nProvider>
  );
}

const item = (name: string) => screen.getByRole("treeitem", { name });
const selected = () => JSON.parse(screen.getByTestId("selected").textContent!) as string[];

describe("FolderTree", () => {
  it("loads only the top at first and a folder's children when it is opened", async () => {
    const { load, calls } = provider(TREE);
    render(<Harness load={load} />);
    expect(await screen.findByRole("treeitem", { name: "/srv/cams" })).toBeTruthy();
    expect(calls).toEqual([[null, null]]);
    fireEvent.click(screen.getByRole("button", { name: "Open /srv/cams" }));
    expect(await screen.findByRole("treeitem", { name: "warehouse" })).toBeTruthy();
    expect(calls).toEqual([
      [null, null],
      ["/srv/cams", null],
    ]);
    expect(item("/srv/cams").getAttribute("aria-expanded")).toBe("true");
    // Closing and opening again does not load it twice.
    fireEvent.click(screen.getByRole("button", { name: "Close /srv/cams" }));
    expect(screen.queryByRole("treeitem", { name: "warehouse" })).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Open /srv/cams" }));
    expect(screen.getByRole("treeitem", { name: "warehouse" })).toBeTruthy();
    expect(calls).toHaveLength(2);
  });

  it("pages through a big folder on request", async () => {
    const { load, calls } = provider(TREE, 3);
    render(<Harness load={load} />);
    fireEvent.click(await screen.findByRole("button", { name: "Open /srv/cams" }));
    fireEvent.click(await screen.findByRole("button", { name: "Open archive" }));
    expect(await screen.findByRole("treeitem", { name: "day-2" })).toBeTruthy();
    expect(screen.queryByRole("treeitem", { name: "day-3" })).toBeNull();
    fireEvent.click(screen.getByRole("treeitem", { name: "Show more (showing 3)" }));
    expect(await screen.findByRole("treeitem", { name: "day-5" })).toBeTruthy();
    fireEvent.click(screen.getByRole("treeitem", { name: "Show more (showing 6)" }));
    expect(await screen.findByRole("treeitem", { name: "day-6" })).toBeTruthy();
    expect(screen.queryByText(/Show more/)).toBeNull();
    expect(calls.filter(([node]) => node === "/srv/cams/archive").map(([, page]) => page)).toEqual([
      null,
      "3",
      "6",
    ]);
  });

  it("is driven by the keyboard: arrows move and open, Space chooses", async () => {
    const { load } = provider(TREE);
    render(<Harness load={load} />);
    const top = await screen.findByRole("treeitem", { name: "/srv/cams" });
    expect(top.tabIndex).toBe(0); // one tab stop: the tree
    act(() => top.focus());
    fireEvent.keyDown(top, { key: "ArrowRight" });
    await screen.findByRole("treeitem", { name: "warehouse" });
    fireEvent.keyDown(document.activeElement!, { key: "ArrowDown" });
    await waitFor(() => expect(document.activeElement).toBe(item("archive")));
    fireEvent.keyDown(document.activeElement!, { key: "ArrowDown" });
    await waitFor(() => expect(document.activeElement).toBe(item("warehouse")));
    expect(item("warehouse").tabIndex).toBe(0);
    expect(item("archive").tabIndex).toBe(-1);
    fireEvent.keyDown(document.activeElement!, { key: " " });
    expect(selected()).toEqual(["/srv/cams/warehouse"]);
    expect(item("warehouse").getAttribute("aria-selected")).toBe("true");
    fireEvent.keyDown(document.activeElement!, { key: "ArrowRight" });
    await screen.findByRole("treeitem", { name: "Cam1" });
    fireEvent.keyDown(document.activeElement!, { key: "ArrowRight" });
    await waitFor(() => expect(document.activeElement).toBe(item("Cam1")));
    fireEvent.keyDown(document.activeElement!, { key: "ArrowLeft" });
    await waitFor(() => expect(document.activeElement).toBe(item("warehouse")));
    fireEvent.keyDown(document.activeElement!, { key: "ArrowLeft" });
    expect(screen.queryByRole("treeitem", { name: "Cam1" })).toBeNull();
    fireEvent.keyDown(document.activeElement!, { key: "Home" });
    await waitFor(() => expect(document.activeElement).toBe(item("/srv/cams")));
    fireEvent.keyDown(document.activeElement!, { key: "End" });
    await waitFor(() => expect(document.activeElement).toBe(item("warehouse")));
    fireEvent.keyDown(document.activeElement!, { key: " " });
    expect(selected()).toEqual([]);
  });

  it("chooses many folders; a chosen folder includes, and replaces, what is under it", async () => {
    const { load } = provider(TREE);
    render(<Harness load={load} />);
    fireEvent.click(await screen.findByRole("button", { name: "Open /srv/cams" }));
    fireEvent.click(await screen.findByRole("button", { name: "Open warehouse" }));
    await screen.findByRole("treeitem", { name: "Cam1" });
    fireEvent.click(within(item("Cam1")).getByRole("checkbox"));
    fireEvent.click(within(item("archive")).getByRole("checkbox"));
    expect(selected()).toEqual(["/srv/cams/warehouse/Cam1", "/srv/cams/archive"]);
    fireEvent.click(within(item("warehouse")).getByRole("checkbox"));
    expect(selected()).toEqual(["/srv/cams/archive", "/srv/cams/warehouse"]);
    const cam2 = within(item("Cam2")).getByRole("checkbox") as HTMLInputElement;
    expect(cam2.checked && cam2.disabled).toBe(true);
    expect(item("Cam2").textContent).toContain("included");
  });

  it("names cameras: the chosen folder's sub-folders get a name field", async () => {
    const { load } = provider(TREE);
    render(<Harness load={load} initial={["/srv/cams/warehouse"]} />);
    fireEvent.click(await screen.findByRole("button", { name: "Open /srv/cams" }));
    fireEvent.click(await screen.findByRole("button", { name: "Open warehouse" }));
    const field = await screen.findByRole("textbox", { name: "Camera name for Cam1" });
    expect(screen.queryByRole("textbox", { name: "Camera name for archive" })).toBeNull();
    fireEvent.change(field, { target: { value: "Bàn đóng gói 1" } });
    expect(JSON.parse(screen.getByTestId("cameras").textContent!)).toEqual({ Cam1: "Bàn đóng gói 1" });
    fireEvent.change(field, { target: { value: "" } });
    expect(JSON.parse(screen.getByTestId("cameras").textContent!)).toEqual({});
  });

  it("offers camera names on channels, never on drives, devices or days", async () => {
    const node = (id: string, kind: string, has_children = true): TreeNode => ({
      id,
      name: id,
      kind,
      has_children,
      selectable: true,
    });
    const { load } = provider({
      "": [node("NVR", "device")],
      NVR: [node("Cổng trước", "channel")],
      "Cổng trước": [node("2026-11-24", "day", false)],
    });
    render(<Harness load={load} initial={["NVR", "Cổng trước"]} />);
    fireEvent.click(await screen.findByRole("button", { name: "Open NVR" }));
    fireEvent.click(await screen.findByRole("button", { name: "Open Cổng trước" }));
    await screen.findByRole("treeitem", { name: "2026-11-24" });
    expect(screen.getByRole("textbox", { name: "Camera name for Cổng trước" })).toBeTruthy();
    expect(screen.getAllByRole("textbox")).toHaveLength(1);
  });

  it("shows the provider's own error and loads again on request", async () => {
    const tree = { ...TREE, "/srv/cams": undefined as unknown as TreeNode[] };
    const { load, calls } = provider(tree);
    render(<Harness load={load} />);
    fireEvent.click(await screen.findByRole("button", { name: "Open /srv/cams" }));
    expect((await screen.findByRole("alert")).textContent).toBe(
      "cannot read folder /srv/cams: permission denied",
    );
    tree["/srv/cams"] = TREE["/srv/cams"]!;
    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("treeitem", { name: "warehouse" })).toBeTruthy();
    expect(calls.filter(([n]) => n === "/srv/cams")).toHaveLength(2);
  });

  it("names a camera by the last part of the node's name, as the sync does", () => {
    expect(cameraKey(folder("/srv/cams/warehouse"))).toBe("warehouse");
    expect(cameraKey({ ...folder("/srv/cams"), name: "/srv/cams" })).toBe("cams");
    expect(
      cameraKey({ id: "ch1", name: "Camera 01", kind: "channel", has_children: false, selectable: true }),
    ).toBe("Camera 01");
  });
});

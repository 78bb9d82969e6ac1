// The one lazy tree for every provider: Drive folders, S3 prefixes, recorder channels alike.
import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import type { BrowsePage, TreeNode } from "../api/client";
import { useI18n } from "../i18n";
import { messageOf } from "./ErrorNote";

const CAMERA_KINDS = new Set(["channel", "camera"]);
const ROOT = "\u0000root"; // no provider id is this: ids are paths, prefixes or vendor ids

interface Branch {
  nodes: TreeNode[];
  next: string | null;
  loading: boolean;
  error: string | null;
  loaded: boolean;
}

type Row =
  | { type: "node"; key: string; node: TreeNode; depth: number; parent: string }
  | { type: "more"; key: string; parent: string; depth: number; shown: number }
  | { type: "error"; key: string; parent: string; depth: number; message: string }
  | { type: "loading"; key: string; parent: string; depth: number };

/**
 * The camera name the engine gives videos found under this node: the last part of its
 * name (a top-level local folder is listed by its full path; the engine names it by its
 * folder name), so a rename typed here matches what the sync records.
 */
export function cameraKey(node: TreeNode): string {
  const parts = node.name.split("/").filter(Boolean);
  return parts[parts.length - 1] ?? node.name;
}

export interface FolderTreeProps {
  /** One page of children of `node` (null: the top). */
  load: (node: string | null, page: string | null) => Promise<BrowsePage>;
  selected: string[];
  onSelectedChange: (ids: string[]) => void;
  cameras: Record<string, string>;
  onCamerasChange: (cameras: Record<string, string>) => void;
  /** Names of nodes as they load (ids may be opaque, like a Drive folder's). */
  onNamesKnown?: (names: Record<string, string>) => void;
  label: string;
}

export function FolderTree({
  load,
  selected,
  onSelectedChange,
  cameras,
  onCamerasChange,
  onNamesKnown,
  label,
}: FolderTreeProps) {
  const { t } = useI18n();
  const [branches, setBranches] = useState<Record<string, Branch>>({});
  const [expanded, setExpanded] = useState<Set<string>>(() => new Set());
  const [focusKey, setFocusKey] = useState<string | null>(null);
  const parentOf = useRef<Map<string, string>>(new Map());
  const rowRefs = useRef<Map<string, HTMLLIElement>>(new Map());
  const keyboardMoved = useRef(false);
  const namesKnown = useRef(onNamesKnown);
  namesKnown.current = onNamesKnown; // a ref: a new callback must not reload the tree
  const selectedSet = useMemo(() => new Set(selected), [selected]);

  const loadBranch = useCallback(
    async (key: string, page: string | null) => {
      setBranches((b) => ({
        ...b,
        [key]: { ...(b[key] ?? { nodes: [], next: null, loaded: false }), loading: true, error: null },
      }));
      try {
        const result = await load(key === ROOT ? null : key, page);
        for (const node of result.nodes) parentOf.current.set(node.id, key);
        namesKnown.current?.(Object.fromEntries(result.nodes.map((n) => [n.id, n.name])));
        setBranches((b) => ({
          ...b,
          [key]: {
            nodes: page ? [...(b[key]?.nodes ?? []), ...result.nodes] : result.nodes,
            next: result.next_page,
            loading: false,
            error: null,
            loaded: true,
          },
        }));
      } catch (error) {
        setBranches((b) => ({
          ...b,
          [key]: {
            ...(b[key] ?? { nodes: [], next: null, loaded: false }),
            loading: false,
            error: messageOf(error),
          },
        }));
      }
    },
    [load],
  );

  useEffect(() => {
    void loadBranch(ROOT, null);
  }, [loadBranch]);

  const rows = useMemo(() => {
    const out: Row[] = [];
    const walk = (key: string, depth: number) => {
      const branch = branches[key];
      if (!branch) return;
      for (const node of branch.nodes) {
        out.push({ type: "node", key: `n:${node.id}`, node, depth, parent: key });
        if (expanded.has(node.id)) walk(node.id, depth + 1);
      }
      if (branch.loading) out.push({ type: "loading", key: `l:${key}`, parent: key, depth });
      else if (branch.error)
        out.push({ type: "error", key: `e:${key}`, parent: key, depth, message: branch.error });
      else if (branch.next)
        out.push({ type: "more", key: `m:${key}`, parent: key, depth, shown: branch.nodes.length });
    };
    walk(ROOT, 1);
    return out;
  }, [branches, expanded]);

  const focusable = rows.filter((r) => r.type !== "loading");
  const activeKey =
    focusKey && focusable.some((r) => r.key === focusKey) ? focusKey : (focusable[0]?.key ?? null);

  useEffect(() => {
    if (keyboardMoved.current && activeKey) {
      rowRefs.current.get(activeKey)?.focus();
      keyboardMoved.current = false;
    }
  }, [activeKey]);

  const ancestorSelected = (id: string): boolean => {
    let parent = parentOf.current.get(id);
    while (parent && parent !== ROOT) {
      if (selectedSet.has(parent)) return true;
      parent = parentOf.current.get(parent);
    }
    return false;
  };

  const toggleExpand = (node: TreeNode) => {
    if (!node.has_children) return;
    const open = expanded.has(node.id);
    setExpanded((e) => {
      const next = new Set(e);
      if (open) next.delete(node.id);
      else next.add(node.id);
      return next;
    });
    if (!open && !branches[node.id]?.loaded && !branches[node.id]?.loading) {
      void loadBranch(node.id, null);
    }
  };

  const toggleSelect = (node: TreeNode) => {
    if (!node.selectable || ancestorSelected(node.id)) return;
    if (selectedSet.has(node.id)) {
      onSelectedChange(selected.filter((id) => id !== node.id));
      return;
    }
    // A chosen folder already takes everything under it: drop chosen descendants.
    const isUnder = (id: string) => {
      let parent = parentOf.current.get(id);
      while (parent && parent !== ROOT) {
        if (parent === node.id) return true;
        parent = parentOf.current.get(parent);
      }
      return false;
    };
    onSelectedChange([...selected.filter((id) => !isUnder(id)), node.id]);
  };

  const activate = (row: Row) => {
    if (row.type === "more") void loadBranch(row.parent, branches[row.parent]?.next ?? null);
    else if (row.type === "error")
      void loadBranch(row.parent, branches[row.parent]?.loaded ? branches[row.parent]!.next : null);
    else if (row.type === "node") toggleExpand(row.node);
  };

  const moveTo = (key: string | undefined) => {
    if (!key) return;
    keyboardMoved.current = true;
    setFocusKey(key);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLUListElement>) => {
    const target = event.target as HTMLElement;
    if (target.tagName === "INPUT" && (target as HTMLInputElement).type === "text") return;
    const index = focusable.findIndex((r) => r.key === activeKey);
    const row = focusable[index];
    if (!row) return;
    let handled = true;
    switch (event.key) {
      case "ArrowDown":
        moveTo(focusable[Math.min(index + 1, focusable.length - 1)]?.key);
        break;
      case "ArrowUp":
        moveTo(focusable[Math.max(index - 1, 0)]?.key);
        break;
      case "Home":
        moveTo(focusable[0]?.key);
        break;
      case "End":
        moveTo(focusable[focusable.length - 1]?.key);
        break;
      case "ArrowRight":
        if (row.type === "node" && row.node.has_children) {
          if (!expanded.has(row.node.id)) toggleExpand(row.node);
          else moveTo(focusable[index + 1]?.key);
        }
        break;
      case "ArrowLeft":
        if (row.type === "node" && expanded.has(row.node.id)) toggleExpand(row.node);
        else if (row.parent !== ROOT) moveTo(`n:${row.parent}`);
        break;
      case "Enter":
        activate(row);
        break;
      case " ":
        if (row.type === "node") toggleSelect(row.node);
        else activate(row);
        break;
      default:
        handled = false;
    }
    if (handled) event.preventDefault();
  };

  const setCamera = (key: string, value: string) => {
    const next = { ...cameras };
    if (value.trim() === "" || value === key) delete next[key];
    else next[key] = value;
    onCamerasChange(next);
  };

  const rootBranch = branches[ROOT];
  return (
    <div className="tree-box">
      {rootBranch?.loaded && rootBranch.nodes.length === 0 && <p className="muted">{t("tree.empty")}</p>}
      <ul role="tree" aria-label={label} aria-multiselectable="true" className="tree" onKeyDown={onKeyDown}>
        {rows.map((row) => {
          const focused = row.key === activeKey;
          const common = {
            ref: (el: HTMLLIElement | null) => {
              if (el) rowRefs.current.set(row.key, el);
              else rowRefs.current.delete(row.key);
            },
            "aria-level": row.depth,
            tabIndex: focused ? 0 : -1,
            onFocus: () => setFocusKey(row.key),
            style: { paddingInlineStart: `${(row.depth - 1) * 1.25 + 0.25}rem` },
          };
          if (row.type === "loading") {
            return (
              <li key={row.key} {...common} tabIndex={undefined} role="none" className="tree-row tree-note">
                <span className="spinner" aria-hidden="true" /> {t("tree.loading")}
              </li>
            );
          }
          if (row.type === "error") {
            return (
              <li
                key={row.key}
                {...common}
                role="treeitem"
                className="tree-row tree-error"
                onClick={() => activate(row)}
              >
                <span role="alert">{row.message}</span>{" "}
                <button type="button" tabIndex={-1} className="link">
                  {t("common.retry")}
                </button>
              </li>
            );
          }
          if (row.type === "more") {
            return (
              <li
                key={row.key}
                {...common}
                role="treeitem"
                className="tree-row tree-more"
                onClick={() => activate(row)}
              >
                <button type="button" tabIndex={-1} className="link">
                  {t("tree.more", { shown: row.shown })}
                </button>
              </li>
            );
          }
          const { node } = row;
          const isOpen = expanded.has(node.id);
          const included = ancestorSelected(node.id);
          const isSelected = selectedSet.has(node.id);
          const camera = cameraKey(node);
          // Recorder channels are cameras; so are chosen folders and the folders right inside
          // them (a drive, a device or a day is not).
          const showCamera =
            CAMERA_KINDS.has(node.kind) ||
            (node.kind === "folder" && (isSelected || selectedSet.has(row.parent)));
          const checkboxId = `tree-check-${row.key}`;
          return (
            <li
              key={row.key}
              {...common}
              role="treeitem"
              aria-label={node.name}
              aria-expanded={node.has_children ? isOpen : undefined}
              aria-selected={isSelected || included}
              className={`tree-row${isSelected ? " is-selected" : ""}${included ? " is-included" : ""}`}
              data-node-id={node.id}
            >
              <button
                type="button"
                className="twisty"
                tabIndex={-1}
                aria-label={t(isOpen ? "tree.collapse" : "tree.expand", { name: node.name })}
                disabled={!node.has_children}
                onClick={() => toggleExpand(node)}
              >
                {node.has_children ? (isOpen ? "▾" : "▸") : ""}
              </button>
              {node.selectable ? (
                <input
                  id={checkboxId}
                  type="checkbox"
                  tabIndex={-1}
                  checked={isSelected || included}
                  disabled={included}
                  onChange={() => toggleSelect(node)}
                />
              ) : (
                <span className="check-gap" />
              )}
              <span className={`kind kind-${node.kind}`} aria-hidden="true" />
              <label
                htmlFor={node.selectable ? checkboxId : undefined}
                className="tree-name"
                onDoubleClick={() => toggleExpand(node)}
              >
                {node.name}
              </label>
              {included && <span className="tag">{t("tree.included")}</span>}
              {showCamera && (
                <span className="camera-field">
                  <span aria-hidden="true">📷</span>
                  <input
                    type="text"
                    tabIndex={focused ? 0 : -1}
                    aria-label={t("tree.cameraNameFor", { name: camera })}
                    placeholder={camera}
                    value={cameras[camera] ?? ""}
                    onChange={(e) => setCamera(camera, e.target.value)}
                  />
                </span>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}

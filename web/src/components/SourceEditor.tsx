// What a source takes and how: folders/channels from the tree, camera names, interval, options.
import { useCallback } from "react";
import { api, ok, type Connection, type Provider } from "../api/client";
import { useI18n } from "../i18n";
import { FolderTree } from "./FolderTree";
import { SchemaFields, fieldsOf, toPayload, type FormValues, type JsonSchema } from "./SchemaForm";

export interface SourceDraft {
  name: string;
  selections: string[];
  cameras: Record<string, string>;
  interval_s: number;
  keep_days: number | null;
  options: FormValues;
  filters: FormValues;
}

export const INTERVALS = [300, 900, 3600, 6 * 3600, 24 * 3600];
// How long local copies stay after publish (null: for ever); they go only once handed on.
export const KEEP_DAYS = [7, 30, 90, 365];

export function useBrowse(connectionId: number) {
  return useCallback(
    (node: string | null, page: string | null) =>
      ok(
        api.GET("/api/connections/{connection_id}/browse", {
          params: {
            path: { connection_id: connectionId },
            query: { node: node ?? undefined, page: page ?? undefined },
          },
        }),
      ),
    [connectionId],
  );
}

/** "Every 5 minutes", "Every 6 hours". */
export function intervalText(tn: (key: string, n: number) => string, seconds: number): string {
  if (seconds % 3600 === 0) return tn("interval.hours", seconds / 3600);
  return tn("interval.minutes", Math.round(seconds / 60));
}

interface Props {
  connection: Connection;
  provider: Provider;
  draft: SourceDraft;
  onChange: (draft: SourceDraft) => void;
  /** Node id -> name, as far as the tree has loaded (for the chosen list). */
  names: Record<string, string>;
  onNamesKnown: (names: Record<string, string>) => void;
}

export function SourceEditor({ connection, provider, draft, onChange, names, onNamesKnown }: Props) {
  const { t, tn } = useI18n();
  const load = useBrowse(connection.id);
  const optionsSchema = provider.source_options_schema as JsonSchema;
  const set = (patch: Partial<SourceDraft>) => onChange({ ...draft, ...patch });
  const intervals = INTERVALS.includes(draft.interval_s)
    ? INTERVALS
    : [...INTERVALS, draft.interval_s].sort((a, b) => a - b);
  const renamed = Object.entries(draft.cameras);
  const keeps =
    draft.keep_days === null || KEEP_DAYS.includes(draft.keep_days)
      ? KEEP_DAYS
      : [...KEEP_DAYS, draft.keep_days].sort((a, b) => a - b);

  return (
    <div className="editor">
      <div className="editor-tree card">
        <h2 id="tree-title">{t("editor.pick")}</h2>
        <p className="help">{t("editor.pickHelp")}</p>
        <FolderTree
          load={load}
          label={t("editor.pick")}
          selected={draft.selections}
          onSelectedChange={(selections) => set({ selections })}
          cameras={draft.cameras}
          onCamerasChange={(cameras) => set({ cameras })}
          onNamesKnown={onNamesKnown}
        />
      </div>
      <div className="editor-side card">
        <h2>{t("editor.chosen")}</h2>
        {draft.selections.length === 0 ? (
          <p className="muted" data-testid="nothing-chosen">
            {t("editor.nothingChosen")}
          </p>
        ) : (
          <ul className="chips" aria-label={t("editor.chosen")}>
            {draft.selections.map((id) => (
              <li key={id} className="chip">
                <span title={id}>{names[id] ?? lastPart(id)}</span>
                <button
                  type="button"
                  aria-label={t("editor.unchoose", { name: names[id] ?? id })}
                  onClick={() => set({ selections: draft.selections.filter((s) => s !== id) })}
                >
                  ×
                </button>
              </li>
            ))}
          </ul>
        )}
        <div className="field">
          <label htmlFor="source-name">{t("editor.name")}</label>
          <input
            id="source-name"
            required
            maxLength={200}
            value={draft.name}
            onChange={(e) => set({ name: e.target.value })}
          />
        </div>
        <div className="field">
          <label htmlFor="source-interval">{t("editor.interval")}</label>
          <select
            id="source-interval"
            value={draft.interval_s}
            onChange={(e) => set({ interval_s: Number(e.target.value) })}
          >
            {intervals.map((s) => (
              <option key={s} value={s}>
                {intervalText(tn, s)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="source-keep">{t("editor.keep")}</label>
          <select
            id="source-keep"
            value={draft.keep_days === null ? "" : String(draft.keep_days)}
            onChange={(e) => set({ keep_days: e.target.value === "" ? null : Number(e.target.value) })}
          >
            <option value="">{t("keep.forever")}</option>
            {keeps.map((d) => (
              <option key={d} value={d}>
                {tn("keep.days", d)}
              </option>
            ))}
          </select>
          <p className="muted small">{t("editor.keepHint")}</p>
        </div>
        {fieldsOf(optionsSchema).length > 0 && (
          <fieldset>
            <legend>{t("editor.options")}</legend>
            <SchemaFields
              schema={optionsSchema}
              values={draft.options}
              onChange={(options) => set({ options })}
              idPrefix="opt"
              scope={provider.name}
            />
          </fieldset>
        )}
        <fieldset>
          <legend>{t("editor.filters")}</legend>
          <p className="help">{t("editor.filtersHelp")}</p>
          <SchemaFields
            schema={provider.filters_schema as JsonSchema}
            values={draft.filters}
            onChange={(filters) => set({ filters })}
            idPrefix="filter"
            scope="filters"
          />
        </fieldset>
        <fieldset>
          <legend>{t("editor.cameras")}</legend>
          <p className="help">{t("editor.camerasHelp")}</p>
          {renamed.length === 0 ? (
            <p className="muted small">{t("editor.noRenames")}</p>
          ) : (
            <table className="table compact">
              <thead>
                <tr>
                  <th>{t("editor.cameraFound")}</th>
                  <th>{t("editor.cameraShown")}</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {renamed.map(([raw, shown]) => (
                  <tr key={raw}>
                    <td>{raw}</td>
                    <td>
                      <input
                        aria-label={t("tree.cameraNameFor", { name: raw })}
                        value={shown}
                        onChange={(e) => set({ cameras: { ...draft.cameras, [raw]: e.target.value } })}
                      />
                    </td>
                    <td>
                      <button
                        type="button"
                        className="small secondary"
                        onClick={() => {
                          const next = { ...draft.cameras };
                          delete next[raw];
                          set({ cameras: next });
                        }}
                      >
                        {t("common.remove")}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </fieldset>
      </div>
    </div>
  );
}

/** The last part of a path or prefix ("/srv/cams/warehouse" -> "warehouse"); opaque ids stay whole. */
export function lastPart(id: string): string {
  return id.split("/").filter(Boolean).pop() ?? id;
}

/** Filters to send: blanks and empty pattern lists left out, so "no filters" is {} as stored. */
export function filtersPayload(schema: JsonSchema, values: FormValues): FormValues {
  return Object.fromEntries(
    Object.entries(toPayload(schema, values)).filter(
      ([, v]) => v !== null && !(Array.isArray(v) && v.length === 0),
    ),
  );
}

/** Camera names with blank renames dropped (a blank means: keep the found name). */
export function cleanCameras(cameras: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(cameras).filter(([raw, shown]) => shown.trim() && shown !== raw));
}

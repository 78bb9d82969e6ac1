// After connecting: choose what to sync from the connection's tree, name it, start syncing.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, ok, type Connection, type Provider } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { initialValues, toPayload, type JsonSchema } from "../components/SchemaForm";
import { SourceEditor, filtersPayload, cleanCameras, type SourceDraft } from "../components/SourceEditor";
import { useI18n } from "../i18n";
import { Link, navigate, useLocation } from "../router";

/** A default name from what was chosen: the node's last name part (ids may be opaque). */
export function suggestName(selections: string[], names: Record<string, string> = {}): string {
  return selections
    .map((id) => {
      const name = names[id] ?? id;
      return name.split("/").filter(Boolean).pop() ?? name;
    })
    .slice(0, 3)
    .join(", ");
}

export function NewSource({ connectionId }: { connectionId: number }) {
  const { t } = useI18n();
  const { query } = useLocation();
  const [connection, setConnection] = useState<Connection | null>(null);
  const [provider, setProvider] = useState<Provider | null>(null);
  const [draft, setDraft] = useState<SourceDraft | null>(null);
  const [nameTouched, setNameTouched] = useState(false);
  const [names, setNames] = useState<Record<string, string>>({});
  const learnNames = useCallback((more: Record<string, string>) => setNames((n) => ({ ...n, ...more })), []);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    Promise.all([
      ok(api.GET("/api/connections/{connection_id}", { params: { path: { connection_id: connectionId } } })),
      ok(api.GET("/api/providers")),
    ]).then(([conn, providers]) => {
      const found = providers.find((p) => p.name === conn.provider) ?? null;
      setConnection(conn);
      setProvider(found);
      setDraft({
        name: "",
        selections: [],
        cameras: {},
        interval_s: 300,
        keep_days: null,
        options: initialValues((found?.source_options_schema ?? {}) as JsonSchema),
        filters: initialValues((found?.filters_schema ?? {}) as JsonSchema),
      });
    }, setError);
  }, [connectionId]);

  // The name follows what is chosen until the user types one.
  const change = (next: SourceDraft) => {
    if (draft && next.name !== draft.name) {
      setNameTouched(true);
      setDraft(next);
      return;
    }
    setDraft(nameTouched ? next : { ...next, name: suggestName(next.selections, names) });
  };

  const create = async (event: FormEvent) => {
    event.preventDefault();
    if (!draft || !provider) return;
    setBusy(true);
    setError(null);
    try {
      await ok(
        api.POST("/api/sources", {
          body: {
            connection_id: connectionId,
            name:
              draft.name.trim() || suggestName(draft.selections, names) || connection?.name || provider.label,
            selections: draft.selections,
            cameras: cleanCameras(draft.cameras),
            interval_s: draft.interval_s,
            keep_days: draft.keep_days,
            options: toPayload(provider.source_options_schema as JsonSchema, draft.options),
            filters: filtersPayload(provider.filters_schema as JsonSchema, draft.filters),
          },
        }),
      );
      navigate("/");
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  if (error && !connection) return <ErrorNote error={error} />;
  if (!connection || !provider || !draft) return <p className="muted">{t("common.loading")}</p>;
  return (
    <form onSubmit={(e) => void create(e)} aria-labelledby="new-source-title">
      <p>
        <Link to="/connect">← {t("connect.back")}</Link>
      </p>
      <div className="page-head">
        <h1 id="new-source-title">{t("newSource.title", { name: connection.name })}</h1>
      </div>
      {query.get("new") && (
        <div className="note note-ok" role="status" data-testid="connected-note">
          {t("newSource.connected", { account: connection.account ?? connection.name })}
        </div>
      )}
      <SourceEditor
        connection={connection}
        provider={provider}
        draft={draft}
        onChange={change}
        names={names}
        onNamesKnown={learnNames}
      />
      <ErrorNote error={error} />
      <div className="actions">
        <button type="submit" disabled={busy || draft.selections.length === 0}>
          {t("newSource.start")}
        </button>
        {draft.selections.length === 0 && <span className="muted">{t("newSource.chooseFirst")}</span>}
      </div>
    </form>
  );
}

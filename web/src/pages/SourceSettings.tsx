// One source's settings: what it takes, camera names, interval, options; or remove it.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, ok, type Connection, type Provider, type Source } from "../api/client";
import type { components } from "../api/schema";
import { ErrorNote } from "../components/ErrorNote";
import { initialValues, toPayload, type JsonSchema } from "../components/SchemaForm";
import { SinkSection } from "../components/Sinks";
import { SourceEditor, filtersPayload, cleanCameras, type SourceDraft } from "../components/SourceEditor";
import { useI18n } from "../i18n";
import { Link, navigate } from "../router";

type Editable = components["schemas"]["SourceChange"];

/** Only what differs from the stored source, so the audit log says what really changed. */
export function changedFields(stored: Source, edited: Editable): Editable {
  const out: Editable = {};
  for (const key of Object.keys(edited) as (keyof Editable)[]) {
    if (key in stored && JSON.stringify(edited[key]) !== JSON.stringify(stored[key as keyof Source]))
      Object.assign(out, { [key]: edited[key] });
  }
  return out;
}

export function SourceSettings({ sourceId }: { sourceId: number }) {
  const { t } = useI18n();
  const [source, setSource] = useState<Source | null>(null);
  const [connection, setConnection] = useState<Connection | null>(null);
  const [provider, setProvider] = useState<Provider | null>(null);
  const [draft, setDraft] = useState<SourceDraft | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const [purge, setPurge] = useState(false);
  const [names, setNames] = useState<Record<string, string>>({});
  const learnNames = useCallback((more: Record<string, string>) => setNames((n) => ({ ...n, ...more })), []);

  useEffect(() => {
    (async () => {
      const found = await ok(
        api.GET("/api/sources/{source_id}", { params: { path: { source_id: sourceId } } }),
      );
      const [conn, providers] = await Promise.all([
        ok(
          api.GET("/api/connections/{connection_id}", {
            params: { path: { connection_id: found.connection_id } },
          }),
        ),
        ok(api.GET("/api/providers")),
      ]);
      const prov = providers.find((p) => p.name === conn.provider) ?? null;
      setSource(found);
      // Names saved with the source, so chosen cloud folders show as "Cam1", not an id.
      setNames((known) => ({ ...found.selection_names, ...known }));
      setConnection(conn);
      setProvider(prov);
      setDraft({
        name: found.name,
        selections: found.selections,
        cameras: Object.fromEntries(Object.entries(found.cameras).map(([k, v]) => [k, String(v)])),
        interval_s: found.interval_s,
        keep_days: found.keep_days ?? null,
        options: initialValues((prov?.source_options_schema ?? {}) as JsonSchema, found.options),
        filters: initialValues((prov?.filters_schema ?? {}) as JsonSchema, found.filters),
      });
    })().catch(setError);
  }, [sourceId]);

  const save = async (event: FormEvent) => {
    event.preventDefault();
    if (!draft || !provider) return;
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      const updated = await ok(
        api.PATCH("/api/sources/{source_id}", {
          params: { path: { source_id: sourceId } },
          body: changedFields(source!, {
            name: draft.name,
            selections: draft.selections,
            cameras: cleanCameras(draft.cameras),
            interval_s: draft.interval_s,
            keep_days: draft.keep_days,
            options: toPayload(provider.source_options_schema as JsonSchema, draft.options),
            filters: filtersPayload(provider.filters_schema as JsonSchema, draft.filters),
          }),
        }),
      );
      setSource(updated);
      setSaved(true);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (!source) return;
    const question = purge ? "settings.removeConfirmPurge" : "settings.removeConfirmKeep";
    if (!window.confirm(t(question, { name: source.name }))) return;
    setBusy(true);
    try {
      await ok(
        api.DELETE("/api/sources/{source_id}", {
          params: { path: { source_id: sourceId }, query: { purge } },
        }),
      );
      navigate("/");
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  if (error && !source) return <ErrorNote error={error} />;
  if (!source || !connection || !provider || !draft) return <p className="muted">{t("common.loading")}</p>;
  return (
    <section aria-labelledby="settings-title">
      <p>
        <Link to="/">← {t("nav.sources")}</Link>
      </p>
      <div className="page-head">
        <h1 id="settings-title">{t("settings.title", { name: source.name })}</h1>
      </div>
      <form onSubmit={(e) => void save(e)}>
        <SourceEditor
          connection={connection}
          provider={provider}
          draft={draft}
          names={names}
          onNamesKnown={learnNames}
          onChange={(d) => {
            setDraft(d);
            setSaved(false);
          }}
        />
        <ErrorNote error={error} />
        {saved && (
          <div className="note note-ok" role="status">
            {t("settings.saved")}
          </div>
        )}
        <div className="actions">
          <button type="submit" disabled={busy || draft.selections.length === 0}>
            {t("settings.save")}
          </button>
        </div>
      </form>
      <SinkSection sourceId={sourceId} />
      <section className="card danger-zone" aria-labelledby="remove-title">
        <h2 id="remove-title">{t("settings.removeTitle")}</h2>
        <fieldset>
          <legend className="sr-only">{t("settings.removeTitle")}</legend>
          <label className="radio">
            <input type="radio" name="purge" checked={!purge} onChange={() => setPurge(false)} />
            {t("settings.keepFiles")}
          </label>
          <label className="radio">
            <input type="radio" name="purge" checked={purge} onChange={() => setPurge(true)} />
            {t("settings.purgeFiles")}
          </label>
        </fieldset>
        <button type="button" className="danger" disabled={busy} onClick={() => void remove()}>
          {t("settings.remove")}
        </button>
      </section>
    </section>
  );
}

// A source's hand-off: the sinks its published videos go on to (VPACK's folder or queue, a
// webhook), their status in words, their delivery log; add, stop, start again, remove.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, ok, type Delivery, type Sink, type SinkKind } from "../api/client";
import { formatDateTime, formatRelative } from "../format";
import { useI18n } from "../i18n";
import { ErrorNote } from "./ErrorNote";
import { SchemaFields, initialValues, toPayload, type FormValues, type JsonSchema } from "./SchemaForm";

/** How often the list is read again while the page is open: deliveries happen by themselves. */
const REFRESH_MS = 5000;
const LOG_PAGE = 20;

/** Whether a sink needs its owner: failing (retried with backoff) or stopped. */
export function sinkTrouble(sink: Sink): boolean {
  return sink.status === "failing" || sink.status === "disabled";
}

export function useKindLabel() {
  const { t, has } = useI18n();
  return (kind: string, fallback?: string) => {
    const key = `sinkKind.${kind}`;
    return has(key) ? t(key) : (fallback ?? kind);
  };
}

export function SinkSection({ sourceId }: { sourceId: number }) {
  const { t } = useI18n();
  const [sinks, setSinks] = useState<Sink[] | null>(null);
  const [kinds, setKinds] = useState<SinkKind[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [adding, setAdding] = useState(false);

  const load = useCallback(async () => {
    try {
      setSinks(
        await ok(api.GET("/api/sources/{source_id}/sinks", { params: { path: { source_id: sourceId } } })),
      );
    } catch (e) {
      setError(e);
    }
  }, [sourceId]);

  useEffect(() => {
    void load();
    void ok(api.GET("/api/sinks/kinds")).then(setKinds, setError);
    const timer = window.setInterval(() => void load(), REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [load]);

  const kindOf = (name: string) => kinds.find((k) => k.name === name);

  return (
    <section className="card handoff" aria-labelledby="handoff-title" data-testid="handoff">
      <h2 id="handoff-title">{t("sinks.title")}</h2>
      <p className="muted">{t("sinks.lead")}</p>
      <ErrorNote error={error} />
      {sinks === null && !error && <p className="muted">{t("common.loading")}</p>}
      {sinks?.length === 0 && <p className="muted">{t("sinks.none")}</p>}
      {sinks && sinks.length > 0 && (
        <ul className="sink-list">
          {sinks.map((sink) => (
            <SinkRow key={sink.id} sink={sink} kind={kindOf(sink.kind)} onChanged={load} />
          ))}
        </ul>
      )}
      {adding ? (
        <AddSink
          sourceId={sourceId}
          kinds={kinds}
          onCancel={() => setAdding(false)}
          onAdded={async () => {
            setAdding(false);
            await load();
          }}
        />
      ) : (
        <div className="actions">
          <button
            type="button"
            className="secondary"
            onClick={() => setAdding(true)}
            disabled={!kinds.length}
          >
            {t("sinks.add")}
          </button>
        </div>
      )}
    </section>
  );
}

function SinkRow({
  sink,
  kind,
  onChanged,
}: {
  sink: Sink;
  kind: SinkKind | undefined;
  onChanged: () => Promise<void>;
}) {
  const { t, lang } = useI18n();
  const kindLabel = useKindLabel();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [showLog, setShowLog] = useState(false);
  const path = { params: { path: { sink_id: sink.id } } };

  const act = async (work: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
      await onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const setEnabled = (enabled: boolean) =>
    act(() => ok(api.PATCH("/api/sinks/{sink_id}", { ...path, body: { enabled } })));

  const remove = () => {
    if (!window.confirm(t("sinks.removeConfirm", { name: sink.name }))) return;
    void act(() => ok(api.DELETE("/api/sinks/{sink_id}", path)));
  };

  const stopped = sink.status === "disabled";
  const where = Object.values(sink.config).filter((v) => typeof v === "string")[0] as string | undefined;
  return (
    <li className="sink" data-sink-id={sink.id} data-status={sink.status} aria-labelledby={`sink-${sink.id}`}>
      <div className="sink-head">
        <div>
          <strong id={`sink-${sink.id}`}>{sink.name}</strong>
          <span className="muted">
            {" · "}
            {kindLabel(sink.kind, kind?.label)}
            {where ? ` · ${where}` : ""}
          </span>
        </div>
        <span className={`badge badge-sink-${sink.status}`} data-testid="sink-status">
          {t(`sinks.status.${sink.status}` as "sinks.status.ok")}
        </span>
      </div>
      <dl className="facts">
        <div>
          <dt>{t("sinks.delivered")}</dt>
          <dd data-testid="sink-delivered">{sink.delivered}</dd>
        </div>
        <div>
          <dt>{t("sinks.failures")}</dt>
          <dd data-testid="sink-failures" className={sink.failures > 0 ? "bad" : ""}>
            {sink.failures}
          </dd>
        </div>
        {sink.status === "failing" && sink.next_attempt_at && (
          <div>
            <dt>{t("sinks.nextTry")}</dt>
            <dd title={formatDateTime(lang, sink.next_attempt_at)}>
              {formatRelative(lang, sink.next_attempt_at)}
            </dd>
          </div>
        )}
      </dl>
      {sink.status !== "ok" && (
        <div className={`note ${stopped ? "note-warn" : "note-error"}`} data-testid="sink-detail">
          <strong>{t(stopped ? "sinks.stoppedLead" : "sinks.failingLead")} </strong>
          {sink.status_detail && <span className="detail">{sink.status_detail}</span>}
        </div>
      )}
      <ErrorNote error={error} />
      <div className="actions">
        {stopped ? (
          <button type="button" className="small" disabled={busy} onClick={() => void setEnabled(true)}>
            {t("sinks.enable")}
          </button>
        ) : (
          <button
            type="button"
            className="small secondary"
            disabled={busy}
            onClick={() => void setEnabled(false)}
          >
            {t("sinks.disable")}
          </button>
        )}
        <button
          type="button"
          className="small secondary"
          aria-expanded={showLog}
          onClick={() => setShowLog((s) => !s)}
        >
          {showLog ? t("sinks.hideLog") : t("sinks.showLog")}
        </button>
        <button type="button" className="small danger" disabled={busy} onClick={remove}>
          {t("common.remove")}
        </button>
      </div>
      {showLog && <DeliveryLog sink={sink} />}
    </li>
  );
}

function DeliveryLog({ sink }: { sink: Sink }) {
  const { t, lang } = useI18n();
  const [items, setItems] = useState<Delivery[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const page = useCallback(
    async (after: string | null) => {
      try {
        const got = await ok(
          api.GET("/api/sinks/{sink_id}/deliveries", {
            params: { path: { sink_id: sink.id }, query: { limit: LOG_PAGE, cursor: after ?? undefined } },
          }),
        );
        setItems((old) => (after && old ? [...old, ...got.items] : got.items));
        setCursor(got.next_cursor);
      } catch (e) {
        setError(e);
      }
    },
    [sink.id],
  );

  // Read again whenever the sink has moved on (a delivery or a failure more).
  useEffect(() => {
    void page(null);
  }, [page, sink.delivered, sink.failures]);

  return (
    <div className="delivery-log" data-testid="delivery-log">
      <h3 className="sr-only">{t("sinks.logTitle", { name: sink.name })}</h3>
      <ErrorNote error={error} />
      {items?.length === 0 && <p className="muted small">{t("sinks.logEmpty")}</p>}
      {items && items.length > 0 && (
        <table className="table compact">
          <caption className="sr-only">{t("sinks.logTitle", { name: sink.name })}</caption>
          <thead>
            <tr>
              <th>{t("sinks.logWhen")}</th>
              <th>{t("sinks.logVideo")}</th>
              <th>{t("sinks.logResult")}</th>
              <th>{t("sinks.logDetail")}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((d) => (
              <tr key={d.id} data-ok={d.ok ? "true" : "false"}>
                <td>{formatDateTime(lang, d.at)}</td>
                <td>#{d.video_id}</td>
                <td>
                  <span className={`badge ${d.ok ? "badge-ok" : "badge-error"}`}>
                    {d.ok ? t("sinks.logOk") : t("sinks.logFailed")}
                  </span>
                </td>
                <td className="detail">{d.detail ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button type="button" className="small secondary" onClick={() => void page(cursor)}>
          {t("common.more")}
        </button>
      )}
    </div>
  );
}

function AddSink({
  sourceId,
  kinds,
  onCancel,
  onAdded,
}: {
  sourceId: number;
  kinds: SinkKind[];
  onCancel: () => void;
  onAdded: () => Promise<void>;
}) {
  const { t } = useI18n();
  const kindLabel = useKindLabel();
  const [kindName, setKindName] = useState(kinds[0]?.name ?? "");
  const kind = kinds.find((k) => k.name === kindName);
  const schema = (kind?.config_schema ?? {}) as JsonSchema;
  const [name, setName] = useState("");
  const [values, setValues] = useState<FormValues>(() => initialValues(schema));
  const [fromStart, setFromStart] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const choose = (next: string) => {
    setKindName(next);
    const chosen = kinds.find((k) => k.name === next);
    setValues(initialValues((chosen?.config_schema ?? {}) as JsonSchema));
    setError(null);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!kind) return;
    setBusy(true);
    setError(null);
    try {
      await ok(
        api.POST("/api/sources/{source_id}/sinks", {
          params: { path: { source_id: sourceId } },
          body: {
            kind: kind.name,
            name: name.trim() || kindLabel(kind.name, kind.label),
            config: toPayload(schema, values),
            from_start: fromStart,
          },
        }),
      );
      await onAdded();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  return (
    <form className="add-sink" onSubmit={(e) => void submit(e)} aria-labelledby="add-sink-title">
      <h3 id="add-sink-title">{t("sinks.addTitle")}</h3>
      <div className="field">
        <label htmlFor="sink-kind">{t("sinks.kind")}</label>
        <select id="sink-kind" value={kindName} onChange={(e) => choose(e.target.value)}>
          {kinds.map((k) => (
            <option key={k.name} value={k.name}>
              {kindLabel(k.name, k.label)}
            </option>
          ))}
        </select>
        {kind && <small className="help">{t(`sinkKind.${kind.name}.help` as "sinkKind.webhook.help")}</small>}
      </div>
      <div className="field">
        <label htmlFor="sink-name">{t("sinks.name")}</label>
        <input
          id="sink-name"
          value={name}
          placeholder={kind ? kindLabel(kind.name, kind.label) : ""}
          maxLength={200}
          onChange={(e) => setName(e.target.value)}
        />
      </div>
      <SchemaFields
        key={kindName}
        schema={schema}
        values={values}
        onChange={setValues}
        idPrefix="sink-config"
        scope={kindName}
        disabled={busy}
      />
      <div className="field field-check">
        <label htmlFor="sink-from-start">{t("sinks.fromStart")}</label>
        <input
          id="sink-from-start"
          type="checkbox"
          checked={fromStart}
          onChange={(e) => setFromStart(e.target.checked)}
          aria-describedby="sink-from-start-help"
        />
        <small id="sink-from-start-help" className="help">
          {t("sinks.fromStartHelp")}
        </small>
      </div>
      <ErrorNote error={error} />
      <div className="actions">
        <button type="submit" disabled={busy || !kind}>
          {t("sinks.addSubmit")}
        </button>
        <button type="button" className="secondary" onClick={onCancel} disabled={busy}>
          {t("sinks.cancel")}
        </button>
      </div>
    </form>
  );
}

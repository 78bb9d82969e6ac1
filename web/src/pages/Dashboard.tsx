// Sources at a glance: state, last and next sync, counts, live progress, problems and actions.
import { useCallback, useEffect, useRef, useState } from "react";
import {
  api,
  ok,
  type Connection,
  type Provider,
  type Sink,
  type Source,
  type SourceStatus,
} from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { ProviderLogo } from "../components/ProviderLogo";
import { sinkTrouble } from "../components/Sinks";
import { formatBytes, formatDateTime, formatRelative } from "../format";
import { useI18n } from "../i18n";
import { isLive, useLive, type SourceLive } from "../live";
import { Link } from "../router";
import { reconnect, useProviderLabel } from "../connections";

const BUSY_STATES = new Set(["scanning", "syncing"]);
const FAST_REFRESH_MS = 2000;
const SLOW_REFRESH_MS = 15000;

export function byId<T extends { id: number }>(items: T[]): Record<number, T> {
  return Object.fromEntries(items.map((item) => [item.id, item]));
}

export function Dashboard() {
  const { t } = useI18n();
  const { live } = useLive();
  const [sources, setSources] = useState<Source[] | null>(null);
  const [connections, setConnections] = useState<Record<number, Connection>>({});
  const [providers, setProviders] = useState<Record<string, Provider>>({});
  const [statuses, setStatuses] = useState<Record<number, SourceStatus>>({});
  const [sinks, setSinks] = useState<Record<number, Sink[]>>({});
  const [error, setError] = useState<unknown>(null);
  const [now, setNow] = useState(() => Date.now());
  const lastLoad = useRef(0);
  const lastSinks = useRef(0);
  const openedAt = useRef(Date.now());
  const liveRef = useRef(live);
  liveRef.current = live;

  const reload = useCallback(async () => {
    lastLoad.current = Date.now();
    try {
      const [list, conns] = await Promise.all([ok(api.GET("/api/sources")), ok(api.GET("/api/connections"))]);
      setSources(list);
      setConnections(byId(conns));
      setError(null);
      const moving = list.filter(
        (s) =>
          BUSY_STATES.has(s.status) ||
          isLive(liveRef.current[s.id], Date.now(), openedAt.current) ||
          (s.counts.downloading ?? 0) > 0,
      );
      const fetched = await Promise.all(
        moving.map((s) =>
          ok(api.GET("/api/sources/{source_id}/status", { params: { path: { source_id: s.id } } })).catch(
            () => null,
          ),
        ),
      );
      setStatuses((old) => {
        const next = { ...old };
        for (const status of fetched) if (status) next[status.id] = status;
        return next;
      });
      // Hand-offs change slowly and have no live events: read them at the slow pace only.
      if (Date.now() - lastSinks.current >= SLOW_REFRESH_MS) {
        lastSinks.current = Date.now();
        const found = await Promise.all(
          list.map((s) =>
            ok(api.GET("/api/sources/{source_id}/sinks", { params: { path: { source_id: s.id } } })).catch(
              () => [] as Sink[],
            ),
          ),
        );
        setSinks(Object.fromEntries(list.map((s, i) => [s.id, found[i]!])));
      }
    } catch (e) {
      setError(e);
    }
  }, []);

  useEffect(() => {
    void reload();
    void ok(api.GET("/api/providers"))
      .then((list) => setProviders(Object.fromEntries(list.map((p) => [p.name, p]))))
      .catch(setError);
  }, [reload]);

  const anyActive =
    sources?.some(
      (s) =>
        BUSY_STATES.has(s.status) ||
        isLive(live[s.id], now, openedAt.current) ||
        (s.counts.downloading ?? 0) > 0,
    ) ?? false;

  // A clock for "in 3 minutes" and for how long a finished run stays shown; refresh while busy.
  useEffect(() => {
    const timer = window.setInterval(() => {
      const at = Date.now();
      setNow(at);
      if (at - lastLoad.current >= (anyActive ? FAST_REFRESH_MS : SLOW_REFRESH_MS)) void reload();
    }, 1000);
    return () => window.clearInterval(timer);
  }, [anyActive, reload]);

  // Live events: refresh soon after something happened (at most about once a second).
  useEffect(() => {
    if (Object.keys(live).length === 0) return;
    const wait = Math.max(0, 800 - (Date.now() - lastLoad.current));
    const timer = window.setTimeout(() => void reload(), wait);
    return () => window.clearTimeout(timer);
  }, [live, reload]);

  return (
    <section aria-labelledby="dash-title">
      <div className="page-head">
        <h1 id="dash-title">{t("dash.title")}</h1>
        <Link to="/connect" className="button">
          {t("dash.connect")}
        </Link>
      </div>
      <ErrorNote error={error} />
      {sources === null && !error && <p className="muted">{t("common.loading")}</p>}
      {sources?.length === 0 && (
        <div className="card empty">
          <h2>{t("dash.emptyTitle")}</h2>
          <p>{t("dash.emptyText")}</p>
          <Link to="/connect" className="button">
            {t("dash.connect")}
          </Link>
        </div>
      )}
      <ul className="source-list">
        {sources?.map((source) => (
          <SourceCard
            key={source.id}
            source={source}
            connection={connections[source.connection_id]}
            provider={providers[source.provider]}
            status={statuses[source.id]}
            sinks={sinks[source.id]}
            live={live[source.id]}
            now={now}
            openedAt={openedAt.current}
            onChanged={reload}
          />
        ))}
      </ul>
    </section>
  );
}

interface CardProps {
  source: Source;
  connection: Connection | undefined;
  provider: Provider | undefined;
  status: SourceStatus | undefined;
  sinks: Sink[] | undefined;
  live: SourceLive | undefined;
  now: number;
  openedAt: number;
  onChanged: () => Promise<void>;
}

function SourceCard({
  source,
  connection,
  provider,
  status,
  sinks,
  live,
  now,
  openedAt,
  onChanged,
}: CardProps) {
  const { t, tn, lang, has } = useI18n();
  const labelOf = useProviderLabel();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const counts = source.counts;
  const fresh = (counts.pending ?? 0) + (counts.downloading ?? 0);
  const needsReauth = connection?.status === "reauth_required";
  const stateKey = `state.${source.status}`;
  const active =
    BUSY_STATES.has(source.status) || isLive(live, now, openedAt) || (counts.downloading ?? 0) > 0;

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

  const syncNow = () =>
    act(() => ok(api.POST("/api/sources/{source_id}/sync", { params: { path: { source_id: source.id } } })));

  return (
    <li className="card source-card" aria-labelledby={`source-${source.id}-name`} data-source-id={source.id}>
      <div className="source-head">
        <ProviderLogo
          provider={provider ?? { name: source.provider, auth: "none", features: {} }}
          size={36}
        />
        <div className="source-title">
          <h2 id={`source-${source.id}-name`}>{source.name}</h2>
          <span className="muted">
            {provider ? labelOf(provider) : source.provider}
            {connection?.account ? ` · ${connection.account}` : ""}
          </span>
        </div>
        <span className={`badge badge-${source.status}`} data-testid="source-state">
          {has(stateKey) ? t(stateKey) : source.status}
        </span>
      </div>

      <dl className="facts">
        <div>
          <dt>{t("source.lastSync")}</dt>
          <dd title={formatDateTime(lang, source.last_scan_at)}>
            {source.last_scan_at ? formatRelative(lang, source.last_scan_at, now) : t("source.never")}
          </dd>
        </div>
        <div>
          <dt>{t("source.nextSync")}</dt>
          <dd title={formatDateTime(lang, source.next_scan_at)}>
            {source.next_scan_at && !BUSY_STATES.has(source.status)
              ? formatRelative(lang, source.next_scan_at, now)
              : t("source.soon")}
          </dd>
        </div>
        <div>
          <dt>{t("source.new")}</dt>
          <dd data-testid="count-new">{fresh}</dd>
        </div>
        <div>
          <dt>{t("source.downloaded")}</dt>
          <dd data-testid="count-done">{counts.done ?? 0}</dd>
        </div>
        <div>
          <dt>{t("source.failed")}</dt>
          <dd data-testid="count-failed" className={(counts.failed ?? 0) > 0 ? "bad" : ""}>
            {counts.failed ?? 0}
          </dd>
        </div>
      </dl>

      {active && <SyncProgress source={source} status={status} live={live} />}

      {needsReauth && (
        <div className="note note-warn" role="status">
          {t("source.needsReauth")}
          {connection?.status_detail ? <span className="detail"> ({connection.status_detail})</span> : null}
        </div>
      )}
      {!needsReauth && connection?.status === "error" && (
        <div className="note note-error">
          <strong>{t("source.connectionProblem")} </strong>
          <span className="detail">{connection.status_detail}</span>
        </div>
      )}
      {source.status === "attention" && (
        <div className="note note-warn" role="status" data-testid="needs-attention">
          {t("source.attention")}
        </div>
      )}
      {sinks?.some(sinkTrouble) && <SinkWarning sinks={sinks.filter(sinkTrouble)} tn={tn} />}
      {source.last_error && (
        <div className="note note-error" data-testid="last-error">
          <strong>{t("source.lastProblem")} </strong>
          <span className="detail">{source.last_error}</span>
        </div>
      )}
      <ErrorNote error={error} />

      <div className="actions">
        <button type="button" disabled={busy || needsReauth} onClick={() => void syncNow()}>
          {t("source.syncNow")}
        </button>
        {needsReauth && connection && (
          <button
            type="button"
            className="warn"
            disabled={busy}
            onClick={() => void act(() => reconnect(connection, provider))}
          >
            {t("source.reconnect")}
          </button>
        )}
        <Link to={`/videos?source=${source.id}`} className="button secondary">
          {t("source.videos")}
        </Link>
        <Link to={`/sources/${source.id}`} className="button secondary">
          {t("source.settings")}
        </Link>
      </div>
      {fresh === 0 && (counts.done ?? 0) === 0 && !active && !source.last_scan_at && (
        <p className="muted small">{t("source.waitingFirst")}</p>
      )}
    </li>
  );
}

/** A source whose hand-off is failing or stopped: VPACK is not getting its videos. */
function SinkWarning({ sinks, tn }: { sinks: Sink[]; tn: (key: string, n: number) => string }) {
  const failing = sinks.filter((s) => s.status === "failing").length;
  const stopped = sinks.length - failing;
  const parts = [
    failing > 0 ? tn("sinks.warnFailing", failing) : null,
    stopped > 0 ? tn("sinks.warnStopped", stopped) : null,
  ].filter(Boolean);
  return (
    <div className="note note-warn small" data-testid="sink-warning">
      <strong>{parts.join(" · ")}: </strong>
      <span className="detail">{sinks.map((s) => s.name).join(", ")}</span>
    </div>
  );
}

function SyncProgress({
  source,
  status,
  live,
}: {
  source: Source;
  status: SourceStatus | undefined;
  live: SourceLive | undefined;
}) {
  const { t, tn, lang } = useI18n();
  const counts = status?.counts ?? source.counts;
  const done = counts.done ?? 0;
  const waiting = (counts.pending ?? 0) + (counts.downloading ?? 0);
  const total = done + waiting + (counts.failed ?? 0);
  const files =
    live && Object.keys(live.inFlight).length > 0 ? Object.values(live.inFlight) : (status?.current ?? []);
  const phase =
    source.status === "scanning" && files.length === 0
      ? "scanning"
      : files.length > 0 || source.status === "syncing" || waiting > 0
        ? "downloading"
        : "finished";
  const bytesTotal = status?.bytes_total ?? 0;
  const bytesDone = Math.min(status?.bytes_done ?? 0, bytesTotal);
  let headline: string;
  if (phase === "scanning") headline = t("progress.scanning");
  else if (phase === "downloading") headline = t("progress.downloading", { done, total });
  else if (live && live.finishedOk + live.finishedFailed > 0)
    headline = tn("progress.finished", live.finishedOk, { failed: live.finishedFailed });
  else headline = t("progress.upToDate");
  const label = t("progress.label");
  return (
    <div className="progress" data-testid="sync-progress" data-phase={phase}>
      <div className="progress-line">
        <span>{headline}</span>
        {bytesTotal > 0 && (
          <span className="muted">
            {formatBytes(lang, bytesDone)} / {formatBytes(lang, bytesTotal)}
          </span>
        )}
      </div>
      {phase === "scanning" ? (
        <progress aria-label={label} />
      ) : (
        <progress
          aria-label={label}
          max={bytesTotal > 0 ? bytesTotal : Math.max(total, 1)}
          value={
            phase === "finished"
              ? bytesTotal > 0
                ? bytesTotal
                : Math.max(total, 1)
              : bytesTotal > 0
                ? bytesDone
                : done
          }
        />
      )}
      {files.length > 0 && (
        <ul className="in-flight">
          {files.slice(0, 4).map((f, i) => (
            <li key={`${f.name}-${i}`}>
              <span className="file-name">{f.name}</span>
              <span className="muted">
                {f.size ? `${Math.floor((100 * f.bytes_done) / f.size)}%` : formatBytes(lang, f.bytes_done)}
              </span>
            </li>
          ))}
          {files.length > 4 && <li className="muted">{tn("progress.more", files.length - 4)}</li>}
        </ul>
      )}
    </div>
  );
}

// The video library: filter by source, camera, date and state; play, download, retry failures.
import { useCallback, useEffect, useState } from "react";
import { api, ok, videoContentUrl, type Source, type Video } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { formatBytes, formatDateTime, formatDuration } from "../format";
import { useI18n } from "../i18n";
import { navigate, useLocation } from "../router";

const STATES = ["done", "pending", "downloading", "failed", "skipped"] as const;
type State = (typeof STATES)[number];

interface Filters {
  source: string;
  camera: string;
  state: string;
  from: string; // yyyy-mm-dd, local day
  to: string;
}

function filtersFrom(query: URLSearchParams): Filters {
  return {
    source: query.get("source") ?? "",
    camera: query.get("camera") ?? "",
    state: query.get("state") ?? "",
    from: query.get("from") ?? "",
    to: query.get("to") ?? "",
  };
}

/** A local calendar day as the UTC instant it starts at (the API compares instants). */
export function dayStart(day: string, plusDays = 0): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
  const [y, m, d] = day.split("-").map(Number) as [number, number, number];
  return new Date(y, m - 1, d + plusDays).toISOString();
}

export function Videos() {
  const { t, lang, has } = useI18n();
  const { query } = useLocation();
  const filters = filtersFrom(query);
  const [sources, setSources] = useState<Source[]>([]);
  const [videos, setVideos] = useState<Video[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [playing, setPlaying] = useState<Video | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const key = query.toString();

  useEffect(() => {
    ok(api.GET("/api/sources")).then(setSources, setError);
  }, []);

  const fetchPage = useCallback(
    (after: string | null) =>
      ok(
        api.GET("/api/videos", {
          params: {
            query: {
              source_id: filters.source ? Number(filters.source) : undefined,
              camera: filters.camera || undefined,
              state: (filters.state || undefined) as State | undefined,
              recorded_from: dayStart(filters.from),
              recorded_to: dayStart(filters.to, 1),
              cursor: after ?? undefined,
              limit: 50,
            },
          },
        }),
      ),
    // The query string stands for every filter: the page reloads when it changes.
    [key],
  );

  useEffect(() => {
    setVideos(null);
    setPlaying(null);
    fetchPage(null).then((page) => {
      setVideos(page.items);
      setCursor(page.next_cursor);
      setError(null);
    }, setError);
  }, [fetchPage]);

  const more = async () => {
    try {
      const page = await fetchPage(cursor);
      setVideos((v) => [...(v ?? []), ...page.items]);
      setCursor(page.next_cursor);
    } catch (e) {
      setError(e);
    }
  };

  const setFilter = (name: keyof Filters, value: string) => {
    const next = new URLSearchParams(query);
    if (value) next.set(name, value);
    else next.delete(name);
    const qs = next.toString();
    navigate(`/videos${qs ? `?${qs}` : ""}`, { replace: true });
  };

  const retry = async (video: Video) => {
    try {
      await ok(
        api.POST("/api/sources/{source_id}/sync", { params: { path: { source_id: video.source_id } } }),
      );
      setNotice(t("videos.retryQueued", { name: video.name }));
    } catch (e) {
      setError(e);
    }
  };

  const sourceName = Object.fromEntries(sources.map((s) => [s.id, s.name]));
  const cameras = [...new Set((videos ?? []).map((v) => v.camera))].sort();

  return (
    <section aria-labelledby="videos-title">
      <div className="page-head">
        <h1 id="videos-title">{t("videos.title")}</h1>
      </div>
      <form className="filters card" role="search" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor="f-source">{t("videos.source")}</label>
          <select id="f-source" value={filters.source} onChange={(e) => setFilter("source", e.target.value)}>
            <option value="">{t("videos.all")}</option>
            {sources.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-camera">{t("videos.camera")}</label>
          <input
            id="f-camera"
            list="f-camera-list"
            value={filters.camera}
            onChange={(e) => setFilter("camera", e.target.value)}
          />
          <datalist id="f-camera-list">
            {cameras.map((c) => (
              <option key={c} value={c} />
            ))}
          </datalist>
        </div>
        <div className="field">
          <label htmlFor="f-state">{t("videos.state")}</label>
          <select id="f-state" value={filters.state} onChange={(e) => setFilter("state", e.target.value)}>
            <option value="">{t("videos.all")}</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {t(`video.${s}`)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-from">{t("videos.from")}</label>
          <input
            id="f-from"
            type="date"
            value={filters.from}
            onChange={(e) => setFilter("from", e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="f-to">{t("videos.to")}</label>
          <input id="f-to" type="date" value={filters.to} onChange={(e) => setFilter("to", e.target.value)} />
        </div>
      </form>
      <ErrorNote error={error} />
      {notice && (
        <div className="note note-ok" role="status">
          {notice}
        </div>
      )}
      {playing && (
        <Player video={playing} sourceName={sourceName[playing.source_id]} onClose={() => setPlaying(null)} />
      )}
      {videos === null && !error && <p className="muted">{t("common.loading")}</p>}
      {videos?.length === 0 && <p className="muted">{t("videos.none")}</p>}
      {videos && videos.length > 0 && (
        <table className="table videos">
          <thead>
            <tr>
              <th>{t("videos.name")}</th>
              <th>{t("videos.camera")}</th>
              <th>{t("videos.source")}</th>
              <th>{t("videos.recorded")}</th>
              <th>{t("videos.duration")}</th>
              <th>{t("videos.size")}</th>
              <th>{t("videos.state")}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {videos.map((v) => {
              const stateKey = `video.${v.state}`;
              return (
                <tr key={v.id} data-video-id={v.id} className={playing?.id === v.id ? "is-current" : ""}>
                  <td className="file-name" title={v.remote_path}>
                    {v.name}
                  </td>
                  <td>{v.camera}</td>
                  <td>{sourceName[v.source_id] ?? `#${v.source_id}`}</td>
                  <td>{formatDateTime(lang, v.recorded_start ?? v.created_at)}</td>
                  <td>{formatDuration(v.duration_s)}</td>
                  <td>{formatBytes(lang, v.size)}</td>
                  <td>
                    <span className={`badge badge-${v.state}`}>{has(stateKey) ? t(stateKey) : v.state}</span>
                    {v.error && (
                      <div className="small detail" data-testid="video-error">
                        {v.error}
                      </div>
                    )}
                  </td>
                  <td className="row-actions">
                    {v.state === "done" && (
                      <>
                        <button type="button" className="small" onClick={() => setPlaying(v)}>
                          {t("videos.play")}
                        </button>
                        <a className="button small secondary" href={videoContentUrl(v.id)} download={v.name}>
                          {t("videos.download")}
                        </a>
                      </>
                    )}
                    {v.state === "failed" && (
                      <button type="button" className="small warn" onClick={() => void retry(v)}>
                        {t("videos.retry")}
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {cursor && (
        <button type="button" className="secondary" onClick={() => void more()}>
          {t("common.more")}
        </button>
      )}
    </section>
  );
}

function Player({ video, sourceName, onClose }: { video: Video; sourceName?: string; onClose: () => void }) {
  const { t, lang } = useI18n();
  const [failed, setFailed] = useState(false);
  useEffect(() => setFailed(false), [video.id]);
  return (
    <section className="card player" aria-labelledby="player-title">
      <div className="page-head">
        <h2 id="player-title">{video.name}</h2>
        <button type="button" className="secondary small" onClick={onClose}>
          {t("common.close")}
        </button>
      </div>
      <video
        key={video.id}
        src={videoContentUrl(video.id)}
        controls
        autoPlay
        muted
        playsInline
        preload="metadata"
        onError={() => setFailed(true)}
        data-testid="player"
      />
      {failed && (
        <div className="note note-warn" role="status">
          {t("videos.cannotPlay", { codecs: video.codecs ?? "?" })}
        </div>
      )}
      <dl className="facts small">
        <div>
          <dt>{t("videos.source")}</dt>
          <dd>{sourceName ?? `#${video.source_id}`}</dd>
        </div>
        <div>
          <dt>{t("videos.camera")}</dt>
          <dd>{video.camera}</dd>
        </div>
        <div>
          <dt>{t("videos.recorded")}</dt>
          <dd>{formatDateTime(lang, video.recorded_start)}</dd>
        </div>
        <div>
          <dt>{t("videos.codecs")}</dt>
          <dd>{video.codecs ?? "–"}</dd>
        </div>
        <div>
          <dt>SHA-256</dt>
          <dd className="hash">{video.sha256 ?? "–"}</dd>
        </div>
      </dl>
      <a className="button secondary" href={videoContentUrl(video.id)} download={video.name}>
        {t("videos.download")}
      </a>
    </section>
  );
}

// The audit log: administrators see everyone's events, users their own.
import { useCallback, useEffect, useState } from "react";
import { api, ok, type AuditEvent, type User } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { formatDateTime } from "../format";
import { useI18n } from "../i18n";

export const ACTIONS = [
  "login",
  "login_failed",
  "logout",
  "user_created",
  "user_disabled",
  "user_enabled",
  "connection_created",
  "connection_removed",
  "connection_reauth_required",
  "oauth_callback",
  "source_created",
  "source_changed",
  "source_removed",
  "sync_failed",
  "sink_created",
  "sink_changed",
  "sink_removed",
  "key_rotated",
  "vpack_imported",
] as const;

function detailText(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" · ");
}

export function Audit({ user }: { user: User }) {
  const { t, lang, has } = useI18n();
  const isAdmin = user.role === "admin";
  const [action, setAction] = useState("");
  const [events, setEvents] = useState<AuditEvent[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [emails, setEmails] = useState<Record<number, string>>({ [user.id]: user.email });
  const [error, setError] = useState<unknown>(null);

  const fetchPage = useCallback(
    (after: string | null) =>
      ok(
        api.GET("/api/audit", {
          params: { query: { action: action || undefined, cursor: after ?? undefined } },
        }),
      ),
    [action],
  );

  useEffect(() => {
    setEvents(null);
    fetchPage(null).then((page) => {
      setEvents(page.items);
      setCursor(page.next_cursor);
    }, setError);
  }, [fetchPage]);

  useEffect(() => {
    if (!isAdmin) return;
    ok(api.GET("/api/users")).then(
      (users) => setEmails(Object.fromEntries(users.map((u) => [u.id, u.email]))),
      setError,
    );
  }, [isAdmin]);

  const more = async () => {
    try {
      const page = await fetchPage(cursor);
      setEvents((e) => [...(e ?? []), ...page.items]);
      setCursor(page.next_cursor);
    } catch (e) {
      setError(e);
    }
  };

  const label = (name: string) => {
    const key = `audit.${name}`;
    return has(key) ? t(key) : name;
  };

  return (
    <section aria-labelledby="audit-title">
      <div className="page-head">
        <h1 id="audit-title">{t("audit.title")}</h1>
      </div>
      <p className="lead">{isAdmin ? t("audit.leadAdmin") : t("audit.leadUser")}</p>
      <div className="filters card">
        <div className="field">
          <label htmlFor="audit-action">{t("audit.action")}</label>
          <select id="audit-action" value={action} onChange={(e) => setAction(e.target.value)}>
            <option value="">{t("videos.all")}</option>
            {ACTIONS.map((a) => (
              <option key={a} value={a}>
                {label(a)}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ErrorNote error={error} />
      {events === null && !error && <p className="muted">{t("common.loading")}</p>}
      {events?.length === 0 && <p className="muted">{t("audit.none")}</p>}
      {events && events.length > 0 && (
        <table className="table">
          <thead>
            <tr>
              <th>{t("audit.when")}</th>
              {isAdmin && <th>{t("audit.who")}</th>}
              <th>{t("audit.action")}</th>
              <th>{t("audit.target")}</th>
              <th>{t("audit.ip")}</th>
              <th>{t("audit.detail")}</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={e.id} data-action={e.action}>
                <td>{formatDateTime(lang, e.at)}</td>
                {isAdmin && <td>{e.user_id ? (emails[e.user_id] ?? `#${e.user_id}`) : "–"}</td>}
                <td>{label(e.action)}</td>
                <td>{e.target_type ? `${e.target_type} #${e.target_id}` : "–"}</td>
                <td>{e.ip ?? "–"}</td>
                <td className="small detail">{detailText(e.detail)}</td>
              </tr>
            ))}
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

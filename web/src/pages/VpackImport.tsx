// Administrators: bring an existing VPACK install (its events.db) over, trying it first.
import { useState } from "react";
import { api, ok, type VpackImport as Report } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { useI18n } from "../i18n";
import { Link } from "../router";

export function VpackImport() {
  const { t } = useI18n();
  const [path, setPath] = useState("");
  const [redownload, setRedownload] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [report, setReport] = useState<Report | null>(null);

  const run = async (dryRun: boolean) => {
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      setReport(
        await ok(
          api.POST("/api/admin/import/vpack", {
            body: { path: path.trim(), dry_run: dryRun, redownload_missing: redownload },
          }),
        ),
      );
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="import-title">
      <div className="page-head">
        <h1 id="import-title">{t("import.title")}</h1>
      </div>
      <p className="muted">{t("import.lead")}</p>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          void run(true);
        }}
      >
        <div className="field">
          <label htmlFor="import-path">{t("import.path")}</label>
          <input
            id="import-path"
            required
            autoComplete="off"
            spellCheck={false}
            placeholder="/home/shop/VPACK/backend/database/events.db"
            value={path}
            onChange={(e) => setPath(e.target.value)}
            aria-describedby="import-path-help"
          />
          <small id="import-path-help" className="help">
            {t("import.pathHelp")}
          </small>
        </div>
        <div className="field field-check">
          <label htmlFor="import-redownload">{t("import.redownload")}</label>
          <input
            id="import-redownload"
            type="checkbox"
            checked={redownload}
            onChange={(e) => setRedownload(e.target.checked)}
            aria-describedby="import-redownload-help"
          />
          <small id="import-redownload-help" className="help">
            {t("import.redownloadHelp")}
          </small>
        </div>
        <ErrorNote error={error} />
        <div className="actions">
          <button type="submit" className="secondary" disabled={busy || !path.trim()}>
            {t("import.dryRun")}
          </button>
          <button type="button" disabled={busy || !path.trim()} onClick={() => void run(false)}>
            {t("import.run")}
          </button>
        </div>
      </form>
      {busy && (
        <p className="muted" aria-busy="true">
          <span className="spinner" /> {t("import.working")}
        </p>
      )}
      {report && <ImportReport report={report} />}
    </section>
  );
}

function ImportReport({ report }: { report: Report }) {
  const { t, has } = useI18n();
  const outcome = (value: string) => {
    const key = `import.outcome.${value.replace(/ /g, "_")}`;
    return has(key) ? t(key) : value;
  };
  const kindLabel = (kind: string) => {
    const key = `import.kind.${kind}`;
    return has(key) ? t(key) : kind;
  };
  const counts = Object.entries(report.videos);
  return (
    <section className="card" aria-labelledby="report-title" data-testid="import-report">
      <h2 id="report-title">{report.dry_run ? t("import.reportDry") : t("import.reportDone")}</h2>
      <div className={`note ${report.dry_run ? "note-warn" : "note-ok"}`} role="status">
        {report.dry_run
          ? t("import.dryNote", { database: report.database })
          : t("import.doneNote", { database: report.database })}
      </div>

      <h3>{t("import.sources")}</h3>
      {report.sources.length === 0 ? (
        <p className="muted">{t("import.noSources")}</p>
      ) : (
        <table className="table" data-testid="import-sources">
          <thead>
            <tr>
              <th>{t("import.vpackSource")}</th>
              <th>{t("import.kind")}</th>
              <th>{t("import.outcome")}</th>
              <th>{t("import.reason")}</th>
            </tr>
          </thead>
          <tbody>
            {report.sources.map((s) => (
              <tr key={s.vpack_id} data-outcome={s.outcome}>
                <td>
                  {s.source_id && !report.dry_run ? (
                    <Link to={`/sources/${s.source_id}`}>{s.vpack_name}</Link>
                  ) : (
                    s.vpack_name
                  )}
                  {s.selections.length > 0 && <div className="muted small">{s.selections.join(", ")}</div>}
                </td>
                <td>{kindLabel(s.kind)}</td>
                <td>
                  <span className={`badge badge-import-${s.outcome.replace(/ /g, "_")}`}>
                    {outcome(s.outcome)}
                  </span>
                </td>
                <td>
                  {s.reason ?? ""}
                  {s.sign_in_again && <div className="note note-warn">{t("import.signInAgain")}</div>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h3>{t("import.videos")}</h3>
      {counts.length === 0 ? (
        <p className="muted">{t("import.noVideos")}</p>
      ) : (
        <dl className="facts" data-testid="import-counts">
          {counts.map(([name, n]) => (
            <div key={name}>
              <dt>{outcome(name)}</dt>
              <dd data-outcome={name}>{n}</dd>
            </div>
          ))}
        </dl>
      )}

      <h3>{t("import.notImported")}</h3>
      {report.not_imported.length === 0 ? (
        <p className="muted">{t("import.allImported")}</p>
      ) : (
        <table className="table compact" data-testid="import-files">
          <thead>
            <tr>
              <th>{t("import.file")}</th>
              <th>{t("import.outcome")}</th>
              <th>{t("import.reason")}</th>
            </tr>
          </thead>
          <tbody>
            {report.not_imported.map((f) => (
              <tr key={f.vpack_id} data-outcome={f.outcome}>
                <td className="file-name">{f.path}</td>
                <td>{outcome(f.outcome)}</td>
                <td>{f.reason ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

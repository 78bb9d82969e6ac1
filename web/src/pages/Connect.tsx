// Connect a source: pick a provider, then sign in (OAuth) or fill its form and test the connection.
import { useEffect, useState, type FormEvent } from "react";
import { api, ok, type Connection, type Provider } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { ProviderLogo } from "../components/ProviderLogo";
import {
  SchemaFields,
  initialValues,
  toPayload,
  type FormValues,
  type JsonSchema,
} from "../components/SchemaForm";
import { formatDateTime } from "../format";
import { useI18n, type MessageKey } from "../i18n";
import { Link, navigate, useLocation } from "../router";
import { reconnect, useProviderLabel } from "../connections";

const NEEDS: Record<string, MessageKey> = {
  none: "connect.needs.none",
  oauth2: "connect.needs.oauth2",
  keys: "connect.needs.keys",
  device: "connect.needs.device",
};

export function useProviders(): [Provider[] | null, unknown] {
  const [providers, setProviders] = useState<Provider[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    ok(api.GET("/api/providers")).then(setProviders, setError);
  }, []);
  return [providers, error];
}

export function ProviderBlurb({ provider }: { provider: Provider }) {
  const { t, has } = useI18n();
  const key = `provider.${provider.name}`;
  return <>{has(key) ? t(key) : provider.description}</>;
}

export function ChooseProvider() {
  const { t } = useI18n();
  const labelOf = useProviderLabel();
  const [providers, error] = useProviders();
  return (
    <section aria-labelledby="connect-title">
      <div className="page-head">
        <h1 id="connect-title">{t("connect.title")}</h1>
      </div>
      <p className="lead">{t("connect.lead")}</p>
      <ErrorNote error={error} />
      <ul className="provider-grid">
        {providers?.map((p) => (
          <li key={p.name}>
            <Link to={`/connect/${p.name}`} className="provider-card" data-provider={p.name}>
              <ProviderLogo provider={p} />
              <span className="provider-text">
                <strong>{labelOf(p)}</strong>
                <span className="muted">
                  <ProviderBlurb provider={p} />
                </span>
                <span className="needs">{t(NEEDS[p.auth] ?? "connect.needs.keys")}</span>
              </span>
            </Link>
          </li>
        ))}
      </ul>
      <Connections providers={providers ?? []} />
    </section>
  );
}

/** The user's existing connections: add another source over one, test it, remove it. */
function Connections({ providers }: { providers: Provider[] }) {
  const { t, lang, has } = useI18n();
  const labelOf = useProviderLabel();
  const [items, setItems] = useState<Connection[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<number | null>(null);
  const load = () => ok(api.GET("/api/connections")).then(setItems, setError);
  useEffect(() => {
    void load();
  }, []);
  if (!items || items.length === 0) return null;
  const byName = Object.fromEntries(providers.map((p) => [p.name, p]));

  const run = async (id: number, work: () => Promise<unknown>) => {
    setBusy(id);
    setError(null);
    try {
      await work();
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  const remove = (c: Connection) => {
    if (!window.confirm(t("connections.removeConfirm", { name: c.name }))) return;
    void run(c.id, () =>
      ok(api.DELETE("/api/connections/{connection_id}", { params: { path: { connection_id: c.id } } })),
    );
  };

  return (
    <section aria-labelledby="connections-title" className="connections">
      <h2 id="connections-title">{t("connections.title")}</h2>
      <ErrorNote error={error} />
      <table className="table">
        <thead>
          <tr>
            <th>{t("connections.name")}</th>
            <th>{t("connections.provider")}</th>
            <th>{t("connections.account")}</th>
            <th>{t("connections.status")}</th>
            <th>{t("connections.created")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {items.map((c) => {
            const statusKey = `connection.${c.status}`;
            return (
              <tr key={c.id}>
                <td>{c.name}</td>
                <td>{byName[c.provider] ? labelOf(byName[c.provider]!) : c.provider}</td>
                <td>{c.account ?? "–"}</td>
                <td>
                  <span className={`badge badge-${c.status}`}>
                    {has(statusKey) ? t(statusKey) : c.status}
                  </span>
                  {c.status_detail && <div className="small detail">{c.status_detail}</div>}
                </td>
                <td>{formatDateTime(lang, c.created_at)}</td>
                <td className="row-actions">
                  <Link to={`/connections/${c.id}/new-source`} className="button small">
                    {t("connections.addSource")}
                  </Link>
                  {c.status === "reauth_required" ? (
                    <button
                      type="button"
                      className="small warn"
                      disabled={busy === c.id}
                      onClick={() => void run(c.id, () => reconnect(c, byName[c.provider]))}
                    >
                      {t("source.reconnect")}
                    </button>
                  ) : (
                    <button
                      type="button"
                      className="small secondary"
                      disabled={busy === c.id}
                      onClick={() =>
                        void run(c.id, () =>
                          ok(
                            api.POST("/api/connections/{connection_id}/check", {
                              params: { path: { connection_id: c.id } },
                            }),
                          ),
                        )
                      }
                    >
                      {t("connections.test")}
                    </button>
                  )}
                  <button
                    type="button"
                    className="small danger"
                    disabled={busy === c.id}
                    onClick={() => remove(c)}
                  >
                    {t("common.remove")}
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

export function ConnectProvider({ name }: { name: string }) {
  const { t } = useI18n();
  const labelOf = useProviderLabel();
  const [providers, error] = useProviders();
  const provider = providers?.find((p) => p.name === name);
  if (error) return <ErrorNote error={error} />;
  if (!providers) return <p className="muted">{t("common.loading")}</p>;
  if (!provider) {
    return (
      <section>
        <h1>{t("notFound.title")}</h1>
        <Link to="/connect">{t("connect.back")}</Link>
      </section>
    );
  }
  return (
    <section aria-labelledby="provider-title" className="narrow-page">
      <p>
        <Link to="/connect">← {t("connect.back")}</Link>
      </p>
      <div className="page-head page-head-start">
        <ProviderLogo provider={provider} />
        <h1 id="provider-title">{t("connect.providerTitle", { label: labelOf(provider) })}</h1>
      </div>
      <p className="lead">
        <ProviderBlurb provider={provider} />
      </p>
      {provider.auth === "oauth2" ? (
        <OAuthConnect provider={provider} />
      ) : (
        <FormConnect provider={provider} />
      )}
    </section>
  );
}

function OAuthConnect({ provider }: { provider: Provider }) {
  const { t } = useI18n();
  const { query } = useLocation();
  const [name, setName] = useState(provider.label);
  // Back from the provider without a connection: the service says why in ?error=.
  const returned = query.get("error");
  const [error, setError] = useState<unknown>(returned ? new Error(returned) : null);
  const [busy, setBusy] = useState(false);
  const start = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const started = await ok(
        api.POST("/api/cloud/{provider}/auth", {
          params: { path: { provider: provider.name } },
          body: { name },
        }),
      );
      window.location.assign(started.auth_url);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <form className="card" onSubmit={(e) => void start(e)}>
      <p>{t("connect.oauthExplain", { label: provider.label })}</p>
      <div className="field">
        <label htmlFor="conn-name">{t("connect.name")}</label>
        <input
          id="conn-name"
          required
          maxLength={200}
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
      </div>
      <ErrorNote error={error} title={error ? t("connect.oauthFailed") : undefined} />
      <button type="submit" disabled={busy}>
        {t("connect.signInWith", { label: provider.label })}
      </button>
    </form>
  );
}

function FormConnect({ provider }: { provider: Provider }) {
  const { t } = useI18n();
  const labelOf = useProviderLabel();
  const schema = provider.config_schema as JsonSchema;
  const [name, setName] = useState(() => labelOf(provider));
  const [values, setValues] = useState<FormValues>(() => initialValues(schema));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const test = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // The server checks the settings with the provider before it stores anything.
      const made = await ok(
        api.POST("/api/connections", {
          body: { provider: provider.name, name, config: toPayload(schema, values) },
        }),
      );
      navigate(`/connections/${made.id}/new-source?new=1`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <form className="card" onSubmit={(e) => void test(e)} aria-busy={busy}>
      <div className="field">
        <label htmlFor="conn-name">{t("connect.name")}</label>
        <input
          id="conn-name"
          required
          maxLength={200}
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
      </div>
      <SchemaFields
        schema={schema}
        values={values}
        onChange={setValues}
        idPrefix="conn"
        scope={provider.name}
        disabled={busy}
      />
      <ErrorNote error={error} title={error ? t("connect.testFailed") : undefined} />
      <button type="submit" disabled={busy}>
        {busy ? t("connect.testing") : t("connect.test")}
      </button>
      <p className="help">{t("connect.testExplain")}</p>
    </form>
  );
}

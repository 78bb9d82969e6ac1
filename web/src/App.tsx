// The app shell: who is signed in (or whether setup is due), the header, and the screens.
import { useCallback, useEffect, useState, type ReactNode } from "react";
import { api, SIGNED_OUT_EVENT, type User } from "./api/client";
import { I18nProvider, LANGS, useI18n, type Lang } from "./i18n";
import { LiveProvider, useLive } from "./live";
import { Link, matchPath, navigate, useLocation } from "./router";
import { Login, Setup } from "./pages/SignIn";
import { Dashboard } from "./pages/Dashboard";
import { ChooseProvider, ConnectProvider } from "./pages/Connect";
import { NewSource } from "./pages/NewSource";
import { SourceSettings } from "./pages/SourceSettings";
import { Videos } from "./pages/Videos";
import { Audit } from "./pages/Audit";
import { Users } from "./pages/Users";
import { VpackImport } from "./pages/VpackImport";

type Session =
  { state: "loading" } | { state: "setup" } | { state: "signed-out" } | { state: "signed-in"; user: User };

export function App() {
  return (
    <I18nProvider>
      <Shell />
    </I18nProvider>
  );
}

function Shell() {
  const { t } = useI18n();
  const [session, setSession] = useState<Session>({ state: "loading" });

  const refresh = useCallback(async () => {
    const me = await api.GET("/api/auth/me");
    if (me.data) {
      setSession({ state: "signed-in", user: me.data });
      return;
    }
    const setup = await api.GET("/api/setup");
    setSession({ state: setup.data?.needed ? "setup" : "signed-out" });
  }, []);

  useEffect(() => {
    void refresh().catch(() => setSession({ state: "signed-out" }));
    const onSignedOut = () => setSession((s) => (s.state === "signed-in" ? { state: "signed-out" } : s));
    window.addEventListener(SIGNED_OUT_EVENT, onSignedOut);
    return () => window.removeEventListener(SIGNED_OUT_EVENT, onSignedOut);
  }, [refresh]);

  const signedIn = (user: User) => setSession({ state: "signed-in", user });

  if (session.state === "loading") {
    return (
      <main className="center" aria-busy="true">
        <span className="spinner" /> {t("common.loading")}
      </main>
    );
  }
  if (session.state === "setup")
    return (
      <Frame>
        <Setup onDone={signedIn} />
      </Frame>
    );
  if (session.state === "signed-out")
    return (
      <Frame>
        <Login onSignedIn={signedIn} />
      </Frame>
    );
  return (
    <LiveProvider>
      <Layout user={session.user} onSignedOut={() => setSession({ state: "signed-out" })} />
    </LiveProvider>
  );
}

function LanguageSwitch() {
  const { lang, setLang, t } = useI18n();
  return (
    <div className="lang-switch" role="group" aria-label={t("nav.language")}>
      {LANGS.map((l: Lang) => (
        <button
          key={l}
          type="button"
          className={l === lang ? "is-current" : ""}
          aria-pressed={l === lang}
          lang={l}
          onClick={() => setLang(l)}
        >
          {l === "vi" ? "Tiếng Việt" : "English"}
        </button>
      ))}
    </div>
  );
}

/** Signed-out pages: the brand and the language switch around a card. */
function Frame({ children }: { children: ReactNode }) {
  return (
    <div className="frame">
      <header className="frame-head">
        <span className="brand">VPACK Sources</span>
        <LanguageSwitch />
      </header>
      <main className="frame-body">{children}</main>
    </div>
  );
}

function Layout({ user, onSignedOut }: { user: User; onSignedOut: () => void }) {
  const { t } = useI18n();
  const { connected } = useLive();
  const { path, query } = useLocation();
  const isAdmin = user.role === "admin";

  // Back from a provider's sign-in page: go on to choosing folders.
  const connectedId = path === "/" ? query.get("connected") : null;
  useEffect(() => {
    if (connectedId) navigate(`/connections/${connectedId}/new-source?new=1`, { replace: true });
  }, [connectedId]);

  const signOut = async () => {
    await api.POST("/api/auth/logout").catch(() => undefined);
    onSignedOut();
    navigate("/", { replace: true });
  };

  const nav: Array<[string, string, boolean]> = [
    ["/", t("nav.sources"), path === "/" || path.startsWith("/sources") || path.startsWith("/connect")],
    ["/videos", t("nav.videos"), path.startsWith("/videos")],
    ["/audit", t("nav.audit"), path.startsWith("/audit")],
  ];
  if (isAdmin) {
    nav.push(["/users", t("nav.users"), path.startsWith("/users")]);
    nav.push(["/admin/import", t("nav.import"), path.startsWith("/admin/import")]);
  }

  return (
    <div className="app">
      <header className="top">
        <Link to="/" className="brand">
          VPACK Sources
        </Link>
        <nav aria-label={t("nav.main")}>
          {nav.map(([to, label, current]) => (
            <Link key={to} to={to} aria-current={current ? "page" : undefined}>
              {label}
            </Link>
          ))}
        </nav>
        <div className="top-right">
          <span
            className={`live-dot${connected ? " on" : ""}`}
            data-live={connected ? "on" : "off"}
            title={connected ? t("live.on") : t("live.off")}
          >
            {connected ? t("live.on") : t("live.off")}
          </span>
          <LanguageSwitch />
          <span className="who" title={user.email}>
            {user.email}
            {isAdmin && <span className="tag">{t("users.role.admin")}</span>}
          </span>
          <button type="button" className="secondary" onClick={() => void signOut()}>
            {t("nav.signOut")}
          </button>
        </div>
      </header>
      <main className="page">
        <Screen path={path} user={user} />
      </main>
    </div>
  );
}

function Screen({ path, user }: { path: string; user: User }) {
  const { t } = useI18n();
  let params: Record<string, string> | null;
  if (path === "/") return <Dashboard />;
  if (path === "/connect") return <ChooseProvider />;
  if ((params = matchPath("/connect/:provider", path))) return <ConnectProvider name={params.provider!} />;
  if ((params = matchPath("/connections/:id/new-source", path)))
    return <NewSource connectionId={Number(params.id)} />;
  if ((params = matchPath("/sources/:id", path))) return <SourceSettings sourceId={Number(params.id)} />;
  if (path === "/videos") return <Videos />;
  if (path === "/audit") return <Audit user={user} />;
  if (path === "/users" && user.role === "admin") return <Users me={user} />;
  if (path === "/admin/import" && user.role === "admin") return <VpackImport />;
  return (
    <section>
      <h1>{t("notFound.title")}</h1>
      <p>
        <Link to="/">{t("notFound.back")}</Link>
      </p>
    </section>
  );
}

// First-run onboarding (the first administrator) and signing in.
import { useState, type FormEvent } from "react";
import { api, ok, type User } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { useI18n } from "../i18n";

async function signIn(email: string, password: string): Promise<User> {
  await ok(api.POST("/api/auth/login", { body: { email, password } }));
  return ok(api.GET("/api/auth/me"));
}

export function Setup({ onDone }: { onDone: (user: User) => void }) {
  const { t } = useI18n();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (password !== confirm) {
      setError(new Error(t("setup.mismatch")));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await ok(api.POST("/api/setup", { body: { email, password } }));
      onDone(await signIn(email, password));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card narrow" onSubmit={(e) => void submit(e)} aria-labelledby="setup-title">
      <h1 id="setup-title">{t("setup.title")}</h1>
      <p className="lead">{t("setup.lead")}</p>
      <ol className="steps-hint">
        <li>{t("setup.step1")}</li>
        <li>{t("setup.step2")}</li>
        <li>{t("setup.step3")}</li>
      </ol>
      <div className="field">
        <label htmlFor="setup-email">{t("auth.email")}</label>
        <input
          id="setup-email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor="setup-password">{t("auth.password")}</label>
        <input
          id="setup-password"
          type="password"
          autoComplete="new-password"
          minLength={8}
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        <small className="help">{t("auth.passwordRule")}</small>
      </div>
      <div className="field">
        <label htmlFor="setup-confirm">{t("setup.confirm")}</label>
        <input
          id="setup-confirm"
          type="password"
          autoComplete="new-password"
          minLength={8}
          required
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
        />
      </div>
      <ErrorNote error={error} />
      <button type="submit" disabled={busy}>
        {t("setup.submit")}
      </button>
    </form>
  );
}

export function Login({ onSignedIn }: { onSignedIn: (user: User) => void }) {
  const { t } = useI18n();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signIn(email, password));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card narrow" onSubmit={(e) => void submit(e)} aria-labelledby="login-title">
      <h1 id="login-title">{t("login.title")}</h1>
      <div className="field">
        <label htmlFor="login-email">{t("auth.email")}</label>
        <input
          id="login-email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor="login-password">{t("auth.password")}</label>
        <input
          id="login-password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
      </div>
      <ErrorNote error={error} />
      <button type="submit" disabled={busy}>
        {t("login.submit")}
      </button>
    </form>
  );
}

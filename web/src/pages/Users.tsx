// Administrators: accounts, roles, and who may sign in.
import { useEffect, useState, type FormEvent } from "react";
import { api, ok, type User } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { formatDateTime } from "../format";
import { useI18n } from "../i18n";

type Role = "admin" | "user";

export function Users({ me }: { me: User }) {
  const { t, lang } = useI18n();
  const [users, setUsers] = useState<User[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("user");
  const [added, setAdded] = useState<string | null>(null);

  const load = () => ok(api.GET("/api/users")).then(setUsers, setError);
  useEffect(() => {
    void load();
  }, []);

  const add = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setAdded(null);
    try {
      const made = await ok(api.POST("/api/users", { body: { email, password, role } }));
      setAdded(made.email);
      setEmail("");
      setPassword("");
      setRole("user");
      await load();
    } catch (e) {
      setError(e);
    }
  };

  const change = async (user: User, body: { disabled?: boolean; role?: Role }) => {
    setError(null);
    try {
      await ok(api.PATCH("/api/users/{user_id}", { params: { path: { user_id: user.id } }, body }));
      await load();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section aria-labelledby="users-title">
      <div className="page-head">
        <h1 id="users-title">{t("users.title")}</h1>
      </div>
      <ErrorNote error={error} />
      {users && (
        <table className="table">
          <thead>
            <tr>
              <th>{t("auth.email")}</th>
              <th>{t("users.role")}</th>
              <th>{t("users.status")}</th>
              <th>{t("users.created")}</th>
              <th>{t("users.lastLogin")}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.id} data-user={u.email}>
                <td>{u.email}</td>
                <td>
                  <select
                    aria-label={t("users.roleFor", { email: u.email })}
                    value={u.role}
                    disabled={u.id === me.id}
                    onChange={(e) => void change(u, { role: e.target.value as Role })}
                  >
                    <option value="user">{t("users.role.user")}</option>
                    <option value="admin">{t("users.role.admin")}</option>
                  </select>
                </td>
                <td>
                  <span className={`badge ${u.disabled ? "badge-error" : "badge-ok"}`}>
                    {u.disabled ? t("users.disabled") : t("users.active")}
                  </span>
                </td>
                <td>{formatDateTime(lang, u.created_at)}</td>
                <td>{u.last_login_at ? formatDateTime(lang, u.last_login_at) : t("source.never")}</td>
                <td className="row-actions">
                  {u.id !== me.id && (
                    <button
                      type="button"
                      className={`small ${u.disabled ? "secondary" : "danger"}`}
                      onClick={() => void change(u, { disabled: !u.disabled })}
                    >
                      {u.disabled ? t("users.enable") : t("users.disable")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="card narrow" onSubmit={(e) => void add(e)} aria-labelledby="add-user-title">
        <h2 id="add-user-title">{t("users.add")}</h2>
        <div className="field">
          <label htmlFor="new-email">{t("auth.email")}</label>
          <input
            id="new-email"
            type="email"
            required
            autoComplete="off"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="new-password">{t("auth.password")}</label>
          <input
            id="new-password"
            type="password"
            required
            minLength={8}
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <small className="help">{t("auth.passwordRule")}</small>
        </div>
        <div className="field">
          <label htmlFor="new-role">{t("users.role")}</label>
          <select id="new-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value="user">{t("users.role.user")}</option>
            <option value="admin">{t("users.role.admin")}</option>
          </select>
        </div>
        {added && (
          <div className="note note-ok" role="status">
            {t("users.added", { email: added })}
          </div>
        )}
        <button type="submit">{t("users.addSubmit")}</button>
      </form>
    </section>
  );
}

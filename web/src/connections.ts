// Connections shared by screens: a provider's name in the reader's language, and reconnecting.
import { api, ok, type Connection, type Provider } from "./api/client";
import { useI18n } from "./i18n";

/** The provider's name in the reader's language where it has one ("Local folder"). */
export function useProviderLabel(): (provider: Pick<Provider, "name" | "label">) => string {
  const { t, has } = useI18n();
  return (provider) => {
    const key = `providerLabel.${provider.name}`;
    return has(key) ? t(key) : provider.label;
  };
}

/** Start an OAuth sign-in again for this connection: the browser goes to the provider. */
export async function reconnect(
  connection: Connection,
  provider: Provider | undefined,
): Promise<Connection | null> {
  if (provider?.auth === "oauth2") {
    const started = await ok(
      api.POST("/api/cloud/{provider}/auth", {
        params: { path: { provider: connection.provider } },
        body: { connection_id: connection.id },
      }),
    );
    window.location.assign(started.auth_url);
    return null;
  }
  return ok(
    api.POST("/api/connections/{connection_id}/check", {
      params: { path: { connection_id: connection.id } },
    }),
  );
}

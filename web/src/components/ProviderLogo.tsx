// A small picture per kind of source: folder, bucket, cloud drive or camera.
import type { Provider } from "../api/client";

type Picture = "folder" | "bucket" | "cloud" | "camera";

// Recordings on channels (a recorder, or a camera cloud signed in with keys) are
// cameras, whatever the auth; otherwise the way it signs in tells the kind.
const BY_AUTH: Record<string, Picture> = {
  oauth2: "cloud",
  device: "camera",
  keys: "bucket",
  none: "folder",
};

export function pictureOf(provider: Pick<Provider, "auth" | "features">): Picture {
  if (provider.features?.time_indexed) return "camera";
  return BY_AUTH[provider.auth] ?? "folder";
}

// A stable colour from the provider's name, so two clouds do not look alike.
function hue(name: string): number {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

export function ProviderLogo({
  provider,
  size = 40,
}: {
  provider: Pick<Provider, "name" | "auth" | "features">;
  size?: number;
}) {
  const picture = pictureOf(provider);
  const colour = `hsl(${hue(provider.name)} 55% 42%)`;
  return (
    <svg className="logo" width={size} height={size} viewBox="0 0 40 40" aria-hidden="true">
      <rect width="40" height="40" rx="9" fill={colour} />
      {picture === "folder" && (
        <path d="M9 13h8l3 3h11v12H9z" fill="none" stroke="#fff" strokeWidth="2.4" strokeLinejoin="round" />
      )}
      {picture === "bucket" && (
        <g fill="none" stroke="#fff" strokeWidth="2.4">
          <ellipse cx="20" cy="13" rx="10" ry="3.5" />
          <path d="M10 13l2.5 15c.4 2 15 2 15 0L30 13" strokeLinejoin="round" />
        </g>
      )}
      {picture === "cloud" && (
        <path
          d="M13 28h15a6 6 0 0 0 0-12 8 8 0 0 0-15 2 5 5 0 0 0 0 10z"
          fill="none"
          stroke="#fff"
          strokeWidth="2.4"
          strokeLinejoin="round"
        />
      )}
      {picture === "camera" && (
        <g fill="none" stroke="#fff" strokeWidth="2.4" strokeLinejoin="round">
          <rect x="8" y="14" width="17" height="12" rx="2" />
          <path d="M25 18l7-4v12l-7-4z" />
        </g>
      )}
    </svg>
  );
}

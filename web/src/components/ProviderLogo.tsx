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

// Providers people know by their own colour and mark (drawn here, no vendor artwork).
const BRANDS: Record<string, { colour: string; mark: "filled-cloud" | "open-box" | "dome-camera" }> = {
  onedrive: { colour: "#0078d4", mark: "filled-cloud" },
  dropbox: { colour: "#0061FE", mark: "open-box" },
  dahua: { colour: "#E60012", mark: "dome-camera" },
};

export function colourOf(name: string): string {
  return BRANDS[name]?.colour ?? `hsl(${hue(name)} 55% 42%)`;
}

export function ProviderLogo({
  provider,
  size = 40,
}: {
  provider: Pick<Provider, "name" | "auth" | "features">;
  size?: number;
}) {
  const picture = pictureOf(provider);
  const colour = colourOf(provider.name);
  const brand = BRANDS[provider.name];
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
      {brand?.mark === "filled-cloud" && (
        // Two overlapping rounded clouds, the front one white: OneDrive's shape, our drawing.
        <g data-mark="onedrive">
          <path
            d="M11 25a5 5 0 0 1 1.5-9.8A7.5 7.5 0 0 1 26.4 13 6 6 0 0 1 31 19H17a6 6 0 0 0-6 6z"
            fill="#9fd4ff"
          />
          <path d="M14 30a5 5 0 0 1 0-10 7 7 0 0 1 13.2-1.8A5.9 5.9 0 1 1 28.1 30z" fill="#fff" />
        </g>
      )}
      {brand?.mark === "open-box" && (
        // A box seen from above with its two flaps open: Dropbox's idea, our drawing.
        <g data-mark="dropbox">
          <path d="M12 19l-4-5 8-4 4 5zM28 19l4-5-8-4-4 5z" fill="#bcd3ff" />
          <path d="M12 19l8 4 8-4v8l-8 4-8-4z" fill="#fff" />
        </g>
      )}
      {!brand && picture === "cloud" && (
        <path
          d="M13 28h15a6 6 0 0 0 0-12 8 8 0 0 0-15 2 5 5 0 0 0 0 10z"
          fill="none"
          stroke="#fff"
          strokeWidth="2.4"
          strokeLinejoin="round"
        />
      )}
      {brand?.mark === "dome-camera" && (
        // A ceiling dome camera, lens and all, white on Dahua's red: our drawing.
        <g data-mark="dahua" fill="none" stroke="#fff" strokeWidth="2.4" strokeLinejoin="round">
          <path d="M9 14h22" strokeLinecap="round" />
          <path d="M11 14a9 9 0 0 0 18 0" />
          <circle cx="20" cy="18" r="3" fill="#fff" stroke="none" />
        </g>
      )}
      {!brand && picture === "camera" && (
        <g fill="none" stroke="#fff" strokeWidth="2.4" strokeLinejoin="round">
          <rect x="8" y="14" width="17" height="12" rx="2" />
          <path d="M25 18l7-4v12l-7-4z" />
        </g>
      )}
    </svg>
  );
}

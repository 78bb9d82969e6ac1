// Errors in the words the server (or the provider behind it) used, with a lead-in in the reader's language.
import { ApiError } from "../api/client";
import { useI18n, type MessageKey } from "../i18n";

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.detail;
  if (error instanceof Error) return error.message;
  return String(error);
}

const LEAD_BY_STATUS: Record<number, MessageKey> = {
  400: "error.400",
  401: "error.401",
  403: "error.403",
  404: "error.404",
  409: "error.409",
  410: "error.410",
  422: "error.422",
  429: "error.429",
  503: "error.503",
};

export function ErrorNote({ error, title }: { error: unknown; title?: string }) {
  const { t } = useI18n();
  if (error === null || error === undefined) return null;
  const lead =
    title ??
    (error instanceof ApiError
      ? t(LEAD_BY_STATUS[error.status] ?? (error.status >= 500 ? "error.500" : "error.400"))
      : undefined);
  return (
    <div className="note note-error" role="alert">
      {lead && <strong>{lead} </strong>}
      <span className="detail">{messageOf(error)}</span>
    </div>
  );
}

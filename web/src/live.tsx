// Live sync progress: one server-sent event stream for the signed-in user, folded per source.
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";

export interface FileProgress {
  name: string;
  bytes_done: number;
  size: number | null;
}

export interface SourceLive {
  inFlight: Record<number, FileProgress>;
  finishedOk: number; // since the last scan began
  finishedFailed: number;
  scannedNew: number | null;
  lastEventAt: number; // ms since the epoch
}

export type LiveState = Record<number, SourceLive>;

/** What /api/events sends (see src/vpack/sync/progress.py). */
export interface SyncEvent {
  type: "scanned" | "started" | "progress" | "finished";
  source_id: number;
  new?: number;
  video_id?: number;
  name?: string;
  size?: number | null;
  bytes_done?: number;
  ok?: boolean;
}

export const EVENT_TYPES: SyncEvent["type"][] = ["scanned", "started", "progress", "finished"];
/** A finished run stays on screen this long, so a quick sync is still seen to happen. */
export const LINGER_MS = 4000;

const empty = (): SourceLive => ({
  inFlight: {},
  finishedOk: 0,
  finishedFailed: 0,
  scannedNew: null,
  lastEventAt: 0,
});

export function applyEvent(state: LiveState, event: SyncEvent, now: number): LiveState {
  const before = state[event.source_id] ?? empty();
  const next: SourceLive = { ...before, inFlight: { ...before.inFlight }, lastEventAt: now };
  switch (event.type) {
    case "scanned":
      next.scannedNew = event.new ?? 0;
      if (Object.keys(before.inFlight).length === 0) {
        next.finishedOk = 0;
        next.finishedFailed = 0;
      }
      break;
    case "started":
    case "progress":
      if (event.video_id !== undefined) {
        next.inFlight[event.video_id] = {
          name: event.name ?? "",
          bytes_done: event.bytes_done ?? 0,
          size: event.size ?? null,
        };
      }
      break;
    case "finished":
      if (event.video_id !== undefined) delete next.inFlight[event.video_id];
      if (event.ok) next.finishedOk += 1;
      else next.finishedFailed += 1;
      break;
  }
  return { ...state, [event.source_id]: next };
}

/** A run that ended this recently still counts as news for a screen opened since. */
const RECENT_MS = 60_000;

/**
 * Is something happening for this source, or did it just finish? A finished run stays
 * on screen LINGER_MS after the last event, or after `shownSince` (when the screen
 * opened) if it ended less than a minute before: a quick sync is still seen to happen.
 */
export function isLive(live: SourceLive | undefined, now: number, shownSince = 0): boolean {
  if (!live) return false;
  if (Object.keys(live.inFlight).length > 0) return true;
  const recent = now - live.lastEventAt < RECENT_MS;
  return now - Math.max(live.lastEventAt, recent ? shownSince : 0) < LINGER_MS;
}

interface LiveContextValue {
  live: LiveState;
  connected: boolean;
}

const LiveContext = createContext<LiveContextValue>({ live: {}, connected: false });

/** Opens /api/events while signed in; the browser reconnects by itself after a drop. */
export function LiveProvider({ children, url = "/api/events" }: { children: ReactNode; url?: string }) {
  const [live, setLive] = useState<LiveState>({});
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (typeof EventSource === "undefined") return;
    const stream = new EventSource(url, { withCredentials: true });
    const onEvent = (message: MessageEvent<string>) => {
      try {
        const event = JSON.parse(message.data) as SyncEvent;
        setLive((state) => applyEvent(state, event, Date.now()));
      } catch {
        // a malformed event is dropped; the next status refresh corrects the view
      }
    };
    for (const type of EVENT_TYPES) stream.addEventListener(type, onEvent as EventListener);
    stream.onopen = () => setConnected(true);
    stream.onerror = () => setConnected(false);
    return () => stream.close();
  }, [url]);
  return <LiveContext.Provider value={{ live, connected }}>{children}</LiveContext.Provider>;
}

export function useLive(): LiveContextValue {
  return useContext(LiveContext);
}

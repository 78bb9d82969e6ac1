import { describe, expect, it } from "vitest";
import { LINGER_MS, applyEvent, isLive, type LiveState } from "./live";

describe("live progress", () => {
  it("follows a run: scan, files moving, files done", () => {
    let state: LiveState = {};
    state = applyEvent(state, { type: "scanned", source_id: 1, new: 2 }, 1000);
    state = applyEvent(
      state,
      { type: "started", source_id: 1, video_id: 7, name: "a.mp4", size: 100, bytes_done: 0 },
      1001,
    );
    state = applyEvent(
      state,
      { type: "progress", source_id: 1, video_id: 7, name: "a.mp4", size: 100, bytes_done: 40 },
      1002,
    );
    expect(state[1]!.inFlight[7]).toEqual({ name: "a.mp4", size: 100, bytes_done: 40 });
    expect(isLive(state[1], 999_999)).toBe(true); // something is moving, however long ago
    state = applyEvent(state, { type: "finished", source_id: 1, video_id: 7, ok: true }, 1003);
    state = applyEvent(state, { type: "started", source_id: 1, video_id: 8, name: "b.mp4", size: 5 }, 1004);
    state = applyEvent(state, { type: "finished", source_id: 1, video_id: 8, ok: false }, 1005);
    expect(state[1]).toMatchObject({ inFlight: {}, finishedOk: 1, finishedFailed: 1, scannedNew: 2 });
    // The next scan starts a new tally; other sources are untouched.
    state = applyEvent(state, { type: "scanned", source_id: 1, new: 0 }, 2000);
    expect(state[1]).toMatchObject({ finishedOk: 0, finishedFailed: 0 });
    expect(state[2]).toBeUndefined();
  });

  it("keeps a finished run on screen a moment, also for a screen opened just after", () => {
    const state = applyEvent({}, { type: "finished", source_id: 1, video_id: 1, ok: true }, 10_000);
    expect(isLive(state[1], 10_000 + LINGER_MS - 1)).toBe(true);
    expect(isLive(state[1], 10_000 + LINGER_MS)).toBe(false);
    const opened = 10_000 + 20_000;
    expect(isLive(state[1], opened + 1, opened)).toBe(true);
    expect(isLive(state[1], opened + LINGER_MS, opened)).toBe(false);
    // A run from long before the screen opened is not news.
    expect(isLive(state[1], 10_000 + 120_000, 10_000 + 119_000)).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { colourOf, pictureOf } from "./ProviderLogo";

describe("pictureOf", () => {
  it("draws a camera for recordings on channels, whatever the sign-in", () => {
    expect(pictureOf({ auth: "keys", features: { time_indexed: true } })).toBe("camera");
    expect(pictureOf({ auth: "device", features: {} })).toBe("camera");
  });

  it("otherwise tells the kind by the way it signs in", () => {
    expect(pictureOf({ auth: "keys", features: {} })).toBe("bucket");
    expect(pictureOf({ auth: "oauth2", features: { time_indexed: false } })).toBe("cloud");
    expect(pictureOf({ auth: "none", features: {} })).toBe("folder");
    expect(pictureOf({ auth: "something new", features: {} })).toBe("folder");
  });
});

describe("colourOf", () => {
  it("gives OneDrive and Dropbox their blues and every other provider a colour from its name", () => {
    expect(colourOf("onedrive")).toBe("#0078d4");
    expect(colourOf("dropbox")).toBe("#0061FE");
    expect(colourOf("google_drive")).toMatch(/^hsl\(/);
    expect(colourOf("google_drive")).toBe(colourOf("google_drive"));
  });
});

import { describe, expect, it } from "vitest";
import { en } from "./en";
import { detectLang, translate, translateCount } from "./index";
import { vi } from "./vi";

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("i18n", () => {
  it("follows the saved choice, else the browser's languages, else English", () => {
    expect(detectLang("en", ["vi-VN"])).toBe("en");
    expect(detectLang(null, ["vi-VN", "en-US"])).toBe("vi");
    expect(detectLang(null, ["fr-FR", "en-US", "vi"])).toBe("en");
    expect(detectLang(null, ["fr-FR", "de"])).toBe("en");
    expect(detectLang("klingon", ["vi"])).toBe("vi");
  });

  it("has every message in Vietnamese, with the same placeholders", () => {
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(vi[key], key).toBeTruthy();
      // A count message may leave out {n} in one language ("Every hour" / "Mỗi 1 giờ").
      const counted = /_(one|other)$/.test(key);
      const names = (text: string) => placeholders(text).filter((p) => !(counted && p === "n"));
      expect(names(vi[key]), key).toEqual(names(en[key]));
    }
    // Real Vietnamese, not English left in place (product and field names may stay).
    const same = (Object.keys(en) as (keyof typeof en)[]).filter((k) => vi[k] === en[k]);
    expect(same.length).toBeLessThan(Object.keys(en).length / 20);
  });

  it("fills placeholders and picks plural forms by language", () => {
    expect(translate("en", "connect.providerTitle", { label: "Amazon S3" })).toBe("Connect Amazon S3");
    expect(translate("vi", "connect.providerTitle", { label: "Amazon S3" })).toBe("Kết nối Amazon S3");
    expect(translateCount("en", "interval.hours", 1)).toBe("Every hour");
    expect(translateCount("en", "interval.hours", 6)).toBe("Every 6 hours");
    expect(translateCount("vi", "interval.hours", 6)).toBe("Mỗi 6 giờ");
    expect(translateCount("en", "progress.finished", 1200)).toBe("Sync finished: 1,200 videos downloaded");
    expect(translateCount("vi", "progress.finished", 1200)).toBe("Đồng bộ xong: đã tải 1.200 video");
  });
});

// Vietnamese and English: the browser's language by default, the user's choice remembered.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { en, type MessageKey } from "./en";
import { vi } from "./vi";

export type Lang = "vi" | "en";
export const LANGS: Lang[] = ["vi", "en"];
const DICTIONARIES: Record<Lang, Record<MessageKey, string>> = { en, vi };
const STORAGE_KEY = "vpack.lang";
export type Vars = Record<string, string | number>;

/** The saved choice, else the first of the browser's languages we speak, else English. */
export function detectLang(
  saved: string | null = safeStorageGet(STORAGE_KEY),
  browser: readonly string[] = navigator.languages ?? [navigator.language],
): Lang {
  if (saved === "vi" || saved === "en") return saved;
  for (const tag of browser) {
    const base = tag.toLowerCase().split("-")[0];
    if (base === "vi" || base === "en") return base;
  }
  return "en";
}

function safeStorageGet(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null; // storage blocked: fall back to the browser's language
  }
}

export function translate(lang: Lang, key: MessageKey, vars?: Vars): string {
  const text = DICTIONARIES[lang][key] ?? en[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

/** A message with a count: `key_one` / `key_other` chosen by the language's plural rules. */
export function translateCount(lang: Lang, key: string, n: number, vars?: Vars): string {
  const form = new Intl.PluralRules(lang).select(n);
  const chosen = hasMessage(`${key}_${form}`) ? `${key}_${form}` : `${key}_other`;
  return translate(lang, chosen as MessageKey, { n: formatNumber(lang, n), ...vars });
}

export function locale(lang: Lang): string {
  return lang === "vi" ? "vi-VN" : "en-GB";
}

export function formatNumber(lang: Lang, n: number): string {
  return new Intl.NumberFormat(locale(lang)).format(n);
}

interface I18n {
  lang: Lang;
  setLang: (lang: Lang) => void;
  t: (key: MessageKey, vars?: Vars) => string;
  tn: (key: string, n: number, vars?: Vars) => string;
  /** Whether a message exists for a key made at run time (provider fields, audit actions). */
  has: (key: string) => key is MessageKey;
}

export function hasMessage(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(en, key);
}

const I18nContext = createContext<I18n | null>(null);

export function I18nProvider({ children, initial }: { children: ReactNode; initial?: Lang }) {
  const [lang, setLangState] = useState<Lang>(() => initial ?? detectLang());
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  const setLang = useCallback((next: Lang) => {
    try {
      window.localStorage.setItem(STORAGE_KEY, next);
    } catch {
      // storage blocked: the choice lasts for this page only
    }
    setLangState(next);
  }, []);
  const value = useMemo<I18n>(
    () => ({
      lang,
      setLang,
      t: (key, vars) => translate(lang, key, vars),
      tn: (key, n, vars) => translateCount(lang, key, n, vars),
      has: hasMessage,
    }),
    [lang, setLang],
  );
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const value = useContext(I18nContext);
  if (!value) throw new Error("useI18n needs an I18nProvider above it");
  return value;
}

export type { MessageKey };

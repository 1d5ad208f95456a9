import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';

import { ApiError, OfflineError } from '../api/client';
import { ServerProblemError } from '../server';
import { KEYS, type KeyValueStore } from '../storage';
import * as format from './format';
import type { Language } from './format';
import { STRINGS, type Strings } from './strings';

export type { Language };

export interface I18n {
  lang: Language;
  t: Strings;
  setLanguage(lang: Language): void;
  toggleLanguage(): void;
  num(n: number): string;
  duration(seconds: number): string;
  minutes(minutes: number): string;
  clock(seconds: number): string;
  time(value: string | number): string;
  date(value: string | number): string;
  dateTime(value: string | number): string;
  /** A run's start to its end, with the end's date too when it ended on another day. */
  span(start: string | number, end: string | number): string;
  /** An error in words for this language (never a stack trace). */
  error(err: unknown): string;
}

export function makeI18n(lang: Language, setLanguage: (lang: Language) => void = () => {}): I18n {
  const t = STRINGS[lang];
  return {
    lang,
    t,
    setLanguage,
    toggleLanguage: () => setLanguage(lang === 'en' ? 'bn' : 'en'),
    num: (n) => format.formatNumber(n, lang),
    duration: (s) => format.formatDuration(s, lang),
    minutes: (m) => format.formatMinutes(m, lang),
    clock: (s) => format.formatClock(s, lang),
    time: (v) => format.formatTime(v, lang),
    date: (v) => format.formatDate(v, lang),
    dateTime: (v) => format.formatDateTime(v, lang),
    span: (start, end) => format.formatSpan(start, end, lang),
    error: (err) => describeError(err, t, lang),
  };
}

export function describeError(err: unknown, t: Strings, lang: Language): string {
  if (err instanceof OfflineError) return t.errors.OFFLINE!;
  if (err instanceof ServerProblemError) return t.errors[err.code]!;
  if (err instanceof ApiError) {
    const known = t.errors[err.code];
    // A validation message names the field; the rest is the server's English (or a parser's),
    // so the reader gets that field's rule in their own language, or nothing more: the rule the
    // sentence's first word names (`field/word`, filled with the sentence's numbers in the
    // reader's digits) where there is one, else the field's (as the dashboard does).
    if (err.code === 'VALIDATION') {
      const [field = '', rule = ''] = err.message.split(/:(.*)/s);
      const word = rule.trim().split(/\s+/)[0] ?? '';
      const hint = t.fieldHints[`${field}/${word}`] ?? t.fieldHints[field];
      const numbers = (rule.match(/-?\d+/g) ?? []).map((n) => format.formatNumber(Number(n), lang));
      const filled = hint?.replace(/\{(\d)\}/g, (_, i: string) => numbers[Number(i)] ?? '');
      return filled ? `${known} ${filled}` : known!;
    }
    if (known) return known;
    return t.errorOther(format.digits(err.status, lang));
  }
  return t.errorOther('?');
}

const I18nContext = createContext<I18n>(makeI18n('en'));

/** A guess from the device's locale until the user chooses; then their choice is remembered. */
function deviceLanguage(): Language {
  try {
    return Intl.DateTimeFormat().resolvedOptions().locale.toLowerCase().startsWith('bn') ? 'bn' : 'en';
  } catch {
    return 'en';
  }
}

export function I18nProvider({ prefs, initial, children }: { prefs: KeyValueStore; initial?: Language; children: ReactNode }) {
  const [lang, setLang] = useState<Language>(initial ?? deviceLanguage());

  useEffect(() => {
    let live = true;
    prefs.get(KEYS.language).then(
      (saved) => live && (saved === 'en' || saved === 'bn') && setLang(saved),
      () => {},
    );
    return () => {
      live = false;
    };
  }, [prefs]);

  const setLanguage = useCallback(
    (next: Language) => {
      setLang(next);
      prefs.set(KEYS.language, next).catch(() => {});
    },
    [prefs],
  );

  const value = useMemo(() => makeI18n(lang, setLanguage), [lang, setLanguage]);
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  return useContext(I18nContext);
}

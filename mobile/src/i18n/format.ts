// Numbers, durations, times and dates in the user's language. Written out here rather than left
// to Intl: Hermes on cheap Android phones does not always carry Bangla locale data.
export type Language = 'en' | 'bn';

const BANGLA_DIGITS = ['০', '১', '২', '৩', '৪', '৫', '৬', '৭', '৮', '৯'];

/** Replaces ASCII digits with the language's digits (Bangla: ০-৯). */
export function digits(text: string | number, lang: Language): string {
  const s = String(text);
  return lang === 'bn' ? s.replace(/[0-9]/g, (d) => BANGLA_DIGITS[Number(d)]!) : s;
}

/** A whole number with grouping: 12,345 in English; ১২,৩৪৫ and lakhs (১,২৩,৪৫৬) in Bangla. */
export function formatNumber(n: number, lang: Language): string {
  const negative = n < 0;
  const s = String(Math.trunc(Math.abs(n)));
  let grouped: string;
  if (lang === 'bn' && s.length > 3) {
    const head = s.slice(0, -3);
    grouped = `${head.replace(/\B(?=(\d{2})+(?!\d))/g, ',')},${s.slice(-3)}`;
  } else {
    grouped = s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }
  return digits(`${negative ? '−' : ''}${grouped}`, lang);
}

const UNITS = {
  en: { h: 'h', min: 'min', s: 's' },
  bn: { h: 'ঘণ্টা', min: 'মিনিট', s: 'সেকেন্ড' },
} as const;

/** Between a number and its unit: a line may break between "1 h" and "5 min", never inside one. */
const NBSP = '\u00a0';

/** A duration in words: "1 h 5 min", "29 min 57 s", "45 s"; "১ ঘণ্টা ৫ মিনিট". */
export function formatDuration(totalSeconds: number, lang: Language): string {
  const sign = totalSeconds < 0 ? '−' : '';
  const t = Math.abs(Math.round(totalSeconds));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const s = t % 60;
  const u = UNITS[lang];
  const parts: string[] = [];
  if (h) parts.push(`${formatNumber(h, lang)}${NBSP}${u.h}`);
  if (m) parts.push(`${formatNumber(m, lang)}${NBSP}${u.min}`);
  // Seconds only matter for short spans; past an hour they are noise.
  if (s && !h) parts.push(`${formatNumber(s, lang)}${NBSP}${u.s}`);
  if (!parts.length) parts.push(`${formatNumber(0, lang)}${NBSP}${u.min}`);
  return sign + parts.join(' ');
}

/** Whole minutes: "30 min" / "৩০ মিনিট". */
export function formatMinutes(minutes: number, lang: Language): string {
  return `${formatNumber(minutes, lang)}${NBSP}${UNITS[lang].min}`;
}

/** A countdown clock: "12:05", "1:02:05"; "১২:০৫". */
export function formatClock(totalSeconds: number, lang: Language): string {
  const t = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const s = t % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return digits(h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`, lang);
}

const MONTHS = {
  en: ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'],
  bn: ['জানুয়ারি', 'ফেব্রুয়ারি', 'মার্চ', 'এপ্রিল', 'মে', 'জুন', 'জুলাই', 'আগস্ট', 'সেপ্টেম্বর', 'অক্টোবর', 'নভেম্বর', 'ডিসেম্বর'],
} as const;

/** Bangla names the part of the day instead of AM/PM. */
function banglaDayPart(hour: number): string {
  if (hour >= 4 && hour < 6) return 'ভোর';
  if (hour >= 6 && hour < 12) return 'সকাল';
  if (hour >= 12 && hour < 15) return 'দুপুর';
  if (hour >= 15 && hour < 18) return 'বিকাল';
  if (hour >= 18 && hour < 20) return 'সন্ধ্যা';
  return 'রাত';
}

function toDate(value: string | number | Date): Date {
  return value instanceof Date ? value : new Date(value);
}

/** The local time of day: "8:49 PM" / "রাত ৮:৪৯". */
export function formatTime(value: string | number | Date, lang: Language): string {
  const d = toDate(value);
  if (Number.isNaN(d.getTime())) return '';
  const hour = d.getHours();
  const h12 = hour % 12 === 0 ? 12 : hour % 12;
  const mm = String(d.getMinutes()).padStart(2, '0');
  if (lang === 'bn') return `${banglaDayPart(hour)} ${digits(`${h12}:${mm}`, lang)}`;
  return `${h12}:${mm} ${hour < 12 ? 'AM' : 'PM'}`;
}

/** The local date: "27 Nov 2026" / "২৭ নভেম্বর ২০২৬". */
export function formatDate(value: string | number | Date, lang: Language): string {
  const d = toDate(value);
  if (Number.isNaN(d.getTime())) return '';
  return digits(`${d.getDate()} ${MONTHS[lang][d.getMonth()]} ${d.getFullYear()}`, lang);
}

/** Date and time: "27 Nov 2026, 8:49 PM". */
export function formatDateTime(value: string | number | Date, lang: Language): string {
  const date = formatDate(value, lang);
  return date ? `${date}, ${formatTime(value, lang)}` : '';
}

/**
 * When a run was: "27 Nov 2026 · 8:00 AM – 8:40 AM"; one that ended on another day carries both
 * dates ("26 Nov 2026 · 11:50 PM – 27 Nov 2026 · 12:20 AM"), so a night's run is seen on the day
 * it ended too, the day the owner's usage counts it on (the dashboard shows the same parts).
 */
export function formatSpan(start: string | number | Date, end: string | number | Date, lang: Language): string {
  const [day, endDay] = [formatDate(start, lang), formatDate(end, lang)];
  const from = `${day} · ${formatTime(start, lang)}`;
  return day === endDay ? `${from} – ${formatTime(end, lang)}` : `${from} – ${endDay} · ${formatTime(end, lang)}`;
}

/** Reads digits typed in either script ("১৫" or "15") as a whole number; null when it is not one. */
/** A whole number with an optional sign: "-15", "−১৫", "+15". */
export function parseSignedNumber(text: string): number | null {
  const t = text.trim();
  const sign = t.startsWith('-') || t.startsWith('−') ? -1 : 1;
  const n = parseWholeNumber(/^[-−+]/.test(t) ? t.slice(1) : t);
  return n === null ? null : sign * n;
}

export function parseWholeNumber(text: string): number | null {
  const ascii = text.trim().replace(/[০-৯]/g, (d) => String(BANGLA_DIGITS.indexOf(d)));
  return /^\d{1,9}$/.test(ascii) ? Number(ascii) : null;
}

/**
 * Where "the last 14 days" of the owner's and the master's summaries begin: the start of the day
 * 13 days before today on the phone's calendar, so today is the 14th. It stays the same all day,
 * so the summary read again with every status is the same read, and the server can answer that
 * nothing changed (`ApiClient`'s held answers) instead of sending two weeks of runs again.
 */
export function fortnightStart(now: number = Date.now()): string {
  return daysStart(14, now);
}

/** Where "the last `days` days" begin: today and the `days - 1` before it, on the phone's calendar. */
export function daysStart(days: number, now: number = Date.now()): string {
  const day = new Date(now);
  day.setHours(0, 0, 0, 0);
  day.setDate(day.getDate() - (days - 1));
  return day.toISOString();
}

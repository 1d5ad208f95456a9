import {
  digits,
  formatClock,
  formatDate,
  formatDateTime,
  formatDuration,
  formatMinutes,
  formatNumber,
  formatSpan,
  formatTime,
  parseWholeNumber,
} from '../src/i18n/format';

/** `text` with a no-break space between each number and its unit, as durations are written. */
const nb = (text: string) => text.replace(/([0-9০-৯]) /g, '$1\u00a0');

// Jest runs in UTC (test/global-setup.js), so local time = the ISO time.
describe('English', () => {
  test('numbers, durations, clock', () => {
    expect(formatNumber(1234567, 'en')).toBe('1,234,567');
    expect(formatDuration(1797, 'en')).toBe(nb('29 min 57 s'));
    expect(formatDuration(3900, 'en')).toBe(nb('1 h 5 min'));
    expect(formatDuration(45, 'en')).toBe(nb('45 s'));
    expect(formatDuration(0, 'en')).toBe(nb('0 min'));
    expect(formatDuration(-130, 'en')).toBe(nb('−2 min 10 s'));
    expect(formatMinutes(30, 'en')).toBe(nb('30 min'));
    // A line never breaks between a number and its unit ("about 43 / s" at 360 px), only between parts.
    expect(formatDuration(4380, 'en')).toBe('1\u00a0h 13\u00a0min');
    expect(formatClock(725, 'en')).toBe('12:05');
    expect(formatClock(3725, 'en')).toBe('1:02:05');
    expect(formatClock(-5, 'en')).toBe('0:00');
  });

  test('times and dates', () => {
    expect(formatTime('2026-11-27T08:49:00Z', 'en')).toBe('8:49 AM');
    expect(formatTime('2026-11-27T00:05:00Z', 'en')).toBe('12:05 AM');
    expect(formatTime('2026-11-27T20:49:00Z', 'en')).toBe('8:49 PM');
    expect(formatDate('2026-11-27T08:49:00Z', 'en')).toBe('27 Nov 2026');
    expect(formatDateTime('2026-11-27T13:01:00Z', 'en')).toBe('27 Nov 2026, 1:01 PM');
    expect(formatTime('not a time', 'en')).toBe('');
  });

  test("a run's start and end: both dates when it ran across midnight", () => {
    expect(formatSpan('2026-11-27T08:00:00Z', '2026-11-27T08:40:00Z', 'en')).toBe('27 Nov 2026 · 8:00 AM – 8:40 AM');
    expect(formatSpan('2026-11-26T23:50:00Z', '2026-11-27T00:20:00Z', 'en')).toBe(
      '26 Nov 2026 · 11:50 PM – 27 Nov 2026 · 12:20 AM',
    );
    expect(formatSpan('2026-11-26T23:50:00Z', '2026-11-27T00:20:00Z', 'bn')).toBe(
      '২৬ নভেম্বর ২০২৬ · রাত ১১:৫০ – ২৭ নভেম্বর ২০২৬ · রাত ১২:২০',
    );
  });
});

describe('Bangla', () => {
  test('digits ০-৯ everywhere', () => {
    expect(digits('0123456789', 'bn')).toBe('০১২৩৪৫৬৭৮৯');
    expect(digits(42, 'en')).toBe('42');
    expect(formatNumber(30, 'bn')).toBe('৩০');
  });

  test('grouping in lakhs', () => {
    expect(formatNumber(1234, 'bn')).toBe('১,২৩৪');
    expect(formatNumber(123456, 'bn')).toBe('১,২৩,৪৫৬');
    expect(formatNumber(12345678, 'bn')).toBe('১,২৩,৪৫,৬৭৮');
  });

  test('durations and the countdown', () => {
    expect(formatDuration(1797, 'bn')).toBe(nb('২৯ মিনিট ৫৭ সেকেন্ড'));
    expect(formatDuration(3900, 'bn')).toBe(nb('১ ঘণ্টা ৫ মিনিট'));
    expect(formatMinutes(15, 'bn')).toBe(nb('১৫ মিনিট'));
    expect(formatClock(725, 'bn')).toBe('১২:০৫');
  });

  test('times name the part of the day; dates name the month', () => {
    expect(formatTime('2026-11-27T08:49:00Z', 'bn')).toBe('সকাল ৮:৪৯');
    expect(formatTime('2026-11-27T13:30:00Z', 'bn')).toBe('দুপুর ১:৩০');
    expect(formatTime('2026-11-27T16:00:00Z', 'bn')).toBe('বিকাল ৪:০০');
    expect(formatTime('2026-11-27T19:00:00Z', 'bn')).toBe('সন্ধ্যা ৭:০০');
    expect(formatTime('2026-11-27T22:15:00Z', 'bn')).toBe('রাত ১০:১৫');
    expect(formatTime('2026-11-27T05:00:00Z', 'bn')).toBe('ভোর ৫:০০');
    expect(formatDate('2026-11-27T08:49:00Z', 'bn')).toBe('২৭ নভেম্বর ২০২৬');
  });
});

test('whole numbers typed in either script', () => {
  expect(parseWholeNumber('15')).toBe(15);
  expect(parseWholeNumber(' ১৫ ')).toBe(15);
  expect(parseWholeNumber('1.5')).toBeNull();
  expect(parseWholeNumber('-3')).toBeNull();
  expect(parseWholeNumber('')).toBeNull();
});

describe('errors in the reader’s language', () => {
  // Imported here so the format tests above stay free of React.
  const { describeError } = require('../src/i18n/I18n') as typeof import('../src/i18n/I18n');
  const { STRINGS } = require('../src/i18n/strings') as typeof import('../src/i18n/strings');
  const { ApiError } = require('../src/api/client') as typeof import('../src/api/client');
  const parser = new ApiError(400, 'VALIDATION', 'minutes: invalid type: string "abc", expected i64 at line 1 column 16');

  test('a refused field gets its rule in words, never the parser’s text', () => {
    expect(describeError(parser, STRINGS.bn, 'bn')).toBe('যা লিখেছেন তা আবার দেখুন। মিনিট: একটি পূর্ণ সংখ্যা লিখুন, যেমন ৩০।');
    expect(describeError(parser, STRINGS.en, 'en')).toBe('Please check what you entered. Minutes: type a whole number, like 30.');
  });

  test('the rule the server names, with its numbers in the reader’s digits', () => {
    const over = new ApiError(400, 'VALIDATION', 'minutes: from 1 to 600');
    expect(describeError(over, STRINGS.en, 'en')).toBe('Please check what you entered. Minutes: a whole number from 1 to 600.');
    expect(describeError(over, STRINGS.bn, 'bn')).toBe('যা লিখেছেন তা আবার দেখুন। মিনিট: ১ থেকে ৬০০-এর মধ্যে একটি পূর্ণ সংখ্যা।');
    const cash = new ApiError(400, 'VALIDATION', 'cashTaka: from 0 to 10000000');
    expect(describeError(cash, STRINGS.en, 'en')).toBe('Please check what you entered. Cash: whole taka from 0 to 10,000,000.');
    const below = new ApiError(409, 'BELOW_ZERO', 'that amount is not allowed: a balance cannot go below zero');
    expect(describeError(below, STRINGS.en, 'en')).toBe('A balance cannot go below zero: take back at most what is left.');
  });

  test('an owner’s Stop sent twice: its run had ended, in both languages', () => {
    const ended = new ApiError(409, 'ALREADY_ENDED', 'this run has ended already; nothing was stopped');
    expect(describeError(ended, STRINGS.en, 'en')).toBe('That run had ended already: nothing was stopped. The screen is updated.');
    expect(describeError(ended, STRINGS.bn, 'bn')).toBe('ওই পাম্প চালানো আগেই শেষ হয়ে গেছে: কিছুই বন্ধ করা হয়নি। পাতাটি হালনাগাদ করা হলো।');
  });

  test('an unknown field says only that something must be checked', () => {
    const other = new ApiError(400, 'VALIDATION', 'wait: at most 25000 ms');
    expect(describeError(other, STRINGS.en, 'en')).toBe('Please check what you entered.');
  });
});

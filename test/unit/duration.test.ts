import { formatDuration, parseDuration } from '../../config/duration';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['1h0m0s', 3_600_000],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['250', 250],
  ])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'abc', '10x', '1h 30m', 'm5', '-5m'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeNull();
  });

  it('formats compactly', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(172_800_000 + 1000)).toBe('2d1s');
    expect(formatDuration(20)).toBe('20ms');
  });
});

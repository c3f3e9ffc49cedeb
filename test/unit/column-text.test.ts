/** Fitting platform texts to their columns: counted and cut on code points, keys kept distinct by a hash. */
import { fitKey, fitNullable, fitText } from '../../cloud/store/column-text';

describe('fitText', () => {
  it('counts characters as MariaDB does and never cuts a surrogate pair in two', () => {
    expect(fitText('😀'.repeat(190), 190)).toBe('😀'.repeat(190)); // 380 UTF-16 units, 190 characters: it fits
    expect(fitText('a😀b', 2)).toBe('a😀');
    expect(fitText('a😀b', 1)).toBe('a');
    expect(fitText('\ud800x', 1)).toBe('\ud800'); // a lone surrogate is one character (stored as U+FFFD)
    expect(fitNullable(null, 5)).toBeNull();
    expect(fitNullable('abcdef', 5)).toBe('abcde');
  });
});

describe('fitKey', () => {
  it('leaves a key that fits as it is, and gives a long one its start and a hash of the whole', () => {
    expect(fitKey('T024BE7LD', 128)).toBe('T024BE7LD');
    const a = fitKey(`${'x'.repeat(200)}a`, 190);
    const b = fitKey(`${'x'.repeat(200)}b`, 190);
    expect(a).not.toBe(b);
    expect([...a]).toHaveLength(190);
    expect(a.startsWith('x'.repeat(100))).toBe(true);
    expect(fitKey(a, 190)).toBe(a); // a stored key finds itself
    expect(fitKey('😀'.repeat(190), 190)).toBe('😀'.repeat(190));
  });

  it('hashes a key with characters an ASCII column cannot hold', () => {
    expect(fitKey('bot:msg-1', 190, true)).toBe('bot:msg-1');
    expect(fitKey('bot:消息', 190, true)).toMatch(/^~[0-9a-f]{24}$/);
  });
});

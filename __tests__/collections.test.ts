// The small helpers every layer shares.
import { describe, expect, it } from '@jest/globals';
import { apiAtLeast, pushTo, sum, sumOf } from '../src/collections';

describe('collections', () => {
  it('pushTo appends, creating the list on first use', () => {
    const map = new Map<string, number[]>();
    pushTo(map, 'a', 1);
    pushTo(map, 'a', 2);
    pushTo(map, 'b', 3);
    expect([...map]).toEqual([
      ['a', [1, 2]],
      ['b', [3]],
    ]);
  });

  it('sum and sumOf add up, 0 for nothing', () => {
    expect(sum([])).toBe(0);
    expect(sum([1, 2, 3.5])).toBe(6.5);
    expect(sumOf([{ n: 2 }, { n: 40 }], (x) => x.n)).toBe(42);
    expect(sumOf([], () => 1)).toBe(0);
  });

  it('apiAtLeast compares major then minor as numbers, not as text', () => {
    expect(apiAtLeast('1.41', 1, 42)).toBe(false);
    expect(apiAtLeast('1.42', 1, 42)).toBe(true);
    expect(apiAtLeast('1.100', 1, 48)).toBe(true);
    expect(apiAtLeast('2.0', 1, 48)).toBe(true);
    expect(apiAtLeast('0.99', 1, 0)).toBe(false);
  });
});

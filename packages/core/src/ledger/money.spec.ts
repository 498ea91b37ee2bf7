import { describe, expect, it } from '@jest/globals';
import { amountMinor, decimalFraction, divideHalfEven, feeToMinor, minorToDecimal, shareNumber, shares } from './money.js';

describe('ledger money', () => {
  it('reads fees in minor units, refusing more decimals than the currency has', () => {
    expect(feeToMinor('2.50', 2)).toBe(250n);
    expect(feeToMinor(2.5, 2)).toBe(250n);
    expect(feeToMinor('0', 2)).toBe(0n);
    expect(feeToMinor('3', 0)).toBe(3n);
    expect(feeToMinor('1.230', 2)).toBe(123n);
    expect(feeToMinor('1.234', 2)).toBeUndefined();
    expect(feeToMinor(0.001, 2)).toBeUndefined();
    expect(feeToMinor(1e-7, 7)).toBe(1n);
    expect(feeToMinor('1.5', 0)).toBeUndefined();
    expect(feeToMinor('-1', 2)).toBeUndefined();
  });

  it('writes minor units as decimals', () => {
    expect(minorToDecimal(1234n, 2)).toBe('12.34');
    expect(minorToDecimal(5n, 2)).toBe('0.05');
    expect(minorToDecimal(0n, 3)).toBe('0.000');
    expect(minorToDecimal(42n, 0)).toBe('42');
    expect(minorToDecimal(-150n, 2)).toBe('-1.50');
  });

  it('takes weights as the decimals they are written as, and shares them exactly', () => {
    expect(decimalFraction(0.7)).toEqual({ numerator: 7n, denominator: 10n });
    const [a, b, c] = shares([0.1, 0.2, 0.7]);
    expect([a, b, c].map((share) => Number(share!.numerator) / Number(share!.denominator))).toEqual([0.1, 0.2, 0.7]);
    expect(a!.numerator + b!.numerator + c!.numerator).toBe(a!.denominator);
    expect(shares([1, 2]).map(shareNumber)).toEqual([0.333333, 0.666666]);
  });

  it('rounds each amount once, half to even', () => {
    expect(divideHalfEven(5n, 2n)).toBe(2n);
    expect(divideHalfEven(7n, 2n)).toBe(4n);
    expect(divideHalfEven(7n, 3n)).toBe(2n);
    expect(divideHalfEven(8n, 3n)).toBe(3n);
    // 1,000 calls at 2.00 per 1,000 for a 3/4 share: 150 cents exactly; at 5.00 for 1/4: 125.
    const [first, second] = shares([3, 1]);
    expect(amountMinor(1000n, 200n, first!)).toBe(150n);
    expect(amountMinor(1000n, 500n, second!)).toBe(125n);
    // 1 call at 2.50 per 1,000 for a whole share is 0.25 cents: 0; 2 calls 0.5 → 0 (even); 6 calls 1.5 → 2.
    const whole = { numerator: 1n, denominator: 1n };
    expect([1n, 2n, 6n].map((calls) => amountMinor(calls, 250n, whole))).toEqual([0n, 0n, 2n]);
  });
});

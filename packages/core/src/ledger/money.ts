// Exact money arithmetic for the ledger: fees and amounts are integers of minor units (cents), shares
// are fractions of BigInts, and each amount is rounded once, half to even, so the same usage records
// always give the same amounts (docs/ledger.md, "Amounts").

/** A fee given as a decimal (`2.5`, `"2.50"`) in minor units of a currency with `digits` digits; undefined when it has more decimals than that. */
export function feeToMinor(fee: number | string, digits: number): bigint | undefined {
  const text = typeof fee === 'number' ? decimalText(fee) : fee;
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return undefined;
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  if (fraction.length > digits) return undefined;
  return BigInt(match[1]!) * 10n ** BigInt(digits) + BigInt(fraction.padEnd(digits, '0') || '0');
}

/** Minor units as a decimal in the currency (`1234`, 2 digits → `"12.34"`; negative amounts keep their sign). */
export function minorToDecimal(minor: bigint, digits: number): string {
  const sign = minor < 0n ? '-' : '';
  const magnitude = (minor < 0n ? -minor : minor).toString().padStart(digits + 1, '0');
  return digits === 0 ? `${sign}${magnitude}` : `${sign}${magnitude.slice(0, -digits)}.${magnitude.slice(-digits)}`;
}

/** A number's shortest decimal text without an exponent (`1e-7` → `"0.0000001"`). */
function decimalText(value: number): string {
  const text = String(value);
  if (!/e/i.test(text)) return text;
  const [mantissa, exponentText] = text.toLowerCase().split('e') as [string, string];
  const exponent = Number(exponentText);
  const [whole, fraction = ''] = mantissa.split('.') as [string, string?];
  const digits = whole + fraction;
  const point = whole.length + exponent;
  if (point <= 0) return `0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return digits + '0'.repeat(point - digits.length);
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** A fraction of BigInts. */
export interface Fraction {
  numerator: bigint;
  denominator: bigint;
}

/** A positive number as the exact fraction of its shortest decimal text (`0.7` → 7/10, not the double's binary value). */
export function decimalFraction(value: number): Fraction {
  const [whole, fraction = ''] = decimalText(value).split('.') as [string, string?];
  return { numerator: BigInt(whole + fraction), denominator: 10n ** BigInt(fraction.length) };
}

/** Each weight's share of their sum, exactly: `weights[i] / Σ weights`. */
export function shares(weights: readonly number[]): Fraction[] {
  const fractions = weights.map(decimalFraction);
  const common = fractions.reduce((product, { denominator }) => lcm(product, denominator), 1n);
  const scaled = fractions.map(({ numerator, denominator }) => numerator * (common / denominator));
  const total = scaled.reduce((sum, value) => sum + value, 0n);
  return scaled.map((value) => ({ numerator: value, denominator: total }));
}

/** What `calls` calls earn at `feeMinorPer1000` for a dataset whose lineage share is `share`: rounded half to even. */
export function amountMinor(calls: bigint, feeMinorPer1000: bigint, share: Fraction): bigint {
  return divideHalfEven(calls * feeMinorPer1000 * share.numerator, 1000n * share.denominator);
}

/** numerator / denominator (both ≥ 0, denominator > 0) rounded to the nearest integer, ties to the even one. */
export function divideHalfEven(numerator: bigint, denominator: bigint): bigint {
  const quotient = numerator / denominator;
  const twice = 2n * (numerator % denominator);
  if (twice > denominator || (twice === denominator && quotient % 2n === 1n)) return quotient + 1n;
  return quotient;
}

/** A share as a number, for display. */
export const shareNumber = (share: Fraction) => Number((share.numerator * 1_000_000n) / share.denominator) / 1_000_000;

const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
const lcm = (a: bigint, b: bigint) => (a / gcd(a, b)) * b;

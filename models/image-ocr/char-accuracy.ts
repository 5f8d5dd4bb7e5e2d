/**
 * Character accuracy of OCR output: 1 − (edit distance / reference length),
 * summed over a set (so long lines weigh more), counting Unicode code
 * points, so a CJK character is one character as a Latin letter is.
 */

/** Levenshtein distance between two strings, in code points. */
export function editDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[y.length]!;
}

export interface Reading {
  reference: string;
  hypothesis: string;
}

export function characterAccuracy(readings: readonly Reading[]): number {
  const errors = readings.reduce((n, r) => n + editDistance(r.reference, r.hypothesis), 0);
  const length = readings.reduce((n, r) => n + [...r.reference].length, 0);
  return length === 0 ? 1 : 1 - errors / length;
}

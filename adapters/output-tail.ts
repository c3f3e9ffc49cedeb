/** The end of a job's output that fits a platform's message: its last bytes in UTF-8, never a broken character. */

/** The last maxBytes of a text in UTF-8 (without a broken first character), and whether it was cut. */
export function outputTail(text: string, maxBytes: number): { text: string; cut: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return { text, cut: false };
  return {
    text: bytes
      .subarray(bytes.length - maxBytes)
      .toString('utf8')
      .replace(/^\uFFFD+/, ''),
    cut: true,
  };
}

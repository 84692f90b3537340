/**
 * A DataView over a byte array, made once per array: hot loops (the prompt table's fingerprints and
 * pages) ask for a view of the same batch buffer for every row. Each call of `dataViews()` keeps its own
 * last array and view.
 */
export function dataViews(): (bytes: Uint8Array) => DataView {
  let lastBytes: Uint8Array | null = null;
  let lastView: DataView | null = null;
  return (bytes) => {
    if (bytes !== lastBytes) {
      lastBytes = bytes;
      lastView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    return lastView!;
  };
}

import { readFileSync, writeFileSync } from 'node:fs';

/**
 * This process's resident memory (all its threads: the teacher's worker thread and onnxruntime's
 * allocations included). On Linux the peak is VmHWM, which `resetPeakRss` lowers to the current RSS
 * (writing 5 to /proc/self/clear_refs), so a worker can report the peak of each shard; elsewhere the
 * peak is the process's lifetime maximum.
 */
const MB = 1024 * 1024;

function statusKb(field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s*(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Peak resident memory in MB since the process started or since the last `resetPeakRss`. */
export function peakRssMb(): number {
  const kb = statusKb('VmHWM') ?? process.resourceUsage().maxRSS;
  return Math.round(kb / 1024);
}

/** Current resident memory in MB. */
export function rssMb(): number {
  return Math.round(process.memoryUsage.rss() / MB);
}

/** Start a new peak window (Linux); false where the peak cannot be reset. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

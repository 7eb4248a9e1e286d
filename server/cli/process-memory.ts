// This process's resident memory (Linux /proc), for benchmarks that report what loading a
// model costs. Elsewhere the figures are undefined.
import { readFileSync, writeFileSync } from 'node:fs';

function statusKb(field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes resident now. */
export const residentBytes = (): number | undefined => statusKb('VmRSS');

/** The most bytes resident at once since start or since resetPeakResident(). */
export const peakResidentBytes = (): number | undefined => statusKb('VmHWM');

/** Starts the peak over from what is resident now (Linux: clear_refs 5). False if it cannot. */
export function resetPeakResident(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}
